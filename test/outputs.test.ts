// Report files as a set: names that never collide, paths checked before the search, stale
// outputs removed, writes that are complete or absent, exit-code precedence; escaping of
// spec text in Markdown and on the terminal; `refcheck trace` streaming large files.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";
import fc from "fast-check";
import { check, checkAllDesigns } from "../checker/index.ts";
import type { PropertyResult, Verdict } from "../checker/verdict.ts";
import { z } from "zod";
import { defineSpec, Fault } from "../checker/spec.ts";
import { renderTrace, renderVerdict } from "../reports/console.ts";
import { renderComparison } from "../reports/compare.ts";
import { mdCode, renderMarkdown } from "../reports/markdown.ts";
import { exitCodeWithOutputs, FileError, planOutputs, printTrace, writeOutputs } from "../bin/outputs.ts";
import { itfFileName, MAX_NAME, parseItf } from "../reports/itf.ts";
import { scanItf } from "../reports/itf-stream.ts";
import { renderJunit } from "../reports/junit.ts";
import vmPinning from "../specs/kvm-vfio/vm-pinning.ts";
import refpin from "../specs/conformance/refpin.ts";
import { getFileActiveVerdict, getFileVerdict } from "./fixtures/verdicts.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const tmp = path.join(tmpdir(), `refcheck-outputs-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
const REFPIN = "specs/conformance/refpin.ts";

function run(args: string[], opts: { env?: Record<string, string> } = {}) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "bin/refcheck.ts", ...args], {
    cwd: root,
    encoding: "utf8",
    timeout: 60_000,
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, REFCHECK_DEBUG: "", NO_COLOR: "1", GITHUB_ACTIONS: "", ...opts.env },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Exit 2, one paragraph naming what it must, no stack trace and no usage hint. */
function assertFileError(r: ReturnType<typeof run>, ...mentions: string[]): void {
  assert.equal(r.code, 2, `exit code; stderr: ${r.err}`);
  const msg = r.err.trim();
  assert.ok(msg.startsWith("refcheck: "), msg);
  assert.ok(!/^\s+at /m.test(msg), `stack trace:\n${msg}`);
  assert.ok(!msg.includes("--help"), `usage hint on a file error:\n${msg}`);
  assert.equal(msg.split("\n").length, 1, `one line expected:\n${msg}`);
  for (const m of mentions) assert.ok(msg.includes(m), `"${msg}" should mention ${m}`);
}

const dir = (...p: string[]) => path.join(tmp, ...p);
before(() => mkdirSync(tmp, { recursive: true }));
after(() => rmSync(tmp, { recursive: true, force: true }));

// ---- 1. names ----

function traces(vs: Verdict[]): [Verdict, PropertyResult][] {
  return vs.flatMap((v) => v.properties.filter((p) => p.trace).map((p): [Verdict, PropertyResult] => [v, p]));
}

test("outputs: ITF names differ across configurations and non-default parameters", () => {
  const vs = checkAllDesigns(vmPinning);
  const all = traces(vs);
  assert.ok(vs.some((v) => v.configuration === "modules=one") && vs.some((v) => v.configuration === "modules=two"));
  const names = all.map(([v, p]) => itfFileName(v, p));
  assert.equal(new Set(names).size, names.length, "two traces share a name");
  assert.ok(names.some((n) => n.includes("modules=one")) && names.some((n) => n.includes("modules=two")));
  // A parameter at its default does not lengthen the name; a changed one does.
  const dflt = check(refpin, { N: 3, variant: "plain" });
  const n2 = check(refpin, { N: 2, variant: "plain" });
  assert.equal(dflt.defaults?.N, 3);
  const pd = dflt.properties.find((p) => p.trace)!;
  const p2 = n2.properties.find((p) => p.trace)!;
  assert.equal(itfFileName(dflt, pd), `conformance_refpin-plain-${pd.name}.itf.json`);
  assert.equal(itfFileName(n2, p2), `conformance_refpin-plain-N=2-${p2.name}.itf.json`);
});

