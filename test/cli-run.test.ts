// The command line under stress: interruption, deadlines, memory, stuck spec code, and the
// inputs that used to be ignored or to check nothing at all.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Verdict } from "../checker/verdict.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// A dot folder under test/: its specs import the checker by a relative path, and the spec
// loader and the type check never pick it up.
const tmp = path.join(root, "test", `.tmp-run-${process.pid}`);
const refpin = "specs/conformance/refpin.ts";
const bin = ["--import", "tsx", "bin/refcheck.ts"];
const env = { ...process.env, REFCHECK_DEBUG: "", NO_COLOR: "1", GITHUB_ACTIONS: "" };

function run(args: string[], extraEnv: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [...bin, ...args], { cwd: root, encoding: "utf8", timeout: 120_000, env: { ...env, ...extraEnv } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/**
 * Starts refcheck and sends the signals once its progress line names `busy` (the search of
 * that spec is running, however loaded the machine is), then `ms` later; collects the result.
 */
function runAndSignal(args: string[], signals: NodeJS.Signals[], ms: number, busy = "conformance/refpin", gap = 600): Promise<{ code: number | null; out: string; err: string; sig: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [...bin, ...args], { cwd: root, env: { ...env, REFCHECK_PROGRESS_SECONDS: "0.2" } });
    let out = "", err = "", sent = false;
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => {
      err += d;
      if (sent || !err.includes(`progress: ${busy}`)) return;
      sent = true;
      signals.forEach((s, i) => setTimeout(() => p.kill(s), ms + i * gap));
    });
    // A run that never reaches the signal must fail the test, not hang the suite.
    const guard = setTimeout(() => p.kill("SIGKILL"), 180_000);
    p.on("exit", (code, sig) => {
      clearTimeout(guard);
      resolve({ code, out, err, sig });
    });
  });
}

const specFile = (name: string, body: string) => {
  const f = path.join(tmp, name);
  mkdirSync(path.dirname(f), { recursive: true });
  writeFileSync(f, body);
  return path.relative(root, f);
};

const counter = (name: string, extra = "", guard = "s.x < 3", effect = "s.x += 1;") => `
import { z } from "zod";
import { defineSpec } from "${"../".repeat(name.split("/").length + 1)}checker/spec.ts";
export default defineSpec({
  name: "tmp/${name.replace(/\.ts$/, "")}",
  params: z.object({}),
  state: () => z.object({ x: z.number().int().min(0).max(3) }),
  init: () => ({ x: 0 }),
  actions: () => ({ Inc: { when: (s) => ${guard}, then: (s) => { ${effect} } } }),
  ${extra}
});
`;

before(() => mkdirSync(tmp, { recursive: true }));
after(() => rmSync(tmp, { recursive: true, force: true }));

test("SIGINT stops the search like a bound: incomplete verdict, reports written, exit 3", async () => {
  const junit = path.join(tmp, "int", "r.xml");
  const r = await runAndSignal(["check", refpin, "--param", "N=7", "--design", "active", "--json", "--junit", junit], ["SIGINT"], 1000);
  assert.equal(r.code, 3, r.err);
  const v = Verdict.parse(JSON.parse(r.out));
  assert.equal(v.complete, false);
  assert.equal(v.stoppedBy, "interrupted");
  assert.ok(v.stats.distinctStates > 0, "partial statistics");
  assert.match(readFileSync(junit, "utf8"), /interrupted/);
});

test("SIGTERM in a compare keeps the verdicts already finished", async () => {
  specFile("two/a.ts", counter("two/a"));
  specFile("two/b.ts", `export { default } from "../../../${refpin}";\n`);
  const r = await runAndSignal(["compare", path.join(tmp, "two"), "--param", "N=7", "--param", "variant=active", "--json"], ["SIGTERM"], 500);
  assert.equal(r.code, 3, `${r.err}\nstdout: ${r.out.slice(0, 2000)}`);
  const vs = (JSON.parse(r.out) as unknown[]).map((x) => Verdict.parse(x));
  assert.deepEqual(vs.map((v) => [v.spec, v.outcome]), [["tmp/two/a", "pass"], ["conformance/refpin", "incomplete"]], r.err);
});

