// The explorer against a naive reference explorer, on random small specs, plus bounds,
// determinism and spec-error behaviour.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { z } from "zod";
import { check, defineSpec, Fault, range, SpecError, Verdict } from "../checker/index.ts";
import type { Spec } from "../checker/spec.ts";
import refpin from "../specs/conformance/refpin.ts";
import { assertValidTrace, naiveCheck, naiveModel, type NaiveResult } from "./support/naive.ts";
import { specArb, toSpec } from "./support/random-spec.ts";

function summary(v: Verdict) {
  return Object.fromEntries(
    v.properties.map((p) => [p.name, { kind: p.kind, status: p.status, failed: p.failed, length: p.trace?.length }]),
  );
}
function naiveSummary(r: NaiveResult) {
  return Object.fromEntries([...r.properties].map(([n, p]) => [n, { kind: p.kind, status: p.status, failed: p.failed, length: p.length }]));
}
function assertTraces(spec: Spec, v: Verdict): void {
  const m = naiveModel(spec, {});
  for (const p of v.properties) if (p.trace) assertValidTrace(m, p, p.trace);
}

test("explorer: random specs give the naive explorer's counts, verdicts and shortest traces", () => {
  fc.assert(
    fc.property(specArb(false), (ast) => {
      const spec = toSpec(ast);
      const want = naiveCheck(spec);
      const v = check(spec, {}, { validate: true });
      assert.equal(v.stats.distinctStates, want.distinct, "distinct");
      assert.equal(v.stats.generatedStates, want.generated, "generated");
      assert.equal(v.stats.depth, want.depth, "depth");
      assert.deepEqual(summary(v), naiveSummary(want));
      assert.equal(v.complete, true);
      assert.equal(v.outcome, v.properties.some((p) => p.failed) ? "fail" : "pass");
      assertTraces(spec, v);
    }),
    { numRuns: 250 },
  );
});

// Guard reuse (Expander): a successor keeps the guard results whose read bits its step never
// changes. Without the purity probe nothing runs those guards again, so the counts and traces
// rest on reuse alone; a guard whose reads depend on the state (a ? b : c) is the hard case.
test("explorer: guard reuse without the purity probe gives the naive explorer's results", () => {
  fc.assert(
    fc.property(specArb(false), (ast) => {
      const spec = toSpec(ast);
      const want = naiveCheck(spec);
      const v = check(spec, {}, { purityProbe: 0 });
      assert.equal(v.stats.distinctStates, want.distinct, "distinct");
      assert.equal(v.stats.generatedStates, want.generated, "generated");
      assert.deepEqual(summary(v), naiveSummary(want));
      assertTraces(spec, v);
    }),
    { numRuns: 250 },
  );
  const branchy = defineSpec({
    name: "test/branchy-guards",
    params: z.object({}),
    state: () => z.object({ a: z.boolean(), b: z.number().int().min(0).max(3), c: z.number().int().min(0).max(3) }),
    init: () => ({ a: false, b: 0, c: 0 }),
    actions: () => ({
      // Reads a and c while a is false, a and b once it is true.
      step: { when: (s) => (s.a ? s.b < 3 : s.c < 2), then: (s) => { if (s.a) s.b = s.b + 1; else s.c = s.c + 1; } },
      flip: { when: (s) => !s.a, then: (s) => { s.a = true; } },
      bumpB: { when: (s) => !s.a && s.b < 2, then: (s) => { s.b = s.b + 1; } },
    }),
    invariants: { small: (s) => s.b + s.c < 6 },
  });
  const want = naiveCheck(branchy);
  for (const purityProbe of [0, 2000]) {
    const v = check(branchy, {}, { purityProbe });
    assert.equal(v.stats.distinctStates, want.distinct);
    assert.equal(v.stats.generatedStates, want.generated);
    assert.deepEqual(summary(v), naiveSummary(want));
  }
});

