// Partial-order reduction must not change which properties fail, and its counterexamples
// must be real traces: checked on random specs whose footprints are exact, with and
// without symmetry, and on the shipped specs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import fc from "fast-check";
import { check, designAssignments, isSpec } from "../checker/index.ts";
import type { Verdict } from "../checker/verdict.ts";
import { assertValidTrace, naiveModel } from "./support/naive.ts";
import { specArb, toSpec } from "./support/random-spec.ts";

const failed = (v: Verdict) => v.properties.filter((p) => p.failed).map((p) => p.name).sort();

let reduced = 0;
for (const symmetric of [false, true]) {
  test(`por: random specs${symmetric ? " with symmetry" : ""} fail the same properties with and without the reduction`, () => {
    fc.assert(
      fc.property(specArb(symmetric), (ast0) => {
        const ast = { ...ast0, actionProps: [] }; // action properties switch the reduction off
        const spec = toSpec(ast, "random", { footprints: true });
        const opts = { symmetry: symmetric };
        const full = check(spec, {}, opts);
        const por = check(spec, {}, { ...opts, por: true });
        // Applied, or reported as not applicable: never silently skipped.
        assert.ok(por.stats.por || por.warnings.some((w) => w.startsWith("partial-order reduction not applied")));
        assert.deepEqual(failed(por), failed(full));
        assert.ok(por.stats.distinctStates <= full.stats.distinctStates);
        if (por.stats.distinctStates < full.stats.distinctStates) reduced++;
        const m = naiveModel(spec, {});
        for (const p of por.properties) if (p.trace) assertValidTrace(m, p, p.trace);
      }),
      { numRuns: 150, seed: symmetric ? 11 : 7 },
    );
  });
}

