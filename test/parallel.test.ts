import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { check, checkAsync } from "../checker/index.ts";
import refpin from "../specs/conformance/refpin.ts";
import type { Verdict } from "../checker/verdict.ts";

const specUrl = pathToFileURL(path.resolve("specs/conformance/refpin.ts")).href;

// Everything but timing and the worker count must be the same.
function comparable(v: Verdict): unknown {
  const { seconds: _s, statesPerSecond: _r, workers: _w, ...stats } = v.stats;
  return { ...v, stats };
}

for (const variant of ["active", "plain"] as const) {
  test(`parallel: RefPin N=4 ${variant} with 2 workers gives the single-threaded verdict, traces included`, async () => {
    const one = check(refpin, { N: 4, variant });
    const two = await checkAsync(refpin, { N: 4, variant }, { workers: 2, specUrl, parallelLevel: 64 });
    assert.equal(two.stats.workers, 2);
    assert.deepEqual(comparable(two), comparable(one));
  });
}

test("parallel: symmetry and a depth bound agree with the single-threaded run", async () => {
  const opts = { symmetry: true, maxDepth: 9 };
  const one = check(refpin, { N: 4, variant: "plain" }, opts);
  const two = await checkAsync(refpin, { N: 4, variant: "plain" }, { ...opts, workers: 2, specUrl, parallelLevel: 16 });
  assert.equal(one.complete, false);
  assert.deepEqual(comparable(two), comparable(one));
});