test("outputs: compare specs --itf writes one file per trace", () => {
  const out = dir("compare-itf");
  const json = dir("compare.json");
  const fd = openSync(json, "w");
  const r = spawnSync(process.execPath, ["--import", "tsx", "bin/refcheck.ts", "compare", "specs", "--json", "--itf", out], {
    cwd: root, stdio: ["ignore", fd, "pipe"], encoding: "utf8", timeout: 60_000, env: { ...process.env, GITHUB_ACTIONS: "" },
  });
  closeSync(fd);
  assert.equal(r.status, 0, r.stderr); // every shipped violation is declared expected
  const vs = JSON.parse(readFileSync(json, "utf8")) as Verdict[];
  const n = traces(vs).length;
  assert.ok(n >= 90, `${n} traces`);
  assert.equal(readdirSync(out).filter((f) => f.endsWith(".itf.json")).length, n);
});

test("outputs: ITF names are path-safe, never hidden and short enough for any file system", () => {
  const base = getFileVerdict;
  const prop = base.properties.find((p) => p.trace)!;
  fc.assert(
    fc.property(fc.string({ maxLength: 400 }), fc.string({ maxLength: 50 }), fc.string({ maxLength: 400 }), (spec, design, name) => {
      const n = itfFileName({ ...base, spec, design }, { ...prop, name });
      assert.ok(n.length <= MAX_NAME, n);
      assert.ok(!n.startsWith("."), n);
      assert.match(n, /^[A-Za-z0-9_.=-]+\.itf\.json$/);
    }),
  );
  const long = "p".repeat(300);
  const a = itfFileName(base, { ...prop, name: long });
  const b = itfFileName(base, { ...prop, name: long + "x" });
  assert.ok(a.length <= MAX_NAME && b.length <= MAX_NAME);
  assert.notEqual(a, b, "long names keep a distinguishing hash");
  assert.equal(a, itfFileName(base, { ...prop, name: long }), "stable");
  assert.ok(!itfFileName({ ...base, spec: "../../x" }, prop).startsWith("."));
});

test("outputs: a 300-character property name is written under a shortened name", () => {
  const out = dir("long");
  const prop = getFileVerdict.properties.find((p) => p.trace)!;
  const v = { ...getFileVerdict, properties: [{ ...prop, name: "q".repeat(300) }] };
  const r = writeOutputs([v], planOutputs({ itf: out }, []));
  assert.equal(r.error, undefined);
  assert.equal(readdirSync(out).length, 1);
});

test("outputs: two traces with one name stop the run before anything is written", () => {
  const out = dir("dup");
  const junit = dir("dup.xml");
  const r = writeOutputs([getFileVerdict, getFileVerdict], planOutputs({ itf: out, junit }, []));
  assert.match(r.error ?? "", /two traces would be written to .*noFault.*nothing was written/);
  assert.deepEqual(readdirSync(out), []);
  assert.ok(!existsSync(junit));
});

test("outputs: JUnit testsuite names are unique per configuration", () => {
  const vs = checkAllDesigns(vmPinning);
  const xml = renderJunit(vs);
  const names = [...xml.matchAll(/<testsuite name="([^"]*)"/g)].map((m) => m[1]);
  assert.equal(names.length, vs.length);
  assert.equal(new Set(names).size, names.length, "duplicate testsuite names");
  assert.ok(names.some((n) => n!.includes("modules=two")));
  // The same run twice (a spec named twice) still gives distinct suites.
  const twice = [...renderJunit([getFileVerdict, getFileVerdict]).matchAll(/<testsuite name="([^"]*)"/g)].map((m) => m[1]);
  assert.equal(new Set(twice).size, 2);
});

// ---- 2. the plan ----

function planError(args: Parameters<typeof planOutputs>[0], inputs: string[] = []): string {
  try {
    planOutputs(args, inputs);
  } catch (e) {
    assert.ok(e instanceof FileError, String(e));
    return e.message;
  }
  assert.fail("planOutputs accepted " + JSON.stringify(args));
}