// The guard carry keeps the instance that made a queued state in the spare top bits of its
// enabled set when they are enough, else in a word of its own (Layout): instance counts
// on both sides of each boundary, with reuse alone deciding (no purity probe).
test("explorer: guard reuse keeps the naive explorer's results with the carry's instance packed or in its own word", async () => {
  const { layoutOf } = await import("../checker/layout.ts");
  const { compile } = await import("../checker/compile.ts");
  const K = 4;
  const many = defineSpec({
    name: "test/many-instances",
    params: z.object({ n: z.number().int().min(1).max(300) }),
    state: () => z.object({ v: z.array(z.number().int().min(0).max(3)).length(K), last: z.number().int().min(0).max(K - 1) }),
    init: () => ({ v: [0, 0, 0, 0], last: 0 }),
    actions: (p) => ({
      // Instance i reads one counter and bumps another: which guards a step can change
      // depends on which instance made it.
      Step: {
        each: { i: range(p.n) },
        when: (s, { i }) => s.v[i % K] < 3 && (i % 3 !== 0 || s.last !== (i >> 2) % K),
        then: (s, { i }) => {
          const j = (i * 7 + 1) % K;
          s.v[j] = (s.v[j] + 1) % 4;
          s.last = j;
        },
      },
      Drain: { when: (s) => s.v[0] === 3, then: (s) => { s.v[0] = 0; s.v[1] = s.v[1] > 0 ? s.v[1] - 1 : 0; } },
    }),
    invariants: { notAllFull: (s) => s.v.some((x) => x < 3) },
  });
  const own: number[] = [], packed: number[] = [];
  for (const n of [25, 26, 27, 31, 32, 40, 59, 60, 255]) {
    const layout = layoutOf(compile(many, { n }));
    (layout.viaShift < 0 ? own : packed).push(n + 1);
    const want = naiveCheck(many, { n });
    const v = check(many, { n }, { purityProbe: 0 });
    assert.equal(v.stats.distinctStates, want.distinct, `n = ${n}: distinct`);
    assert.equal(v.stats.generatedStates, want.generated, `n = ${n}: generated`);
    assert.deepEqual(summary(v), naiveSummary(want), `n = ${n}`);
  }
  // Instances are n + 1 (Drain): 27 of them and 5 bits fill one word, 28 do not fit; 33 take
  // 1 bit of a second word and 6 for the instance, 60 take 28 and 6.
  assert.deepEqual({ own, packed }, { own: [28, 32, 60, 61, 256], packed: [26, 27, 33, 41] });
});

test("explorer: symmetry reduction keeps verdicts and shortest traces, never adds states", () => {
  fc.assert(
    fc.property(specArb(true), (ast) => {
      const spec = toSpec(ast);
      const want = naiveCheck(spec);
      const plain = check(spec, {}, { validate: true });
      const sym = check(spec, {}, { symmetry: true, validate: true });
      assert.equal(plain.stats.distinctStates, want.distinct);
      assert.equal(sym.stats.symmetry, true);
      assert.ok(sym.stats.distinctStates <= plain.stats.distinctStates);
      // Depth can shrink: an orbit sits at the distance of its nearest member.
      assert.ok(sym.stats.depth <= plain.stats.depth);
      assert.deepEqual(summary(sym), naiveSummary(want));
      // Traces found on canonical states are replayed as real, valid traces.
      assertTraces(spec, sym);
    }),
    { numRuns: 150 },
  );
});

function assertUndecidedNotHolding(v: Verdict): void {
  assert.equal(v.complete, false);
  assert.ok(v.stoppedBy, "stoppedBy");
  assert.notEqual(v.outcome, "pass");
  for (const p of v.properties) {
    assert.ok(p.status !== "holds" && p.status !== "unreachable", `${p.name} is ${p.status} on an incomplete search`);
  }
}

test("explorer: bounded runs never claim what they did not check", () => {
  const arb = specArb(false).chain((ast) =>
    fc.tuple(fc.constant(ast), fc.nat({ max: 60 }), fc.nat({ max: 12 }), fc.constantFrom("states" as const, "depth" as const)),
  );
  fc.assert(
    fc.property(arb, ([ast, states, depth, which]) => {
      const spec = toSpec(ast);
      const full = check(spec);
      const opts = which === "states" ? { maxStates: states + 1 } : { maxDepth: depth };
      const v = check(spec, {}, { ...opts, validate: true });
      if (v.complete) {
        // A bound the search never hit: the same answer as without it.
        assert.deepEqual(summary(v), summary(full));
        assert.equal(v.stats.distinctStates, full.stats.distinctStates);
      } else {
        assertUndecidedNotHolding(v);
        assert.equal(v.stoppedBy, which === "states" ? "max-states" : "max-depth");
        assert.equal(v.outcome, v.properties.some((p) => p.failed) ? "fail" : "incomplete");
        // What a bounded run does report is what the full run reports.
        const all = summary(full);
        for (const [name, p] of Object.entries(summary(v))) if (p.status !== "unknown") assert.deepEqual(p, all[name], name);
      }
      if (which === "depth") assert.ok(v.stats.depth <= depth);
      if (which === "states") assert.ok(v.stats.distinctStates <= states + 1);
    }),
    { numRuns: 200 },
  );
});

