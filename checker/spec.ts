// The spec language: what a spec author writes. Everything here is plain data
// and closures; `compile.ts` turns it into a model the explorer can run.
import type { z } from "zod";
import type { Owned } from "./ownership.ts";
import type { ThreadDef } from "./threads.ts";

/** A kernel-style fault raised inside an action's effect (a WARN, a UAF, ...). */
export class Fault extends Error {
  /**
   * @param subject the part of the state the fault is about (e.g. the struct file whose
   * count was 0), so reports can point at it
   */
  constructor(
    message: string,
    readonly subject?: object,
  ) {
    super(message);
    this.name = "Fault";
  }
}

/** A defect of the spec itself (bad definition, state outside its schema). Exit code 2. */
export class SpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SpecError";
  }
}

/** 0..n-1, the usual parameter domain of an indexed action. */
export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

type Domains = Record<string, readonly unknown[]>;
type DomainValues<D extends Domains> = { [K in keyof D]: D[K][number] };

/** A named action. `each` gives finite parameter domains; one instance per combination. */
export interface ActionDef<S, D extends Domains = Domains> {
  /** Parameter domains; the action is instantiated once per combination (keys in order). */
  each?: D;
  /** Guard: the action is enabled in `s` with these parameters. Must not mutate `s`. */
  when?: (s: S, a: DomainValues<D>) => boolean;
  /** Effect: mutates the draft state in place; may throw a Fault. */
  then: (s: S, a: DomainValues<D>) => void;
  /** The kernel function(s) the action stands for, shown in traces and reports. */
  kernel?: string;
  /**
   * The thread that runs the action ("ioctl", "task_work", "rcu", "unload"...), fixed or
   * from its parameters; each trace step carries it, for lanes in the diagrams.
   */
  thread?: string | ((a: DomainValues<D>) => string);
  /**
   * Partial-order reduction: every state path the guard and the effect may read (e.g.
   * "vmFile", "dev[0].bound"; a path covers everything under it). Verified under --por:
   * touching a field outside it is a spec error. Without reads and writes, the action may
   * touch anything.
   */
  reads?: Footprint<DomainValues<D>>;
  /** Partial-order reduction: every state path the effect may write. */
  writes?: Footprint<DomainValues<D>>;
}

/** State paths an action touches, fixed or computed from its parameters. */
export type Footprint<A> = readonly string[] | ((a: A) => readonly string[]);

/** Declares a typed action so TypeScript infers the parameter names. */
export function action<S, D extends Domains>(def: ActionDef<S, D>): ActionDef<S, D> {
  return def;
}

export interface ActionRef {
  name: string;
  params: Record<string, unknown>;
}

/** A witness: a state that must (or, with expect "unreachable", must not) be reachable. */
export type Witness<S> =
  | ((s: S) => boolean)
  | { when: (s: S) => boolean; expect?: "reachable" | "unreachable"; doc?: string; reads?: readonly string[] };

/** `reads`: the state paths an invariant or witness looks at (for --por; default: all). */
export type Invariant<S> = ((s: S) => boolean) | { holds: (s: S) => boolean; doc?: string; reads?: readonly string[] };
export type ActionProperty<S> =
  | ((before: S, after: S, act: ActionRef) => boolean)
  | { holds: (before: S, after: S, act: ActionRef) => boolean; doc?: string };

type OrFn<P, T> = T | ((p: P) => T);

/** What a declared violation must look like: its trace length, a fragment of its message. */
export interface ExpectedViolation {
  /** Length of the shortest counterexample (number of actions). */
  steps?: number;
  /** A substring of the violation's message, or a pattern it must match. */
  message?: string | RegExp;
}

/**
 * A known outcome: the runs whose parameters equal every value in `when` violate exactly
 * the properties in `violated` (a failed witness counts as a violation of its name) and
 * hold every other property.
 */
export interface ExpectedEntry<P> {
  when: { [K in keyof P]?: P[K] };
  violated: Record<string, true | ExpectedViolation>;
  /** Why these runs fail (the bug the design has). */
  doc?: string;
}

