// The spec type check: misspelt fields and syntax errors are located, passes are cached by
// content, and a cached pass does not load the compiler.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { syntaxLocation, typecheckSpecs, typecheckSpecsIsolated } from "../bin/typecheck.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, "..");
const fixture = (name: string) => path.join(here, "fixtures", "typecheck", name);
const rel = (f: string) => path.relative(process.cwd(), f).split(path.sep).join("/");

const temps: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(path.join(tmpdir(), "refcheck-typecheck-"));
  temps.push(d);
  return d;
};
after(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));

test("a misspelt field write fails with its file, line and column", async () => {
  const r = await typecheckSpecs([fixture("misspelt-field.ts")], { cacheDir: tempDir() });
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.diagnostics.length, 1);
  const [d] = r.diagnostics;
  assert.match(d!, new RegExp(`^${rel(fixture("misspelt-field.ts"))}:18:11 - error TS2551: Property 'fred' does not exist`));
  // The code frame: the line, then a caret under "fred".
  assert.match(d!, /\n {2}18 \| {9}s\.fred = true;\n {5}\| {11}\^{4}$/);
});

test("a syntax error is reported as file:line:col", async () => {
  const r = await typecheckSpecs([fixture("syntax-error.ts")], { cacheDir: tempDir() });
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.match(r.diagnostics[0]!, new RegExp(`^${rel(fixture("syntax-error.ts"))}:7:3 - error TS1005: ',' expected`));
});

test("a missing path is named", async () => {
  const r = await typecheckSpecs(["specs/no-such-spec.ts"], { cacheDir: tempDir() });
  assert.deepEqual(r, { ok: false, diagnostics: ["specs/no-such-spec.ts: no such file or folder (expected a spec file or a folder of specs)"] });
});

test("a valid spec passes, and the second check is cached", async () => {
  const cacheDir = tempDir();
  const spec = path.join(root, "specs", "conformance", "refpin.ts");
  const first = await typecheckSpecs([spec], { cacheDir });
  assert.deepEqual({ ...first, ms: 0 }, { ok: true, cached: false, ms: 0 });
  const second = await typecheckSpecs([spec], { cacheDir });
  assert.deepEqual({ ...second, ms: 0 }, { ok: true, cached: true, ms: 0 });
  // Another root set is another entry.
  const other = await typecheckSpecs([spec, path.join(root, "specs", "kvm-vfio", "vm-pinning.ts")], { cacheDir });
  assert.equal(other.ok && other.cached, false);
  assert.equal((await typecheckSpecs([spec], { cacheDir })).ok && true, true);
});

test("failures are not cached", async () => {
  const cacheDir = tempDir();
  for (let i = 0; i < 2; i++) assert.equal((await typecheckSpecs([fixture("misspelt-field.ts")], { cacheDir })).ok, false);
});

test("changing an imported file invalidates the cache", async () => {
  const dir = tempDir();
  const cacheDir = path.join(dir, "cache");
  const main = path.join(dir, "main.ts");
  const helper = path.join(dir, "helper.ts");
  writeFileSync(main, 'import { width } from "./helper.ts";\nexport const doubled: number = width * 2;\n');
  writeFileSync(helper, "export const width = 3;\n");
  const run = () => typecheckSpecs([main], { cacheDir });
  assert.deepEqual({ ...(await run()), ms: 0 }, { ok: true, cached: false, ms: 0 });
  const again = await run();
  assert.equal(again.ok && again.cached, true);
  writeFileSync(helper, "// wider\nexport const width = 4;\n");
  const changed = await run();
  assert.equal(changed.ok && changed.cached, false);
  writeFileSync(helper, 'export const width = "4";\n');
  const broken = await run();
  assert.equal(broken.ok, false);
  if (!broken.ok) assert.match(broken.diagnostics[0]!, new RegExp(`^${rel(main)}:2:32 - error TS2362`));
});

/**
 * A fresh process type-checks RefPin with `fn` against `cacheDir`: the result, and whether
 * the compiler was loaded on its main thread. The script is a file, not -e: a worker thread
 * inherits --input-type, which only -e allows.
 */
function checkInFreshProcess(fn: "typecheckSpecs" | "typecheckSpecsIsolated", cacheDir: string): { cached: boolean; loaded: boolean } {
  const spec = path.join(root, "specs", "conformance", "refpin.ts");
  const script = [
    `import { createRequire } from "node:module";`,
    `import { ${fn} } from ${JSON.stringify(pathToFileURL(path.join(root, "bin", "typecheck.ts")).href)};`,
    `const r = await ${fn}([${JSON.stringify(spec)}], { cacheDir: ${JSON.stringify(cacheDir)} });`,
    `if (!r.ok) throw new Error(r.diagnostics.join("\\n"));`,
    `const loaded = Object.keys(createRequire(import.meta.url).cache).some((k) => /[\\\\/]typescript[\\\\/]lib[\\\\/]/.test(k));`,
    `console.log(JSON.stringify({ cached: r.cached, loaded }));`,
  ].join("\n");
  const file = path.join(tempDir(), "check.mjs");
  writeFileSync(file, script);
  const c = spawnSync(process.execPath, ["--import", "tsx", file], { cwd: root, encoding: "utf8" });
  assert.equal(c.status, 0, c.stderr);
  return JSON.parse(c.stdout) as { cached: boolean; loaded: boolean };
}

test("a cached pass does not load the compiler", () => {
  const cacheDir = tempDir();
  assert.deepEqual(checkInFreshProcess("typecheckSpecs", cacheDir), { cached: false, loaded: true });
  assert.deepEqual(checkInFreshProcess("typecheckSpecs", cacheDir), { cached: true, loaded: false });
});

test("the command's check runs the compiler on a thread of its own: this thread never loads it, cold or cached", () => {
  const cacheDir = tempDir();
  assert.deepEqual(checkInFreshProcess("typecheckSpecsIsolated", cacheDir), { cached: false, loaded: false });
  assert.deepEqual(checkInFreshProcess("typecheckSpecsIsolated", cacheDir), { cached: true, loaded: false });
});

test("the check on its own thread reports what the check on this one does", async () => {
  for (const f of ["misspelt-field.ts", "syntax-error.ts"]) {
    assert.deepEqual(await typecheckSpecsIsolated([fixture(f)], { cacheDir: tempDir() }), await typecheckSpecs([fixture(f)], { cacheDir: tempDir() }), f);
  }
});

test("syntaxLocation names file:line:col of a spec tsx cannot parse", async () => {
  const file = fixture("syntax-error.ts");
  const e = await import(pathToFileURL(file).href).then(
    () => assert.fail("the fixture should not load"),
    (e: unknown) => e,
  );
  const loc = syntaxLocation(e);
  assert.ok(loc, String(e));
  assert.match(loc, new RegExp(`^${rel(file)}:7:3 - error: Expected "}" but found "params"\n {2}7 \\|   params: z\\.object\\(\\{\\}\\),\n {4}\\| {3}\\^$`));
  // esbuild's structured errors, when the error object still has them.
  const structured = { errors: [{ text: "Unexpected end of file", location: { file, line: 11, column: 3, lineText: "});", length: 0 } }] };
  assert.equal(syntaxLocation(structured), `${rel(file)}:11:4 - error: Unexpected end of file\n  11 | });\n     |    ^`);
  assert.equal(syntaxLocation(new Error("module top-level throws")), undefined);
});