test("a second signal exits at once", async () => {
  // Spec code stuck in a loop keeps the first stop request waiting for its grace period.
  const f = specFile("hang2.ts", counter("hang2", "", "{ if (s.x === 2) for (;;) {} return s.x < 3; }"));
  const t0 = Date.now();
  // The first signal must find the search stuck in the guard (3 s after it started), not starting.
  const r = await runAndSignal(["check", f], ["SIGINT", "SIGINT"], 3000, "tmp/hang2");
  assert.equal(r.code, 130, r.err);
  assert.match(r.err, /send it again to exit at once/);
  assert.ok(Date.now() - t0 < 60_000);
});

test("--timeout stops spec code stuck in an endless loop and names it", () => {
  const f = specFile("hang.ts", counter("hang", "", "{ if (s.x === 2) for (;;) {} return s.x < 3; }"));
  const r = run(["check", f, "--timeout", "1", "--json"]);
  assert.equal(r.code, 3, r.err);
  const v = Verdict.parse(JSON.parse(r.out));
  assert.equal(v.stoppedBy, "timeout");
  assert.ok(v.warnings.some((w) => w.includes("the guard of action Inc")), v.warnings.join("\n"));
});

test("one worker serves every spec of a run: a spec abandoned at the deadline does not take the next one with it", () => {
  // The stuck spec's worker is ended; the run starts another for the next file.
  const stuck = specFile("hang3.ts", counter("hang3", "", "{ if (s.x === 2) for (;;) {} return s.x < 3; }"));
  const fine = specFile("fine3.ts", counter("fine3", "", "s.x < 3"));
  const r = run(["compare", stuck, fine, "--timeout", "1", "--json"]);
  assert.equal(r.code, 3, r.err);
  const vs = (JSON.parse(r.out) as unknown[]).map((x) => Verdict.parse(x));
  assert.deepEqual(vs.map((v) => [v.spec, v.complete]), [["tmp/hang3", false], ["tmp/fine3", true]]);
  assert.equal(vs[1].stats.distinctStates, 4);
});

test("--timeout is honoured by elapsed time on one thread, even when each state is slow", () => {
  // Every guard call busy-waits 15 ms: a state-count check would overshoot many times.
  const f = specFile("slow.ts", counter("slow", "", "{ const t = Date.now() + 15; while (Date.now() < t); return true; }", "s.x = (s.x + 1) % 1001;").replace("min(0).max(3)", "min(0).max(1000)"));
  const r = run(["check", f, "--timeout", "1", "--workers", "1", "--json"]);
  assert.equal(r.code, 3, r.err);
  const v = Verdict.parse(JSON.parse(r.out));
  assert.equal(v.stoppedBy, "timeout");
  // Within a second of the deadline, on a loaded machine too (it overshot 14 s before).
  assert.ok(v.stats.seconds < 2.5, `search ran ${v.stats.seconds} s for --timeout 1`);
});

test("--max-memory stops the search before the process passes it", () => {
  const r = run(["check", refpin, "--param", "N=7", "--design", "active", "--workers", "1", "--max-memory", "200MB", "--json"]);
  assert.equal(r.code, 3, r.err);
  const v = Verdict.parse(JSON.parse(r.out));
  assert.equal(v.stoppedBy, "max-memory");
  assert.ok(v.warnings.some((w) => w.includes("max-memory")));
  assertUsage(run(["check", refpin, "--max-memory", "lots"]), "--max-memory lots");
});