/**
 * Actions that must eventually run (see checker/liveness.ts). A name in the list is one
 * constraint per instance ("Release" with `each: { i }`: each Release(i) on its own; or an
 * instance label "Release(i=1)"); a thread `{ thread: "task_work" }` is one constraint over
 * every action whose `thread` is that name (a runnable thread eventually runs; a list of
 * names is one constraint per thread); a named group `{ taskWork: ["Fput", "Release"] }` is
 * one constraint over the disjunction of its items' instances.
 */
export type FairItem = string | { readonly thread: string | readonly string[] };
export type FairActions = readonly FairItem[] | Readonly<Record<string, readonly FairItem[]>>;

/**
 * weak: an action enabled continuously from some point on is eventually taken; strong: an
 * action enabled infinitely often is taken infinitely often.
 */
export interface Fairness {
  weak?: FairActions;
  strong?: FairActions;
}

interface LivenessCommon {
  doc?: string;
  /** The fairness this property is checked under, instead of the spec's `fairness`. */
  fairness?: Fairness;
}

/**
 * A liveness property, checked on the complete state graph: `eventually` P (every run
 * reaches a state where P holds), `leadsTo` [P, Q] (always, P implies eventually Q), or
 * `alwaysEventually` P (P holds infinitely often).
 */
export type Liveness<S> =
  | (LivenessCommon & { eventually: (s: S) => boolean })
  | (LivenessCommon & { leadsTo: readonly [(s: S) => boolean, (s: S) => boolean] })
  | (LivenessCommon & { alwaysEventually: (s: S) => boolean });

export interface SpecDef<PS extends z.ZodObject<any>, SS extends z.ZodType> {
  /** Scenario name, e.g. "kvm-vfio/file-pinning". */
  name: string;
  summary?: string;
  /** Where the design comes from (a seed thread, a commit). */
  source?: string;
  /** Parameters with bounded domains and defaults. */
  params: PS;
  /** Which parameter selects the design (default: "design" when such a parameter exists). */
  designParam?: string;
  /**
   * Parameter sets that a run checks each design under, when the user does not set those
   * parameters (e.g. one KVM module and kvm.ko plus a vendor module).
   */
  configurations?: Record<string, unknown>[];
  /** The state schema: booleans, bounded integers, enums, fixed-length arrays and objects. */
  state: (p: z.infer<PS>) => SS;
  /** Initial state(s). */
  init: (p: z.infer<PS>) => z.infer<SS> | z.infer<SS>[];
  actions: (p: z.infer<PS>) => Record<string, ActionDef<z.infer<SS>, any>>;
  /**
   * Kernel functions as threads of labelled steps with locks held across them (see
   * checker/threads.ts): each step becomes the action "thread.label", its guard generated
   * from the thread's pc and the locks it takes; a state where nothing runs while a
   * thread is mid-call is a deadlock.
   */
  threads?: OrFn<z.infer<PS>, Record<string, ThreadDef<z.infer<SS>>>>;
  /**
   * The kernel's CONFIG_PROVE_LOCKING, for the steps of `threads` (default true): a step
   * taking a lock its own thread holds is lockdep's "possible recursive locking detected"
   * (a fault). With false, the step waits for ever, as mutex_lock does there, and the state is
   * a deadlock. The `lockOrder` check is the model's and stays on either way.
   */
  lockdep?: OrFn<z.infer<PS>, boolean>;
  /** Must hold in every reachable state. */
  invariants?: OrFn<z.infer<PS>, Record<string, Invariant<z.infer<SS>>>>;
  /** Must hold for every transition. */
  actionProperties?: OrFn<z.infer<PS>, Record<string, ActionProperty<z.infer<SS>>>>;
  /** Must hold in every state where no action is enabled (leak checks). */
  quiescent?: OrFn<z.infer<PS>, Record<string, Invariant<z.infer<SS>>>>;
  /**
   * Per counted object: its count, whether it exists, and who holds its references. Derives
   * the invariants <object>CountExact and <object>NoHolderAfterFree and the quiescent
   * property <object>NoLeak (see checker/ownership.ts).
   */
  ownership?: OrFn<z.infer<PS>, Record<string, Owned<z.infer<SS>>>>;
  /** Liveness properties; a violation is a lasso (a prefix, then a cycle repeated forever). */
  liveness?: OrFn<z.infer<PS>, Record<string, Liveness<z.infer<SS>>>>;
  /** The fairness every liveness property is checked under (a property may give its own). */
  fairness?: OrFn<z.infer<PS>, Fairness>;
  /** Witnesses: must be reachable; the shortest example is shown. */
  reachable?: OrFn<z.infer<PS>, Record<string, Witness<z.infer<SS>>>>;
  /**
   * Threads still inside a kernel call. A state with no enabled action where this
   * returns a name is a deadlock, not a quiescent state.
   */
  busy?: (s: z.infer<SS>) => string | undefined | null | false;
  /** Interchangeable elements: the checker may permute this array (symmetry reduction). */
  symmetry?: (s: z.infer<SS>) => unknown;
  /**
   * Lock classes and where each is held (`{ slots_lock: s.slotsLock }`, each a lock with
   * `holder`: 0 when free, else the holding thread's id). With it, every "holding A, took B"
   * on a reachable transition is recorded as lockdep does, and an order cycle is the
   * violation of `lockOrder` (possible circular locking dependency), even without a deadlock.
   * An array of locks is one class with several instances (`"vdev->mutex": s.vdev.map((v) =>
   * v.mutex)`), named "vdev->mutex[1]" by a thread's step, as lockdep keys them all alike.
   */
  locks?: (s: z.infer<SS>) => Record<string, { holder: number } | readonly { holder: number }[]>;
  /**
   * Known outcomes of buggy designs shipped on purpose. When declared, a run matched by no
   * entry is expected to hold every property, and the exit code reports only changes.
   */
  expected?: OrFn<z.infer<PS>, ExpectedEntry<z.infer<PS>>[]>;
}

