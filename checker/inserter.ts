// The Inserter: takes candidate successors in search order, keeps the new ones (the visited
// set, the trace links, the next BFS level) and checks invariants and witnesses on them.
// Insertion order alone decides state ids, so any number of expanding threads gives the
// same ids, traces and verdicts.
import type { Model } from "./compile.ts";
import { layoutOf, writeCarry, type Layout } from "./layout.ts";
import type { Hit, Limits } from "./explore.ts";
import type { Por, Track } from "./por.ts";
import { holds, notDeterministic, RUN_INVARIANT, RUN_SHIFT, RUN_WITNESS, RUNNING, showState } from "./spec-calls.ts";
import { BlockPool, Level, NO_PARENT, RecentKeys, TraceLinks, VisitedSet } from "./store.ts";
import type { StopReason } from "./verdict.ts";

/** Candidates inserted at a time (see Inserter.insert). */
const INSERT_PIECE = 512;

/**
 * Takes candidate successors in order and keeps the new ones: hash, touch the home slots
 * of the whole batch, then insert in order (the cache misses of a batch overlap). Order is
 * unchanged, so ids, traces and verdicts do not depend on the batch size.
 */
export class Inserter {
  readonly visited: VisitedSet;
  readonly links: TraceLinks;
  /** Next BFS level (frontierStride per state); shared with the workers in a parallel search. */
  next: Level;
  distinct = 0;
  stoppedBy?: StopReason;
  readonly hits: Hit[] = [];
  private readonly D: Uint32Array;
  private readonly layout: Layout;
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
  /**
   * Property reuse (not with --por): per invariant, then per witness (W words each), the
   * packed bits it has read so far, learnt through the view's read mask. Every state inserted
   * so far satisfies each invariant not yet violated (and no witness not yet found), so on a
   * new state that differs from its parent only in bits its property never read, the property
   * gives what it gave on the parent: it is not run. Same argument as guard reuse (see Expander).
   */
  private propMasks: Uint32Array;
  private readonly readMask: Uint32Array;
  /** Properties run (the others were reused). */
  propertyRuns = 0;
  /**
   * The next new state on which every property runs, reusable or not, and is compared with
   * its parent (doubling: 4096, 8192, ...): a property that reads hidden state and changes
   * after the purity probe's window is still caught, within twice the states it took.
   */
  private nextRecheck = 4096;
  private rechecking = false;

  constructor(
    private readonly model: Model,
    private readonly maxStates: number,
    shared = false,
    private readonly limits?: Limits,
    compactSlotsFrom?: number,
  ) {
    this.visited = new VisitedSet(model.words, model.codec.lastWordBits, 1 << 10, shared, compactSlotsFrom);
    this.layout = layoutOf(model);
    this.next = new Level(new BlockPool(this.layout.frontierStride, shared));
    this.links = new TraceLinks(Math.max(model.instances.length, model.inits.length));
    this.D = new Uint32Array(model.words);
    this.readMask = new Uint32Array(model.words);
    this.propMasks = new Uint32Array((model.invariants.length + model.witnesses.length) * model.words);
    this.view = model.codec.view(this.D, { ro: true, readMask: this.readMask });
    this.invHit = new Array<boolean>(model.invariants.length).fill(false);
    this.witHit = new Array<boolean>(model.witnesses.length).fill(false);
  }

  /** Tracked views for the properties, whose reads the reduction relies on. */
  usePor(por: Por): void {
    this.por = por;
    this.propMasks = new Uint32Array(0);
    const bits = new Uint32Array(Math.ceil(this.model.codec.leaves / 32));
    this.track = { r: bits, w: bits.slice() };
    this.view = this.model.codec.view(this.D, { ro: true, track: this.track });
  }

  /**
   * Property p (invariants first, then witnesses) on the new state, whose bits that differ
   * from its parent's are c[d..d+W) (d < 0: it has none): true or false as it evaluates, or null when it was not
   * run because it read none of them (it gives what it gave on the parent). With --por,
   * every property runs and its reads are checked.
   */
  private prop(kind: string, p: number, q: { name: string; fn: (...a: any[]) => boolean }, c: Uint32Array, d: number): boolean | null {
    if (this.track === null) {
      const W = this.model.words, masks = this.propMasks, readMask = this.readMask;
      let reused = d >= 0;
      for (let w = 0, at = p * W; reused && w < W; w++, at++) if ((c[d + w] & masks[at]) !== 0) reused = false;
      // In the probe window, and on the recheck states, a reusable property runs anyway and
      // must agree with its parent.
      if (reused && this.probeLeft === 0 && !this.rechecking) return null;
      for (let w = 0; w < W; w++) readMask[w] = 0;
      this.propertyRuns++;
      const v = !!holds(this.model, kind, q.name, q.fn, this.view);
      for (let w = 0, at = p * W; w < W; w++, at++) masks[at] |= readMask[w];
      const parentGave = kind === "invariant";
      if (reused && v !== parentGave) {
        const model = this.model;
        throw notDeterministic(
          model,
          `${kind} "${q.name}" gave ${v} on the state ${showState(model, this.D)}, but ${!v} on its parent, which differs from it only in fields the ${kind} did not read`,
        );
      }
      return v;
    }
    this.track.r.fill(0);
    const v = holds(this.model, kind, q.name, q.fn, this.view);
    this.por!.checkProperty(p, this.track);
    return v;
  }

