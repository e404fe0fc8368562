// The transition cache (checker/transition-cache.ts) never changes a result: every design of
// every shipped spec gives the same verdict with it and without it, and so do specs built to
// catch the ways it could go wrong (a blind write, a fault, a branch on a field read late, an
// impure effect the cache would freeze).
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { z } from "zod";
import { check, defineSpec, designAssignments, Fault, SpecError } from "../checker/index.ts";
import type { Verdict } from "../checker/verdict.ts";
import { naiveCheck } from "./support/naive.ts";

const comparable = (v: Verdict): unknown =>
  JSON.parse(JSON.stringify(v, (k, x) => (k === "seconds" || k === "statesPerSecond" ? undefined : x)));

const { loadSpecs } = await import("../bin/load.ts");
for (const { spec } of await loadSpecs([path.resolve("specs")])) {
  test(`transition cache: ${spec.name}: every design gives the same verdict with and without it`, () => {
    for (const a of designAssignments(spec)) {
      assert.deepEqual(comparable(check(spec, a)), comparable(check(spec, a, { transitionCache: false })), JSON.stringify(a));
    }
  });
}

// `Set` writes x without reading it. A draft that recorded only reads would key Set's
// transitions on nothing and replay the first successor it saw (x unchanged) on every state.
const blindWrite = defineSpec({
  name: "test/blind-write",
  params: z.object({}),
  state: () => z.object({ x: z.boolean(), n: z.number().int().min(0).max(3), y: z.number().int().min(0).max(3) }),
  init: () => ({ x: true, n: 0, y: 0 }),
  actions: () => ({
    Clear: { when: (s) => s.x && s.n < 3, then: (s) => { s.x = false; s.n = s.n + 1; } },
    Set: { when: (s) => s.n < 3, then: (s) => { s.x = true; } },
    // Reads y only when x is set: the key must grow when a later run reads more.
    Bump: { when: (s) => s.y < 3, then: (s) => { if (s.x) s.y = s.y + 1; else if (s.n === 3) throw new Fault("bump after three clears"); } },
  }),
  invariants: { yBelow3: (s) => s.y < 3 },
});

test("transition cache: a blind write, a branch that reads more later, and a fault give the naive explorer's counts", () => {
  const naive = naiveCheck(blindWrite, {});
  const v = check(blindWrite, {});
  assert.deepEqual([v.stats.distinctStates, v.stats.generatedStates], [naive.distinct, naive.generated]);
  assert.deepEqual(comparable(v), comparable(check(blindWrite, {}, { transitionCache: false })));
  assert.deepEqual(v.properties.filter((p) => p.failed).map((p) => p.name).sort(), ["noFault", "yBelow3"]);
});

// The effect writes a value it takes from outside the state: the number of states the
// invariant has been asked about. Within one expansion it gives the same answer every time,
// so only a comparison with the cached result (a run on an earlier state) shows it.
let asked = 0;
const frozen = defineSpec({
  name: "test/cache-impure",
  params: z.object({}),
  state: () => z.object({ a: z.number().int().min(0).max(15), b: z.number().int().min(0).max(15), late: z.boolean() }),
  init: () => ({ a: 0, b: 0, late: false }),
  actions: () => ({
    A: { when: (s) => s.a < 15, then: (s) => { s.a = s.a + 1; } },
    B: { when: (s) => s.b < 15, then: (s) => { s.b = s.b + 1; } },
    Late: { then: (s) => { s.late = asked > 40; } },
  }),
  invariants: { counted: () => (asked++, true) },
});

test("transition cache: in the purity probe's window a cached transition is run again and compared", () => {
  asked = 0;
  assert.throws(
    () => check(frozen, {}),
    (e: unknown) => e instanceof SpecError && /action Late gave .* from an earlier state that differs from it only in fields the action did not read or write/.test(e.message),
  );
});

