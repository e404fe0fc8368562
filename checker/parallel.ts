// Parallel breadth-first search with worker_threads, level by level.
//
// Each level's frontier is cut into chunks. `workers` threads expand them (see chunk.ts):
// workers - 1 worker threads, which with more than two threads also drop the candidates they
// find in the visited set (read from shared memory), and this thread, which expands a chunk
// itself whenever no result is ready to insert; a worker is never more than a few chunks
// ahead of the insertion. This thread inserts the candidates chunk by chunk, in frontier
// order. That is exactly the order the single-threaded search inserts them in, so ids,
// counts, traces and verdicts are identical to a run with one thread. The level loop itself
// is the one-thread search's (LevelLoop, explore.ts); small levels run as there.
import { Worker, type WorkerOptions } from "node:worker_threads";
import type { Model } from "./compile.ts";
import { SpecError } from "./spec.ts";
import { ChunkExpander } from "./chunk.ts";
import { firstHits, LevelLoop, type ExploreOptions, type ExploreResult, type Hit, type StopReason } from "./explore.ts";
import type { VisitedShare } from "./store.ts";
import type { OrderEdge } from "./lockdep.ts";

export interface ParallelOptions extends ExploreOptions {
  workers: number;
  /** URL of the spec module; each worker imports and compiles it itself. */
  specUrl: string;
  /** Levels with fewer states run on the main thread (default 4096). */
  parallelLevel?: number;
  /**
   * Workers look each candidate up in the visited set and drop the ones found there, which
   * this thread would otherwise look up when it inserts them (default: with more than two
   * threads). With two, this thread expands 35 to 50% of the chunks itself and has time for
   * those lookups; the filter cost the worker more than it saved. RefPin N = 7, alternating
   * runs with and without it: 66.4, 70.5, 65.3 s against 62.8, 60.5, 56.6 s, peak RSS 496
   * against 495 MB; N = 6: 6.5 against 6.3 s (mean of three), but 30 to 50 MB more RSS, as
   * unfiltered candidate buffers grow. Counts, verdicts and traces are the same either way.
   */
  workerFilter?: boolean;
}

/** What a worker sends back for one chunk. */
export interface ChunkResult {
  chunk: number;
  candidates: Uint32Array;
  n: number;
  hits: Hit[];
  fired: Float64Array;
  changed: Float64Array;
  generated: number;
  hidden: boolean;
  /** The guard read masks this worker has learnt (see Expander.exportMasks). */
  masks: Uint32Array;
  /** Lock-order dependencies this worker has seen so far (when the spec declares locks). */
  lockEdges?: OrderEdge[];
  /** The chunk was cut short by the deadline or a stop request. */
  stoppedBy?: StopReason;
}

export interface LevelTask {
  type: "chunk";
  chunk: number;
  frontier: SharedArrayBuffer;
  /** The id of the frontier's state 0. */
  first: number;
  from: number;
  to: number;
  atBound: boolean;
  /** Drop the candidates found in the visited set (see ParallelOptions.workerFilter). */
  filter: boolean;
  deadline: number;
  /** Every thread's footprints as of the level's start (see Expander.exportMasks). */
  masks: Uint32Array;
  /** The search's stop request (ExploreOptions.stop), shared with every worker. */
  stop?: Int32Array;
  /** The candidate buffer of an earlier chunk, inserted already, to write into. */
  out?: ArrayBuffer;
}

/** What a worker is sent: a task, and the visited set as it is when the task is sent. */
export interface WorkerTask extends LevelTask {
  table: VisitedShare;
}

/**
 * Starts a worker thread running one of refcheck's modules. Compiled, the module's own .js
 * file; from the sources, ts-entry.mjs, which registers the TypeScript loader first (a worker
 * thread starts without it) and then imports the module the thread's argv names.
 */
export function startModuleWorker(module: URL, options: WorkerOptions): Worker {
  if (!module.pathname.endsWith(".ts")) return new Worker(module, options);
  return new Worker(new URL("./ts-entry.mjs", import.meta.url), { ...options, argv: [module.href] });
}

/** Starts one of the search's worker threads (see startModuleWorker). */
export function startWorker(name: "worker" | "search-worker" | "sim-worker", options: WorkerOptions): Worker {
  return startModuleWorker(new URL(`./${name}.${import.meta.url.endsWith(".ts") ? "ts" : "js"}`, import.meta.url), options);
}

/** Tasks handed out beyond the last one inserted, per worker (see Pool.run). */
export const MAX_AHEAD_PER_WORKER = 4;

/** The search's worker threads, and how a level's tasks are handed to them (exported for tests). */
export class Pool {
  constructor(private readonly workers: Worker[]) {}