  /**
   * The key of the successor in `D` into key[0..1]; false when it is a recent key (a
   * duplicate: see insert), which `insert(..., deduped)` then need not look at again.
   */
  offer(D: Uint32Array, key: Uint32Array): boolean {
    return this.recent.takeState(this.visited, D, key);
  }

  /**
   * Inserts `n` candidates (see Layout); keys are computed unless `keyed`, and
   * recent keys dropped unless the candidates are `deduped` already: each offered here and
   * taken, or kept by a chunk's own recent keys (see ChunkExpander). Looking a chunk's
   * candidates up again here found too few duplicates to pay for itself (RefPin N = 6 through
   * chunks on one thread 5.42 to 5.08 s, N = 7 with two threads 44.8 to 43.5 s, means of
   * alternating runs); the visited set finds every duplicate either way.
   */
  insert(c: Uint32Array, n: number, keyed: boolean, deduped = false): void {
    // In pieces: the home slots touched for a piece must still be in the cache when the
    // piece is inserted (a parallel chunk brings tens of thousands of candidates).
    const cs = this.layout.candidateStride;
    for (let j = 0; j < n; j += INSERT_PIECE) this.insertPiece(j === 0 ? c : c.subarray(j * cs), Math.min(INSERT_PIECE, n - j), keyed, deduped);
  }

  private insertPiece(c: Uint32Array, n: number, keyed: boolean, deduped: boolean): void {
    const L = this.layout;
    const W = L.words, cs = L.candidateStride, K = L.key;
    const visited = this.visited;
    if (!keyed) for (let j = 0; j < n; j++) visited.keyInto(c, j * cs, c, j * cs + K);
    // A key seen recently is in the set, or is an earlier candidate of this batch that the
    // loop below takes first: either way the candidate is a duplicate.
    let dup: Uint8Array | undefined;
    if (!deduped) {
      if (this.dup.length < n) this.dup = new Uint8Array(n);
      dup = this.dup;
      for (let j = 0, o = K; j < n; j++, o += cs) dup[j] = this.recent.take(c[o], c[o + 1]) ? 0 : 1;
    }
    this.sink ^= visited.touch(c, n, cs, K, dup);
    const D = this.D;
    for (let j = 0; j < n; j++) {
      if (dup !== undefined && dup[j] === 1) continue;
      const off = j * cs;
      const k0 = c[off + K], k1 = c[off + K + 1];
      if (this.distinct >= this.maxStates || this.stoppedBy === "max-memory") {
        if (!visited.hasKey(k0, k1)) this.stoppedBy ??= "max-states";
        continue;
      }
      // The table doubles on this insert: stop instead if that would pass --max-memory.
      if (visited.growsOnNextAdd && this.limits?.wouldExceed(visited.growthBytes) && !visited.hasKey(k0, k1)) {
        this.stoppedBy = "max-memory";
        continue;
      }
      if (!visited.addKey(k0, k1)) continue;
      const id = this.distinct++;
      const parent = c[off + L.parent], inst = c[off + L.instance];
      this.links.push(parent, inst);
      if (this.next.size === 0) this.next.first = id;
      const at = this.next.reserve();
      const na = this.next.a;
      for (let w = 0; w < W; w++) D[w] = na[at + w] = c[off + w];
      if (L.enabledWords > 0) writeCarry(L, na, at + L.carry, c, off + L.enabled, parent === NO_PARENT ? 0 : inst + 1);
      // An initial state has no parent to take a result from: every property runs on it.
      this.checkNew(id, c, parent === NO_PARENT ? -1 : off + L.diff);
    }
  }

  /** Checks the properties on the new state in D (c[d..d+W): where it differs from its parent; d < 0: no parent). */
  private checkNew(id: number, c: Uint32Array, d: number): void {
    const { model, view } = this;
    const invariants = model.invariants, witnesses = model.witnesses;
    this.rechecking = id === this.nextRecheck;
    if (this.rechecking) this.nextRecheck *= 2;
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
      if (this.prop("invariant", p, invariants[p], c, d) === false) {
        this.invHit[p] = true;
        this.hits.push({ property: { kind: "invariant", index: p }, state: id, failure: true });
      }
    }
    for (let p = 0; p < witnesses.length; p++) {
      if (this.witHit[p]) continue;
      this.running[RUNNING] = RUN_WITNESS * RUN_SHIFT + p;
      if (this.prop("witness", invariants.length + p, witnesses[p], c, d) === true) {
        this.witHit[p] = true;
        this.hits.push({ property: { kind: "reachable", index: p }, state: id, failure: witnesses[p].expect === "unreachable" });
      }
    }
  }

  get traceBytes(): number {
    return this.links.bytes;
  }
}