test("--workers above the cores is capped with a warning", () => {
  const r = run(["check", refpin, "--param", "N=2", "--design", "active", "--workers", "1000", "--json"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /--workers 1000 is more than the \d+ cores/);
  assert.ok(Verdict.parse(JSON.parse(r.out)).stats.workers <= availableParallelism());
});

test("progress lines reach a non-terminal stderr, and --quiet silences them", () => {
  const f = specFile("slowish.ts", counter("slowish", "", "{ const t = Date.now() + 100; while (Date.now() < t); return s.x < 3; }"));
  const loud = run(["check", f], { REFCHECK_PROGRESS_SECONDS: "0.2" });
  assert.equal(loud.code, 0, loud.err);
  assert.match(loud.err, /refcheck: progress: tmp\/slowish: \d+ states/);
  const quiet = run(["check", f, "--quiet"], { REFCHECK_PROGRESS_SECONDS: "0.2" });
  assert.doesNotMatch(quiet.err, /progress/);
});

/** Exit 2, one paragraph on stderr naming what is wrong, no stack trace. */
function assertUsage(r: ReturnType<typeof run>, ...mentions: string[]): void {
  assert.equal(r.code, 2, `exit code; stderr: ${r.err}`);
  assert.ok(!/^\s+at /m.test(r.err), `stack trace:\n${r.err}`);
  for (const m of mentions) assert.ok(r.err.includes(m), `"${r.err.trim()}" should mention ${m}`);
}

test("inputs that give no spec are errors, and helpers follow one rule", () => {
  assertUsage(run(["check", "specs/kernel"]), "specs/kernel", "nothing to check");
  assertUsage(run(["compare", "specs/kernel"]), "nothing to check");
  specFile("skip/good.ts", counter("skip/good"));
  specFile("skip/named.ts", counter("skip/named").replace("export default defineSpec", "export const spec = defineSpec"));
  assertUsage(run(["compare", path.join(tmp, "skip")]), "named.ts", 'exports a spec as "spec" but not as default');
  rmSync(path.join(tmp, "skip", "named.ts"));
  specFile("skip/util.ts", "export const two = 2;\n");
  assertUsage(run(["compare", path.join(tmp, "skip")]), "util.ts", "kernel/ or lib/", "_");
  rmSync(path.join(tmp, "skip", "util.ts"));
  specFile("skip/_util.ts", "export const two = 2;\n");
  specFile("skip/lib/more.ts", "export const three = 3;\n");
  const listed = run(["list", path.join(tmp, "skip")]);
  assert.equal(listed.code, 0, listed.err);
  assert.match(listed.out, /tmp\/skip\/good/);
  assert.match(listed.out, /skipped .*_util\.ts: helper \(its name starts with _\)/);
  assert.match(listed.out, /skipped .*lib\/more\.ts: helper \(in a lib\/ folder\)/);
  assert.equal(run(["compare", path.join(tmp, "skip")]).code, 0);
});

test("parameters: bare, repeated, undeclared by every spec, or contradicting --design", () => {
  assertUsage(run(["check", refpin, "--param"]), "--param", "NAME=VALUE");
  assertUsage(run(["check", refpin, "--param", "N=2", "--param", "N=3"]), "--param N is given twice");
  assertUsage(run(["check", refpin, "--param", "variant=plain", "--design", "active"]), "--design active contradicts --param variant=plain");
  assertUsage(run(["compare", "specs/guest-memfd", "specs/conformance", "--param", "slot=1"]), "slot", "did you mean slots?");
  assertUsage(run(["check", refpin, "--timeout", "0x10"]), "--timeout 0x10");
});

test("--symmetry on a spec without symmetry is a warning in the verdict", () => {
  const f = specFile("nosym.ts", counter("nosym"));
  const r = run(["check", f, "--symmetry", "--json"]);
  assert.equal(r.code, 0, r.err);
  assert.ok(Verdict.parse(JSON.parse(r.out)).warnings.some((w) => w.includes("declares no symmetry")));
});

test("console.log in a spec never reaches stdout", () => {
  const f = specFile("chatty.ts", counter("chatty", "", "s.x < 3", 'console.log("debug: Inc"); s.x += 1;'));
  const r = run(["check", f, "--json"]);
  assert.equal(r.code, 0, r.err);
  assert.equal(Verdict.parse(JSON.parse(r.out)).spec, "tmp/chatty");
  assert.match(r.err, /debug: Inc/);
});

test("an exception while the model is built names the spec and the phase", () => {
  const f = specFile("init-throws.ts", counter("init-throws").replace("init: () => ({ x: 0 })", 'init: () => { throw new Error("init exploded"); }'));
  assertUsage(run(["check", f]), "init-throws.ts", 'spec "tmp/init-throws"', '"init" threw Error: init exploded');
});

test("an internal error has its own exit code and says it is a refcheck bug", () => {
  // Break something refcheck relies on, as a bug would.
  const breaker = specFile("break.mjs", "JSON.stringify = () => { throw new TypeError('broken'); };\n");
  const r = spawnSync(process.execPath, ["--import", path.join(root, breaker), ...bin, "check", refpin, "--param", "N=1", "--design", "active", "--json"], {
    cwd: root, encoding: "utf8", env,
  });
  assert.equal(r.status, 4, r.stderr);
  assert.match(r.stderr, /internal error: broken/);
  assert.match(r.stderr, /refcheck bug/);
  assert.ok(!/^\s+at /m.test(r.stderr), r.stderr);
  assert.ok(existsSync(path.join(root, breaker)));
});

test("CLI habits: --version, -V, -h, --color, --no-color, NO_COLOR, did you mean", () => {
  const version = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")).version;
  for (const flag of ["--version", "-V"]) {
    const r = run([flag]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim(), version);
  }
  const help = run(["-h"]);
  assert.equal(help.code, 0, help.err);
  assert.match(help.out, /refcheck check <paths\.\.>/);
  const args = ["check", refpin, "--param", "N=1", "--design", "plain"];
  assert.match(run([...args, "--color"], { NO_COLOR: "" }).out, /\x1b\[/);
  assert.doesNotMatch(run([...args, "--no-color"], { FORCE_COLOR: "1" }).out, /\x1b\[/);
  assert.doesNotMatch(run(args, { NO_COLOR: "1", FORCE_COLOR: "" }).out, /\x1b\[/);
  assertUsage(run(["check", refpin, "--max-state", "10"]), "--max-state: did you mean --max-states?");
  assertUsage(run(["chek", refpin]), "unknown command chek: did you mean check?");
});

test("messages: NaN written to a field is named NaN; non-decimal numbers in --param are named as typed", () => {
  const f = specFile("nan.ts", counter("nan", "", "s.x < 3", "s.x = NaN;"));
  assertUsage(run(["check", f]), "field x = NaN");
  for (const v of ["1e3", "0x2", ""]) assertUsage(run(["check", refpin, "--param", `N=${v}`]), `parameter "N": expected a decimal number, got "${v}"`);
});

test("messages: a flag of another command, a stray word, a repeated bound, a missing spec before the type check", () => {
  assertUsage(run(["check", refpin, "--traces"]), "--traces is not an option of check");
  assertUsage(run(["frobnicate"]), "unknown argument frobnicate");
  assertUsage(run(["check", refpin, "--max-states", "10", "--max-states", "20"]), "--max-states is given 2 times (10, 20)");
  const missing = run(["check", "specs/no-such-spec.ts"]);
  assertUsage(missing, "specs/no-such-spec.ts: no such file or folder");
  assert.doesNotMatch(missing.err, /type-check/);
});

test("one event delivered twice (the group and npm's relay) stops the search once, with the verdict", async () => {
  const r = await runAndSignal(["check", refpin, "--param", "N=7", "--design", "active", "--json"], ["SIGTERM", "SIGTERM"], 300, "conformance/refpin", 20);
  assert.equal(r.code, 3, r.err);
  assert.equal(Verdict.parse(JSON.parse(r.out)).stoppedBy, "interrupted");
});

test("a start that fails for lack of memory (ulimit -v) is never read as a violated property", () => {
  const r = spawnSync("bash", ["-c", `ulimit -v 8000000; exec "${process.execPath}" bin/refcheck.mjs check specs/tutorial/cached-file.ts --design pinned`], {
    // Without the test runner's own variables: the child must start as a user starts it.
    cwd: root, encoding: "utf8", env: Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith("NODE_"))), timeout: 120_000,
  });
  // Either the run copes (tsx falls back to its JavaScript lexer) or it says it could not start.
  assert.ok(r.status === 0 || r.status === 4, `exit ${r.status}: ${r.stderr.slice(0, 400)}`);
  if (r.status === 4) assert.match(r.stderr, /^refcheck: internal error: /);
});
