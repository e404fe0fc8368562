import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { check, checkAsync } from "../checker/index.ts";
import refpin from "../specs/conformance/refpin.ts";
import type { Verdict } from "../checker/verdict.ts";

const specUrl = pathToFileURL(path.resolve("specs/conformance/refpin.ts")).href;

// Everything but timing (the search's, and the liveness pass's and others' of their own)
// and the worker count must be the same.
const comparable = (v: Verdict): unknown =>
  JSON.parse(JSON.stringify(v, (k, x) => (k === "seconds" || k === "statesPerSecond" || k === "workers" ? undefined : x)));

for (const variant of ["active", "plain"] as const) {
  test(`parallel: RefPin N=4 ${variant} with 2 workers gives the single-threaded verdict, traces included`, async () => {
    const one = check(refpin, { N: 4, variant });
    const two = await checkAsync(refpin, { N: 4, variant }, { workers: 2, specUrl, parallelLevel: 64 });
    assert.equal(two.stats.workers, 2);
    assert.deepEqual(comparable(two), comparable(one));
  });
}

test("parallel: RefPin N=5 (levels of several blocks, each given back as its last piece is inserted) gives the single-threaded verdict and the known counts", async () => {
  const one = check(refpin, { N: 5, variant: "active" });
  assert.deepEqual([one.stats.distinctStates, one.stats.generatedStates, one.stats.depth], [235_662, 2_454_116, 17]);
  // With two threads the workers do not filter by default (ParallelOptions.workerFilter): both ways.
  for (const workerFilter of [false, true]) {
    const two = await checkAsync(refpin, { N: 5, variant: "active" }, { workers: 2, specUrl, parallelLevel: 1000, workerFilter });
    assert.equal(two.stats.workers, 2);
    assert.deepEqual(comparable(two), comparable(one), `workerFilter: ${workerFilter}`);
  }
});

test("parallel: symmetry and a depth bound agree with the single-threaded run", async () => {
  const opts = { symmetry: true, maxDepth: 9 };
  const one = check(refpin, { N: 4, variant: "plain" }, opts);
  const two = await checkAsync(refpin, { N: 4, variant: "plain" }, { ...opts, workers: 2, specUrl, parallelLevel: 16 });
  assert.equal(one.complete, false);
  assert.deepEqual(comparable(two), comparable(one));
});

test("parallel: the workers start when the levels' growth would reach the parallel size within two levels; a search that never reaches it runs on this thread alone", async () => {
  // RefPin N = 4's levels: 1 14 92 381 1101 2322 3707 4662 4745 3910 2561 1278 449 90 1. At
  // 10,000 the pool starts at 2,322 (grown 2.1x: 2,322 x 2.1 x 2.1 >= 10,000), yet no level
  // reaches the size; at 4,000 it starts at 381 and levels from 4,662 on are parallel.
  const { Pool } = await import("../checker/parallel.ts");
  const one = check(refpin, { N: 4, variant: "active" });
  for (const [parallelLevel, workers] of [[10_000, 1], [4_000, 2]] as const) {
    const before = Pool.started;
    const two = await checkAsync(refpin, { N: 4, variant: "active" }, { workers: 2, specUrl, parallelLevel });
    assert.equal(Pool.started - before, 1, `parallelLevel ${parallelLevel}: one pool, started early`);
    assert.equal(two.stats.workers, workers, `parallelLevel ${parallelLevel}`);
    assert.deepEqual(comparable(two), comparable(one));
  }
  // RefPin N = 5's levels stop growing short of 100,000 (24,405, 34,037, 39,830): no pool.
  const before = Pool.started;
  const five = await checkAsync(refpin, { N: 5, variant: "active" }, { workers: 2, specUrl });
  assert.equal(Pool.started, before, "RefPin N = 5 starts no workers");
  assert.equal(five.stats.workers, 1);
  // Workers that fail to load are reported when the search needs them, and only then.
  const notASpec = pathToFileURL(path.resolve("test/fixtures/verdicts.ts")).href;
  await assert.rejects(checkAsync(refpin, { N: 4, variant: "active" }, { workers: 2, specUrl: notASpec, parallelLevel: 4_000 }), /does not default-export a spec/);
  const unneeded = await checkAsync(refpin, { N: 4, variant: "active" }, { workers: 2, specUrl: notASpec, parallelLevel: 10_000 });
  assert.deepEqual(comparable(unneeded), comparable(one));
});

// The shipped models never reach the level size where the parallel search starts (100,000
// states), so `compare specs --workers 2` alone would not run it: force it from level 1 and
// compare every design of every shipped spec with the one-thread run, traces, lock-order
// reports and liveness lassos included.
const { loadSpecs } = await import("../bin/load.ts");
const { designAssignments } = await import("../checker/index.ts");
for (const { spec, file } of await loadSpecs([path.resolve("specs")])) {
  test(`parallel: ${spec.name}: every design with 2 workers from level 1 gives the one-thread verdict`, async () => {
    const url = pathToFileURL(path.resolve(file)).href;
    for (const a of designAssignments(spec)) {
      const one = check(spec, a);
      const two = await checkAsync(spec, a, { workers: 2, specUrl: url, parallelLevel: 1 });
      assert.equal(two.stats.workers, 2, `${JSON.stringify(a)}: the workers ran`);
      assert.deepEqual(comparable(two), comparable(one), JSON.stringify(a));
    }
  });
}

