// Exhaustive breadth-first exploration over packed states.
//
// States are stored once, as keys in the visited set; each state also gets a parent link
// and the id of the action instance that first reached it, so a trace is rebuilt by
// replaying actions from the initial state. The frontier holds packed words of the
// current and next BFS levels only. Level order plus a fixed action order make runs
// deterministic and counterexamples shortest.
//
// Two pieces do the work, so that the parallel search (parallel.ts) reuses them:
// the Expander (expander.ts) runs guards and effects on one state and emits successors; the
// Inserter (inserter.ts) takes successors in order, keeps the new ones and checks invariants
// and witnesses on them. This file holds the search's options, limits and result, the BFS
// level loop both searches run (LevelLoop), and the one-thread search: LocalSearch drives
// the two over a BFS level.
import type { Model } from "./compile.ts";
import { canonicalizerFor, Expander } from "./expander.ts";
import { layoutOf } from "./layout.ts";
import { Inserter } from "./inserter.ts";
import { STOP_INTERRUPT, STOP_TIMEOUT } from "./spec-calls.ts";
import type { OrderEdge } from "./lockdep.ts";
import { makePor } from "./por.ts";
import { Level, NO_PARENT, type StateStore, type TraceLinks } from "./store.ts";
import type { StopReason } from "./verdict.ts";

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
  /**
   * @internal log2 of the slot count from which the visited table is compact (default 24; 17
   * to 24). Lower only in tests: it brings the compact table's in-place doubling within a
   * small model's reach.
   */
  compactSlotsFrom?: number;
}



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
  visited?: StateStore;
}

export { NO_PARENT };

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
  private readonly fs: number;
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
    const layout = layoutOf(model);
    this.cs = layout.candidateStride;
    this.fs = layout.frontierStride;
    this.batch = new Uint32Array(LocalSearch.BATCH * this.cs);
    // Successors whose key is a recent one are dropped as they are made, before their guard
    // carry is computed and they are copied into the batch (about half of RefPin's).
    if (this.ex.por === null) this.ex.accept = (D) => ins.offer(D, this.key);
  }

  /** The key of the successor being emitted (see Inserter.offer). */
  private readonly key = new Uint32Array(2);

  private readonly emit = (parentId: number, inst: number): void => {
    this.ex.writeCandidate(this.batch, this.nb * this.cs, parentId, inst, this.key);
    if (++this.nb === LocalSearch.BATCH) this.flush();
  };

  flush(): void {
    const offered = this.ex.accept !== null;
    this.ins.insert(this.batch, this.nb, offered, offered);
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
      if (this.ex.accept === null || this.ex.accept(this.ex.D)) this.emit(NO_PARENT, i);
    }
    this.flush();
  }

  /**
   * Expands the states of a BFS level (words + id + guard carry each), giving each block back
   * to the pool once expanded; returns why it stopped early, if it did.
   */
  level(frontier: Level, depth: number, atBound: boolean): StopReason | undefined {
    for (let b = 0; b < frontier.blocks.length; b++) {
      const why = this.block(frontier.blocks[b], frontier.count(b), frontier.idOf(b, 0), depth, atBound);
      frontier.release(b);
      if (why) return why;
    }
    return undefined;
  }

  /** Expands `count` states of one block, the first of them with id `first`. */
  private block(block: Uint32Array, count: number, first: number, depth: number, atBound: boolean): StopReason | undefined {
    const stride = this.fs, opts = this.opts;
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
      this.ex.expand(block, off, first + k, this.emit, atBound ? this.ins.visited : undefined);
    }
    this.flush();
    return undefined;
  }
}

/**
 * The BFS level loop, one for both searches: the one-thread search expands every level with
 * its LocalSearch, the parallel one (parallel.ts) the large levels in chunks on several
 * threads. It holds the Inserter, the LocalSearch and the two levels, which swap roles each
 * level (the one just filled is expanded next, into the other).
 */
export class LevelLoop {
  readonly t0 = performance.now();
  readonly deadline: number;
  readonly limits: Limits;
  readonly ins: Inserter;
  readonly local: LocalSearch;
  depth = 0;
  private stoppedBy?: StopReason;
  private over = false;
  private level: Level;
  private readonly maxDepth: number;

