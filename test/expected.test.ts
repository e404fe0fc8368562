// Expected verdicts: a spec declares the violations of its buggy designs; a run is "as
// expected" or "changed", and the exit code and the reports follow that.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { check, exitCodeOf, withoutExpectation } from "../checker/index.ts";
import { defineSpec, Fault, SpecError, type ExpectedEntry } from "../checker/spec.ts";
import type { Verdict } from "../checker/verdict.ts";
import { renderVerdict } from "../reports/console.ts";
import { renderComparison } from "../reports/compare.ts";
import { githubAnnotations } from "../reports/github.ts";
import { renderJunit } from "../reports/junit.ts";
import { renderSarif } from "../reports/sarif.ts";

const params = z.object({
  design: z.enum(["ok", "bug", "wide"]).default("ok"),
  limit: z.number().int().min(1).max(2).default(2),
});
type P = z.infer<typeof params>;

/**
 * A counter: "bug" faults when it reaches `limit` (in `limit` steps); "wide" counts to 3,
 * which breaks Small in 3 steps and reaches the witness Three, expected unreachable.
 */
function counter(expected?: ExpectedEntry<P>[] | ((p: P) => ExpectedEntry<P>[])) {
  return defineSpec({
    name: "test/expected-counter",
    params,
    state: () => z.object({ x: z.number().int().min(0).max(3) }),
    init: () => ({ x: 0 }),
    actions: (p) => ({
      Inc: {
        when: (s) => s.x < (p.design === "wide" ? 3 : 2),
        then: (s) => {
          s.x += 1;
          if (p.design === "bug" && s.x === p.limit) throw new Fault("counter hit the limit");
        },
      },
    }),
    invariants: { Small: (s) => s.x <= 2 },
    reachable: { Three: { when: (s) => s.x === 3, expect: "unreachable" } },
    ...(expected ? { expected } : {}),
  });
}

const declared: ExpectedEntry<P>[] = [
  { when: { design: "bug" }, violated: { noFault: { steps: 2, message: "hit the limit" } }, doc: "faults at the limit" },
  { when: { design: "wide" }, violated: { Small: { steps: 3 }, Three: true } },
];

const run = (spec: ReturnType<typeof counter>, p: Partial<P> = {}, opts = {}) => check(spec, p, { validate: true, ...opts });
const prop = (v: Verdict, name: string) => v.properties.find((p) => p.name === name)!;

test("expected: every run as declared is as expected, and exit code 0", () => {
  const spec = counter(declared);
  const vs = (["ok", "bug", "wide"] as const).map((design) => run(spec, { design }));
  assert.deepEqual(vs.map((v) => v.expectation?.status), ["as-expected", "as-expected", "as-expected"]);
  assert.deepEqual(vs.map((v) => v.outcome), ["pass", "fail", "fail"], "the outcome is still the plain one");
  assert.deepEqual(vs[0]!.expectation, { status: "as-expected", declared: [], differences: [] });
  assert.deepEqual(vs[1]!.expectation!.declared, ['noFault in 2 steps with a message containing "hit the limit"']);
  assert.equal(prop(vs[1]!, "noFault").expected, true);
  assert.equal(prop(vs[1]!, "Small").expected, undefined);
  // A failed witness counts as a violation of its name.
  assert.equal(prop(vs[2]!, "Three").failed, true);
  assert.equal(prop(vs[2]!, "Three").expected, true);
  assert.equal(exitCodeOf(vs), 0);
  assert.equal(exitCodeOf(vs.map(withoutExpectation)), 1, "--ignore-expected: every violation fails");
  assert.equal(withoutExpectation(vs[1]!).expectation, undefined);
});

test("expected: a spec without `expected` behaves as before", () => {
  const v = run(counter(), { design: "bug" });
  assert.equal(v.expectation, undefined);
  assert.equal(prop(v, "noFault").expected, undefined);
  assert.equal(exitCodeOf([v]), 1);
});

test("expected: a declared violation that now holds is CHANGED", () => {
  const spec = counter([...declared, { when: { design: "ok" }, violated: { noFault: { steps: 2 } } }]);
  const v = run(spec, { design: "ok" });
  assert.equal(v.expectation?.status, "changed");
  assert.deepEqual(v.expectation?.differences, ["noFault: expected violated in 2 steps, holds"]);
  assert.equal(prop(v, "noFault").expected, false);
  assert.equal(exitCodeOf([v]), 1);
});

test("expected: an extra violation is CHANGED; a run matched by no entry must hold everything", () => {
  const spec = counter([declared[1]!]);
  const v = run(spec, { design: "bug" });
  assert.equal(v.expectation?.status, "changed");
  assert.deepEqual(v.expectation?.differences, ["noFault: expected to hold, violated in 2 steps"]);
  assert.equal(prop(v, "noFault").expected, false);
  // Wide without its witness declared: the witness is the extra violation.
  const w = run(counter([{ when: { design: "wide" }, violated: { Small: { steps: 3 } } }, declared[0]!]), { design: "wide" });
  assert.deepEqual(w.expectation?.differences, ["Three: expected to hold, witness reachable in 3 steps (expected unreachable)"]);
});

