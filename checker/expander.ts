// The Expander: runs every action instance on one state and emits its successors, finding
// faults, broken action properties, quiescent-state and deadlock violations on the way. The
// one-thread search (explore.ts) and the parallel search's workers (worker.ts) both use it.
//
// What makes it fast without changing a result: guard reuse (guards that read nothing the
// last step could change keep their result, carried with the queued state), the guard memo
// (a guard's result on an earlier state that agrees on the bits it reads) and the transition
// cache (transition-cache.ts). What keeps it honest: the purity probe, which runs every guard
// and effect again on the first states and compares, reused, remembered and cached results
// included.
import type { Model } from "./compile.ts";
import { READ_ONLY } from "./codec.ts";
import type { Hit } from "./explore.ts";
import { layoutOf, readCarry, type Layout } from "./layout.ts";
import { LockOrder } from "./lockdep.ts";
import type { Por, Track } from "./por.ts";
import { Fault, SpecError } from "./spec.ts";
import {
  effectReturned, holds, notDeterministic, RUN_ACTION_PROPERTY, RUN_BUSY, RUN_EFFECT, RUN_GUARD, RUN_QUIESCENT, RUN_SHIFT, RUNNING, showState,
  specFailure, stateDiff,
} from "./spec-calls.ts";
import type { StateStore } from "./store.ts";
import { makeCanonicalizer, type Canonicalizer } from "./symmetry.ts";
import { projectionHash, TransitionCache } from "./transition-cache.ts";

/** Extra runs of every guard and effect on each of the purity probe's first states: a fair coin agrees with itself 16 times in a row once in 2^15. */
const PROBE_RUNS = 15;
const PROBE_RUNS_FIRST = 64;
const PROBE_AGAIN = "run again on the same state during the search";

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

export function canonicalizerFor(model: Model, symmetry: boolean | undefined): Canonicalizer | null {
  return symmetry && model.symmetryLeaves ? makeCanonicalizer(model.symmetryLeaves) : null;
}

/** log2 of the guard memo's slots (see Expander.memo). */
const GUARD_MEMO_BITS = 12;