  /** @internal Pools started in this thread so far (tests see when the search starts one). */
  static started = 0;

  static start(n: number, init: { specUrl: string; params: Record<string, unknown>; symmetry: boolean }): Pool {
    Pool.started++;
    return new Pool(Array.from({ length: n }, () => startWorker("worker", { workerData: init })));
  }

  async ready(): Promise<void> {
    await Promise.all(this.workers.map((w) => once(w)));
  }

  /**
   * Runs the tasks on the workers and on this thread, and passes each result to `take` in
   * task order as soon as it and all before it are in. This thread inserts whatever is ready
   * and expands the next task itself (`local`) only when nothing is; each worker keeps two
   * tasks queued, so it does not wait while this thread is busy. A task goes out with the
   * visited set as `table()` gives it then: a worker filters against what is inserted so
   * far, and lets go of a table that has been replaced by a larger one.
   */
  async run(tasks: LevelTask[], take: (r: ChunkResult) => void, local: (t: LevelTask) => ChunkResult, table: () => VisitedShare): Promise<void> {
    const results: (ChunkResult | undefined)[] = new Array(tasks.length);
    let next = 0;
    let taken = 0;
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    // Candidate buffers that were inserted go back out with later tasks: a fresh one for every
    // task made the garbage collector run all the time (each counts as external memory).
    const spare: ArrayBuffer[] = [];
    const withSpare = (t: LevelTask): LevelTask => (spare.length > 0 ? { ...t, out: spare.pop() } : t);
    // A worker faster than this thread's insertion would otherwise run ahead by up to a whole
    // level, each result holding its candidate buffer until it is inserted: it waits instead.
    const ahead = MAX_AHEAD_PER_WORKER * this.workers.length;
    const waiting: Worker[] = [];
    const feed = (w: Worker) => {
      if (next >= tasks.length) return;
      if (next - taken >= ahead) {
        waiting.push(w);
        return;
      }
      const t: WorkerTask = { ...withSpare(tasks[next++]), table: table() };
      w.postMessage(t, t.out ? [t.out] : []);
    };
    const off = this.workers.map((w) => {
      const onMessage = (m: any) => {
        const e = workerError(m);
        if (e) failure ??= e;
        else {
          results[(m as ChunkResult).chunk] = m as ChunkResult;
          feed(w);
        }
        wake?.();
      };
      const onError = (e: Error) => {
        failure ??= e;
        wake?.();
      };
      w.on("message", onMessage);
      w.on("error", onError);
      return () => {
        w.off("message", onMessage);
        w.off("error", onError);
      };
    });
    try {
      for (const w of this.workers) {
        feed(w);
        feed(w);
      }
      while (taken < tasks.length) {
        if (failure) throw failure;
        const r = results[taken];
        if (r) {
          results[taken++] = undefined;
          take(r);
          spare.push(r.candidates.buffer as ArrayBuffer);
          for (const w of waiting.splice(0)) feed(w);
        } else if (next < tasks.length) {
          results[next] = local(withSpare(tasks[next]));
          next++;
        } else {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          continue;
        }
        // Let the workers' messages in: each one that is read hands its worker a new task.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      for (const f of off) f();
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** The error a worker's message reports (a SpecError when it is the spec's), or undefined. */
function workerError(m: any): Error | undefined {
  if (!m || m.type !== "error") return undefined;
  return m.spec ? new SpecError(m.message) : new Error(m.message);
}

/** The next message of a worker; a worker error becomes a SpecError or is rethrown. */
export function once(w: Worker): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: any) => {
      cleanup();
      const e = workerError(m);
      if (e) reject(e);
      else resolve(m);
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    const cleanup = () => {
      w.off("message", onMessage);
      w.off("error", onError);
    };
    w.on("message", onMessage);
    w.on("error", onError);
  });
}

/** Levels smaller than this are expanded on the main thread: starting workers and
 * shipping candidates would cost more than they save. */
const PARALLEL_LEVEL = 100_000;

/** Tasks are at most a quarter of a block (4,096 states): each holds a candidate buffer until it is inserted. */
const PIECES_PER_BLOCK = 4;

