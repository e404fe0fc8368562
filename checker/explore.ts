// Exhaustive breadth-first exploration over packed states.
//
// States are stored once, as keys in the visited set; each state also gets a parent link
// and the id of the action instance that first reached it, so a trace is rebuilt by
// replaying actions from the initial state. The frontier holds packed words of the
// current and next BFS levels only. Level order plus a fixed action order make runs
// deterministic and counterexamples shortest.
//
// Two pieces do the work, so that the parallel search (parallel.ts) reuses them:
// the Expander runs guards and effects on one state and emits successors (and finds
// faults, action-property, quiescent and deadlock violations); the Inserter takes
// successors in order, keeps the new ones and checks invariants and witnesses on them.
import type { Model } from "./compile.ts";
import { Fault, SpecError } from "./spec.ts";
import { GrowU32, NO_PARENT, RecentKeys, TraceLinks, VisitedSet } from "./store.ts";
import { flatten, READ_ONLY } from "./codec.ts";
import type { StopReason } from "./verdict.ts";
import { makePor, type Por, type Track } from "./por.ts";
import { makeCanonicalizer, type Canonicalizer } from "./symmetry.ts";
import { LockOrder, type OrderEdge } from "./lockdep.ts";
import { TransitionCache } from "./transition-cache.ts";

export interface ExploreOptions {
  maxStates?: number;
  maxDepth?: number;
  timeoutSeconds?: number;
  symmetry?: boolean;
  /** Partial-order reduction over declared footprints (single-threaded). */
  por?: boolean;
  /** Stop at the first failed property. */
  stopAtFirst?: boolean;
  /** Expansions (and new states) whose guards, effects and properties run twice (default 2000; 0: off). */
  purityProbe?: number;
  /** The transition cache (default on; off only to compare with it, in tests and the bench). */
  transitionCache?: boolean;
  /** Called about once a second with the running counts. */
  progress?: (p: { distinct: number; generated: number; depth: number; seconds: number }) => void;
  /**
   * A stop request another thread may set (element 0: STOP_INTERRUPT or STOP_TIMEOUT); the
   * search checks it as often as the deadline and stops like a bound.
   */
  stop?: Int32Array;
  /** Stop (incomplete, "max-memory") before the process's resident memory passes this. */
  maxMemoryBytes?: number;
  /** Where to record the spec code running now (slot RUNNING), for a supervisor. */
  running?: Int32Array;
}

/** Extra runs of every guard and effect on each of the purity probe's first states: a fair coin agrees with itself 16 times in a row once in 2^15. */
const PROBE_RUNS = 15;
const PROBE_RUNS_FIRST = 64;

/** Values of `ExploreOptions.stop[0]`. */
export const STOP_INTERRUPT = 1;
export const STOP_TIMEOUT = 2;

/**
 * Slot of `ExploreOptions.running` where the search records the spec code it is about to
 * run, as kind * RUN_SHIFT + index (an action instance or a property), so a supervisor can
 * say what never returned.
 */
export const RUNNING = 1;
export const RUN_SHIFT = 1 << 20;
export const RUN_GUARD = 1, RUN_EFFECT = 2, RUN_INVARIANT = 3, RUN_WITNESS = 4, RUN_ACTION_PROPERTY = 5, RUN_QUIESCENT = 6, RUN_BUSY = 7;

/**
 * Decides when a search must stop early, by elapsed time rather than by state count, so a
 * slow spec honours --timeout too: the clock is read every few expansions, and the memory
 * (a system call) at most every 100 ms.
 */
export class Limits {
  private lastMemory = 0;
  private lastProgress: number;
  constructor(
    private readonly opts: ExploreOptions,
    readonly t0: number,
    readonly deadline: number,
  ) {
    this.lastProgress = t0;
  }

  /** Why the search must stop now, if it must. */
  check(counts: () => { distinct: number; generated: number; depth: number }): StopReason | undefined {
    const now = performance.now();
    const stop = this.opts.stop;
    if (stop) {
      const r = Atomics.load(stop, 0);
      if (r === STOP_INTERRUPT) return "interrupted";
      if (r === STOP_TIMEOUT) return "timeout";
    }
    if (now > this.deadline) return "timeout";
    if (this.opts.maxMemoryBytes !== undefined && now - this.lastMemory > 100) {
      this.lastMemory = now;
      if (process.memoryUsage.rss() > this.opts.maxMemoryBytes) return "max-memory";
    }
    if (this.opts.progress && now - this.lastProgress > 1000) {
      this.lastProgress = now;
      this.opts.progress({ ...counts(), seconds: (now - this.t0) / 1000 });
    }
    return undefined;
  }

  /** Would allocating `bytes` more pass the memory bound? */
  wouldExceed(bytes: number): boolean {
    return this.opts.maxMemoryBytes !== undefined && process.memoryUsage.rss() + bytes > this.opts.maxMemoryBytes;
  }
}

export type PropertyRef =
  | { kind: "fault" }
  | { kind: "deadlock" }
  | { kind: "lock-order" }
  | { kind: "invariant" | "action" | "quiescent" | "reachable"; index: number };

/** The name a property is reported under: its own, or noFault / noDeadlock / lockOrder. */
export function propertyName(model: Model, p: PropertyRef): string {
  switch (p.kind) {
    case "fault":
      return "noFault";
    case "deadlock":
      return "noDeadlock";
    case "lock-order":
      return "lockOrder";
    case "invariant":
      return model.invariants[p.index].name;
    case "action":
      return model.actionProperties[p.index].name;
    case "quiescent":
      return model.quiescent[p.index].name;
    case "reachable":
      return model.witnesses[p.index].name;
  }
}

/** Where a property failed (or a witness was found): the state, and for transition
 * properties the action instance taken from it. */
export interface Hit {
  property: PropertyRef;
  state: number;
  instance?: number;
  message?: string;
  /** A failure (not a witness found as expected). */
  failure: boolean;
}

export type { StopReason };

