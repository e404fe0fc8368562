// The Inserter: takes candidate successors in search order, keeps the new ones (the visited
// set, the trace links, the next BFS level) and checks invariants and witnesses on them.
// Insertion order alone decides state ids, so any number of expanding threads gives the
// same ids, traces and verdicts.
import type { Model } from "./compile.ts";
import { candidateStride, frontierStride } from "./expander.ts";
import type { Hit, Limits } from "./explore.ts";
import type { Por, Track } from "./por.ts";
import { holds, notDeterministic, RUN_INVARIANT, RUN_SHIFT, RUN_WITNESS, RUNNING, showState } from "./spec-calls.ts";
import { BlockPool, Level, RecentKeys, TraceLinks, VisitedSet } from "./store.ts";
import type { StopReason } from "./verdict.ts";

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
    this.next = new Level(new BlockPool(frontierStride(model), shared));
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

  /**
   * The key of the successor in `D` into key[0..1]; false when it is a recent key (a
   * duplicate: see insert), which `insert(..., offered)` then need not look at again.
   */
  offer(D: Uint32Array, key: Uint32Array): boolean {
    return this.recent.takeState(this.visited, D, key);
  }

  /**
   * Inserts `n` candidates (layout `candidateStride`); keys are computed unless `keyed`, and
   * recent keys dropped unless every candidate was `offered` (and taken) already.
   */
  insert(c: Uint32Array, n: number, keyed: boolean, offered = false): void {
    const W = this.model.words;
    const cs = candidateStride(this.model), cw = cs - W - 4;
    const visited = this.visited;
    if (!keyed) for (let j = 0; j < n; j++) visited.keyInto(c, j * cs, c, j * cs + W + 2);
    // A key seen recently is in the set, or is an earlier candidate of this batch that the
    // loop below takes first: either way the candidate is a duplicate.
    let dup: Uint8Array | undefined;
    if (!offered) {
      if (this.dup.length < n) this.dup = new Uint8Array(n);
      dup = this.dup;
      for (let j = 0, o = W + 2; j < n; j++, o += cs) dup[j] = this.recent.take(c[o], c[o + 1]) ? 0 : 1;
    }
    this.sink ^= visited.touch(c, n, cs, W + 2, dup);
    const D = this.D;
    for (let j = 0; j < n; j++) {
      if (dup !== undefined && dup[j] === 1) continue;
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
      const at = this.next.reserve();
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