// Threads with short random programs over their own pc and one shared variable: much
// independence, so the reduction has room to go wrong.
interface ThreadStep {
  shared: boolean;
  blocks: boolean;
  faults: boolean;
  /** Goes back to the thread's first step: cycles, where the reduction must not ignore a thread. */
  loops: boolean;
}
const rarely = fc.integer({ min: 0, max: 4 }).map((x) => x === 0);
const threadsArb = fc.record({
  programs: fc.array(fc.array(fc.record({ shared: rarely, blocks: rarely, faults: rarely, loops: rarely }), { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 3 }),
  inv: fc.record({ on: fc.integer({ min: -1, max: 2 }), value: fc.integer({ min: 0, max: 3 }) }),
  wit: fc.record({ on: fc.integer({ min: -1, max: 2 }), value: fc.integer({ min: 0, max: 3 }) }),
});

async function threadsSpec(t: { programs: ThreadStep[][]; inv: { on: number; value: number }; wit: { on: number; value: number } }) {
  const { z } = await import("zod");
  const { defineSpec, Fault, range } = await import("../checker/spec.ts");
  const N = t.programs.length;
  const on = (k: number) => (k < 0 || k >= N ? "g" : `t[${k}]`);
  const val = (s: any, k: number) => (k < 0 || k >= N ? s.g : s.t[k].pc);
  const touchesG = (i: number) => t.programs[i].some((x) => x.shared || x.blocks);
  return defineSpec({
    name: "test/random-threads",
    params: z.object({}),
    state: () => z.object({ g: z.number().int().min(0).max(2), t: z.array(z.object({ pc: z.number().int().min(0).max(3) })).length(N) }),
    init: () => ({ g: 0, t: Array.from({ length: N }, () => ({ pc: 0 })) }),
    actions: () => ({
      Step: {
        each: { i: range(N) },
        reads: ({ i }) => [`t[${i}]`, ...(touchesG(i) ? ["g"] : [])],
        writes: ({ i }) => [`t[${i}]`, ...(t.programs[i].some((x) => x.shared) ? ["g"] : [])],
        when: (s, { i }) => s.t[i].pc < t.programs[i].length && !(t.programs[i][s.t[i].pc].blocks && s.g === 0),
        then: (s, { i }) => {
          const step = t.programs[i][s.t[i].pc];
          if (step.faults) throw new Fault(`thread ${i} faults`);
          if (step.shared) s.g = (s.g + 1) % 3;
          s.t[i].pc = step.loops ? 0 : s.t[i].pc + 1;
        },
      },
    }),
    invariants: { inv: { holds: (s) => val(s, t.inv.on) !== t.inv.value, reads: [on(t.inv.on)] } },
    reachable: { wit: { when: (s) => val(s, t.wit.on) === t.wit.value, reads: [on(t.wit.on)] } },
    quiescent: { allDone: (s) => s.t.every((x, i) => x.pc === t.programs[i].length) },
    busy: (s) => (s.t.some((x, i) => x.pc > 0 && x.pc < t.programs[i].length) ? "a thread" : undefined),
  });
}

test("por: random thread programs fail the same properties with and without the reduction", async () => {
  let shrunk = 0;
  await fc.assert(
    fc.asyncProperty(threadsArb, async (t) => {
      const spec = await threadsSpec(t);
      const full = check(spec);
      const por = check(spec, {}, { por: true });
      assert.deepEqual(
        por.properties.map((p) => [p.name, p.status]),
        full.properties.map((p) => [p.name, p.status]),
      );
      const m = naiveModel(spec, {});
      for (const p of por.properties) if (p.trace) assertValidTrace(m, p, p.trace);
      if (por.stats.distinctStates < full.stats.distinctStates) shrunk++;
    }),
    { numRuns: 200, seed: 5 },
  );
  assert.ok(shrunk + reduced >= 25, `only ${shrunk + reduced} specs were reduced: the tests would prove little`);
});

test("por: independent threads are interleaved once; faults, violations and deadlocks are still found", async () => {
  const { z } = await import("zod");
  const { defineSpec, Fault, range } = await import("../checker/spec.ts");
  const N = 4;
  const spec = defineSpec({
    name: "test/independent-threads",
    params: z.object({ bug: z.enum(["none", "fault", "invariant", "stuck"]).default("none") }),
    state: () => z.object({ t: z.array(z.object({ pc: z.number().int().min(0).max(3) })).length(N) }),
    init: () => ({ t: Array.from({ length: N }, () => ({ pc: 0 })) }),
    actions: (p) => ({
      Step: {
        each: { i: range(N) },
        reads: ({ i }) => [`t[${i}]`],
        writes: ({ i }) => [`t[${i}]`],
        when: (s, { i }) => s.t[i].pc < 3 && !(p.bug === "stuck" && i === 1 && s.t[i].pc === 2),
        then: (s, { i }) => {
          if (p.bug === "fault" && i === 3 && s.t[i].pc === 2) throw new Fault("thread 3 at its last step");
          s.t[i].pc += 1;
        },
      },
    }),
    invariants: (p) => ({ t2NeverDone: { holds: (s) => p.bug !== "invariant" || s.t[2].pc < 3, reads: ["t[2]"] } }),
    reachable: { t1Done: { when: (s) => s.t[1].pc === 3, reads: ["t[1]"], expect: "reachable" } },
    busy: (s) => (s.t.some((x) => x.pc > 0 && x.pc < 3) ? "a thread" : undefined),
  });
  for (const bug of ["none", "fault", "invariant", "stuck"]) {
    const full = check(spec, { bug });
    const por = check(spec, { bug }, { por: true });
    assert.deepEqual(failed(por), failed(full), bug);
    assert.deepEqual(por.properties.map((p) => p.status), full.properties.map((p) => p.status), bug);
    if (bug === "none") {
      assert.equal(full.stats.distinctStates, 4 ** N);
      assert.ok(por.stats.distinctStates < full.stats.distinctStates / 4, `${por.stats.distinctStates} of ${full.stats.distinctStates}`);
    }
  }
});

test("por: declared footprints that name no state path are a spec error", async () => {
  const { z } = await import("zod");
  const { defineSpec } = await import("../checker/spec.ts");
  const spec = defineSpec({
    name: "test/bad-footprint",
    params: z.object({}),
    state: () => z.object({ x: z.boolean(), y: z.boolean() }),
    init: () => ({ x: false, y: false }),
    actions: () => ({
      A: { reads: ["x"], writes: ["nope"], then: (s) => { s.x = true; } },
      B: { reads: ["y"], writes: ["y"], then: (s) => { s.y = true; } },
    }),
  });
  assert.throws(() => check(spec, {}, { por: true }), /action A writes: "nope" is not a path of the state/);
});

function specFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    if (statSync(p).isDirectory()) return n === "kernel" ? [] : specFiles(p);
    return n.endsWith(".ts") ? [p] : [];
  });
}

test("por: every shipped spec and design gives the same verdicts with --por", async () => {
  for (const file of specFiles("specs")) {
    const spec = (await import(pathToFileURL(path.resolve(file)).href)).default;
    if (!isSpec(spec)) continue;
    for (const a of designAssignments(spec)) {
      const full = check(spec, a);
      const por = check(spec, a, { por: true });
      assert.deepEqual(failed(por), failed(full), `${file} ${JSON.stringify(a)}`);
      assert.deepEqual(
        por.properties.map((p) => [p.name, p.status]),
        full.properties.map((p) => [p.name, p.status]),
        `${file} ${JSON.stringify(a)}`,
      );
    }
  }
});