// A projection with bit 31 set is a negative number once masked with `&`; the table holds
// unsigned words. Before the comparison made both unsigned, such an entry never hit again:
// RefPin N = 6's FileDel(i=3), whose mask reaches bit 31 of word 0, missed every lookup.
test("transition cache: an entry whose projection has bit 31 set is found again", async () => {
  const { TransitionCache } = await import("../checker/transition-cache.ts");
  const cache = new TransitionCache(1, 2);
  const A = new Uint32Array([0x80000005, 0x80000000]), D = new Uint32Array([0x80000001, 0x00000000]);
  cache.begin();
  cache.touched.set([0x80000007, 0x80000000]);
  cache.store(0, A, D, null);
  const out = new Uint32Array(2);
  assert.equal(cache.lookup(0, A, out), 1, "the transition just stored is found");
  assert.deepEqual([...out], [...D]);
  // Outside the mask the state may differ; inside it may not.
  const B = new Uint32Array([0x80000005 | 0x100, 0x80000000 | 0x2]);
  assert.equal(cache.lookup(0, B, out), 1);
  assert.deepEqual([...out], [0x80000101, 0x00000002]);
  assert.equal(cache.lookup(0, new Uint32Array([0x00000005, 0x80000000]), out), 0);
});

// The guard of Late reads `a` and a count kept outside the state. Every step changes `a`, so
// guard reuse never carries Late's result: only the guard memo, which remembers it from an
// earlier state with the same `a`, could freeze it, and in the purity probe's window the
// memo's result is run again and compared. (Without the memo the search's last recheck
// reports it, in other words.)
let looked = 0;
const frozenGuard = defineSpec({
  name: "test/guard-memo-impure",
  params: z.object({}),
  state: () => z.object({ a: z.number().int().min(0).max(3), n: z.number().int().min(0).max(63) }),
  init: () => ({ a: 0, n: 0 }),
  actions: () => ({
    Inc: { when: (s) => s.n < 63, then: (s) => { s.a = (s.a + 1) % 4; s.n = s.n + 1; } },
    Late: { when: (s) => s.a >= 0 && looked > 40, then: (s) => { s.a = (s.a + 1) % 4; } },
  }),
  invariants: { counted: () => (looked++, true) },
});

test("guard memo: in the purity probe's window a remembered guard result is run again and compared", () => {
  looked = 0;
  assert.throws(
    () => check(frozenGuard, {}),
    (e: unknown) => e instanceof SpecError && /the guard of action Late gave true on the state .*, but false on an earlier state that differs from it only in fields the guard did not read/.test(e.message),
  );
});

test("guard memo: RefPin's per-device guards, re-run after a step on the shared count, come from the memo", async () => {
  const { compile } = await import("../checker/compile.ts");
  const { LevelLoop } = await import("../checker/explore.ts");
  const refpin = (await import("../specs/conformance/refpin.ts")).default;
  const model = compile(refpin, { N: 4, variant: "active" });
  const loop = new LevelLoop(model, {}, false);
  loop.runLocal();
  assert.equal(loop.ins.distinct, 25_314);
  const { guardRuns, guardMemoHits } = loop.local.ex;
  // Without the memo every one of these would be a run (about 5.8 a state).
  assert.ok(guardMemoHits > 100_000 && guardRuns < guardMemoHits / 10, `${guardRuns} runs, ${guardMemoHits} from the memo`);
});

// An instance is judged on every window of 4,096 lookups, not on its first alone: a parallel
// search's chunk expander whose first states happened to share keys kept RefPin's CloseDev
// cached for the whole search, each run paying a lookup that never hit, the recording view
// and a store (that thread expanded about 1.4x slower).
test("transition cache: an instance that stops hitting after its first 4,096 lookups is not cached any more", async () => {
  const { TransitionCache } = await import("../checker/transition-cache.ts");
  const cache = new TransitionCache(1, 1);
  const A = new Uint32Array([5]), D = new Uint32Array(1), out = new Uint32Array(1);
  const miss = (x: number) => {
    const S = new Uint32Array([x]);
    assert.equal(cache.lookup(0, S, out), 0);
    cache.begin();
    cache.touched[0] = 0xffff;
    D[0] = x + 1;
    cache.store(0, S, D, null);
  };
  // First window: every other lookup is A, kept once (a hit rate of one half).
  let fresh = 1000;
  miss(5);
  for (let k = 1; k < 4096; k++) {
    if (k % 2 === 0) assert.equal(cache.lookup(0, A, out), 1);
    else miss(fresh++);
  }
  assert.equal(cache.off[0], 0, "cached after a first window with hits");
  // Second window: states never seen before, so no hits.
  for (let k = 0; k < 4096; k++) miss(fresh++);
  assert.equal(cache.off[0], 1, "not cached once a whole window has missed");
});