test("parallel: the visited table doubling in place while workers filter against it (compact from 2^17 slots) gives the single-threaded verdict", async () => {
  // RefPin N = 5's table turns compact at 2^17 slots and doubles in place (distance fields
  // of 1 to 4 bits make it double often) during levels that the workers expand: their
  // lookups made across a doubling must not count.
  const opts = { compactSlotsFrom: 17 };
  const one = check(refpin, { N: 5, variant: "active" }, opts);
  assert.equal(one.stats.distinctStates, 235_662);
  const slots = Math.log2(one.stats.storeBytes / 6);
  assert.ok(Number.isInteger(slots) && slots >= 18, `a compact table that doubled: ${one.stats.storeBytes} B`);
  const two = await checkAsync(refpin, { N: 5, variant: "active" }, { ...opts, workers: 2, specUrl, parallelLevel: 1000, workerFilter: true });
  assert.deepEqual(comparable(two), comparable(one));
});

test("parallel: a worker drops no candidate as seen on lookups made while the table was doubled in place", async () => {
  const { compile } = await import("../checker/compile.ts");
  const { ChunkExpander } = await import("../checker/chunk.ts");
  const { layoutOf } = await import("../checker/layout.ts");
  const { VisitedSet } = await import("../checker/store.ts");
  const model = compile(refpin, { N: 3, variant: "active" });
  const fs = layoutOf(model).frontierStride, W = model.words;
  const frontier = new SharedArrayBuffer(4 * fs * model.inits.length);
  model.inits.forEach((s, k) => new Uint32Array(frontier).set(s, k * fs));
  const task = {
    type: "chunk" as const, chunk: 0, frontier, first: 0, from: 0, to: model.inits.length, atBound: false, filter: true,
    deadline: Infinity, masks: new Uint32Array(model.instances.length * W),
  };
  // A table that has every key, as its reader sees it: stable, or doubled in place meanwhile.
  const table = (stable: boolean) => Object.assign(Object.create(new VisitedSet(W, model.codec.lastWordBits)), { hasKey: () => true, stable: () => stable });
  assert.equal(new ChunkExpander(model, false).run(task, table(true)).n, 0, "every successor is seen");
  const kept = new ChunkExpander(model, false).run(task, table(false)).n;
  assert.ok(kept > 0, "lookups across a doubling do not count");
  assert.equal(kept, new ChunkExpander(model, false).run(task, new VisitedSet(W, model.codec.lastWordBits)).n, "as against an empty table");
});

// A queued state's known guards are worked out, by whichever thread expands it, from what the
// instance that made it has changed (Expander.carryIn): the changed bits travel with the read
// masks between threads, or a thread would reuse guard results that no longer hold.
test("parallel: the footprints a thread hands on carry each instance's changed bits as well as the read masks", async () => {
  const { compile } = await import("../checker/compile.ts");
  const { LevelLoop } = await import("../checker/explore.ts");
  const { Expander } = await import("../checker/expander.ts");
  const model = compile(refpin, { N: 3, variant: "active" });
  const loop = new LevelLoop(model, { maxDepth: 3 }, false);
  loop.runLocal();
  const handed = loop.local.ex.exportMasks();
  const n = model.instances.length * model.words;
  assert.equal(handed.length, 2 * n, "read masks, then changed bits");
  assert.ok(handed.subarray(n).some((x) => x !== 0), "some instance changed some bit");
  const fresh = new Expander(model, null);
  fresh.importMasks(handed);
  assert.deepEqual(fresh.exportMasks(), handed, "a thread that takes them over knows both");
});

// A worker faster than the search's insertion must not run a whole level ahead: every result
// it hands back holds its candidate buffer until it is inserted (Pool.run waits it instead).
test("parallel: a worker faster than the insertion is handed at most a few tasks beyond the last one inserted", async () => {
  const { EventEmitter } = await import("node:events");
  const { Pool, MAX_AHEAD_PER_WORKER } = await import("../checker/parallel.ts");
  const result = (chunk: number) => ({ chunk, candidates: new Uint32Array(4), n: 0, hits: [], fired: new Float64Array(0), changed: new Float64Array(0), generated: 0, hidden: false, masks: new Uint32Array(0) });
  // Answers every task at once, on the next turn of the event loop.
  class Instant extends EventEmitter {
    sent = 0;
    postMessage(t: { chunk: number }): void {
      this.sent++;
      setImmediate(() => this.emit("message", result(t.chunk)));
    }
  }
  const worker = new Instant();
  const pool = new Pool([worker as never]);
  const tasks = Array.from({ length: 200 }, (_, chunk) => ({ type: "chunk" as const, chunk, frontier: new SharedArrayBuffer(4), first: 0, from: 0, to: 0, atBound: false, filter: false, deadline: Infinity, masks: new Uint32Array(0) }));
  let taken = 0, local = 0, most = 0;
  await pool.run(
    tasks,
    () => {
      most = Math.max(most, worker.sent + local - taken);
      taken++;
      // A slow insertion: the worker's answers pile up meanwhile.
      const until = performance.now() + 0.5;
      while (performance.now() < until);
    },
    (t) => {
      local++;
      return result(t.chunk);
    },
    () => ({}) as never,
  );
  assert.equal(taken, 200, "every task's result is taken, in order");
  assert.ok(worker.sent > 100, `the worker did most of the tasks (${worker.sent})`);
  assert.ok(most <= MAX_AHEAD_PER_WORKER, `at most ${MAX_AHEAD_PER_WORKER} tasks beyond the last inserted, not ${most}`);
});
