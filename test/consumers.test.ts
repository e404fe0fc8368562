// The outputs of `compare specs` checked the way their real consumers read them: SARIF
// against the OASIS schema with a JSON-schema validator (and GitHub's fingerprint rules),
// JUnit against the Jenkins xUnit plugin's XSD with xmllint, ITF against what itf-rs accepts.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { sarifValidator } from "./support/schemas.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

let out = "";
let run: { code: number | null; err: string } = { code: null, err: "" };
before(() => {
  out = mkdtempSync(path.join(tmpdir(), "refcheck-consumers-"));
  // Run from inside specs/: SARIF paths must still be relative to the repository root.
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", path.join(root, "bin", "refcheck.ts"), "compare", ".", "--sarif", path.join(out, "r.sarif"), "--junit", path.join(out, "r.xml"), "--itf", path.join(out, "traces")],
    { cwd: path.join(root, "specs"), encoding: "utf8", timeout: 300_000, env: { ...process.env, NO_COLOR: "1", GITHUB_ACTIONS: "", REFCHECK_DEBUG: "" } },
  );
  run = { code: r.status, err: r.stderr };
  process.on("exit", () => rmSync(out, { recursive: true, force: true }));
});

test("consumers: compare specs writes every report (exit 1: buggy designs ship on purpose)", () => {
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
