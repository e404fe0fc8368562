// Spec slips are spec errors, and impure specs are detected: unknown fields, replaced
// drafts, effects that return values, unknown init keys, no-op actions, nondeterminism
// (trace replay and the purity probe), and --por footprints verified at run time.
import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { check, defineSpec, SpecError } from "../checker/index.ts";
import typoPass from "./fixtures/bad/typo-pass.ts";

/** check() must throw a SpecError whose message matches every pattern. */
function throwsSpecError(run: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(run, (e: unknown) => {
    assert.ok(e instanceof SpecError, `expected a SpecError, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

test("typo-pass: a write to a field not in the schema is a spec error naming the action and suggesting the field", () => {
  throwsSpecError(() => check(typoPass, { spelled: "typo" }), /bad\/typo-pass/, /action Put/, /field fred is not in the state schema/, /did you mean freed\?/);
  assert.equal(check(typoPass, { spelled: "right" }).outcome, "fail");
});

const arraySpec = (slip: string) =>
  defineSpec({
    name: "bad/array-slips",
    params: z.object({}),
    state: () =>
      z.object({
        n: z.number().int().min(0).max(2),
        flags: z.array(z.boolean()).length(2),
        dev: z.array(z.object({ bound: z.boolean(), ref: z.object({ count: z.number().int().min(0).max(3) }) })).length(2),
      }),
    init: () => ({ n: 0, flags: [false, false], dev: [{ bound: false, ref: { count: 0 } }, { bound: false, ref: { count: 0 } }] }),
    actions: () => ({
      Step: {
        each: { i: [0, 1] },
        when: (s: any, { i }) => (slip === "guard-read" ? s.dev[i].bnd === undefined : s.n < 2),
        then: (s: any, { i }) => {
          s.n = s.n + 1;
          if (slip === "record-index-write" && i === 1) s.dev[5] = { bound: true };
          if (slip === "record-index-read" && i === 1) s.dev[i + 4].bound = true;
          if (slip === "leaf-index-write" && i === 1) s.flags[2] = true;
          if (slip === "leaf-index-read" && i === 1) s.n = s.flags[i + 1] ? 1 : 0;
          if (slip === "nested" && i === 1) s.dev[i].ref.cuont = 1;
          if (slip === "element-assign" && i === 1) s.dev[0] = { bound: true, ref: { count: 0 } };
          if (slip === "push" && i === 1) s.dev.push({ bound: true });
        },
      },
    }),
    invariants: { ok: (s) => s.n <= 2 },
  });

test("slips at any depth: unknown nested fields, indexes out of range, whole-element writes, mutators", () => {
  throwsSpecError(() => check(arraySpec("guard-read")), /guard of action Step\(i=0\)/, /field dev\[0\]\.bnd is not in the state schema/, /did you mean bound\?/);
  throwsSpecError(() => check(arraySpec("record-index-write")), /action Step\(i=1\)/, /field dev\[5\] is not in the state schema: dev has 2 elements/);
  throwsSpecError(() => check(arraySpec("record-index-read")), /action Step\(i=1\)/, /field dev\[5\]/);
  throwsSpecError(() => check(arraySpec("leaf-index-write")), /action Step\(i=1\)/, /field flags\[2\] is not in the state schema/);
  throwsSpecError(() => check(arraySpec("leaf-index-read")), /action Step\(i=1\)/, /field flags\[2\]/);
  throwsSpecError(() => check(arraySpec("nested")), /action Step\(i=1\)/, /field dev\[1\]\.ref\.cuont/, /did you mean count\?/);
  throwsSpecError(() => check(arraySpec("element-assign")), /action Step\(i=1\)/, /element \[0\] of a state array of records was assigned/);
  throwsSpecError(() => check(arraySpec("push")), /action Step\(i=1\)/, /dev\.push: a state array has a fixed length/);
  assert.equal(check(arraySpec("none")).outcome, "pass");
});