test("explorer: max-states, max-depth and timeout on RefPin give incomplete verdicts", () => {
  const cases = [
    [{ maxStates: 100 }, "max-states"],
    [{ maxDepth: 4 }, "max-depth"],
    [{ timeoutSeconds: 1e-6 }, "timeout"],
  ] as const;
  for (const [opts, by] of cases) {
    const v = check(refpin, { N: 4, variant: "active" }, { ...opts, validate: true });
    assert.equal(v.stoppedBy, by);
    assert.equal(v.outcome, "incomplete");
    assertUndecidedNotHolding(v);
    assert.ok(v.warnings.some((w) => w.includes("incomplete")));
  }
  const d = check(refpin, { N: 2, variant: "active" }, { maxDepth: 4 });
  assert.equal(d.stats.depth, 4);
  const s = check(refpin, { N: 2, variant: "active" }, { maxStates: 100 });
  assert.ok(s.stats.distinctStates <= 100);
  // A bound at or above the real depth or count changes nothing.
  const full = check(refpin, { N: 2, variant: "active" });
  for (const opts of [{ maxDepth: full.stats.depth }, { maxStates: full.stats.distinctStates }]) {
    const v = check(refpin, { N: 2, variant: "active" }, opts);
    assert.equal(v.outcome, "pass");
    assert.equal(v.stats.distinctStates, full.stats.distinctStates);
  }
});

test("explorer: two runs give identical verdicts", () => {
  const strip = (v: Verdict) => {
    const x = structuredClone(v) as any;
    delete x.stats.seconds;
    delete x.stats.statesPerSecond;
    return JSON.stringify(x);
  };
  for (const [params, opts] of [
    [{ N: 3, variant: "plain" }, {}],
    [{ N: 3, variant: "plain" }, { symmetry: true }],
    [{ N: 3, variant: "active" }, { maxStates: 500 }],
  ] as const) {
    assert.equal(strip(check(refpin, params, opts)), strip(check(refpin, params, opts)));
  }
  fc.assert(
    fc.property(specArb(false), (ast) => {
      assert.equal(strip(check(toSpec(ast))), strip(check(toSpec(ast))));
    }),
    { numRuns: 30 },
  );
});

// A small hand-written spec for the error cases.
function counter(over: { when?: (s: any, a: any) => boolean; then?: (s: any, a: any) => void; init?: unknown } = {}) {
  return defineSpec({
    name: "test/counter",
    params: z.object({ N: z.number().int().min(1).max(3).default(2) }),
    state: (p) => z.object({ c: z.array(z.number().int().min(0).max(3)).length(p.N), on: z.boolean() }),
    init: (p) => (over.init ?? { c: range(p.N).map(() => 0), on: true }) as any,
    actions: (p) => ({
      Inc: {
        each: { i: range(p.N) },
        when: over.when ?? ((s: any, { i }: any) => s.c[i] < 3),
        then: over.then ?? ((s: any, { i }: any) => void (s.c[i] += 1)),
      },
    }),
  });
}

function throwsSpecError(fn: () => unknown, ...parts: (string | RegExp)[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SpecError, `expected a SpecError, got ${e instanceof Error ? e.stack : String(e)}`);
    for (const p of parts) {
      if (typeof p === "string") assert.ok(e.message.includes(p), `"${e.message}" should mention ${p}`);
      else assert.match(e.message, p);
    }
    return true;
  });
}

test("explorer: the hand-written counter spec", () => {
  const v = check(counter(), { N: 2 });
  assert.equal(v.stats.distinctStates, 16);
  assert.equal(v.stats.depth, 6);
  assert.equal(v.outcome, "pass");
});

test("explorer: a guard that mutates the state is a SpecError", () => {
  throwsSpecError(
    () =>
      check(
        counter({
          when: (s, { i }) => {
            s.on = false;
            return s.c[i] < 3;
          },
        }),
      ),
    'spec "test/counter"',
    "Inc(i=0)",
    "on",
  );
  throwsSpecError(() => check(counter({ when: (s, { i }) => ((s.c[i] = 1), true) })), "guard", "c[0]");
});

