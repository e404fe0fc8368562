import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { check, defineSpec } from "../checker/index.ts";

// A design enum whose values look like numbers must not be coerced to numbers.
const spec = defineSpec({
  name: "test/numeric-designs",
  params: z.object({ design: z.enum(["1", "2"]).default("1"), n: z.number().int().min(0).max(3).default(1) }),
  state: () => z.object({ x: z.number().int().min(0).max(3) }),
  init: () => ({ x: 0 }),
  actions: (p) => ({ Inc: { when: (s) => s.x < p.n, then: (s) => { s.x += 1; } } }),
  invariants: { small: (s) => s.x <= 3 },
});

test("params: numeric-looking enum values stay strings; numbers from strings are coerced", () => {
  const v = check(spec, { design: "2", n: "3" });
  assert.equal(v.design, "2");
  assert.equal(v.params.n, 3);
  assert.equal(v.stats.distinctStates, 4);
});

test("configurations: every design under every configuration, unless the user sets it", async () => {
  const { designAssignments } = await import("../checker/index.ts");
  const vmPinning = (await import("../specs/kvm-vfio/vm-pinning.ts")).default;
  const all = designAssignments(vmPinning);
  assert.equal(all.filter((a) => a.modules === "one").length, all.length / 2);
  assert.equal(designAssignments(vmPinning, { modules: "one" }).every((a) => a.modules === "one"), true);
  assert.equal(designAssignments(vmPinning, { modules: "one", design: "5-pass-file" }).length, 1);
  const v = check(vmPinning, { design: "1-symbol_get", modules: "two" });
  assert.equal(v.configuration, "modules=two");
});
