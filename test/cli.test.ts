// The command line as a user runs it: exit codes, messages without stack traces, --json.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Verdict } from "../checker/verdict.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// Bad specs live under the repo so that their imports of zod resolve; a dot folder, so
// that a type check running meanwhile does not pick them up.
const tmp = path.join(root, "test", `.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
const refpin = "specs/conformance/refpin.ts";

function run(...args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "bin/refcheck.ts", ...args], {
    cwd: root,
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, REFCHECK_DEBUG: "", NO_COLOR: "1" },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Exit 2 with a short message on stderr: no stack trace, one paragraph. */
function assertUsageError(r: ReturnType<typeof run>, ...mentions: string[]): void {
  assert.equal(r.code, 2, `exit code; stderr: ${r.err}`);
  assert.ok(!/^\s+at /m.test(r.err), `stack trace in stderr:\n${r.err}`);
  const msg = r.err.trim();
  assert.ok(msg.startsWith("refcheck: "), msg);
  assert.ok(!msg.includes("\n\n"), `more than one paragraph:\n${msg}`);
  for (const m of mentions) assert.ok(msg.includes(m), `"${msg}" should mention ${m}`);
}

const good = `
import { z } from "zod";
import { defineSpec } from "../../checker/spec.ts";
export default defineSpec({
  name: "tmp/counter",
  params: z.object({}),
  state: () => z.object({ x: z.number().int().min(0).max(3) }),
  init: () => ({ x: 0 }),
  actions: () => ({ Inc: { when: (s) => s.x < LIMIT, then: (s) => { s.x += 1; } } }),
  __EXTRA__
});
`;
const specFile = (name: string, body: string) => {
  const f = path.join(tmp, name);
  writeFileSync(f, body);
  return path.relative(root, f);
};

before(() => mkdirSync(tmp, { recursive: true }));
after(() => rmSync(tmp, { recursive: true, force: true }));

test("cli: exit 0 when every property holds", () => {
  const r = run("check", refpin, "--param", "N=2", "--param", "variant=active");
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /PASS/);
  assert.match(r.out, /330 distinct states/);
});

test("cli: exit 1 on a violation, with the trace", () => {
  // refpin declares this violation expected: --ignore-expected makes every violation count.
  const r = run("check", refpin, "--param", "N=2", "--param", "variant=plain", "--ignore-expected");
  assert.equal(r.code, 1, r.err);
  assert.match(r.out, /Safe\s+VIOLATED/);
  assert.match(r.out, /1\s+CloseVm/);
  assert.match(r.out, /2\s+FileAdd\(i=1\)/);
  assert.match(r.out, /err: 0 -> 2/);
});

test("cli: exit 3 when a bound stops the search", () => {
  const r = run("check", refpin, "--design", "active", "--max-states", "10");
  assert.equal(r.code, 3, r.err);
  assert.match(r.out, /INCOMPLETE/);
});

test("cli: --json prints a Verdict", () => {
  const r = run("check", refpin, "--param", "N=2", "--param", "variant=plain", "--json");
  assert.equal(r.code, 0, r.err);
  const v = Verdict.parse(JSON.parse(r.out));
  assert.equal(v.spec, "conformance/refpin");
  assert.equal(v.stats.distinctStates, 598);
  assert.equal(v.properties.find((p) => p.name === "Safe")?.trace?.length, 2);
});

test("cli: usage errors exit 2 with one short message", () => {
  assertUsageError(run("check", refpin, "--bogus-flag"), "bogus-flag");
  assertUsageError(run("check", refpin, "--param", "M=2"), 'no parameter "M"', "did you mean N?");
  assertUsageError(run("check", refpin, "--param", "N=9"), '"N"');
  assertUsageError(run("check", "specs/no-such-spec.ts"), "no-such-spec.ts");
  assertUsageError(run("check", refpin, "--max-states", "zero"), "max-states");
});

test("cli: spec errors exit 2 with one short message", () => {
  const ok = specFile("ok.ts", good.replace("LIMIT", "3").replace("__EXTRA__", ""));
  assert.equal(run("check", ok).code, 0);
  const typo = specFile("typo.ts", good.replace("LIMIT", "3").replace("__EXTRA__", "invariant: { Small: (s) => s.x < 4 },"));
  // The type check names it first; without it, defineSpec's own key check does.
  assertUsageError(run("check", typo), "typo.ts:10:3", "TS2561", "invariant");
  assertUsageError(run("check", typo, "--skip-typecheck"), "typo.ts", 'unknown key "invariant"');
  const init = specFile("init.ts", good.replace("LIMIT", "3").replace("({ x: 0 })", "({ x: 7 })").replace("__EXTRA__", ""));
  assertUsageError(run("check", init), "init.ts", "initial state", "x");
  const range = specFile("range.ts", good.replace("LIMIT", "9").replace("__EXTRA__", ""));
  assertUsageError(run("check", range), "range.ts", 'spec "tmp/counter"', "action Inc", "field x = 4");
  const syntax = specFile("syntax.ts", "export default {{;\n");
  assertUsageError(run("check", syntax), "syntax.ts");
  const none = specFile("none.ts", "export const x = 1;\n");
  assertUsageError(run("check", none), "none.ts", "export default defineSpec");
});

test("cli: flag errors name the flag as typed, once", () => {
  const unknown = run("check", refpin, "--bogus-flag");
  assertUsageError(unknown, "bogus-flag");
  assert.ok(!unknown.err.includes("bogusFlag"), unknown.err);
  assertUsageError(run("check", refpin, "--no-such-flag"), "no-such-flag");
  const zero = run("check", refpin, "--max-states", "zero");
  assertUsageError(zero, "--max-states zero", "whole number");
  assert.ok(!zero.err.includes("NaN"), zero.err);
  assertUsageError(run("check", refpin, "--workers", "0"), "--workers 0");
});

test("cli: --design X checks design X", () => {
  const r = run("check", refpin, "--param", "N=2", "--design", "plain", "--json", "--ignore-expected");
  assert.equal(r.code, 1, r.err);
  assert.equal(JSON.parse(r.out).design, "plain");
});

test("cli: check --itf then trace prints the same steps as check", () => {
  const dir = path.join(tmp, "itf");
  const checked = run("check", "specs/kvm-vfio/file-pinning.ts", "--design", "get_file", "--itf", dir);
  assert.equal(checked.code, 0, checked.err); // the violation is declared expected
  const traced = run("trace", path.join(dir, "kvm-vfio_file-pinning-get_file-noFault.itf.json"));
  assert.equal(traced.code, 0, traced.err);
  // The numbered steps of the noFault counterexample, as `check` printed them.
  const steps = (text: string) => {
    const start = text.indexOf("  0  initial state");
    const end = text.indexOf("FAULT:", start);
    return text.slice(start, text.indexOf("\n", end));
  };
  assert.ok(steps(checked.out).includes("FileAdd(i=0)"));
  assert.equal(steps(traced.out), steps(checked.out));
});

// The README's "Using it" runs `npx refcheck ...` in a clone: npx runs the package's own bin,
// dist/bin/cli.js, which tsc writes without the execute bit (a fresh clone's `npx refcheck`
// failed with "Permission denied", exit 127). The build sets it.
test("cli: in a clone, `npx refcheck --version` runs the built command", () => {
  assert.ok(statSync(path.join(root, "dist/bin/cli.js")).mode & 0o100, "the build leaves dist/bin/cli.js executable");
  const r = spawnSync("npx", ["--no-install", "refcheck", "--version"], { cwd: root, encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`);
  assert.match(r.stdout.trim(), /^\d+\.\d+\.\d+$/);
});