export interface Spec<PS extends z.ZodObject<any> = z.ZodObject<any>, SS extends z.ZodType = z.ZodType>
  extends SpecDef<PS, SS> {
  readonly kind: "refcheck-spec";
}

const specKeys = new Set([
  "name", "summary", "source", "params", "designParam", "configurations", "state", "init", "actions", "threads", "lockdep", "invariants",
  "actionProperties", "quiescent", "reachable", "busy", "symmetry", "locks", "ownership", "expected",
  "liveness", "fairness",
]);
const actionKeys = new Set(["each", "when", "then", "kernel", "thread", "reads", "writes"]);

export function defineSpec<PS extends z.ZodObject<any>, SS extends z.ZodType>(def: SpecDef<PS, SS>): Spec<PS, SS> {
  const where = `spec "${(def as { name?: unknown }).name ?? "?"}"`;
  for (const k of Object.keys(def)) {
    if (!specKeys.has(k)) throw new SpecError(`${where}: unknown key "${k}"; expected one of ${[...specKeys].join(", ")}`);
  }
  for (const k of ["name", "params", "state", "init", "actions"] as const) {
    if (def[k] === undefined) throw new SpecError(`${where}: missing required key "${k}"`);
  }
  zod4Schema(where, def.params);
  if ((def.params as unknown as Zod4Like)._zod.def.type !== "object") throw new SpecError(`${where}: "params" must be a z.object(...) schema`);
  return { ...def, kind: "refcheck-spec" };
}

type Zod4Like = { _zod: { def: { type?: unknown } } };

/**
 * Checks that a value is a zod 4 schema, from any copy of zod (a project may hold its own
 * beside refcheck's), so by shape rather than instanceof. zod 3 schemas have `_def` and no
 * `_zod`: say so, rather than that the schema has the wrong type.
 */
export function zod4Schema(where: string, x: unknown): void {
  const o = typeof x === "object" && x !== null ? (x as { _zod?: { def?: unknown }; _def?: unknown }) : undefined;
  if (o && o._zod === undefined && o._def !== undefined) {
    throw new SpecError(`${where}: refcheck needs zod 4 (found a zod 3 schema): install zod@^4`);
  }
  if (typeof o?._zod?.def !== "object") throw new SpecError(`${where}: not a zod schema`);
}

export function checkActionKeys(spec: string, name: string, def: object): void {
  for (const k of Object.keys(def)) {
    if (!actionKeys.has(k)) {
      throw new SpecError(`spec "${spec}", action "${name}": unknown key "${k}"; expected one of ${[...actionKeys].join(", ")}`);
    }
  }
}

export function isSpec(x: unknown): x is Spec {
  return typeof x === "object" && x !== null && (x as Spec).kind === "refcheck-spec";
}