/**
 * Runs every action instance on one state. Successors go to `emit` (canonical, in
 * instance order). Remembers the first hit of each transition/state property it owns.
 *
 * Guard reuse (LTSmin's dependency matrix, learnt instead of declared): guards run on a view
 * that records which packed bits they read, and each instance keeps the union of the bits
 * its guard has ever read. A guard is a pure function of the bits it reads, so on a
 * successor that differs from the expanded state only in bits outside that union it gives
 * the same result: the successor carries the expanded state's enabled set and the instance
 * that made it, and its own expansion reuses the result of every guard that reads no bit
 * that instance's steps have ever changed (a superset of where the two states differ), and
 * runs only the others. The unions only grow, and a reused result was computed (or itself
 * reused) from bits inside them, so reuse never skips a read that could change the answer.
 * The purity probe compares every reused result with a fresh run.
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
  /**
   * Of the state being expanded: the guards whose result its parent's enabled set gives, that
   * set, then all its enabled bits (also the carry of each of its successors).
   */
  private readonly known: Uint32Array;
  private readonly inEnabled: Uint32Array;
  private readonly en: Uint32Array;
  private readonly layout: Layout;
  /**
   * Per instance: the packed bits its steps have changed so far (W words each), and the
   * guards that read any of them (gw words each), recomputed when either grows.
   */
  private readonly writes: Uint32Array;
  private readonly affected: Uint32Array;
  private readonly affectedAt: Int32Array;
  /** Bumped whenever a guard's mask grows: every `affected` set is stale then. */
  private epoch = 0;
  /**
   * Guard memo: a guard whose result is not carried may still have run on a state that agrees
   * with this one on every bit it reads (a guard of one device, after a step on another's
   * shared count). Direct-mapped slots: instance + 1, the generation of its mask (bumped when
   * the mask grows), the state on the mask (W words), the result. Same argument as guard
   * reuse; in the purity probe's window the guard runs anyway and must agree.
   */
  private readonly memo: Uint32Array;
  private readonly memoGen: Uint32Array;
  /** The memo's slot count less one. */
  private readonly memoSlots = (1 << GUARD_MEMO_BITS) - 1;
  /** Guard results taken from the memo. */
  guardMemoHits = 0;
  /** The enabled set of the state being expanded: the guard carry of each successor (zero before an initial state). */
  readonly carry: Uint32Array;
  /** Per bitset word: the instances that exist, and those without a guard (always enabled). */
  private readonly valid: Uint32Array;
  private readonly always: Uint32Array;
  /** Guards run (the others were reused). */
  guardRuns = 0;
  /**
   * Asked about each successor before it is emitted (not with --por, whose proviso sees
   * every successor): false drops it as a known duplicate before any more work is spent on it.
   */
  accept: ((D: Uint32Array) => boolean) | null = null;
  /** With guard reuse: cached transitions, and the draft that records what an effect touches. */
  readonly cache: TransitionCache | null;
  private readonly recorder: any;
  /** In the purity probe's window: cached transitions are run anyway and compared. */
  private probing = false;
  /** The outcome a probed expansion compares its own guard results and steps with (see expand). */
  private probeWith: Outcome | null = null;
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
    this.layout = layoutOf(model);
    this.gw = this.layout.enabledWords;
    this.masks = new Uint32Array(this.gw > 0 ? model.instances.length * W : 0);
    this.dep = new Uint32Array(W * 32 * this.gw);
    this.readMask = new Uint32Array(W);
    this.known = new Uint32Array(this.gw);
    this.inEnabled = new Uint32Array(this.gw);
    this.en = new Uint32Array(this.gw);
    this.carry = this.en;
    this.writes = new Uint32Array(this.masks.length);
    this.affected = new Uint32Array(this.gw * model.instances.length);
    this.affectedAt = new Int32Array(model.instances.length).fill(-1);
    this.memo = new Uint32Array(this.gw > 0 ? (W + 3) << GUARD_MEMO_BITS : 0);
    this.memoGen = new Uint32Array(model.instances.length);
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
  visited?: StateStore;

  /** Turns on the reduction, with views that track what each call touches (only --por pays). */
  usePor(por: Por, visited: StateStore): void {
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
  expand(words: Uint32Array, off: number, id: number, emit: (parentId: number, inst: number) => void, seen?: StateStore): void {
    const W = this.model.words, gw = this.gw;
    for (let w = 0; w < W; w++) this.A[w] = words[off + w];
    if (gw > 0) this.carryIn(words, off + this.layout.carry);
    if (this.probeLeft > 0) {
      // Purity probe: every guard and effect once before the expansion and once after it;
      // an effect that changes hidden state (a module variable) shows up as a difference.
      this.probeLeft--;
      const before = this.outcome();
      // With guard reuse, below the depth bound, the expansion itself runs every guard it
      // does not reuse and every enabled effect afresh: it is compared with `before` as it
      // goes, and counts as the second run.
      const inline = gw > 0 && !seen;
      this.probing = true;
      if (inline) this.probeWith = before;
      try {
        this.expandOnce(id, emit, seen);
      } finally {
        this.probing = false;
        this.probeWith = null;
      }
      // Inline, the expansion has checked its reused guard results already (sameGuards).
      if (gw > 0 && !inline) this.checkReused(before);
      // A coin-flip effect agrees with itself half the time: on the first states compare
      // several runs, so a model with few states cannot pass on luck; later states (where a
      // slow spec would pay most) get one.
      const runs = this.expansions < PROBE_RUNS_FIRST ? PROBE_RUNS : inline ? 0 : 1;
      for (let k = 0; k < runs; k++) {
        this.A.set(before.state);
        this.compare(before, this.outcome(), PROBE_AGAIN);
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
      if (reused !== (o.enabled[i] === 1)) throw this.guardDisagrees(i, o.state, !reused);
    }
  }

  /** Guard i ran on `state` and gave `fresh`, not what it gave on an earlier state (carried or remembered). */
  private guardDisagrees(i: number, state: Uint32Array, fresh: boolean): SpecError {
    const { model } = this;
    return notDeterministic(
      model,
      `the guard of action ${model.instances[i].label} gave ${fresh} on the state ${showState(model, state)}, ` +
        `but ${!fresh} on an earlier state that differs from it only in fields the guard did not read`,
    );
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
    // No closure or view is made here unless a message is: this runs on every probed state,
    // and under tsx every closure made costs a name-setting call.
    for (let i = 0; i < this.model.instances.length; i++) {
      this.sameGuard(a, i, b.enabled[i] === 1, how);
      this.sameStep(a, i, b.faults[i], b.words, i * this.model.words, how);
    }
  }

  /** Guard i gave `g` on a's state, as it did in a. */
  private sameGuard(a: Outcome, i: number, g: boolean, how: string): void {
    if ((a.enabled[i] === 1) !== g) {
      throw notDeterministic(this.model, `the guard of action ${this.model.instances[i].label}, ${how}, gave ${a.enabled[i] === 1}, then ${g} from the state ${showState(this.model, a.state)}`);
    }
  }

  /** Instance i's step from a's state gave `fault`, or the state at words[off..], as it did in a. */
  private sameStep(a: Outcome, i: number, fault: string | undefined, words: Uint32Array, off: number, how: string): void {
    const { model } = this;
    const W = model.words;
    if (a.faults[i] !== fault) {
      throw notDeterministic(model, `action ${model.instances[i].label}, ${how}, gave ${faultText(a.faults[i])}, then ${faultText(fault)} from the state ${showState(model, a.state)}`);
    }
    if (!sameWords(a.words, i * W, words, off, W)) {
      const x = a.words.subarray(i * W, i * W + W), y = words.subarray(off, off + W);
      throw notDeterministic(model, `action ${model.instances[i].label}, ${how}, gave different states from the state ${showState(model, a.state)}${stateDiff(model, x, y)}`);
    }
  }

  /**
   * The probed expansion's guard results, compared with `probeWith`'s (see expand) before any
   * step runs: the reused ones first (their message says they were carried), then the fresh.
   */
  private sameGuards(o: Outcome): void {
    const { en, known } = this;
    this.checkReused(o);
    for (let i = 0; i < this.model.instances.length; i++) {
      const bit = 1 << (i & 31);
      if (!(known[i >>> 5] & bit)) this.sameGuard(o, i, (en[i >>> 5] & bit) !== 0, PROBE_AGAIN);
    }
  }

  /** Guard i on A: from the memo, or run (and kept). */
  private guard(i: number): boolean {
    const { A, masks, memo } = this;
    const W = this.model.words;
    let s = this.memoSlot(i);
    let hit = memo[s] === i + 1 && memo[s + 1] === this.memoGen[i];
    // >>> 0: `&` gives a signed number, the memo holds unsigned ones.
    for (let w = 0, at = i * W; hit && w < W; w++, at++) hit = memo[s + 2 + w] === (A[w] & masks[at]) >>> 0;
    if (hit && !this.probing) {
      this.guardMemoHits++;
      return memo[s + 2 + W] === 1;
    }
    const g = this.evalGuard(i);
    if (hit && g !== (memo[s + 2 + W] === 1)) throw this.guardDisagrees(i, A, g);
    // The run may have read new bits (its mask grew): key the result under the mask as it is now.
    s = this.memoSlot(i);
    memo[s] = i + 1;
    memo[s + 1] = this.memoGen[i];
    for (let w = 0, at = i * W; w < W; w++, at++) memo[s + 2 + w] = A[w] & masks[at];
    memo[s + 2 + W] = g ? 1 : 0;
    return g;
  }

  /** The memo slot of guard i for A (A on the guard's mask). */
  private memoSlot(i: number): number {
    const W = this.model.words;
    return (projectionHash(i, this.memoGen[i], this.A, this.masks, W) & this.memoSlots) * (W + 3);
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
   * The footprints learnt so far: each guard's read mask, then the bits each instance's steps
   * have changed. A carry is only as good as the footprints of the thread that expands the
   * state, which may not be the one that made it, so the parallel search merges every
   * thread's footprints into every other's between levels (the carries of a level were all
   * made during the level before).
   */
  exportMasks(): Uint32Array {
    const out = new Uint32Array(this.masks.length + this.writes.length);
    out.set(this.masks);
    out.set(this.writes, this.masks.length);
    return out;
  }

  importMasks(m: Uint32Array): void {
    if (this.gw === 0) return;
    const W = this.model.words, n = this.masks.length;
    for (let at = 0; at < n && at < m.length; at++) {
      const fresh = m[at] & ~this.masks[at];
      if (fresh !== 0) this.learn((at / W) | 0, at % W, fresh);
    }
    const writes = this.writes;
    for (let at = 0; at < n && n + at < m.length; at++) {
      const fresh = m[n + at] & ~writes[at];
      if (fresh !== 0) {
        writes[at] |= fresh;
        this.affectedAt[(at / W) | 0] = -1;
      }
    }
  }

  /** Guard i has read new bits of word w: add them to its mask and to the bits' dependents. */
  private learn(i: number, w: number, fresh: number): void {
    const gw = this.gw;
    this.epoch++;
    this.memoGen[i]++;
    this.masks[i * this.model.words + w] |= fresh;
    for (let x = fresh; x !== 0; x &= x - 1) {
      const b = 31 - Math.clz32(x & -x);
      this.dep[(w * 32 + b) * gw + (i >>> 5)] |= 1 << (i & 31);
    }
  }

  /**
   * The known guards of the state whose carry is at words[at..] (see Layout): those
   * that read none of the bits the instance that made it has ever changed. An initial state
   * has none.
   */
  private carryIn(words: Uint32Array, at: number): void {
    const { known, affected } = this;
    const gw = this.gw;
    const via = readCarry(this.layout, words, at, this.inEnabled);
    if (via === 0) {
      for (let g = 0; g < gw; g++) known[g] = 0;
      return;
    }
    const i = via - 1;
    if (this.affectedAt[i] !== this.epoch) this.affectedBy(i);
    for (let g = 0, a = i * gw; g < gw; g++, a++) known[g] = ~affected[a];
  }

  /**
   * Instance i made the successor in D: the bits where it differs from A join the bits i's
   * steps have changed, which the successor's expansion takes its known guards from.
   */
  private noteWrites(i: number): void {
    const { A, D, writes } = this;
    const W = this.model.words;
    for (let w = 0, at = i * W; w < W; w++, at++) {
      const x = A[w] ^ D[w];
      if ((x & ~writes[at]) !== 0) {
        writes[at] |= x;
        this.affectedAt[i] = -1;
      }
    }
  }

  /** Writes the successor in D as a candidate at a[at..] (see Layout), its key given. */
  writeCandidate(a: Uint32Array, at: number, parentId: number, inst: number, key: Uint32Array): void {
    const { A, D, carry, layout } = this;
    const W = layout.words;
    for (let w = 0; w < W; w++) a[at + w] = D[w];
    a[at + layout.parent] = parentId;
    a[at + layout.instance] = inst;
    a[at + layout.key] = key[0];
    a[at + layout.key + 1] = key[1];
    for (let k = 0, o = at + layout.enabled; k < carry.length; k++) a[o + k] = carry[k];
    for (let w = 0, o = at + layout.diff; w < W; w++) a[o + w] = A[w] ^ D[w];
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
  private expandReusing(id: number, emit: (parentId: number, inst: number) => void, seen?: StateStore): void {
    const { en, known, inEnabled, valid, always } = this;
    const gw = this.gw;
    // Walk set bits, not instances: which guards are known varies from state to state, and
    // a branch per instance on it would mispredict.
    let any = false;
    for (let g = 0; g < gw; g++) {
      let e = (inEnabled[g] & known[g]) | always[g];
      for (let todo = valid[g] & ~known[g] & ~always[g]; todo !== 0; todo &= todo - 1) {
        const low = todo & -todo;
        if (this.guard(g * 32 + 31 - Math.clz32(low))) e |= low;
      }
      en[g] = e;
      if (e !== 0) any = true;
    }
    if (this.probeWith !== null) this.sameGuards(this.probeWith);
    if (!any) return this.terminal(id);
    for (let g = 0; g < gw; g++) {
      for (let x = en[g]; x !== 0; x &= x - 1) {
        const i = g * 32 + 31 - Math.clz32(x & -x);
        if (seen) this.beyondBound(i, seen, id);
        else if (this.fire(i, id) && (this.accept === null || this.accept(this.D))) {
          this.noteWrites(i);
          emit(id, i);
        }
      }
    }
  }

  private expandOnce(id: number, emit: (parentId: number, inst: number) => void, seen?: StateStore): void {
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
      else if (this.fire(i, id) && (this.accept === null || this.accept(this.D))) emit(id, i);
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
    if (this.probeWith !== null) this.sameStep(this.probeWith, i, fault ?? undefined, D, 0, PROBE_AGAIN);
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
    // In the probe window a cached transition is looked up aside and the effect runs anyway:
    // the two must agree.
    const r = cache.lookup(i, A, this.probing ? this.probeD : D);
    if (r !== 0 && !this.probing) return r === 2 ? cache.fault : null;
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
  private beyondBound(i: number, seen: StateStore, id: number): void {
    const { model, D, cur, draft, draftCtx, canon } = this;
    const inst = model.instances[i];
    const actionProperties = model.actionProperties;
    // A faulting step past the bound is hidden: it would be a violation.
    if (this.runEffect(i, draft) !== null) {
      this.hidden = true;
      return;
    }
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
