// Threads as labelled steps (like PlusCal labels): a kernel function that is not atomic as
// a whole is a sequence of steps, each one action, with locks held across steps. From the
// declaration come the guards a spec author would otherwise write by hand (the thread is at
// this label; the locks it takes are free or its own), the lock bookkeeping in lockdep's
// words, the thread of each trace step, and `busy` for deadlock detection.
//
// A thread runs one kernel function (`steps`) or one of several (`calls`, each its own steps
// from "idle"). A call's parameters (`each`) are chosen by its first step and kept in the
// thread's record (its locals) for the later ones; the locks a step takes may depend on them
// ("vdev->mutex[1]": instance 1 of a class the spec's `locks` gives as an array).
import { SpecError, Fault, type ActionDef } from "./spec.ts";
import { lockAt, lockClassKey, type LockClassShape, type LockRef, type LockSet, type TakesOf } from "./lockdep.ts";
import { paramsTrap } from "./codec.ts";

type Domains = Record<string, readonly unknown[]>;
type Args = Record<string, unknown>;
type Values<D extends Domains> = { [K in keyof D]: D[K][number] };

/** Lock names from the spec's `locks`: a class, or "class[i]" for instance i of a class given as an array. */
export type LockNames = string | readonly string[];

export interface StepDef<S, A = any> {
  /** Locks the step takes first: it waits while another thread holds one. Fixed, or from the state and the call's parameters. */
  lock?: LockNames | ((s: S, a: A) => LockNames);
  /** Locks the step releases after its effect. */
  unlock?: LockNames | ((s: S, a: A) => LockNames);
  /** Await: the step runs only once this holds (on top of its locks being free). */
  when?: (s: S, a: A) => boolean;
  then?: (s: S, a: A) => void;
  /** The step to go to next (a label of the same call); default the next one in order. "idle" (or "done" with `once`) ends the call. */
  next?: string | ((s: S, a: A) => string);
  /** The kernel code the step stands for, shown in traces. */
  kernel?: string;
}

/** A call of several steps; its pc is "call.label" and its actions "thread.call.label". */
export interface CallSteps<S, D extends Domains = any> {
  /** Parameter domains: the first step is one action instance per combination; the values are kept in the thread's fields of these names. */
  each?: D;
  /** The kernel function, shown when a step names none. */
  kernel?: string;
  steps: Record<string, StepDef<S, Values<D>>>;
}

/** A call of one step (no `steps`): the action "thread.call". */
export type OneStepCall<S, D extends Domains = any> = StepDef<S, Values<D>> & { each?: D };

export type CallDef<S, D extends Domains = any> = CallSteps<S, D> | OneStepCall<S, D>;

/** Declares a call so TypeScript infers its parameters' names and types. */
export function call<S, D extends Domains = {}>(def: CallDef<S, D>): CallDef<S, D> {
  return def;
}

export interface ThreadDef<S> {
  /** The thread's id as a lock holder: 1-based, one per thread. */
  id: number;
  /** Where its program counter (and the calls' parameters) live: a field made with threadSchema (specs/kernel/thread.ts). */
  pc: (s: S) => { pc: string };
  /** The kernel function the thread runs, shown when a step names none. */
  kernel?: string;
  /** Runs its call once, ending at "done", instead of returning to "idle" to run again. */
  once?: boolean;
  /** Parameters of `steps` (as a call's `each`). */
  each?: Domains;
  /** The steps in program order; the first runs from "idle". */
  steps?: Record<string, StepDef<S>>;
  /** Instead of `steps`: the kernel functions the thread may run, one at a time. */
  calls?: Record<string, CallDef<S>>;
}

export interface CompiledThreads {
  actions: Record<string, ActionDef<any, any>>;
  /** The first thread inside a call, and what it waits for: the spec's `busy`. */
  busy: (s: any) => string | undefined;
  /** Per step action: its thread and the locks it takes from a state (with the instance's parameters), for lockdep. */
  takes: Record<string, (s: any, params: Args) => ReturnType<TakesOf>>;
}

