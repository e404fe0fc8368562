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
  const two = await checkAsync(refpin, { N: 5, variant: "active" }, { workers: 2, specUrl, parallelLevel: 1000 });
  assert.equal(two.stats.workers, 2);
  assert.deepEqual(comparable(two), comparable(one));
});

test("parallel: symmetry and a depth bound agree with the single-threaded run", async () => {
  const opts = { symmetry: true, maxDepth: 9 };
  const one = check(refpin, { N: 4, variant: "plain" }, opts);
  const two = await checkAsync(refpin, { N: 4, variant: "plain" }, { ...opts, workers: 2, specUrl, parallelLevel: 16 });
  assert.equal(one.complete, false);
  assert.deepEqual(comparable(two), comparable(one));
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
