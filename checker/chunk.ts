// One piece of a BFS level expanded into candidates for the Inserter: the work of a parallel
// search's worker threads, and of the search's own thread between its insertions.
import type { Model } from "./compile.ts";
import { canonicalizerFor, Expander } from "./expander.ts";
import { layoutOf } from "./layout.ts";
import type { ChunkResult, LevelTask } from "./parallel.ts";
import { STOP_INTERRUPT, STOP_TIMEOUT } from "./spec-calls.ts";
import { GrowU32, RecentKeys, VisitedSet } from "./store.ts";

/** Candidates checked against the visited set at a time (their home slots touched first). */
const FILTER_BATCH = 512;

export class ChunkExpander {
  readonly ex: Expander;
  private readonly W: number;
  private readonly cs: number;
  private readonly fs: number;
  /** A candidate's key offset (see Layout). */
  private readonly keyAt: number;
  /**
   * Keys found in the visited set or kept earlier by this thread. The search inserts every
   * kept candidate, in frontier order, before any later chunk's, so a hit is a duplicate.
   */
  private readonly recent = new RecentKeys();
  /** The key of the successor being emitted (see Expander.accept). */
  private readonly key = new Uint32Array(2);
  private seen: VisitedSet | null = null;
  private out = new GrowU32(0);
  /** Candidates of `out` from this offset on are not checked against `seen` yet. */
  private pending = 0;
  /** Successors repeated within the chunk: only the first is kept (the search would drop the others). */
  private local: VisitedSet | null = null;
  private filtering = true;
  /** Per pending candidate: found in `seen`. */
  private found = new Uint8Array(0);
  /** The lookups in `seen` count (see filter). */
  private seenStable = true;

  constructor(private readonly model: Model, symmetry: boolean) {
    this.W = model.words;
    const layout = layoutOf(model);
    this.cs = layout.candidateStride;
    this.fs = layout.frontierStride;
    this.keyAt = layout.key;
    this.ex = new Expander(model, canonicalizerFor(model, symmetry));
    this.ex.accept = (d) => this.recent.takeState(this.seen!, d, this.key);
  }

  /**
   * Expands the chunk; `seen` is the visited set of the levels before (or a view of it).
   * `filter` (the task's, by default): drop the candidates found in `seen` or repeated in the
   * chunk. The search's own thread does not: it inserts the candidates itself, which looks
   * each one up anyway.
   */
  run(t: LevelTask, seen: VisitedSet, filter = t.filter): ChunkResult {
    const { ex, W, cs, fs } = this;
    this.seen = seen;
    const states = t.to - t.from;
    // About six candidates a state survive the recent keys on the kernel models; grow from there.
    const want = Math.max(1024, states * 6 * cs);
    if (t.out !== undefined && t.out.byteLength >= 4 * want) this.out.adopt(new Uint32Array(t.out));
    else this.out = new GrowU32(want);
    this.pending = 0;
    this.filtering = filter;
    this.seenStable = true;
    if (filter) this.local = new VisitedSet(W, this.model.codec.lastWordBits, Math.max(1024, states * 2), false, undefined, false);
    ex.importMasks(t.masks);
    ex.fired.fill(0);
    ex.changed.fill(0);
    ex.generated = 0;
    ex.hidden = false;
    const hitsBefore = ex.hits.length;
    let stoppedBy: ChunkResult["stoppedBy"];
    const frontier = new Uint32Array(t.frontier);
    for (let k = t.from; k < t.to; k++) {
      if (((k - t.from) & 15) === 15) {
        const r = t.stop ? Atomics.load(t.stop, 0) : 0;
        if (r === STOP_INTERRUPT) stoppedBy = "interrupted";
        else if (r === STOP_TIMEOUT || performance.now() > t.deadline) stoppedBy = "timeout";
        if (stoppedBy) break;
      }
      const off = k * fs;
      ex.expand(frontier, off, t.first + k, this.emit, t.atBound ? seen : undefined);
    }
    if (filter) this.filter();
    else this.pending = this.out.n;
    const candidates = this.out.a;
    this.out = new GrowU32(0);
    this.local = null;
    this.seen = null;
    return {
      chunk: t.chunk,
      candidates,
      n: this.pending / cs,
      hits: ex.hits.slice(hitsBefore),
      fired: ex.fired.slice(),
      changed: ex.changed.slice(),
      generated: ex.generated,
      hidden: ex.hidden,
      stoppedBy,
      masks: ex.exportMasks(),
      lockEdges: ex.lockOrder ? [...ex.lockOrder.edges.values()] : undefined,
    };
  }

  private readonly emit = (parentId: number, inst: number): void => {
    const { cs, out } = this;
    const at = out.reserve(cs);
    this.ex.writeCandidate(out.a, at, parentId, inst, this.key);
    if (this.filtering && out.n - this.pending >= FILTER_BATCH * cs) this.filter();
  };

  /**
   * Drops the pending candidates known from earlier levels or earlier in this chunk: touches
   * their home slots first so that the cache misses overlap, then compacts.
   */
  private filter(): void {
    const { cs, keyAt, out } = this;
    const seen = this.seen!, local = this.local!;
    const a = out.a;
    const n = (out.n - this.pending) / cs;
    if (this.found.length < n) this.found = new Uint8Array(2 * n);
    const found = this.found;
    // Look up first, then see whether the lookups count: the search may have doubled the
    // table in place under them (see VisitedSet.stable), and then, for the rest of the chunk,
    // nothing is dropped as seen.
    if (this.seenStable) {
      seen.touch(a.subarray(this.pending), n, cs, keyAt);
      for (let j = 0, o = this.pending + keyAt; j < n; j++, o += cs) found[j] = seen.hasKey(a[o], a[o + 1]) ? 1 : 0;
      this.seenStable = seen.stable();
    }
    const stable = this.seenStable;
    let to = this.pending;
    for (let j = 0, from = to; j < n; j++, from += cs) {
      const k0 = a[from + keyAt], k1 = a[from + keyAt + 1];
      if ((stable && found[j] === 1) || !local.addKey(k0, k1)) continue;
      // A loop, not copyWithin: a builtin call costs more than these few words.
      if (to !== from) for (let w = 0; w < cs; w++) a[to + w] = a[from + w];
      to += cs;
    }
    out.n = to;
    this.pending = to;
  }
}