test("outputs: bad output paths are refused before the search, naming the flag and the path", () => {
  mkdirSync(dir("plan"), { recursive: true });
  writeFileSync(dir("plan", "file"), "x");
  assert.match(planError({ junit: "" }), /^--junit "": expected a file path/);
  assert.match(planError({ itf: "" }), /^--itf "": expected a folder/);
  assert.match(planError({ html: dir("plan") }), /^--html .*plan: is a folder; expected a file path/);
  assert.match(planError({ sarif: dir("plan") + "/" }), /^--sarif .*: names a folder/);
  assert.match(planError({ itf: dir("plan", "file") }), /^--itf .*file: is a file; expected a folder/);
  assert.match(planError({ markdown: dir("plan", "file", "r.md") }), /^--markdown .*r\.md: .*not a folder/);
  assert.match(planError({ html: REFPIN }, [REFPIN]), /^--html specs\/conformance\/refpin\.ts: this is the spec file/);
  assert.match(planError({ html: "./" + REFPIN }, [REFPIN]), /this is the spec file/);
  assert.match(planError({ junit: dir("plan", "a"), html: dir("plan", "a") }), /^--html .*: the same path as --junit/);
  assert.match(planError({ junit: [dir("a"), dir("b")] }), /^--junit is given 2 times/);
  symlinkSync("/nonexistent-target", dir("plan", "dangling"));
  assert.match(planError({ itf: dir("plan", "dangling", "out") }), /^--itf .*dangling\/out: cannot create the folder .*dangling/);
});

test("outputs: folders on procfs fail at once instead of spinning", () => {
  if (!existsSync("/proc/self")) return;
  const t0 = Date.now();
  assert.match(planError({ itf: "/proc/x" }), /^--itf \/proc\/x: cannot create the folder \/proc\/x: .*ENOENT/);
  assert.match(planError({ junit: "/proc/x/r.xml" }), /^--junit \/proc\/x\/r\.xml: cannot create the folder \/proc\/x/);
  assert.ok(Date.now() - t0 < 2000);
  const r = run(["check", REFPIN, "--param", "N=1", "--itf", "/proc/x"]);
  assertFileError(r, "--itf /proc/x");
  assert.equal(r.out, "", "refused before the search");
});

test("outputs: missing parent folders are created one level at a time", () => {
  const p = dir("new", "deeper", "r.xml");
  const plan = planOutputs({ junit: p, itf: dir("new", "t1", "t2") }, []);
  assert.ok(existsSync(dir("new", "deeper")) && existsSync(dir("new", "t1", "t2")));
  assert.equal(writeOutputs([getFileVerdict], plan).error, undefined);
  assert.ok(readFileSync(p, "utf8").includes("<testsuites"));
});

test("outputs: the plan removes the previous run's outputs", () => {
  const d = dir("stale");
  mkdirSync(path.join(d, "itf"), { recursive: true });
  writeFileSync(path.join(d, "r.xml"), 'failures="0"');
  writeFileSync(path.join(d, "itf", "old.itf.json"), "{}");
  writeFileSync(path.join(d, "itf", "notes.txt"), "mine");
  planOutputs({ junit: path.join(d, "r.xml"), itf: path.join(d, "itf") }, []);
  assert.ok(!existsSync(path.join(d, "r.xml")));
  assert.deepEqual(readdirSync(path.join(d, "itf")), ["notes.txt"]);
});

test("outputs: a run that fails after the plan leaves no stale JUnit", () => {
  const junit = dir("stale2.xml");
  writeFileSync(junit, '<testsuites failures="0"/>');
  // Parameter out of range: a spec error raised once the search starts.
  const r = run(["check", REFPIN, "--param", "N=99", "--junit", junit]);
  assert.equal(r.code, 2, r.err);
  assert.ok(!existsSync(junit), "stale JUnit left in place");
});

test("outputs: check SPEC --html SPEC leaves the spec alone", () => {
  const before = readFileSync(path.join(root, REFPIN), "utf8");
  const r = run(["check", REFPIN, "--param", "N=1", "--html", REFPIN]);
  assertFileError(r, "--html", REFPIN, "spec file");
  assert.equal(readFileSync(path.join(root, REFPIN), "utf8"), before);
});

// ---- 3. writing ----

test("outputs: a failed write leaves no partial set and names the flag and the path", () => {
  if (!existsSync("/dev/full")) return;
  const d = dir("set");
  const plan = planOutputs({ itf: path.join(d, "itf"), junit: path.join(d, "r.xml"), markdown: path.join(d, "r.md"), html: "/dev/full" }, []);
  const r = writeOutputs([getFileActiveVerdict, getFileVerdict], plan);
  assert.equal(r.error, "--html /dev/full: cannot write the report: no space left on device (ENOSPC)");
  assert.deepEqual(r.written, []);
  assert.deepEqual(readdirSync(d).sort(), ["itf"], "temporaries or reports left behind");
  assert.deepEqual(readdirSync(path.join(d, "itf")), []);
});