test("expected: a different trace length is CHANGED; `when` matches any parameter", () => {
  const spec = counter([{ when: { design: "bug", limit: 2 }, violated: { noFault: { steps: 3 } } }, declared[1]!]);
  const v = run(spec, { design: "bug" });
  assert.deepEqual(v.expectation?.differences, ["noFault: expected violated in 3 steps, found violated in 2 steps"]);
  assert.equal(exitCodeOf([v]), 1);
  // limit=1 is matched by no entry: its fault is not declared.
  const one = run(spec, { design: "bug", limit: 1 });
  assert.deepEqual(one.expectation?.differences, ["noFault: expected to hold, violated in 1 step"]);
});

test("expected: the message must contain the string or match the RegExp", () => {
  const wrong = run(counter([{ when: { design: "bug" }, violated: { noFault: { message: "overflow" } } }, declared[1]!]), { design: "bug" });
  assert.equal(wrong.expectation?.status, "changed");
  assert.deepEqual(wrong.expectation?.differences, [
    'noFault: expected violated with a message containing "overflow", found violated in 2 steps: "counter hit the limit"',
  ]);
  const re = run(counter([{ when: { design: "bug" }, violated: { noFault: { message: /hit the l\w+/ } } }, declared[1]!]), { design: "bug" });
  assert.equal(re.expectation?.status, "as-expected");
  assert.deepEqual(re.expectation?.declared, ["noFault with a message matching /hit the l\\w+/"]);
});

test("expected: an incomplete run is not CHANGED by what it did not decide (exit 3)", () => {
  const v = run(counter(declared), { design: "wide" }, { maxDepth: 1 });
  assert.equal(v.complete, false);
  assert.equal(v.expectation?.status, "as-expected");
  assert.deepEqual(v.expectation?.differences, [
    "Small: expected violated in 3 steps, not decided (search incomplete)",
    "Three: expected violated, not decided (search incomplete)",
  ]);
  assert.equal(exitCodeOf([v]), 3);
  assert.equal(exitCodeOf([v, run(counter(declared), { design: "bug" }, { stopAtFirst: true })]), 3);
});

test("expected: a function of the parameters", () => {
  const spec = counter((p) => (p.limit === 2 ? declared : [{ when: { design: "bug" }, violated: { noFault: { steps: 1 } } }, declared[1]!]));
  assert.equal(run(spec, { design: "bug", limit: 1 }).expectation?.status, "as-expected");
  assert.equal(run(spec, { design: "bug" }).expectation?.status, "as-expected");
});

