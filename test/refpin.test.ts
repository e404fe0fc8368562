// RefPin(N, VARIANT) conformance counts: the numbers other model checkers are compared with.
import { test } from "node:test";
import assert from "node:assert/strict";
import { check } from "../checker/index.ts";
import refpin from "../specs/conformance/refpin.ts";
import { naiveCheck } from "./support/naive.ts";

// [distinct, generated (initial state included), depth] for N = 1..4.
const counts = {
  active: [
    [42, 126, 5],
    [330, 1604, 8],
    [2814, 18944, 11],
    [25314, 217244, 14],
  ],
  plain: [
    [76, 218, 5],
    [598, 2860, 8],
    [5374, 35920, 11],
    [51442, 439516, 14],
  ],
} as const;

const failedOf = (v: ReturnType<typeof check>) => v.properties.filter((p) => p.failed).map((p) => p.name);

for (const variant of ["active", "plain"] as const) {
  test(`RefPin ${variant}: exact counts for N = 1..4`, () => {
    counts[variant].forEach(([distinct, generated, depth], k) => {
      const v = check(refpin, { N: k + 1, variant }, { validate: true });
      assert.deepEqual(
        [v.stats.distinctStates, v.stats.generatedStates, v.stats.depth, v.complete],
        [distinct, generated, depth, true],
        `N=${k + 1}`,
      );
      assert.deepEqual(failedOf(v), variant === "active" ? [] : ["Safe"], `N=${k + 1}`);
      assert.equal(v.outcome, variant === "active" ? "pass" : "fail");
    });
  });
}

test("RefPin: the naive explorer agrees for N = 1..3", () => {
  for (const variant of ["active", "plain"] as const) {
    for (let N = 1; N <= 3; N++) {
      const want = naiveCheck(refpin, { N, variant });
      const v = check(refpin, { N, variant });
      assert.deepEqual([v.stats.distinctStates, v.stats.generatedStates, v.stats.depth], [want.distinct, want.generated, want.depth], `${variant} N=${N}`);
      for (const p of v.properties) {
        const w = want.properties.get(p.name)!;
        assert.equal(p.status, w.status, `${variant} N=${N} ${p.name}`);
        assert.equal(p.trace?.length, w.length, `${variant} N=${N} ${p.name}`);
      }
    }
  }
});

test("RefPin plain: Safe breaks in exactly 2 steps, CloseVm then FileAdd(i=1), err = 2", () => {
  for (let N = 1; N <= 4; N++) {
    for (const symmetry of [false, true]) {
      const v = check(refpin, { N, variant: "plain" }, { symmetry });
      const safe = v.properties.find((p) => p.name === "Safe")!;
      assert.equal(safe.status, "violated");
      const steps = safe.trace!.steps;
      assert.equal(safe.trace!.length, 2);
      assert.deepEqual(
        steps.map((s) => [s.action, s.params]),
        [
          [null, {}],
          ["CloseVm", {}],
          ["FileAdd", { i: 1 }],
        ],
        `N=${N} symmetry=${symmetry}`,
      );
      assert.equal(steps[2].state.err, 2);
      assert.equal(steps[1].state.vmRef, 0);
    }
  }
});

test("RefPin: symmetry gives the same verdicts with fewer states", () => {
  for (const variant of ["active", "plain"] as const) {
    for (let N = 1; N <= 4; N++) {
      const plain = check(refpin, { N, variant });
      const sym = check(refpin, { N, variant }, { symmetry: true, validate: true });
      assert.equal(sym.stats.symmetry, true);
      const statuses = (v: typeof sym) => v.properties.map((p) => [p.name, p.status, p.trace?.length]);
      assert.deepEqual(statuses(sym), statuses(plain), `${variant} N=${N}`);
      assert.equal(sym.stats.depth, plain.stats.depth);
      if (N === 1) assert.equal(sym.stats.distinctStates, plain.stats.distinctStates);
      else assert.ok(sym.stats.distinctStates < plain.stats.distinctStates, `${variant} N=${N}`);
    }
  }
});
