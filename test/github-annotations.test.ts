// GitHub shows 10 error and 10 warning annotations per step and drops the rest silently:
// refcheck annotates the most important ones and lists the others in the job summary.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { PropertyResult, Verdict } from "../checker/verdict.ts";
import { githubAnnotations, githubSummary } from "../reports/github.ts";
import { getFileVerdict, incompleteVerdict } from "./fixtures/verdicts.ts";

const failing = getFileVerdict.properties.find((p) => p.failed && p.trace)!;

/** A copy of the get_file verdict as design `d`, its failure with a trace of `len` steps. */
function variant(d: string, len: number, status: PropertyResult["status"] = "violated"): Verdict {
  const v = structuredClone(getFileVerdict);
  v.design = d;
  v.coverage = [];
  v.properties = [{ ...structuredClone(failing), status, ...(status === "unreachable" ? { trace: undefined, kind: "reachable" as const } : {}) }];
  const p = v.properties[0]!;
  if (p.trace) {
    while (p.trace.steps.length < len + 1) p.trace.steps.push({ ...p.trace.steps[p.trace.steps.length - 1]!, index: p.trace.steps.length });
    p.trace.length = len;
  }
  return v;
}

const many = [
  variant("w-missing", 0, "unreachable"),
  ...Array.from({ length: 14 }, (_, i) => variant(`d${i}`, 20 - i)),
  incompleteVerdict,
];

test("github: at most 10 errors per step, violations first and shorter traces first, then a notice", () => {
  const lines = githubAnnotations(many).trimEnd().split("\n");
  const errors = lines.filter((l) => l.startsWith("::error "));
  assert.equal(errors.length, 10);
  // d13 has the shortest trace (7 steps), d0 the longest; the unreachable witness ranks after violations.
  const designs = errors.map((l) => /::(d\d+|w-missing): /.exec(l)?.[1]);
  assert.deepEqual(designs, ["d13", "d12", "d11", "d10", "d9", "d8", "d7", "d6", "d5", "d4"]);
  assert.ok(lines.filter((l) => l.startsWith("::warning ")).length <= 10);
  const last = lines[lines.length - 1]!;
  assert.match(last, /^::notice title=refcheck%3A more in the job summary::5 more failures than GitHub shows per step: see the job summary/);
});

test("github: the job summary lists the findings that were not annotated", () => {
  const md = githubSummary(many);
  const rest = md.slice(md.indexOf("## Not shown as annotations"));
  assert.match(rest, /these 5 are the rest/);
  for (const d of ["d0", "d1", "d2", "d3", "w-missing"]) assert.match(rest, new RegExp(`\\*\\*error\\*\\* specs/kvm-vfio/file-pinning\\.ts(?::\\d+)?: kvm-vfio/file-pinning ${d}: `));
  // Under the cap: no notice, no extra section.
  assert.doesNotMatch(githubAnnotations([getFileVerdict]), /::notice/);
  assert.doesNotMatch(githubSummary([getFileVerdict]), /Not shown as annotations/);
});

test("github: file paths are rebased onto the repository root", () => {
  const out = githubAnnotations([{ ...getFileVerdict, file: "kvm-vfio/file-pinning.ts" }], { root: "/r", cwd: "/r/specs" });
  assert.match(out, /^::error file=specs\/kvm-vfio\/file-pinning\.ts,line=/);
});