test("expected: a bad declaration is a spec error naming the spec and the entry", () => {
  const bad = (e: unknown, ...mentions: (string | RegExp)[]) => {
    assert.throws(
      () => run(counter(e as ExpectedEntry<P>[]), { design: "bug" }),
      (err: unknown) => {
        assert.ok(err instanceof SpecError, String(err));
        assert.match(err.message, /spec "test\/expected-counter"/);
        for (const m of mentions) assert.match(err.message, typeof m === "string" ? new RegExp(m.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")) : m);
        return true;
      },
    );
  };
  bad([{ when: { design: "bug" }, violated: { noFualt: true } }], "expected entry 1", '"noFualt"', "its properties are noFault, Small, Three");
  bad([{ when: { desing: "bug" }, violated: { noFault: true } }], "expected entry 1", '"desing"', "the parameters are design, limit");
  bad([declared[0], declared[1], { when: { design: "bug", limit: 3 }, violated: { noFault: true } }], "expected entry 3", "matches no run");
  bad([{ when: { design: "bug" }, violated: { noFault: { steps: -1 } } }], '"noFault" must be true or { steps?');
  bad([{ when: { design: "bug" }, violated: {} }], "must name at least one property");
  bad([{ when: { design: "bug" }, violated: { noFault: true }, why: "x" }], 'unknown key "why"');
  bad([declared[0], declared[1], { when: { design: "bug" }, violated: { noFault: true } }], "declared by another entry");
  bad({ design: "bug" }, '"expected" must be a list');
});

test("expected: renderers tell expected violations from changes", () => {
  const spec = counter(declared);
  const bug = run(spec, { design: "bug", limit: 2 }, { file: "test/expected-counter.ts" });
  const changed = run(counter([declared[1]!]), { design: "bug" }, { file: "test/expected-counter.ts" });

  // JUnit: an expected violation passes, with a note; a change fails.
  const junit = renderJunit([bug]);
  assert.ok(!junit.includes("<failure"), junit);
  assert.match(junit, /<system-out>expected violation \(declared in the spec\): noFault violated: counter hit the limit; trace of 2 steps<\/system-out>/);
  assert.match(junit, /<testsuite [^>]*failures="0"/);
  assert.match(renderJunit([changed]), /<failure message="fault violated: counter hit the limit" type="fault">/);
  const holds = run(counter([...declared, { when: { design: "ok" }, violated: { Small: true } }]), { design: "ok" });
  assert.match(renderJunit([holds]), /<failure message="CHANGED: Small: expected violated, holds" type="expectation">/);

  // SARIF: the expected result is kept, suppressed in source; a change is not.
  const sarif = (v: Verdict) => JSON.parse(renderSarif([v])).runs[0].results as { ruleId: string; suppressions?: unknown }[];
  assert.deepEqual(sarif(bug).map((r) => r.suppressions), [[{ kind: "inSource", justification: "expected violation declared in the spec" }]]);
  assert.deepEqual(sarif(changed).map((r) => r.suppressions), [undefined]);

  // GitHub: only changes are errors.
  assert.ok(!githubAnnotations([bug]).includes("::error"));
  assert.match(githubAnnotations([changed]), /::error .*::bug: CHANGED: noFault: expected to hold, violated in 2 steps/);
  assert.match(githubAnnotations([holds]), /::error .*Small: expected violated, holds/);

  // Console and comparison table.
  assert.match(renderVerdict(bug, { color: false }), /FAIL {2}test\/expected-counter \(bug\) {2}as expected: declared violations noFault in 2 steps/);
  assert.match(renderVerdict(changed, { color: false }), /CHANGED from the spec's expected verdict:\n {2}noFault: expected to hold, violated in 2 steps/);
  const table = renderComparison([run(spec, { design: "ok" }), bug, changed, run(counter()!, { design: "bug" })], { color: false });
  const results = table.split("\n").filter((l) => /^\s+(ok|bug)\s/.test(l)).map((l) => l.trim().split(/\s+/).at(-1));
  assert.deepEqual(results, ["pass", "expected", "CHANGED", "FAIL"]);
  assert.match(table, /bug: CHANGED noFault: expected to hold, violated in 2 steps/);
});

// The command line on the shipped specs and on a copy of one with a changed expectation.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const tmp = path.join(root, "test", `.tmp-expected-${process.pid}`);
before(() => mkdirSync(tmp, { recursive: true }));
after(() => rmSync(tmp, { recursive: true, force: true }));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "bin/refcheck.ts", ...args], {
    cwd: root,
    encoding: "utf8",
    timeout: 300_000,
    env: { ...process.env, REFCHECK_DEBUG: "", NO_COLOR: "1", GITHUB_ACTIONS: "" },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("cli: compare specs exits 0 on the shipped tree; --ignore-expected exits 1", () => {
  const junit = path.join(tmp, "all.xml");
  const sarif = path.join(tmp, "all.sarif");
  const r = cli("compare", "specs", "--quiet", "--junit", junit, "--sarif", sarif);
  assert.equal(r.code, 0, `${r.err}\n${r.out.split("\n").filter((l) => l.includes("CHANGED")).join("\n")}`);
  assert.match(r.out, / expected$/m);
  assert.ok(!r.out.includes("CHANGED"));
  assert.ok(!readFileSync(junit, "utf8").includes("<failure"));
  const results = JSON.parse(readFileSync(sarif, "utf8")).runs[0].results as { suppressions?: unknown[] }[];
  assert.ok(results.length > 0 && results.every((x) => x.suppressions?.length === 1));
  const ignored = cli("compare", "specs", "--quiet", "--ignore-expected");
  assert.equal(ignored.code, 1, ignored.err);
  assert.ok(!ignored.out.includes(" expected\n"));
});

test("cli: a changed verdict exits 1 and says CHANGED", () => {
  const src = readFileSync(path.join(root, "specs/conformance/refpin.ts"), "utf8");
  assert.ok(src.includes("violated: { Safe: { steps: 2 } }"));
  const file = path.join(tmp, "refpin.ts");
  writeFileSync(file, src.replace("violated: { Safe: { steps: 2 } }", "violated: { Safe: { steps: 3 } }"));
  const rel = path.relative(root, file);
  const r = cli("compare", rel, "--quiet", "--param", "N=2");
  assert.equal(r.code, 1, r.err);
  assert.match(r.out, /plain .* CHANGED$/m);
  assert.match(r.out, /Safe: expected violated in 3 steps, found violated in 2 steps/);
  const same = cli("check", "specs/conformance/refpin.ts", "--quiet", "--param", "N=2", "--design", "plain");
  assert.equal(same.code, 0, same.err);
  assert.match(same.out, /as expected: declared violations Safe in 2 steps/);
});