export interface ExploreResult {
  hits: Hit[];
  /** Lock-order dependencies seen (when the spec declares its locks), first occurrence each. */
  lockEdges?: OrderEdge[];
  distinct: number;
  generated: number;
  depth: number;
  seconds: number;
  complete: boolean;
  stoppedBy?: StopReason;
  fired: Float64Array;
  /** Per instance: nonzero when its effect changed or wrote the state, or faulted. */
  changed: Float64Array;
  /** Each state's parent and the action instance (or initial state) that first reached it. */
  links: TraceLinks;
  storeBytes: number;
  traceBytes: number;
  fingerprintBits: number;
  workers: number;
  /** Partial-order reduction was applied. */
  por: boolean;
  /** Why partial-order reduction was asked for and not applied. */
  porOff?: string;
  /** The search's visited set, which trace replay checks each replayed state against. */
  visited?: VisitedSet;
}

export { NO_PARENT };

/** Wraps an exception thrown by spec code into a SpecError naming where it happened. */
export function specFailure(model: Model, where: string, e: unknown): Error {
  const head = `spec "${model.spec.name}", ${where}`;
  if (e instanceof SpecError) return new SpecError(`${head}: ${e.message}`);
  // Arrays of records are frozen arrays: strict code assigning a whole element gets this.
  const frozen = e instanceof TypeError && /^Cannot assign to read only property '(\d+)' of object '\[object Array\]'/.exec(e.message);
  if (frozen) {
    return new SpecError(
      `${head}: element [${frozen[1]}] of a state array of records was assigned as a whole; assign the element's fields instead (e.g. s.dev[i].x = ...)`,
    );
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new SpecError(`${head} threw ${e instanceof Error ? e.name : "an exception"}: ${msg}`);
}

const PURITY_RULE = "Guards, effects and properties must be pure and deterministic: no Math.random, Date, I/O, or module/global state.";

/** The spec computed two different results from the same input. */
export function notDeterministic(model: Model, what: string): SpecError {
  return new SpecError(`spec "${model.spec.name}" is not deterministic: ${what}. ${PURITY_RULE}`);
}

/** ", field x differs (1, then 2)": the first leaf where two packed states differ. */
export function stateDiff(model: Model, a: Uint32Array, b: Uint32Array): string {
  const read = (w: Uint32Array) => flatten(model.codec.read(model.codec.view(w, { ro: true })));
  const x = read(a), y = read(b);
  for (let i = 0; i < x.length; i++) {
    if (x[i][1] !== y[i][1]) return `, field ${x[i][0]} differs (${JSON.stringify(x[i][1])}, then ${JSON.stringify(y[i][1])})`;
  }
  return "";
}

/** A short rendering of a packed state for messages. */
export function showState(model: Model, w: Uint32Array): string {
  const t = JSON.stringify(model.codec.read(model.codec.view(w, { ro: true })));
  return t.length > 300 ? `${t.slice(0, 300)}...` : t;
}

function faultText(x: string | null | undefined): string {
  return x === null || x === undefined ? "no fault" : `the fault "${x}"`;
}

function sameWords(a: Uint32Array, aOff: number, b: Uint32Array, bOff: number, W: number): boolean {
  for (let w = 0; w < W; w++) if (a[aOff + w] !== b[bOff + w]) return false;
  return true;
}

/** What every guard and effect gives on one state (the purity probe compares two of these). */
interface Outcome {
  state: Uint32Array;
  enabled: Uint8Array;
  words: Uint32Array;
  faults: (string | undefined)[];
}

/** An effect's return value: anything but undefined means it built a state instead of mutating the draft. */
export function effectReturned(v: unknown): SpecError {
  const what = typeof v === "object" && v !== null ? (Array.isArray(v) ? "an array" : "an object") : `${typeof v} ${String(v)}`;
  return new SpecError(
    `the effect returned a value (${what}); an effect mutates the draft's fields in place and returns nothing ` +
      "(give an arrow function a block body: (s) => { s.x = s.x + 1; })",
  );
}

/** Evaluates a spec predicate; an exception in it is a spec error naming the predicate. */
function holds(model: Model, kind: string, name: string, fn: (...args: any[]) => boolean, a: unknown, b?: unknown, c?: unknown): boolean {
  try {
    return fn(a, b, c);
  } catch (e) {
    throw specFailure(model, `${kind} "${name}"`, e);
  }
}

export function canonicalizerFor(model: Model, symmetry: boolean | undefined): Canonicalizer | null {
  return symmetry && model.symmetryLeaves ? makeCanonicalizer(model.symmetryLeaves) : null;
}

/**
 * Guard reuse carries two bitsets over the action instances with each queued state: which
 * guards are known on it and which of those are enabled (see Expander). Beyond this many
 * instances the carry would cost more memory than the guards cost time: no reuse.
 */
const MAX_REUSE_INSTANCES = 256;

/** Words of the guard carry (known bits, then enabled bits) of a queued state. */
export const carryWords = (model: Model) =>
  model.instances.length > MAX_REUSE_INSTANCES ? 0 : 2 * Math.ceil(model.instances.length / 32);

/** Candidate layout: packed words, parent id, action instance, key (2 words), guard carry. */
export const candidateStride = (model: Model) => model.words + 4 + carryWords(model);

/** Frontier layout: packed words, state id, guard carry. */
export const frontierStride = (model: Model) => model.words + 1 + carryWords(model);

/**
 * Runs every action instance on one state. Successors go to `emit` (canonical, in
 * instance order). Remembers the first hit of each transition/state property it owns.
 *
 * Guard reuse (LTSmin's dependency matrix, learnt instead of declared): guards run on a view
 * that records which packed bits they read, and each instance keeps the union of the bits
 * its guard has ever read. A guard is a pure function of the bits it reads, so on a
 * successor that differs from the expanded state only in bits outside that union it gives
 * the same result: the successor carries those results (its "known" and "enabled" bits) and
 * its own expansion runs only the other guards. The union only grows, and a reused result
 * was computed (or itself reused) from bits inside it, so reuse never skips a read that
 * could change the answer. The purity probe compares every reused result with a fresh run.
 */
export class Expander {
  readonly A: Uint32Array;
  readonly D: Uint32Array;
  private cur: any;
  private draft: any;
  private draftCtx: { ro: boolean; track?: Track } = { ro: false };
  /** With --por: the leaves the current guard or effect touched, checked against its footprint. */
  private track: Track | null = null;
  readonly fired: Float64Array;
  /**
   * Per instance: firings that changed the state or faulted, plus probe runs that wrote a
   * field; zero for an action that fired means it never touched the draft (a warning).
   */
  readonly changed: Float64Array;
  generated = 0;
  readonly hits: Hit[] = [];
  /** At the depth bound: a successor not seen yet exists (the bound hides states). */
  hidden = false;
  private faultHit = false;
  private deadlockHit = false;
  private readonly actHit: boolean[];
  private readonly quiHit: boolean[];

  /** Expansions left in the purity probe window. */
  private probeLeft: number;
  /** Probed states kept to run again later, when hidden state may have changed. */
  private readonly samples: Outcome[] = [];
  private expansions = 0;
  private nextRecheck = 4096;
  private recheckAt = 0;

  /** Guard reuse: words of one bitset over the instances (0: off). */
  private gw: number;
  /** Per instance (W words each): the packed bits its guard has read so far. */
  private readonly masks: Uint32Array;
  /** Per packed bit (gw words each): the instances whose guard has read it. */
  private readonly dep: Uint32Array;
  /** The bits the guard running now reads (the guard view's read mask). */
  private readonly readMask: Uint32Array;
  /** Of the state being expanded: its inherited known and enabled bits, then all enabled bits. */
  private readonly known: Uint32Array;
  private readonly inEnabled: Uint32Array;
  private readonly en: Uint32Array;
  /**
   * Per instance: the packed bits its steps have changed so far (W words each), and the
   * guards that read any of them (gw words each), recomputed when either grows.
   */
  private readonly writes: Uint32Array;
  private readonly affected: Uint32Array;
  private readonly affectedAt: Int32Array;
  /** Bumped whenever a guard's mask grows: every `affected` set is stale then. */
  private epoch = 0;
  /** The guard carry of the successor in D: known bits, then enabled bits (carryWords). */
  readonly carry: Uint32Array;
  /** Per bitset word: the instances that exist, and those without a guard (always enabled). */
  private readonly valid: Uint32Array;
  private readonly always: Uint32Array;
  /** Guards run (the others were reused). */
  guardRuns = 0;
  /** With guard reuse: cached transitions, and the draft that records what an effect touches. */
  readonly cache: TransitionCache | null;
  private readonly recorder: any;
  /** In the purity probe's window: cached transitions are run anyway and compared. */
  private probing = false;

  private readonly probeD: Uint32Array;

  constructor(
    private readonly model: Model,
    readonly canon: Canonicalizer | null,
    probe = 2000,
    transitionCache = true,
  ) {
    this.probeLeft = probe;
    const W = model.words;
    this.A = new Uint32Array(W);
    this.D = new Uint32Array(W);
    const cw = carryWords(model);
    this.gw = cw / 2;
    this.carry = new Uint32Array(cw);
    this.masks = new Uint32Array(this.gw > 0 ? model.instances.length * W : 0);
    this.dep = new Uint32Array(W * 32 * this.gw);
    this.readMask = new Uint32Array(W);
    this.known = new Uint32Array(this.gw);
    this.inEnabled = new Uint32Array(this.gw);
    this.en = new Uint32Array(this.gw);
    this.writes = new Uint32Array(this.masks.length);
    this.affected = new Uint32Array(this.gw * model.instances.length);
    this.affectedAt = new Int32Array(model.instances.length).fill(-1);
    this.valid = new Uint32Array(this.gw);
    this.always = new Uint32Array(this.gw);
    model.instances.forEach((x, i) => {
      if (this.gw === 0) return;
      this.valid[i >>> 5] |= 1 << (i & 31);
      if (x.guard === undefined) this.always[i >>> 5] |= 1 << (i & 31);
    });
    this.cur = model.codec.view(this.A, this.gw > 0 ? { ro: true, readMask: this.readMask } : { ro: true });
    this.draft = model.codec.view(this.D, this.draftCtx);
    this.cache = this.gw > 0 && transitionCache ? new TransitionCache(model.instances.length, W) : null;
    this.recorder = this.cache ? model.codec.view(this.D, { ro: false, readMask: this.cache.touched }) : null;
    this.probeD = new Uint32Array(W);
    this.fired = new Float64Array(model.instances.length);
    this.changed = new Float64Array(model.instances.length);
    this.lockOrder = model.locks ? new LockOrder(model.locks, model.lockTakes) : null;
    this.actHit = new Array<boolean>(model.actionProperties.length).fill(false);
    this.quiHit = new Array<boolean>(model.quiescent.length).fill(false);
  }

  /** Where the spec code about to run is recorded (see RUNNING). */
  running: Int32Array<ArrayBufferLike> = new Int32Array(2);
  /** Lock-order tracking, when the spec declares its locks. */
  readonly lockOrder: LockOrder | null;
  /** Partial-order reduction, and the visited set its cycle proviso consults. */
  por: Por | null = null;
  visited?: VisitedSet;

  /** Turns on the reduction, with views that track what each call touches (only --por pays). */
  usePor(por: Por, visited: VisitedSet): void {
    this.por = por;
    this.visited = visited;
    // The reduction's own tracked views replace the guard view: no reuse, carries stay zero,
    // and effects run on the tracked draft, never from the cache.
    this.gw = 0;
    (this as { cache: TransitionCache | null }).cache = null;
    const bits = new Uint32Array(Math.ceil(this.model.codec.leaves / 32));
    this.track = { r: bits, w: bits.slice() };
    this.cur = this.model.codec.view(this.A, { ro: true, track: this.track });
    this.draftCtx = { ro: false, track: this.track };
    this.draft = this.model.codec.view(this.D, this.draftCtx);
  }

  private untracked(): void {
    this.track!.r.fill(0);
    this.track!.w.fill(0);
  }
  private readonly enabled: number[] = [];
  private pending = new Uint32Array(0);

  /**
   * Expands the state at words[off..off+W) with id `id`. `emit` receives each successor in
   * this.D. At the depth bound (`seen` given) successors are only tested against `seen`.
   */
  expand(words: Uint32Array, off: number, id: number, emit: (parentId: number, inst: number) => void, seen?: VisitedSet): void {
    const W = this.model.words, gw = this.gw;
    for (let w = 0; w < W; w++) this.A[w] = words[off + w];
    for (let g = 0; g < gw; g++) {
      this.known[g] = words[off + W + 1 + g];
      this.inEnabled[g] = words[off + W + 1 + gw + g];
    }
    if (this.probeLeft > 0) {
      // Purity probe: every guard and effect once before the expansion and once after it;
      // an effect that changes hidden state (a module variable) shows up as a difference.
      this.probeLeft--;
      const before = this.outcome();
      this.probing = true;
      this.expandOnce(id, emit, seen);
      this.probing = false;
      if (gw > 0) this.checkReused(before);
      // A coin-flip effect agrees with itself half the time: on the first states compare
      // several runs, so a model with few states cannot pass on luck; later states (where a
      // slow spec would pay most) get one.
      const runs = this.expansions < PROBE_RUNS_FIRST ? PROBE_RUNS : 1;
      for (let k = 0; k < runs; k++) {
        this.A.set(before.state);
        this.compare(before, this.outcome(), "run again on the same state during the search");
      }
      if (this.samples.length < 256) this.samples.push(before);
    } else this.expandOnce(id, emit, seen);
    if (++this.expansions === this.nextRecheck) {
      this.nextRecheck *= 2;
      this.recheck(32);
    }
  }


  /** A reused guard result must be what the guard gives when it runs (probe window only). */
  private checkReused(o: Outcome): void {
    const { model, known, en } = this;
    for (let i = 0; i < model.instances.length; i++) {
      const bit = 1 << (i & 31);
      if (!(known[i >>> 5] & bit)) continue;
      const reused = (en[i >>> 5] & bit) !== 0;
      if (reused !== (o.enabled[i] === 1)) {
        throw notDeterministic(
          model,
          `the guard of action ${model.instances[i].label} gave ${!reused} on the state ${showState(model, o.state)}, ` +
            `but ${reused} on an earlier state that differs from it only in fields the guard did not read`,
        );
      }
    }
  }

  /** Runs up to `n` probed states again (all of them by default) and compares. */
  recheck(n = Infinity): void {
    for (let k = 0; k < n && k < this.samples.length; k++) {
      const s = this.samples[this.recheckAt++ % this.samples.length];
      this.A.set(s.state);
      this.compare(s, this.outcome(), "run again later on the same state during the search");
    }
  }

  /** Instances whose effect the probe saw writing a field. */
  private wrote?: Uint8Array;

  /** Every guard on A, then every enabled effect (guards first: an effect may change hidden state they read). */
  private outcome(): Outcome {
    const { model, A, D, cur, draft, draftCtx } = this;
    const wrote = (this.wrote ??= new Uint8Array(model.instances.length));
    const W = model.words, n = model.instances.length;
    const o: Outcome = { state: A.slice(), enabled: new Uint8Array(n), words: new Uint32Array(n * W), faults: new Array(n) };
    for (let i = 0; i < n; i++) {
      const inst = model.instances[i];
      this.running[RUNNING] = RUN_GUARD * RUN_SHIFT + i;
      try {
        o.enabled[i] = inst.guard === undefined || inst.guard(cur, inst.args) ? 1 : 0;
      } catch (e) {
        throw specFailure(model, `guard of action ${inst.label}`, e);
      }
    }
    for (let i = 0; i < n; i++) {
      if (!o.enabled[i]) continue;
      const inst = model.instances[i];
      D.set(A);
      draftCtx.ro = false;
      this.running[RUNNING] = RUN_EFFECT * RUN_SHIFT + i;
      try {
        const ret = inst.effect(draft, inst.args);
        if (ret !== undefined) throw effectReturned(ret);
      } catch (e) {
        if (!(e instanceof Fault)) throw specFailure(model, `action ${inst.label}`, e);
        o.faults[i] = e.message;
      }
      draftCtx.ro = true;
      o.words.set(D, i * W);
      if (!wrote[i]) {
        // Run once more on a read-only draft: an effect that writes fields and restores them
        // (get then put) is no replaced draft. The same view classes keep spec code monomorphic.
        D.set(A);
        try {
          inst.effect(draft, inst.args);
        } catch (e) {
          if (e instanceof SpecError && e.message.includes(READ_ONLY)) {
            wrote[i] = 1;
            this.changed[i]++;
          }
        }
      }
    }
    return o;
  }

  private compare(a: Outcome, b: Outcome, how: string): void {
    const { model } = this;
    const W = model.words;
    // No closure or view is made here unless a message is: this runs on every probed state,
    // and under tsx every closure made costs a name-setting call.
    for (let i = 0; i < model.instances.length; i++) {
      if (a.enabled[i] !== b.enabled[i]) {
        throw notDeterministic(model, `the guard of action ${model.instances[i].label}, ${how}, gave ${!!a.enabled[i]}, then ${!!b.enabled[i]} from the state ${showState(model, a.state)}`);
      }
      if (a.faults[i] !== b.faults[i]) {
        throw notDeterministic(model, `action ${model.instances[i].label}, ${how}, gave ${faultText(a.faults[i])}, then ${faultText(b.faults[i])} from the state ${showState(model, a.state)}`);
      }
      if (!sameWords(a.words, i * W, b.words, i * W, W)) {
        const x = a.words.subarray(i * W, i * W + W), y = b.words.subarray(i * W, i * W + W);
        throw notDeterministic(model, `action ${model.instances[i].label}, ${how}, gave different states from the state ${showState(model, a.state)}${stateDiff(model, x, y)}`);
      }
    }
  }

  /** Runs guard i on A, learning the bits it reads. */
  private evalGuard(i: number): boolean {
    const { model, readMask, masks } = this;
    const inst = model.instances[i];
    const W = model.words;
    for (let w = 0; w < W; w++) readMask[w] = 0;
    let g: boolean;
    try {
      this.running[RUNNING] = RUN_GUARD * RUN_SHIFT + i;
      g = inst.guard!(this.cur, inst.args);
    } catch (e) {
      throw specFailure(model, `guard of action ${inst.label}`, e);
    }
    this.guardRuns++;
    for (let w = 0, at = i * W; w < W; w++, at++) {
      const fresh = readMask[w] & ~masks[at];
      if (fresh !== 0) this.learn(i, w, fresh);
    }
    return !!g;
  }

  /**
   * The read masks learnt so far. A carry is only as good as the masks of the thread that
   * computed it, so the parallel search merges every thread's masks into every other's
   * between levels (the carries of a level were all computed during the level before).
   */
  exportMasks(): Uint32Array {
    return this.masks.slice();
  }

  importMasks(m: Uint32Array): void {
    if (this.gw === 0) return;
    const W = this.model.words;
    for (let at = 0; at < m.length; at++) {
      const fresh = m[at] & ~this.masks[at];
      if (fresh !== 0) this.learn((at / W) | 0, at % W, fresh);
    }
  }

  /** Guard i has read new bits of word w: add them to its mask and to the bits' dependents. */
  private learn(i: number, w: number, fresh: number): void {
    const gw = this.gw;
    this.epoch++;
    this.masks[i * this.model.words + w] |= fresh;
    for (let x = fresh; x !== 0; x &= x - 1) {
      const b = 31 - Math.clz32(x & -x);
      this.dep[(w * 32 + b) * gw + (i >>> 5)] |= 1 << (i & 31);
    }
  }

  /**
   * The carry of the successor in D, reached by instance i: the guards that read none of the
   * bits i's steps have ever changed (a superset of where D differs from A) keep their result.
   */
  private carryOut(i: number): void {
    const { A, D, writes, affected, en, carry } = this;
    const gw = this.gw, W = this.model.words;
    for (let w = 0, at = i * W; w < W; w++, at++) {
      const x = A[w] ^ D[w];
      if ((x & ~writes[at]) !== 0) {
        writes[at] |= x;
        this.affectedAt[i] = -1;
      }
    }
    if (this.affectedAt[i] !== this.epoch) this.affectedBy(i);
    for (let g = 0, at = i * gw; g < gw; g++, at++) {
      carry[g] = ~affected[at];
      carry[gw + g] = en[g] & ~affected[at];
    }
  }

  /** The guards that read a bit instance i has changed. */
  private affectedBy(i: number): void {
    const { writes, dep, affected } = this;
    const gw = this.gw, W = this.model.words;
    for (let g = 0; g < gw; g++) affected[i * gw + g] = 0;
    for (let w = 0; w < W; w++) {
      for (let x = writes[i * W + w]; x !== 0; x &= x - 1) {
        const at = (w * 32 + 31 - Math.clz32(x & -x)) * gw;
        for (let g = 0; g < gw; g++) affected[i * gw + g] |= dep[at + g];
      }
    }
    this.affectedAt[i] = this.epoch;
  }

  /** With guard reuse: every guard first (reused or run), then every enabled effect in order. */
  private expandReusing(id: number, emit: (parentId: number, inst: number) => void, seen?: VisitedSet): void {
    const { en, known, inEnabled, valid, always } = this;
    const gw = this.gw;
    // Walk set bits, not instances: which guards are known varies from state to state, and
    // a branch per instance on it would mispredict.
    let any = false;
    for (let g = 0; g < gw; g++) {
      let e = (inEnabled[g] & known[g]) | always[g];
      for (let todo = valid[g] & ~known[g] & ~always[g]; todo !== 0; todo &= todo - 1) {
        const low = todo & -todo;
        if (this.evalGuard(g * 32 + 31 - Math.clz32(low))) e |= low;
      }
      en[g] = e;
      if (e !== 0) any = true;
    }
    if (!any) return this.terminal(id);
    for (let g = 0; g < gw; g++) {
      for (let x = en[g]; x !== 0; x &= x - 1) {
        const i = g * 32 + 31 - Math.clz32(x & -x);
        if (seen) this.beyondBound(i, seen, id);
        else if (this.fire(i, id)) {
          this.carryOut(i);
          emit(id, i);
        }
      }
    }
  }

  private expandOnce(id: number, emit: (parentId: number, inst: number) => void, seen?: VisitedSet): void {
    if (this.gw > 0) return this.expandReusing(id, emit, seen);
    const { model } = this;
    const enabled = this.enabled;
    enabled.length = 0;
    let any = false;
    const instances = model.instances;
    for (let i = 0; i < instances.length; i++) {
      const inst = instances[i];
      if (inst.guard !== undefined) {
        let g: boolean;
        if (this.track !== null) this.untracked();
        try {
          this.running[RUNNING] = RUN_GUARD * RUN_SHIFT + i;
          g = inst.guard(this.cur, inst.args);
        } catch (e) {
          throw specFailure(model, `guard of action ${inst.label}`, e);
        }
        if (this.track !== null) this.por!.checkAction(i, this.track);
        if (!g) continue;
      }
      any = true;
      if (seen) this.beyondBound(i, seen, id);
      else if (this.por) enabled.push(i);
      else if (this.fire(i, id)) emit(id, i);
    }
    if (!any) this.terminal(id);
    else if (this.por && !seen) this.expandReduced(id, emit);
  }

  /**
   * Runs instance i on the state in A. Records a fault or a broken action property; returns
   * true when D holds a (canonical) successor.
   */
  private fire(i: number, id: number): boolean {
    const { model, A, D, cur, draft, draftCtx, canon } = this;
    const W = model.words;
    const inst = model.instances[i];
    const actionProperties = model.actionProperties;
    this.generated++;
    this.fired[i]++;
    const fault = this.cache !== null && this.cache.off[i] === 0 ? this.cachedEffect(i) : this.runEffect(i, draft);
    if (fault !== null) {
      this.changed[i]++;
      if (!this.faultHit) {
        this.faultHit = true;
        this.hits.push({ property: { kind: "fault" }, state: id, instance: i, message: fault, failure: true });
      }
      return false;
    }
    if (this.lockOrder !== null) this.lockOrder.observe(cur, draft, id, i);
    for (let w = 0; w < W; w++) {
      if (D[w] !== A[w]) {
        this.changed[i]++;
        break;
      }
    }
    draftCtx.ro = true;
    for (let p = 0; p < actionProperties.length; p++) {
      if (this.actHit[p]) continue;
      this.running[RUNNING] = RUN_ACTION_PROPERTY * RUN_SHIFT + p;
      if (!holds(model, "action property", actionProperties[p].name, actionProperties[p].fn, cur, draft, { name: inst.name, params: inst.params })) {
        this.actHit[p] = true;
        this.hits.push({ property: { kind: "action", index: p }, state: id, instance: i, failure: true });
      }
    }
    if (canon) canon(D);
    return true;
  }

  /** Runs instance i's effect on the draft `view` over D (a copy of A): its fault's message, or null. */
  private runEffect(i: number, view: any): string | null {
    const { model, A, D, draftCtx } = this;
    const inst = model.instances[i];
    for (let w = 0; w < model.words; w++) D[w] = A[w];
    draftCtx.ro = false;
    this.running[RUNNING] = RUN_EFFECT * RUN_SHIFT + i;
    if (this.track !== null) this.untracked();
    try {
      const ret = inst.effect(view, inst.args);
      if (ret !== undefined) throw effectReturned(ret);
    } catch (e) {
      if (this.track !== null) this.por!.checkAction(i, this.track);
      if (e instanceof Fault) return e.message;
      throw specFailure(model, `action ${inst.label}`, e);
    }
    if (this.track !== null) this.por!.checkAction(i, this.track);
    return null;
  }

  /** Instance i's transition from the cache, or run on the recording draft and kept. */
  private cachedEffect(i: number): string | null {
    const cache = this.cache!, A = this.A, D = this.D;
    if (!this.probing) {
      const r = cache.lookup(i, A, D);
      if (r !== 0) return r === 2 ? cache.fault : null;
      cache.begin();
      const fault = this.runEffect(i, this.recorder);
      cache.store(i, A, D, fault);
      return fault;
    }
    // Probe window: the cached transition (if any) must be what the effect gives when it runs.
    const r = cache.lookup(i, A, this.probeD);
    const cachedFault = r === 2 ? cache.fault : null;
    cache.begin();
    const fault = this.runEffect(i, this.recorder);
    if (r !== 0 && (fault !== cachedFault || (fault === null && !sameWords(D, 0, this.probeD, 0, D.length)))) {
      const { model, probeD } = this;
      throw notDeterministic(
        model,
        `action ${model.instances[i].label} gave ${fault === null ? `the state ${showState(model, D)}` : faultText(fault)} from the state ${showState(model, A)}, ` +
          `but ${cachedFault === null ? `the state ${showState(model, probeD)}` : faultText(cachedFault)} from an earlier state that differs from it only in fields the action did not read or write`,
      );
    }
    cache.store(i, A, D, fault);
    return fault;
  }

  /** At the depth bound: does instance i lead to something the bound hides? */
  private beyondBound(i: number, seen: VisitedSet, id: number): void {
    const { model, A, D, cur, draft, draftCtx, canon } = this;
    const inst = model.instances[i];
    const actionProperties = model.actionProperties;
    for (let w = 0; w < model.words; w++) D[w] = A[w];
    draftCtx.ro = false;
    if (this.track !== null) this.untracked();
    try {
      const ret = inst.effect(draft, inst.args);
      if (ret !== undefined) throw effectReturned(ret);
    } catch (e) {
      if (this.track !== null) this.por!.checkAction(i, this.track);
      if (!(e instanceof Fault)) throw specFailure(model, `action ${inst.label}`, e);
      this.hidden = true;
      return;
    }
    if (this.track !== null) this.por!.checkAction(i, this.track);
    // The step leaves a reachable state: its lock dependencies are real.
    if (this.lockOrder !== null) this.lockOrder.observe(cur, draft, id, i);
    // A step past the bound that breaks an action property is hidden too, even when it
    // leads to a state already seen.
    draftCtx.ro = true;
    for (let p = 0; p < actionProperties.length && !this.hidden; p++) {
      if (this.actHit[p]) continue;
      if (!holds(model, "action property", actionProperties[p].name, actionProperties[p].fn, cur, draft, { name: inst.name, params: inst.params })) this.hidden = true;
    }
    if (canon) canon(D);
    if (!seen.has(D, 0)) this.hidden = true;
  }

  /**
   * Expands only a stubborn subset of the enabled instances when there is one (see por.ts),
   * keeping it only if every successor it gives is new (the cycle proviso); otherwise, or
   * without a subset, every enabled instance.
   */
  private expandReduced(id: number, emit: (parentId: number, inst: number) => void): void {
    const enabled = this.enabled.slice();
    const ample = this.por!.ample(enabled);
    const W = this.model.words, D = this.D;
    if (ample) {
      const stride = W + 1;
      if (this.pending.length < ample.length * stride) this.pending = new Uint32Array(ample.length * stride * 2);
      const pending = this.pending;
      let n = 0;
      let proviso = true;
      for (const i of ample) {
        // A faulting step leads nowhere: the steps it would postpone must run here.
        if (!this.fire(i, id)) {
          proviso = false;
          continue;
        }
        if (this.visited?.has(D, 0)) proviso = false;
        pending.set(D, n * stride);
        pending[n * stride + W] = i;
        n++;
      }
      for (let k = 0; k < n; k++) {
        for (let w = 0; w < W; w++) D[w] = pending[k * stride + w];
        emit(id, pending[k * stride + W]);
      }
      if (proviso) return;
      for (const i of enabled) if (!ample.includes(i) && this.fire(i, id)) emit(id, i);
      return;
    }
    for (const i of enabled) if (this.fire(i, id)) emit(id, i);
  }

  /** A state where no action is enabled: a deadlock if a thread is mid-call, else quiescent. */
  private terminal(id: number): void {
    const { model, cur } = this;
    let who: unknown;
    try {
      this.running[RUNNING] = RUN_BUSY * RUN_SHIFT;
      who = model.busy ? model.busy(cur) : undefined;
    } catch (e) {
      throw specFailure(model, "busy", e);
    }
    if (who) {
      if (!this.deadlockHit) {
        this.deadlockHit = true;
        this.hits.push({ property: { kind: "deadlock" }, state: id, message: `deadlock: no action can run while ${String(who)} is blocked`, failure: true });
      }
      return;
    }
    const quiescent = model.quiescent;
    for (let p = 0; p < quiescent.length; p++) {
      if (this.quiHit[p]) continue;
      this.running[RUNNING] = RUN_QUIESCENT * RUN_SHIFT + p;
      if (!holds(model, "quiescent property", quiescent[p].name, quiescent[p].fn, cur)) {
        this.quiHit[p] = true;
        this.hits.push({ property: { kind: "quiescent", index: p }, state: id, failure: true });
      }
    }
  }
}

/**
 * Takes candidate successors in order and keeps the new ones: hash, touch the home slots
 * of the whole batch, then insert in order (the cache misses of a batch overlap). Order is
 * unchanged, so ids, traces and verdicts do not depend on the batch size.
 */
export class Inserter {
  readonly visited: VisitedSet;
  readonly links: TraceLinks;
  /** Next BFS level (frontierStride per state); shared with the workers in a parallel search. */
  next: GrowU32;
  distinct = 0;
  stoppedBy?: StopReason;
  readonly hits: Hit[] = [];
  private readonly D: Uint32Array;
  private view: any;
  /** With --por: what each property call read, checked against its declared reads. */
  private track: Track | null = null;
  private por: Por | null = null;
  private readonly invHit: boolean[];
  private readonly witHit: boolean[];
  private sink = 0;
  private readonly recent = new RecentKeys();
  /** Per candidate of a batch: its key was seen recently (a duplicate). */
  private dup = new Uint8Array(0);
  /** Where the spec code about to run is recorded (see RUNNING). */
  running: Int32Array<ArrayBufferLike> = new Int32Array(2);
  /** New states left in the purity probe window (properties run twice on them). */
  probeLeft = 2000;

  constructor(
    private readonly model: Model,
    private readonly maxStates: number,
    shared = false,
    private readonly limits?: Limits,
  ) {
    this.visited = new VisitedSet(model.words, model.codec.lastWordBits, 1 << 10, shared);
    this.next = new GrowU32(1 << 12, shared);
    this.links = new TraceLinks(Math.max(model.instances.length, model.inits.length));
    this.D = new Uint32Array(model.words);
    this.view = model.codec.view(this.D, { ro: true });
    this.invHit = new Array<boolean>(model.invariants.length).fill(false);
    this.witHit = new Array<boolean>(model.witnesses.length).fill(false);
  }

  /** Tracked views for the properties, whose reads the reduction relies on. */
  usePor(por: Por): void {
    this.por = por;
    const bits = new Uint32Array(Math.ceil(this.model.codec.leaves / 32));
    this.track = { r: bits, w: bits.slice() };
    this.view = this.model.codec.view(this.D, { ro: true, track: this.track });
  }

  /** A property on the new state; with --por, its reads are checked. */
  private prop(kind: string, p: number, q: { name: string; fn: (...a: any[]) => boolean }): boolean {
    if (this.track === null) return holds(this.model, kind, q.name, q.fn, this.view);
    this.track.r.fill(0);
    const v = holds(this.model, kind, q.name, q.fn, this.view);
    this.por!.checkProperty(p, this.track);
    return v;
  }

  /** Inserts `n` candidates (layout `candidateStride`); keys are computed unless `keyed`. */
  insert(c: Uint32Array, n: number, keyed: boolean): void {
    const W = this.model.words;
    const cs = candidateStride(this.model), cw = cs - W - 4;
    const visited = this.visited;
    if (!keyed) for (let j = 0; j < n; j++) visited.keyInto(c, j * cs, c, j * cs + W + 2);
    if (this.dup.length < n) this.dup = new Uint8Array(n);
    const dup = this.dup, recent = this.recent;
    // A key seen recently is in the set, or is an earlier candidate of this batch that the
    // loop below takes first: either way the candidate is a duplicate.
    for (let j = 0, o = W + 2; j < n; j++, o += cs) {
      if (recent.has(c[o], c[o + 1])) dup[j] = 1;
      else {
        dup[j] = 0;
        recent.add(c[o], c[o + 1]);
      }
    }
    this.sink ^= visited.touch(c, n, cs, W + 2, dup);
    const D = this.D;
    for (let j = 0; j < n; j++) {
      if (dup[j] === 1) continue;
      const off = j * cs;
      const k0 = c[off + W + 2], k1 = c[off + W + 3];
      if (this.distinct >= this.maxStates || this.stoppedBy === "max-memory") {
        if (!visited.hasKey(k0, k1)) this.stoppedBy ??= "max-states";
        continue;
      }
      // The table doubles on this insert: stop instead if that would pass --max-memory.
      if (visited.growsOnNextAdd && this.limits?.wouldExceed(2 * visited.bytes) && !visited.hasKey(k0, k1)) {
        this.stoppedBy = "max-memory";
        continue;
      }
      if (!visited.addKey(k0, k1)) continue;
      const id = this.distinct++;
      this.links.push(c[off + W], c[off + W + 1]);
      const at = this.next.reserve(W + 1 + cw);
      const na = this.next.a;
      for (let w = 0; w < W; w++) D[w] = na[at + w] = c[off + w];
      na[at + W] = id;
      for (let k = 0; k < cw; k++) na[at + W + 1 + k] = c[off + W + 4 + k];
      this.checkNew(id);
    }
  }

  private checkNew(id: number): void {
    const { model, view } = this;
    const invariants = model.invariants, witnesses = model.witnesses;
    if (this.probeLeft > 0) {
      this.probeLeft--;
      for (const [kind, ps] of [["invariant", invariants], ["witness", witnesses]] as const) {
        for (const [k, p] of ps.entries()) {
          this.running[RUNNING] = (kind === "invariant" ? RUN_INVARIANT : RUN_WITNESS) * RUN_SHIFT + k;
          const a = !!holds(model, kind, p.name, p.fn, view), b = !!holds(model, kind, p.name, p.fn, view);
          if (a !== b) throw notDeterministic(model, `${kind} "${p.name}", run twice on the same state during the search, gave ${a}, then ${b} on ${showState(model, this.D)}`);
        }
      }
    }
    for (let p = 0; p < invariants.length; p++) {
      if (this.invHit[p]) continue;
      this.running[RUNNING] = RUN_INVARIANT * RUN_SHIFT + p;
      if (!this.prop("invariant", p, invariants[p])) {
        this.invHit[p] = true;
        this.hits.push({ property: { kind: "invariant", index: p }, state: id, failure: true });
      }
    }
    for (let p = 0; p < witnesses.length; p++) {
      if (this.witHit[p]) continue;
      this.running[RUNNING] = RUN_WITNESS * RUN_SHIFT + p;
      if (this.prop("witness", invariants.length + p, witnesses[p])) {
        this.witHit[p] = true;
        this.hits.push({ property: { kind: "reachable", index: p }, state: id, failure: witnesses[p].expect === "unreachable" });
      }
    }
  }

  get traceBytes(): number {
    return this.links.bytes;
  }
}

/** Keeps the first hit of each property, in the order hits are offered. */
export function firstHits(hits: Iterable<Hit>, into: Hit[] = []): Hit[] {
  const seen = new Set(into.map(hitKey));
  for (const h of hits) {
    const k = hitKey(h);
    if (!seen.has(k)) {
      seen.add(k);
      into.push(h);
    }
  }
  return into;
}

export function hitKey(h: Hit): string {
  return `${h.property.kind}:${"index" in h.property ? h.property.index : ""}`;
}

/**
 * Expands states one at a time on this thread and inserts their successors in batches:
 * the single-threaded search, and the small levels of the parallel one.
 */
export class LocalSearch {
  readonly ex: Expander;
  private readonly cs: number;
  private readonly batch: Uint32Array;
  private nb = 0;
  private expanded = 0;
  /** When the limits are looked at next, and every how many expansions. */
  private nextCheck = 1;
  private every = 1;
  private lastCheck = performance.now();
  /** Why --por was asked for and not applied. */
  porOff?: string;
  static readonly BATCH = 512;

  constructor(
    private readonly model: Model,
    private readonly ins: Inserter,
    private readonly opts: ExploreOptions,
    readonly limits: Limits,
  ) {
    this.ex = new Expander(model, canonicalizerFor(model, opts.symmetry), opts.purityProbe, opts.transitionCache);
    if (opts.purityProbe !== undefined) ins.probeLeft = opts.purityProbe;
    if (opts.por) {
      const por = makePor(model);
      if (typeof por === "string") this.porOff = por;
      else {
        this.ex.usePor(por, ins.visited);
        ins.usePor(por);
      }
    }
    if (opts.running) this.ex.running = ins.running = opts.running;
    this.cs = candidateStride(model);
    this.batch = new Uint32Array(LocalSearch.BATCH * this.cs);
  }

  private readonly emit = (parentId: number, inst: number): void => {
    const W = this.model.words, D = this.ex.D, batch = this.batch, carry = this.ex.carry;
    const off = this.nb * this.cs;
    for (let w = 0; w < W; w++) batch[off + w] = D[w];
    batch[off + W] = parentId;
    batch[off + W + 1] = inst;
    for (let k = 0; k < carry.length; k++) batch[off + W + 4 + k] = carry[k];
    if (++this.nb === LocalSearch.BATCH) this.flush();
  };

  flush(): void {
    this.ins.insert(this.batch, this.nb, false);
    this.nb = 0;
  }

  failed(): boolean {
    // Loops, not some(): this runs per expansion with --stop-at-first, and a closure made under tsx costs a call.
    for (const h of this.ex.hits) if (h.failure) return true;
    for (const h of this.ins.hits) if (h.failure) return true;
    return false;
  }

  /** Queues the initial states (canonical), counted as generated like TLC does. */
  initial(): void {
    const canon = this.ex.canon;
    this.ex.carry.fill(0);
    for (let i = 0; i < this.model.inits.length; i++) {
      this.ex.generated++;
      this.ex.D.set(this.model.inits[i]);
      if (canon) canon(this.ex.D);
      this.emit(NO_PARENT, i);
    }
    this.flush();
  }

  /** Expands `count` frontier states (words + id each); returns why it stopped early, if it did. */
  level(frontier: Uint32Array, count: number, depth: number, atBound: boolean): StopReason | undefined {
    const W = this.model.words, stride = frontierStride(this.model), opts = this.opts;
    for (let k = 0; k < count; k++) {
      if (opts.stopAtFirst && this.failed()) return "first-violation";
      if (++this.expanded >= this.nextCheck) {
        const why = this.limits.check(() => ({ distinct: this.ins.distinct, generated: this.ex.generated, depth }));
        if (why) {
          this.flush();
          return why;
        }
        // Look at the clock about every millisecond: rarely for a fast spec, after every
        // state for one whose guards take milliseconds.
        const now = performance.now(), dt = now - this.lastCheck;
        this.lastCheck = now;
        this.every = dt < 0.5 ? Math.min(this.every * 2, 1024) : dt > 2 ? Math.max(1, this.every >> 1) : this.every;
        this.nextCheck = this.expanded + this.every;
      }
      const off = k * stride;
      this.ex.expand(frontier, off, frontier[off + W], this.emit, atBound ? this.ins.visited : undefined);
    }
    this.flush();
    return undefined;
  }
}

export function explore(model: Model, opts: ExploreOptions = {}): ExploreResult {
  const t0 = performance.now();
  const maxDepth = opts.maxDepth ?? Infinity;
  const deadline = opts.timeoutSeconds !== undefined ? t0 + opts.timeoutSeconds * 1000 : Infinity;
  const limits = new Limits(opts, t0, deadline);
  const ins = new Inserter(model, opts.maxStates ?? Infinity, false, limits);
  const local = new LocalSearch(model, ins, opts, limits);
  const ex = local.ex;
  local.initial();

  let stoppedBy: StopReason | undefined;
  let frontier = new GrowU32(1 << 12);
  let depth = 0;
  while (ins.next.n > 0) {
    [frontier, ins.next] = [ins.next, frontier];
    ins.next.n = 0;
    const atBound = depth >= maxDepth;
    stoppedBy = local.level(frontier.a, frontier.n / frontierStride(model), depth, atBound);
    if (stoppedBy) break;
    if (atBound) {
      if (ex.hidden) stoppedBy = "max-depth";
      break;
    }
    if (ins.stoppedBy) break;
    if (ins.next.n > 0) depth++;
  }
  local.flush();
  ex.recheck();
  stoppedBy ??= ins.stoppedBy;
  if (!stoppedBy && opts.stopAtFirst && local.failed()) stoppedBy = "first-violation";
  return {
    hits: [...ex.hits, ...ins.hits],
    lockEdges: ex.lockOrder ? [...ex.lockOrder.edges.values()] : undefined,
    distinct: ins.distinct,
    generated: ex.generated,
    depth,
    seconds: (performance.now() - t0) / 1000,
    complete: stoppedBy === undefined,
    stoppedBy,
    fired: ex.fired,
    changed: ex.changed,
    links: ins.links,
    storeBytes: ins.visited.bytes,
    traceBytes: ins.traceBytes,
    fingerprintBits: ins.visited.fingerprintBits,
    workers: 1,
    por: ex.por !== null,
    porOff: local.porOff,
    visited: ins.visited,
  };
}
