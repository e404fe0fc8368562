// The outputs of `compare specs` checked the way their real consumers read them: SARIF
// against the OASIS schema with a JSON-schema validator (and GitHub's fingerprint rules),
// JUnit against the Jenkins xUnit plugin's XSD with xmllint, ITF against what itf-rs accepts.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { sarifValidator, schemaDir, xmllint } from "./support/schemas.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

let out = "";
let run: { code: number | null; err: string } = { code: null, err: "" };
before(() => {
  out = mkdtempSync(path.join(tmpdir(), "refcheck-consumers-"));
  // Run from inside specs/: SARIF paths must still be relative to the repository root.
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", path.join(root, "bin", "refcheck.ts"), "compare", ".", "--ignore-expected", "--sarif", path.join(out, "r.sarif"), "--junit", path.join(out, "r.xml"), "--itf", path.join(out, "traces")],
    { cwd: path.join(root, "specs"), encoding: "utf8", timeout: 300_000, env: { ...process.env, NO_COLOR: "1", GITHUB_ACTIONS: "", REFCHECK_DEBUG: "" } },
  );
  run = { code: r.status, err: r.stderr };
  process.on("exit", () => rmSync(out, { recursive: true, force: true }));
});

// --ignore-expected: every shipped violation is a failure, the case consumers must read.
test("consumers: compare specs writes every report (exit 1 with --ignore-expected)", () => {
  assert.equal(run.code, 1, run.err);
});

test("consumers: SARIF of the shipped specs is valid SARIF 2.1.0 with one fingerprint per result", () => {
  const log = JSON.parse(readFileSync(path.join(out, "r.sarif"), "utf8")) as any;
  const validate = sarifValidator();
  const ok = validate(structuredClone(log));
  assert.ok(ok, JSON.stringify(validate.errors?.slice(0, 5), null, 1));
  const results = log.runs[0].results as { ruleId: string; partialFingerprints: Record<string, string>; locations: { physicalLocation: { artifactLocation: { uri: string; uriBaseId?: string } } }[]; properties: Record<string, unknown> }[];
  assert.ok(results.length > 20, `${results.length} results`);
  for (const key of ["primaryLocationLineHash", "refcheck/v1"]) {
    const fps = results.map((r) => `${r.ruleId} ${r.partialFingerprints[key]}`);
    assert.equal(new Set(fps).size, results.length, `${key} repeats`);
  }
  // Paths from the repository root although the run was in specs/.
  for (const r of results) {
    const loc = r.locations[0]!.physicalLocation.artifactLocation;
    assert.match(loc.uri, /^specs\/[\w/-]+\.ts$/);
    assert.equal(loc.uriBaseId, "%SRCROOT%");
  }
  assert.ok(results.some((r) => typeof r.properties.configuration === "string"), "configurations recorded");
  const runObj = log.runs[0];
  assert.equal(runObj.automationDetails.id, "refcheck/");
  assert.match(runObj.originalUriBaseIds["%SRCROOT%"].uri, /^file:\/\/.*\/$/);
  for (const rule of runObj.tool.driver.rules) {
    assert.ok(rule.help.text.length > 20 && rule.help.markdown.length > 20, rule.id);
  }
  console.log(`# SARIF of compare specs: valid, ${results.length} results, ${new Set(results.map((r) => r.partialFingerprints.primaryLocationLineHash)).size} unique fingerprints`);
});

test("consumers: the SARIF validator rejects a broken log (negative control)", () => {
  const log = JSON.parse(readFileSync(path.join(out, "r.sarif"), "utf8")) as any;
  log.runs[0].results[0].level = "fatal";
  log.runs[0].results[0].locations[0].physicalLocation.region.startLine = 0;
  const validate = sarifValidator();
  assert.equal(validate(log), false);
});

const lint = xmllint();
const XSD = path.join(schemaDir, "junit-10.xsd");
function validateXml(file: string): { ok: boolean; err: string } {
  const r = spawnSync((lint as { path: string }).path, ["--noout", "--schema", XSD, file], { encoding: "utf8" });
  return { ok: r.status === 0, err: r.stderr };
}

test("consumers: JUnit of the shipped specs is valid against the Jenkins xUnit plugin's junit-10.xsd", { skip: "skip" in lint ? lint.skip : false }, () => {
  const file = path.join(out, "r.xml");
  const r = validateXml(file);
  assert.ok(r.ok, r.err.split("\n").slice(0, 5).join("\n"));
  const xml = readFileSync(file, "utf8");
  // What GitLab keys results by stays unique, and failures still name their place.
  const cases = [...xml.matchAll(/<testcase name="([^"]*)" classname="([^"]*)"/g)].map((m) => `${m[2]} ${m[1]}`);
  assert.equal(new Set(cases).size, cases.length);
  assert.match(xml, /<failure [^>]*>[^<]*\n {4}at [\w/-]+\.\w+ \(specs\/[\w/-]+\.ts:\d+\)/);
  console.log(`# JUnit of compare specs: xmllint --schema junit-10.xsd: valid, ${cases.length} testcases`);
});

test("consumers: xmllint rejects what xUnit rejects (negative control)", { skip: "skip" in lint ? lint.skip : false }, () => {
  const bad = path.join(out, "bad.xml");
  writeFileSync(bad, '<testsuites skipped="0"><testsuite name="s" tests="1"><testcase name="t" file="a.ts" line="1"/></testsuite></testsuites>\n');
  const r = validateXml(bad);
  assert.equal(r.ok, false);
  assert.match(r.err, /attribute 'skipped'/);
  assert.match(r.err, /attribute 'file'/);
});

test("consumers: ITF files of the shipped specs keep #meta values strings and one pick shape per key (itf-rs)", () => {
  const dir = path.join(out, "traces");
  const files = readdirSync(dir).filter((f) => f.endsWith(".itf.json"));
  assert.ok(files.length > 50, `${files.length} traces`);
  for (const f of files) {
    const doc = JSON.parse(readFileSync(path.join(dir, f), "utf8"));
    for (const [k, v] of Object.entries(doc["#meta"])) assert.equal(typeof v, "string", `${f}: #meta.${k}`);
    assert.ok(Array.isArray(doc.params), `${f}: params`);
    const shapes = new Map<string, string>();
    for (const s of doc.states) {
      for (const v of [...doc.params, ...doc.vars]) assert.ok(Object.hasOwn(s, v), `${f}: ${v} missing`);
      const picks = s["mbt::nondetPicks"] as Record<string, { tag: string; value: unknown }>;
      assert.equal(Object.keys(picks).sort().join(), Object.keys(doc.states[0]["mbt::nondetPicks"]).sort().join(), `${f}: pick names differ between states`);
      for (const [k, x] of Object.entries(picks)) {
        if (x.tag !== "Some") continue;
        const shape = JSON.stringify(x.value, (_key, v) => (typeof v === "string" ? "s" : typeof v === "boolean" ? "b" : v && typeof v === "object" && "#bigint" in v ? "i" : v));
        assert.equal(shapes.get(k) ?? shape, shape, `${f}: pick ${k} changes shape`);
        shapes.set(k, shape);
      }
    }
  }
});