/** One sequence of steps from "idle": a thread's `steps`, or one of its calls. */
interface Prog {
  at: string;
  kernel?: string;
  each: Domains;
  keys: string[];
  labels: string[];
  steps: Record<string, StepDef<any>>;
  /** The pc (and the action's name after "thread.") of a label. */
  pcOf: (label: string) => string;
}

const NONE: readonly LockRef[] = Object.freeze([]);
const stepKeys = new Set(["lock", "unlock", "when", "then", "next", "kernel"]);
const callKeys = new Set(["each", "kernel", "steps"]);
const threadKeys = new Set(["id", "pc", "kernel", "once", "each", "steps", "calls"]);
const names = (x: LockNames): readonly string[] => (typeof x === "string" ? [x] : x);

/** A loop, not keys.every(): guards call it, and under tsx every closure made costs a call. */
function sameArgs(keys: readonly string[], r: Args, c: Args): boolean {
  for (const k of keys) if (r[k] !== c[k]) return false;
  return true;
}

/**
 * A class whose instances copy `keys` from a thread's record as own fields, in front of
 * `proto` (the trap). Declared class fields are defined, not assigned, so filling them never
 * reaches the trap's setter; generated once per call, as the codec's views are.
 */
function localsClass(keys: readonly string[], proto: object): new (r: Args) => Args {
  const Base = function () {} as unknown as new () => object;
  Base.prototype = proto;
  const k = keys.map((x) => JSON.stringify(x));
  // The fields are declared (so defined) first; the constructor then assigns own fields.
  return new Function("Base", `return class extends Base { ${k.map((x) => `[${x}];`).join(" ")} constructor(r) { super(); ${k.map((x) => `this[${x}] = r[${x}];`).join(" ")} } }`)(Base);
}

/**
 * The actions of every thread's steps, named "thread.label" ("thread.call.label" in a call).
 * `locksOf` is the spec's `locks`; `shape` its classes, each -1 (one lock) or its number of
 * instances; `probe` a state to check the threads' fields on.
 */