  constructor(
    readonly model: Model,
    private readonly opts: ExploreOptions,
    shared: boolean,
  ) {
    this.maxDepth = opts.maxDepth ?? Infinity;
    this.deadline = opts.timeoutSeconds !== undefined ? this.t0 + opts.timeoutSeconds * 1000 : Infinity;
    this.limits = new Limits(opts, this.t0, this.deadline);
    this.ins = new Inserter(model, opts.maxStates ?? Infinity, shared, this.limits, opts.compactSlotsFrom);
    this.local = new LocalSearch(model, this.ins, opts, this.limits);
    this.level = new Level(this.ins.next.pool);
    this.local.initial();
  }

  /**
   * The next level to expand, or null when the search is over: no state is queued, a bound
   * stopped it, or (with --stop-at-first) `failed` says a property failed. `generated`: the
   * successors generated so far, for the progress report.
   */
  next(failed: () => boolean, generated: () => number): { level: Level; depth: number; atBound: boolean } | null {
    if (this.over || this.stoppedBy || this.ins.next.size === 0) return null;
    if (this.opts.stopAtFirst && failed()) {
      this.stoppedBy = "first-violation";
      return null;
    }
    this.stoppedBy = this.limits.check(() => ({ distinct: this.ins.distinct, generated: generated(), depth: this.depth }));
    if (this.stoppedBy) return null;
    this.level.clear();
    [this.level, this.ins.next] = [this.ins.next, this.level];
    return { level: this.level, depth: this.depth, atBound: this.depth >= this.maxDepth };
  }

  /** Every level on this thread, with the LocalSearch: the one-thread search. */
  runLocal(): void {
    const { local } = this, ex = local.ex;
    const failed = () => local.failed(), generated = () => ex.generated;
    for (let l = this.next(failed, generated); l !== null; l = this.next(failed, generated)) {
      this.done(l.atBound, local.level(l.level, l.depth, l.atBound), ex.hidden);
    }
  }

  /** After a level: why it stopped early, if it did, and whether it hid a successor past the depth bound. */
  done(atBound: boolean, stoppedBy: StopReason | undefined, hidden: boolean): void {
    if (stoppedBy) this.stoppedBy = stoppedBy;
    else if (atBound) {
      if (hidden) this.stoppedBy = "max-depth";
      this.over = true;
    } else if (this.ins.stoppedBy) this.over = true;
    else if (this.ins.next.size > 0) this.depth++;
  }

  /** The search's result, from what the threads that expanded found (their hits first, in search order). */
  result(found: Pick<ExploreResult, "hits" | "lockEdges" | "generated" | "fired" | "changed" | "workers" | "por" | "porOff">, failed: () => boolean): ExploreResult {
    const ins = this.ins;
    this.local.flush();
    this.local.ex.recheck();
    let stoppedBy = this.stoppedBy ?? ins.stoppedBy;
    if (!stoppedBy && this.opts.stopAtFirst && failed()) stoppedBy = "first-violation";
    return {
      ...found,
      hits: [...found.hits, ...ins.hits],
      distinct: ins.distinct,
      depth: this.depth,
      seconds: (performance.now() - this.t0) / 1000,
      complete: stoppedBy === undefined,
      stoppedBy,
      links: ins.links,
      storeBytes: ins.visited.bytes,
      traceBytes: ins.traceBytes,
      fingerprintBits: ins.visited.fingerprintBits,
      visited: ins.visited,
    };
  }
}

export function explore(model: Model, opts: ExploreOptions = {}): ExploreResult {
  const loop = new LevelLoop(model, opts, false);
  const { local } = loop, ex = local.ex;
  loop.runLocal();
  return loop.result(
    {
      hits: ex.hits,
      lockEdges: ex.lockOrder ? [...ex.lockOrder.edges.values()] : undefined,
      generated: ex.generated,
      fired: ex.fired,
      changed: ex.changed,
      workers: 1,
      por: ex.por !== null,
      porOff: local.porOff,
    },
    () => local.failed(),
  );
}