test("explorer: an effect writing outside the schema names the spec, the action and the field", () => {
  const spec = counter({ when: () => true });
  throwsSpecError(() => check(spec, { N: 2 }), 'spec "test/counter"', "action Inc(i=0)", "c[0]", "4", "0..3");
  throwsSpecError(() => check(counter({ then: (s) => (s.on = 1) })), "Inc(i=0)", "field on", "boolean");
  // Exceptions other than Fault are spec bugs, not kernel faults.
  throwsSpecError(() => check(counter({ then: () => { throw new TypeError("oops"); } })), "Inc(i=0)", "TypeError", "oops");
  assert.equal(check(counter({ then: () => { throw new Fault("boom"); } })).properties[0].message, "boom");
});

test("explorer: spec definition errors are clear SpecErrors", () => {
  const base = {
    name: "test/bad",
    params: z.object({ N: z.number().int().min(1).max(3).default(1) }),
    state: () => z.object({ x: z.number().int().min(0).max(2) }),
    init: () => ({ x: 0 }),
    actions: () => ({ Step: { when: (s: any) => s.x < 2, then: (s: any) => void (s.x += 1) } }),
  };
  throwsSpecError(() => defineSpec({ ...base, invariant: {} } as any), 'spec "test/bad"', 'unknown key "invariant"');
  throwsSpecError(() => defineSpec({ ...base, init: undefined } as any), 'missing required key "init"');
  throwsSpecError(
    () => check(defineSpec({ ...base, actions: () => ({ Step: { guard: () => true, then: () => {} } }) } as any)),
    'action "Step"',
    'unknown key "guard"',
  );
  throwsSpecError(() => check(defineSpec({ ...base, actions: () => ({ Step: { when: () => true } }) } as any)), 'action "Step"', "then");
  throwsSpecError(() => check(defineSpec({ ...base, actions: () => ({ Step: { each: { i: [] }, then: () => {} } }) } as any)), '"i"', "non-empty");
  const spec = defineSpec(base);
  throwsSpecError(() => check(spec, { N: 9 }), 'spec "test/bad"', 'parameter "N"');
  throwsSpecError(() => check(spec, { N: "two" }), 'parameter "N"');
  throwsSpecError(() => check(spec, { M: 1 }), 'unknown parameter "M"', "N");
  throwsSpecError(() => check(defineSpec({ ...base, init: () => ({ x: 5 }) })), "initial state", "x");
  throwsSpecError(() => check(defineSpec({ ...base, init: () => ({ y: 0 }) } as any)), "initial state");
  throwsSpecError(() => check(defineSpec({ ...base, state: () => z.object({ x: z.string() }) } as any)), 'spec "test/bad"', "state.x");
  throwsSpecError(() => check(defineSpec({ ...base, invariants: { Ok: 3 } } as any)), 'invariants "Ok"');
  throwsSpecError(() => check(defineSpec({ ...base, symmetry: (s: any) => s.x } as any)), "symmetry");
});

test("explorer: a depth bound does not hide an action-property violation on a step back to a seen state", () => {
  const spec = defineSpec({
    name: "test/flip",
    params: z.object({}),
    state: () => z.object({ x: z.number().int().min(0).max(1) }),
    init: () => ({ x: 0 }),
    actions: () => ({ Flip: { then: (s: any) => void (s.x = 1 - s.x) } }),
    actionProperties: { Grows: (b: any, a: any) => a.x >= b.x },
  });
  const full = check(spec);
  assert.equal(full.stats.depth, 1);
  assert.equal(full.properties.find((p) => p.name === "Grows")?.trace?.length, 2);
  // At the bound (depth 1) the only step leads back to x=0, already seen, and breaks Grows.
  const v = check(spec, {}, { maxDepth: 1 });
  assertUndecidedNotHolding(v);
  assert.equal(v.stoppedBy, "max-depth");
});

test("explorer: a depth bound does not swallow a spec error in a step past the bound", () => {
  // c[0] reaches 3 at depth 3; the next Inc writes 4, outside the schema.
  const spec = counter({ when: () => true });
  throwsSpecError(() => check(spec, { N: 1 }), "Inc(i=0)", "c[0]");
  throwsSpecError(() => check(spec, { N: 1 }, { maxDepth: 3 }), "Inc(i=0)", "c[0]");
  assert.equal(check(spec, { N: 1 }, { maxDepth: 2 }).stoppedBy, "max-depth");
});