test("outputs: a complete set leaves no temporaries", () => {
  const d = dir("ok");
  const plan = planOutputs({ itf: path.join(d, "itf"), junit: path.join(d, "r.xml"), sarif: path.join(d, "r.sarif"), markdown: path.join(d, "r.md"), html: path.join(d, "r.html") }, []);
  const r = writeOutputs([getFileActiveVerdict, getFileVerdict], plan);
  assert.equal(r.error, undefined);
  assert.deepEqual(readdirSync(d).sort(), ["itf", "r.html", "r.md", "r.sarif", "r.xml"]);
  assert.equal(r.written.length, 4 + readdirSync(path.join(d, "itf")).length);
  assert.ok(readdirSync(path.join(d, "itf")).every((f) => f.endsWith(".itf.json")));
});

test("outputs: exit codes: violation 1 > output error 2 > incomplete 3 > pass 0", () => {
  assert.equal(exitCodeWithOutputs(1, true), 1);
  assert.equal(exitCodeWithOutputs(0, true), 2);
  assert.equal(exitCodeWithOutputs(3, true), 2);
  assert.equal(exitCodeWithOutputs(3, false), 3);
  assert.equal(exitCodeWithOutputs(0, false), 0);
  if (!existsSync("/dev/full")) return;
  const fail = run(["check", REFPIN, "--param", "N=1", "--param", "variant=plain", "--html", "/dev/full", "--ignore-expected"]);
  assert.equal(fail.code, 1, fail.err);
  assert.match(fail.out, /FAIL/);
  assert.equal(fail.err.trim(), "refcheck: --html /dev/full: cannot write the report: no space left on device (ENOSPC)");
  // A violation the spec declares is a pass for the exit code: the output error (2) wins.
  assertFileError(run(["check", REFPIN, "--param", "N=1", "--param", "variant=plain", "--html", "/dev/full"]), "--html /dev/full", "ENOSPC");
  const pass = run(["check", REFPIN, "--param", "N=1", "--param", "variant=active", "--json", "--junit", "/dev/full"]);
  assertFileError(pass, "--junit /dev/full", "ENOSPC");
  assert.equal(JSON.parse(pass.out).outcome, "pass", "the verdict is still printed");
  const incomplete = run(["check", REFPIN, "--param", "N=3", "--param", "variant=active", "--max-states", "10", "--sarif", "/dev/full"]);
  assertFileError(incomplete, "--sarif /dev/full");
});

test("outputs: --json through a pipe is complete (stdout flushed before exit)", () => {
  const r = run(["compare", "specs/kvm-vfio", "--json"]);
  assert.equal(r.code, 0, r.err);
  assert.ok(r.out.length > 65536, `${r.out.length} bytes`);
  assert.ok(Array.isArray(JSON.parse(r.out)));
});

// ---- 4. escaping ----

const H = "<script>alert(1)</script>\"onmouseover=\"alert(2)' `x` | a | --> end; #x <img src=x onerror=alert(3)> ]]> ::error::pwned";
const TERM = "\u001b]0;PWNED\u0007\u001b[2J";
const hostileSpec = defineSpec({
  name: H,
  summary: H,
  source: H,
  params: z.object({ design: z.enum([H, "ok"]).default("ok") }),
  state: () => z.object({ v: z.enum(["a", H, TERM]), n: z.number().int().min(0).max(2) }),
  init: () => ({ v: "a" as string, n: 0 }),
  actions: () => ({
    [H]: { kernel: H, when: (s: { n: number }) => s.n === 0, then: (s: { n: number; v: string }) => { s.n = 1; s.v = H; } },
    [TERM]: { kernel: TERM, when: (s: { n: number }) => s.n === 1, then: (s: { n: number; v: string }) => { s.n = 2; s.v = TERM; throw new Fault(`${H}${TERM}\n::error::second line`); } },
  }),
  invariants: { [H]: { holds: () => true, doc: H } },
  reachable: { [H]: { when: (s: { n: number }) => s.n === 1, doc: H } },
} as never);
const hostile = checkAllDesigns(hostileSpec as never, {}, { file: "specs/bad/xss.ts" });