export function compileThreads(
  where: string,
  threads: Record<string, ThreadDef<any>>,
  locksOf: ((s: any) => LockSet) | undefined,
  shape: Record<string, LockClassShape>,
  probe?: unknown,
  /** CONFIG_PROVE_LOCKING: a lock the thread holds already is taken (and reported), else waited for. */
  lockdep = true,
): CompiledThreads {
  const actions: CompiledThreads["actions"] = {};
  const takes: CompiledThreads["takes"] = {};
  const ids = new Map<number, string>();
  /** Per thread, the locks each of its pcs waits for. */
  const all: { name: string; t: ThreadDef<any>; waits: Map<string, (s: any) => readonly LockRef[]> }[] = [];
  const refs = new Map<string, LockRef>();

  /** A lock name resolved against the spec's classes; `sat` names the step for the error. */
  const resolve = (n: unknown, sat: string): LockRef => {
    const known = typeof n === "string" ? refs.get(n) : undefined;
    if (known) return known;
    if (typeof n !== "string") throw new SpecError(`${sat}: a lock name must be a string, got ${JSON.stringify(n)}`);
    if (!locksOf) throw new SpecError(`${sat}: takes or releases "${n}", but the spec declares no "locks"`);
    // "class[i]/k": instance i, taken with lockdep subclass k (mutex_lock_nested).
    const nested = /^(.*)\/(\d+)$/.exec(n);
    const base = nested ? nested[1]! : n, sub = nested ? Number(nested[2]) : 0;
    const m = /^(.*)\[(\d+)\]$/.exec(base);
    const cls = m ? m[1]! : base, idx = m ? Number(m[2]) : -1;
    const c = shape[cls];
    if (c === undefined) throw new SpecError(`${sat}: no lock class "${cls}" in the spec's "locks" (${Object.keys(shape).join(", ")})`);
    if (sub > 0 && !c.subclasses) {
      throw new SpecError(`${sat}: "${n}" takes lock class "${cls}" with subclass ${sub} (mutex_lock_nested), but its locks keep no subclass: make them with lockSchema(threads, { subclasses: ${sub + 1} }) and unlockedNestable()`);
    }
    const size = c.instances;
    if (size < 0 && idx >= 0) throw new SpecError(`${sat}: lock class "${cls}" is one lock; name it "${cls}", not "${n}"`);
    if (size >= 0 && idx < 0) throw new SpecError(`${sat}: lock class "${cls}" has ${size} instances; name one, e.g. "${cls}[0]"`);
    if (idx >= size && size >= 0) throw new SpecError(`${sat}: "${n}": lock class "${cls}" has instances 0..${size - 1}`);
    const r = { cls, idx, name: n, sub, key: lockClassKey(cls, sub) };
    refs.set(n, r);
    return r;
  };
  /** A step's `lock` or `unlock` as a function of the state and the parameters. */
  const lockList = (x: StepDef<any>["lock"], sat: string): ((s: any, a: Args) => readonly LockRef[]) => {
    if (x === undefined) return () => NONE;
    if (typeof x === "function") {
      // Called in every guard: a single name gives its cached one-lock list.
      const one = new Map<string, readonly LockRef[]>();
      return (s, a) => {
        const n = x(s, a);
        if (typeof n !== "string") return names(n).map((m) => resolve(m, sat));
        let l = one.get(n);
        if (!l) one.set(n, (l = [resolve(n, sat)]));
        return l;
      };
    }
    if (typeof x !== "string" && !Array.isArray(x)) throw new SpecError(`${sat}: "lock"/"unlock" must be a lock name, a list of them, or a function of (s, a) giving them`);
    const fixed = names(x).map((n) => resolve(n, sat));
    return () => fixed;
  };
  const checkEach = (each: unknown, at: string, rec: object | undefined): Domains => {
    if (each === undefined) return {};
    if (!each || typeof each !== "object") throw new SpecError(`${at}: "each" must be an object of parameter domains, e.g. { v: range(2) }`);
    for (const [k, d] of Object.entries(each)) {
      if (!Array.isArray(d) || d.length === 0) throw new SpecError(`${at}: parameter domain "${k}" must be a non-empty array`);
      if (k === "pc") throw new SpecError(`${at}: a parameter may not be named "pc" (the thread's program counter)`);
      if (rec && !(k in rec)) throw new SpecError(`${at}: parameter "${k}" needs a field "${k}" in the thread's record to keep it in (threadSchema(labels, { ${k}: ... }))`);
    }
    return each as Domains;
  };

  for (const [name, t] of Object.entries(threads)) {
    const at = `${where}, thread "${name}"`;
    if (!t || typeof t !== "object") throw new SpecError(`${at}: expected { id, pc, steps or calls, kernel?, once?, each? }`);
    for (const k of Object.keys(t)) if (!threadKeys.has(k)) throw new SpecError(`${at}: unknown key "${k}"; expected one of ${[...threadKeys].join(", ")}`);
    if (!Number.isInteger(t.id) || t.id < 1) throw new SpecError(`${at}: "id" must be an integer >= 1 (0 means a free lock)`);
    if (ids.has(t.id)) throw new SpecError(`${at}: id ${t.id} is also thread "${ids.get(t.id)}"'s; each thread needs its own`);
    ids.set(t.id, name);
    if (typeof t.pc !== "function") throw new SpecError(`${at}: "pc" must be a function of the state giving the thread's field, e.g. (s) => s.close`);
    const rec = probe === undefined ? undefined : (t.pc(probe) as object);
    const end = t.once ? "done" : "idle";

    const progs: Prog[] = [];
    if (t.calls !== undefined) {
      if (t.steps !== undefined) throw new SpecError(`${at}: give "steps" (one kernel function) or "calls" (several), not both`);
      if (t.each !== undefined) throw new SpecError(`${at}: with "calls", give each call its own "each"`);
      const calls = t.calls && typeof t.calls === "object" ? Object.entries(t.calls) : [];
      if (calls.length === 0) throw new SpecError(`${at}: "calls" must name at least one call`);
      for (const [c, def] of calls) {
        const cat = `${at}, call "${c}"`;
        if (!def || typeof def !== "object") throw new SpecError(`${cat}: expected { each?, kernel?, steps } or one step { lock?, unlock?, when?, then?, next?, kernel?, each? }`);
        const each = checkEach(def.each, cat, rec);
        if ("steps" in def) {
          for (const k of Object.keys(def)) if (!callKeys.has(k)) throw new SpecError(`${cat}: unknown key "${k}"; expected one of ${[...callKeys].join(", ")} (a call of one step has no "steps")`);
          progs.push({ at: cat, kernel: def.kernel ?? t.kernel, each, keys: Object.keys(each), labels: def.steps && typeof def.steps === "object" ? Object.keys(def.steps) : [], steps: def.steps, pcOf: (l) => `${c}.${l}` });
        } else {
          const { each: _, ...step } = def as OneStepCall<any>;
          progs.push({ at: cat, kernel: t.kernel, each, keys: Object.keys(each), labels: [c], steps: { [c]: step }, pcOf: () => c });
        }
      }
    } else {
      const each = checkEach(t.each, at, rec);
      progs.push({ at, kernel: t.kernel, each, keys: Object.keys(each), labels: t.steps && typeof t.steps === "object" ? Object.keys(t.steps) : [], steps: t.steps!, pcOf: (l) => l });
    }
    const waits = new Map<string, (s: any) => readonly LockRef[]>();
    all.push({ name, t, waits });

    for (const prog of progs) {
      const { labels, keys } = prog;
      if (labels.length === 0) throw new SpecError(`${prog.at}: "steps" must name at least one step`);
      // A later step's parameters, read back from the thread's record, end in the same trap
      // as the first step's: a name not in `each` is a spec error, not undefined.
      const argsProto = paramsTrap(prog.at.slice(where.length + 2), keys);
      const noArgs: Args = Object.freeze(Object.create(argsProto));
      /** The call's parameters, from the thread's record (kept there by the first step). */
      const Locals = localsClass(keys, argsProto);
      const locals = keys.length === 0 ? () => noArgs : (s: any): Args => new Locals(t.pc(s));
      const pcOf = new Map(labels.map((l) => [l, prog.pcOf(l)]));
      labels.forEach((label, i) => {
        const st = prog.steps[label]!;
        const sat = `${prog.at}, step "${label}"`;
        if (!st || typeof st !== "object") throw new SpecError(`${sat}: expected { lock?, unlock?, when?, then?, next?, kernel? }`);
        if (label === "idle" || label === "done") throw new SpecError(`${sat}: "idle" and "done" are where a thread rests, not labels; rename the step`);
        for (const k of Object.keys(st)) if (!stepKeys.has(k)) throw new SpecError(`${sat}: unknown key "${k}"; expected one of ${[...stepKeys].join(", ")}`);
        if (typeof st.next === "string" && st.next !== end && !labels.includes(st.next)) {
          throw new SpecError(`${sat}: "next" is "${st.next}", not a step of the ${prog.at === at ? "thread" : "call"} nor "${end}"`);
        }
        const takesOf = lockList(st.lock, sat), dropsOf = lockList(st.unlock, sat);
        const pcHere = prog.pcOf(label);
        const entry = i === 0;
        const follow = i + 1 < labels.length ? labels[i + 1]! : end;
        // The first step's instance carries the parameters; a later step reads them back.
        const argsOf = entry ? (_s: any, c: Args) => c : (s: any) => locals(s);
        const action = `${name}.${pcHere}`;
        const none = { thread: t.id, locks: NONE };
        takes[action] = st.lock === undefined ? () => none : (s, c) => ({ thread: t.id, locks: takesOf(s, argsOf(s, c)) });
        waits.set(pcHere, (s) => takesOf(s, locals(s)));
        actions[action] = {
          thread: name,
          kernel: st.kernel ?? prog.kernel,
          ...(entry && keys.length ? { each: prog.each } : {}),
          when: (s: any, c: Args) => {
            const r = t.pc(s) as unknown as Args;
            if (entry) {
              // From idle, or looped back here with these parameters.
              if (r.pc !== "idle" && (r.pc !== pcHere || !sameArgs(keys, r, c))) return false;
            } else if (r.pc !== pcHere) return false;
            const a = argsOf(s, c);
            if (st.when && !st.when(s, a)) return false;
            const ls = takesOf(s, a);
            if (ls.length) {
              const locks = locksOf!(s);
              // Held by another thread: this one waits. Held by itself: the step runs and lockdep
              // reports it; without lockdep, it waits for itself.
              for (const l of ls) {
                const h = lockAt(locks, l).holder;
                if (h !== 0 && (h !== t.id || !lockdep)) return false;
              }
            }
            return true;
          },
          then: (s: any, c: Args) => {
            const r = t.pc(s) as unknown as Args;
            if (entry && r.pc === "idle") for (const k of keys) r[k] = c[k];
            const a = argsOf(s, c);
            const ls = takesOf(s, a);
            if (ls.length) {
              const locks = locksOf!(s);
              for (const l of ls) {
                const lock = lockAt(locks, l);
                if (lock.holder === t.id) {
                  throw new Fault(`WARNING: possible recursive locking detected: ${name} (thread ${t.id}) is trying to acquire lock ${l.name} but already holds it (lockdep, kernel/locking/lockdep.c:print_deadlock_bug)`, lock);
                }
                lock.holder = t.id;
                if ("sub" in lock) lock.sub = l.sub;
              }
            }
            st.then?.(s, a);
            const ds = dropsOf(s, a);
            if (ds.length) {
              const locks = locksOf!(s);
              for (const l of ds) {
                const lock = lockAt(locks, l);
                if (lock.holder !== t.id) {
                  throw new Fault(`WARNING: bad unlock balance detected! ${name} (thread ${t.id}) is trying to release lock ${l.name} but there are no more locks to release (lockdep, kernel/locking/lockdep.c:print_unlock_imbalance_bug)`, lock);
                }
                lock.holder = 0;
                if ("sub" in lock) lock.sub = 0;
              }
            }
            const next = typeof st.next === "function" ? st.next(s, a) : st.next ?? follow;
            if (next !== end && !labels.includes(next)) throw new SpecError(`${sat}: "next" gave "${next}", not a step of the ${prog.at === at ? "thread" : "call"} nor "${end}"`);
            r.pc = next === end ? end : pcOf.get(next)!;
          },
        };
      });
    }
  }

  // Every thread inside a call, with the locks it waits for: an ABBA shows both sides.
  const busy = (s: any): string | undefined => {
    const inCall: string[] = [];
    for (const { name, t, waits } of all) {
      const pc = t.pc(s).pc;
      if (pc === "idle" || pc === "done") continue;
      const ls = waits.get(pc)?.(s) ?? NONE;
      const locks = ls.length ? locksOf!(s) : undefined;
      const by = ls.map((l) => lockAt(locks!, l).holder).flatMap((h, i) =>
        h === 0 || (h === t.id && lockdep) ? [] : [`${ls[i]!.name} held by ${h === t.id ? "itself" : ids.get(h) ?? `thread ${h}`}`]);
      inCall.push(`${name} at ${pc}${by.length ? `, waiting for ${by.join(" and ")}` : ""}`);
    }
    if (inCall.length === 0) return undefined;
    return inCall.length === 1 ? inCall[0] : `${inCall[0]} (and ${inCall.slice(1).join("; ")})`;
  };
  return { actions, busy, takes };
}