export async function exploreParallel(model: Model, opts: ParallelOptions): Promise<ExploreResult> {
  const loop = new LevelLoop(model, opts, true);
  const { ins, local, deadline } = loop;
  let pool: Pool | undefined;
  let ready: Promise<void> | undefined;
  let chunks: ChunkExpander | undefined;
  const parallelLevel = opts.parallelLevel ?? PARALLEL_LEVEL;
  // The size of the last level expanded on this thread alone (see startPool).
  let lastSize = 0;
  // Workers take about 0.4 s to load and compile the spec from the sources: started when the
  // levels, growing as they have from the last one, would reach the parallel size within two
  // levels, they load during those instead of keeping this thread waiting at the first
  // parallel level. A search whose levels stop growing before (RefPin N = 5: 24,405, 34,037,
  // 39,830, then fewer) starts none.
  const startPool = () => {
    pool = Pool.start(opts.workers - 1, { specUrl: opts.specUrl, params: model.params, symmetry: !!opts.symmetry });
    ready = pool.ready();
    // Awaited at the first parallel level; a failure before then must not go unhandled.
    ready.catch(() => {});
  };
  try {
    const fired = new Float64Array(model.instances.length);
    const changed = new Float64Array(model.instances.length);
    const exHits: Hit[] = [];
    let generated = 0;
    const failed = () => local.failed() || exHits.some((h) => h.failure);
    const generatedSoFar = () => generated + local.ex.generated;
    const filter = opts.workerFilter ?? opts.workers > 2;
    for (let l = loop.next(failed, generatedSoFar); l !== null; l = loop.next(failed, generatedSoFar)) {
      const { level, depth, atBound } = l;
      let stoppedBy: StopReason | undefined;
      let hidden = false;
      if (level.size < parallelLevel) {
        const growth = level.size / Math.max(1, lastSize);
        lastSize = level.size;
        if (!pool && growth > 1 && level.size * growth * growth >= parallelLevel) startPool();
        stoppedBy = local.level(level, depth, atBound);
        hidden = local.ex.hidden;
        // Keep hits in search order: what this thread found so far comes first.
        firstHits(local.ex.hits, exHits);
      } else {
        if (!chunks) {
          if (!pool) startPool();
          // This thread is one of the `workers` threads that expand.
          chunks = new ChunkExpander(model, !!opts.symmetry);
          if (opts.running) chunks.ex.running = opts.running;
          await ready;
        }
        const here = chunks;
        const workers = pool!;
        // Tasks are pieces of the level's blocks, at least 8 per worker; a block goes back to
        // the pool once the candidates of its last piece are inserted.
        const pieces = Math.max(PIECES_PER_BLOCK, Math.ceil((opts.workers * 8) / level.blocks.length));
        const tasks: LevelTask[] = [];
        const lastOfBlock: number[] = [];
        const masks = local.ex.exportMasks();
        for (let b = 0; b < level.blocks.length; b++) {
          const n = level.count(b), parts = Math.min(n, pieces);
          for (let c = 0; c < parts; c++) {
            tasks.push({
              type: "chunk",
              chunk: tasks.length,
              frontier: level.blocks[b].buffer as SharedArrayBuffer,
              first: level.idOf(b, 0),
              from: Math.floor((c * n) / parts),
              to: Math.floor(((c + 1) * n) / parts),
              masks,
              atBound,
              filter,
              deadline,
              stop: opts.stop,
            });
            lastOfBlock.push(c === parts - 1 ? b : -1);
          }
        }
        // Workers read the visited set while this thread inserts into it (or replaces it
        // when it grows): they may miss a state inserted meanwhile, never see one that is
        // not there, and every candidate they keep is checked again here.
        await workers.run(tasks, (r) => {
          for (let i = 0; i < fired.length; i++) fired[i] += r.fired[i];
          for (let i = 0; i < changed.length; i++) changed[i] += r.changed[i];
          generated += r.generated;
          firstHits(r.hits, exHits);
          hidden ||= r.hidden;
          if (r.stoppedBy) stoppedBy ??= r.stoppedBy;
          if (r.lockEdges) local.ex.lockOrder?.merge(r.lockEdges);
          local.ex.importMasks(r.masks);
          if (!atBound) ins.insert(r.candidates, r.n, true, true);
          if (lastOfBlock[r.chunk] >= 0) level.release(lastOfBlock[r.chunk]);
        }, (t) => here.run(t, ins.visited, false), () => ins.visited.share());
      }
      if (opts.progress) opts.progress({ distinct: ins.distinct, generated: generatedSoFar(), depth, seconds: (performance.now() - loop.t0) / 1000 });
      loop.done(atBound, stoppedBy, hidden);
    }
    for (let i = 0; i < fired.length; i++) fired[i] += local.ex.fired[i];
    for (let i = 0; i < changed.length; i++) changed[i] += local.ex.changed[i];
    return loop.result(
      {
        hits: firstHits(local.ex.hits, exHits),
        lockEdges: local.ex.lockOrder ? [...local.ex.lockOrder.edges.values()] : undefined,
        generated: generatedSoFar(),
        fired,
        changed,
        workers: chunks ? opts.workers : 1,
        por: false,
      },
      failed,
    );
  } finally {
    await pool?.close();
  }
}