// Run from the sources, a spec outside any package (no package.json above it) was compiled
// to CommonJS by tsx, and its import of refcheck's own ES modules failed with "Cannot
// require() ES Module ... in a cycle"; the package registered the ES-module hook, the sources
// did not. A spec kept beside a clone of refcheck, importing it by path, is such a spec.
test("cli: from the sources, a spec outside any package that imports refcheck's sources by path loads and runs", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "refcheck-outside-"));
  try {
    for (let d = dir; path.dirname(d) !== d; d = path.dirname(d)) {
      if (existsSync(path.join(d, "package.json"))) return; // not outside a package here: nothing to show
    }
    symlinkSync(path.join(root, "node_modules"), path.join(dir, "node_modules"), "dir");
    const file = path.join(dir, "counter.ts");
    writeFileSync(file, good.replace('"../../checker/spec.ts"', JSON.stringify(path.join(root, "checker", "spec.ts"))).replace("LIMIT", "3").replace("__EXTRA__", 'invariants: { small: (s) => s.x <= 3 },'));
    // The launcher `npm run refcheck` runs (it registers tsx for ES modules only).
    const r = spawnSync(process.execPath, ["bin/refcheck.mjs", "check", file, "--skip-typecheck"], { cwd: root, encoding: "utf8", timeout: 60_000, env: { ...process.env, REFCHECK_DEBUG: "", NO_COLOR: "1" } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /PASS/);
    assert.match(r.stdout, /4 distinct states/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