/** Markdown without its Mermaid blocks and code spans (shown literally by every renderer). */
function mdOutsideCode(md: string): string {
  return md.replace(/^(`{3,})mermaid\n[\s\S]*?^\1$/gm, "").replace(/(`+)(?!`)[\s\S]*?(?<!`)\1(?!`)/g, "");
}

test("outputs: the Markdown report escapes spec text (headings, notes, tables, code spans)", () => {
  assert.ok(hostile.some((v) => v.outcome === "fail"), "the hostile spec should fail with a trace");
  const md = renderMarkdown(hostile);
  const outside = mdOutsideCode(md);
  assert.ok(!/<(?!br>)/.test(outside), `raw '<' outside code:\n${outside.split("\n").filter((l) => /<(?!br>)/.test(l)).join("\n")}`);
  assert.ok(!outside.includes('"onmouseover="'));
  assert.ok(!/(^|[^\\])\[/.test(outside.replace(/\\\\/g, "")), "an unescaped '[' could start a link");
  assert.ok(outside.includes("&lt;script&gt;alert(1)&lt;/script&gt;"));
  // Every code span closes where it should: the backticks inside get a longer fence.
  assert.ok(md.includes("| ``<script>alert(1)</script>\"onmouseover=\"alert(2)' `x` \\| a \\| --> end; #x <img src=x onerror=alert(3)> ]]> ::error::pwned`` "), "code span of the action");
  assert.equal(mdCode("`tick"), "`` `tick ``");
  assert.equal(mdCode("x``y"), "```x``y```");
  assert.equal(mdCode("a|b", true), "`a\\|b`");
  assert.equal(mdCode("a\nb"), "`a b`");
  // Step rows keep their four columns (step, thread, action, what changed): every '|' from the spec is escaped.
  for (const row of md.split("\n").filter((l) => /^\| \d+ \|/.test(l))) assert.equal(row.replace(/\\\|/g, "").split("|").length, 6, row);
});

function assertTerminalSafe(text: string, what: string): void {
  assert.ok(!/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(text), `${what}: control character in ${JSON.stringify(text.slice(0, 2000))}`);
  for (const line of text.split("\n")) assert.ok(!/^\s*::/.test(line), `${what}: workflow command line: ${line}`);
}

test("outputs: terminal output neutralises control characters and workflow commands from a spec", () => {
  for (const v of hostile) assertTerminalSafe(renderVerdict(v, { color: false }), "renderVerdict");
  const cmp = renderComparison(hostile, { color: false, traces: true, witnesses: true });
  assertTerminalSafe(cmp, "renderComparison");
  assert.ok(cmp.includes("\\u001b]0;PWNED\\u0007\\u001b[2J"), "escapes are shown, not dropped");
  assert.ok(cmp.includes("\\n\\u003a:error::second line") || cmp.includes("\\n::error::second line"));
  // With colour on, the only escapes are chalk's SGR sequences.
  const colored = renderVerdict(hostile.find((v) => v.outcome === "fail")!, { color: true });
  assert.ok(!/\u001b(?!\[[0-9;]*m)/.test(colored), "an escape other than a colour");
  assert.ok(!colored.includes("\u0007"));
});

// ---- 5. refcheck trace ----

function traceText(file: string): string {
  let s = "";
  printTrace(file, { write: (x) => (s += x) });
  return s;
}

function traceError(file: string): string {
  try {
    traceText(file);
  } catch (e) {
    assert.ok(e instanceof FileError, String(e));
    return e.message;
  }
  assert.fail(`trace accepted ${file}`);
}

test("outputs: trace prints what parseItf reads, for every malformed case the same error", () => {
  const cases = [
    "{", "[]", '{"states":[]}', '{"vars":[],"states":[]}', '{"vars":["x"],"states":[{"x":{"#bigint":"1.5"}}]}',
    '{"vars":["x"],"states":[{"x":1},{"#meta":{"index":3},"x":2}]}', '{"vars":["x"],"states":[{"y":1}]}',
    '{"vars":["x"],"states":[{"x":{"#map":[[1]]}}]}', '{"vars":["x"],"states":[{"x":1,"mbt::actionTaken":3}]}',
    '{"vars":["x"],"states":[{"x":1},]}', '{"vars":["x"] "states":[]}', '{"vars":["x"],"states":[{"x":1}]} x', "",
  ];
  const f = dir("bad.itf.json");
  for (const text of cases) {
    writeFileSync(f, text);
    const msg = traceError(f);
    assert.ok(msg.startsWith(`${f}: `), msg);
    let expected: string | undefined;
    try {
      parseItf(text, f);
    } catch (e) {
      expected = (e as Error).message;
    }
    assert.ok(expected !== undefined, `parseItf accepted ${text}`);
    // Field errors are word for word those of parseItf; syntax errors both say "not valid JSON".
    if (expected.includes("not valid JSON")) assert.match(msg, /not valid JSON/, text);
    else assert.equal(msg, expected, text);
  }
  // Valid documents: the same text as rendering the parsed trace.
  const quint = path.join(root, "test", "fixtures", "quint-pin.itf.json");
  const { trace } = parseItf(readFileSync(quint, "utf8"), quint);
  assert.equal(traceText(quint).split("\n").slice(1).join("\n"), renderTrace(trace) + "\n");
});

test("outputs: trace on a folder, a 20,000-deep nesting and a __proto__ variable", () => {
  assert.equal(traceError(tmp), `${tmp}: is a folder; expected an ITF trace file (.itf.json)`);
  const r = run(["trace", "specs"]);
  assertFileError(r, "specs: is a folder");

  const deep = dir("deep.itf.json");
  writeFileSync(deep, `{"vars":["x"],"states":[{"x":${"[".repeat(20000)}${"]".repeat(20000)}}]}`);
  assert.match(traceError(deep), /deep\.itf\.json: not valid JSON: nested more than 512 levels deep/);
  assert.throws(() => parseItf(readFileSync(deep, "utf8"), deep), /deep\.itf\.json: states\[0\]\.x.*nested more than 512 levels deep/);
  assertFileError(run(["trace", deep]), "deep.itf.json", "nested");

  const proto = dir("proto.itf.json");
  writeFileSync(proto, '{"vars":["__proto__","y"],"states":[{"__proto__":{"#bigint":"1"},"y":{"__proto__":2}},{"__proto__":{"#bigint":"3"},"y":{"__proto__":2}}]}');
  const text = traceText(proto);
  assert.match(text, /__proto__: 1/);
  assert.match(text, /y: __proto__=2/);
  assert.match(text, /__proto__: 1 -> 3/);
  const doc = parseItf(readFileSync(proto, "utf8"), proto);
  assert.deepEqual(Object.keys(doc.trace.steps[0]!.state), ["__proto__", "y"]);
});

test("outputs: trace neutralises terminal escapes and workflow commands from the file", () => {
  const f = dir("hostile.itf.json");
  writeFileSync(f, JSON.stringify({
    "#meta": { source: "\u001b]0;PWNED\u0007\u001b[2J", description: "boom\n::error title=injected::x" },
    vars: ["x"],
    states: [
      { x: "\u001b]0;PWNED\u0007\u001b[2J" },
      { "#meta": { fault: "boom\n::error title=injected::x", kernel: "\u001b[2J" }, x: "::error::y", "mbt::actionTaken": "boom\n::error title=injected::x" },
    ],
  }));
  const text = traceText(f);
  assertTerminalSafe(text, "trace");
  assert.ok(text.includes("\\u001b]0;PWNED\\u0007\\u001b[2J"), text);
  assert.ok(text.includes("boom\\n::error title=injected::x"), text);
  const r = run(["trace", f], { env: { GITHUB_ACTIONS: "true" } });
  assert.equal(r.code, 0, r.err);
  assertTerminalSafe(r.out, "refcheck trace");
});

test("outputs: trace streams a large file: peak memory under 4x the file's size", async (t) => {
  const file = dir("big.itf.json");
  const target = 48 * 1024 * 1024;
  const fd = openSync(file, "w");
  writeFileSync(fd, '{"#meta":{"source":"big.qnt","description":"generated"},"vars":["vmFd","count","dev","mbt::actionTaken","mbt::nondetPicks"],"states":[\n');
  let size = 0;
  let k = 0;
  let batch: string[] = [];
  while (size < target) {
    const dev = Array.from({ length: 8 }, (_, i) => `{"fd":${(k + i) % 3 === 0},"count":{"#bigint":"${(k * 7 + i) % 5}"},"state":"${["live", "dying", "freed"][(k + i) % 3]}"}`).join(",");
    const s = `${k ? ",\n" : ""}{"#meta":{"index":${k}},"vmFd":${k % 2 === 0},"count":{"#bigint":"${k}"},"dev":[${dev}],"mbt::actionTaken":"${k ? "Step" : "init"}","mbt::nondetPicks":{"i":{"tag":"Some","value":{"#bigint":"${k % 8}"}}}}`;
    batch.push(s);
    size += s.length;
    k++;
    if (batch.length === 2000) {
      writeFileSync(fd, batch.join(""));
      batch = [];
    }
  }
  writeFileSync(fd, batch.join("") + "]}\n");
  closeSync(fd);
  const bytes = statSync(file).size;
  // Peak RSS reported by the child itself as it exits (kilobytes on Linux).
  const probe = dir("maxrss.mjs");
  writeFileSync(probe, 'import { writeSync } from "node:fs";\nprocess.on("exit", () => writeSync(2, `MAXRSS_KB ${process.resourceUsage().maxRSS}\\n`));\n');
  const child = spawn(process.execPath, ["--import", "tsx", "--import", pathToFileURL(probe).href, "bin/refcheck.ts", "trace", file], { cwd: root, env: { ...process.env, NO_COLOR: "1" } });
  let outBytes = 0;
  let tail = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => {
    outBytes += d.length;
    tail = (tail + d.toString("utf8")).slice(-4000);
  });
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((res) => child.on("close", res));
  assert.equal(code, 0, err);
  const kb = Number(/MAXRSS_KB (\d+)/.exec(err)?.[1]);
  const ratio = (kb * 1024) / bytes;
  t.diagnostic(`trace: ${(bytes / 2 ** 20).toFixed(1)} MB file, ${k} states, ${(outBytes / 2 ** 20).toFixed(1)} MB printed, peak RSS ${(kb / 1024).toFixed(0)} MB = ${ratio.toFixed(2)}x the file`);
  assert.ok(ratio < 4, `peak RSS ${kb} KB is ${ratio.toFixed(2)}x the file's ${bytes} bytes`);
  assert.ok(tail.includes(`\n  ${k - 1}  Step(i=${(k - 1) % 8})\n`), `the last step is printed: ${tail.slice(-300)}`);
  assert.ok(outBytes > bytes, "every step printed");
});

test("outputs: the ITF scanner cuts out what JSON.parse reads, at any chunk size", () => {
  const doc = fc.record({
    meta: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 })),
    vars: fc.array(fc.string({ unit: "grapheme" }), { maxLength: 4 }),
    states: fc.array(fc.jsonValue({ maxDepth: 4 }), { maxLength: 6 }),
    extra: fc.jsonValue({ maxDepth: 3 }),
    statesFirst: fc.boolean(),
    indent: fc.constantFrom(undefined, 1, "\t"),
  });
  fc.assert(
    fc.property(doc, fc.integer({ min: 1, max: 9 }), (d, chunk) => {
      const obj = d.statesFirst
        ? { states: d.states, "#meta": d.meta, other: d.extra, vars: d.vars }
        : { "#meta": d.meta, vars: d.vars, other: d.extra, states: d.states };
      const text = JSON.stringify(obj, null, d.indent);
      const bytes = Buffer.from(text, "utf8");
      let pos = 0;
      const read = (buf: Buffer) => {
        const n = Math.min(buf.length, bytes.length - pos);
        bytes.copy(buf, 0, pos, pos + n);
        pos += n;
        return n;
      };
      const top: Record<string, unknown> = {};
      const states: unknown[] = [];
      // (JSON.parse's own objects on both sides: fast-check may make null-prototype ones.)
      const r = scanItf("t.itf.json", read, {
        wantTop: () => true,
        top: (k, json) => (top[k] = JSON.parse(json)),
        state: (json, i) => {
          assert.equal(i, states.length);
          states.push(JSON.parse(json));
        },
      }, chunk);
      const expected = JSON.parse(text);
      assert.deepEqual(states, expected.states);
      assert.equal(r.states, d.states.length);
      delete expected.states;
      assert.deepEqual(top, expected);
    }),
    { numRuns: 300 },
  );
});
