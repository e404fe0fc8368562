// examples/github-workflow.yml, the workflow the README recommends, run locally: its
// refcheck step (npx refcheck replaced by this checkout's bin) must write every file the
// later steps upload. The yaml package reads it: the workflow uses nested mappings and
// sequences, block scalars may follow, and a hand-made subset reader would be a bug source.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
type Step = { name?: string; run?: string; uses?: string; if?: string; with?: Record<string, unknown> };
const wf = parse(readFileSync(path.join(root, "examples", "github-workflow.yml"), "utf8")) as {
  permissions: Record<string, string>;
  jobs: Record<string, { steps: Step[] }>;
};
const steps = Object.values(wf.jobs).flatMap((j) => j.steps);

test("workflow: permissions, upload steps after a failing check, SARIF category", () => {
  assert.equal(wf.permissions["security-events"], "write");
  const check = steps.findIndex((s) => s.run?.includes("refcheck"));
  assert.ok(check > 0, "a refcheck step");
  assert.ok(steps.slice(0, check).some((s) => s.run === "npm ci"));
  const uploads = steps.slice(check + 1);
  assert.ok(uploads.length >= 3);
  for (const s of uploads) assert.equal(s.if, "${{ !cancelled() }}", `${s.name}: must run after refcheck exits 1`);
  const sarif = steps.find((s) => s.uses?.startsWith("github/codeql-action/upload-sarif@"))!;
  assert.equal(sarif.with!.category, "refcheck");
  assert.ok(steps.some((s) => s.uses?.startsWith("actions/upload-artifact@")));
});

test("workflow: its refcheck command writes every file the later steps read", () => {
  const tmp = mkdtempSync(path.join(tmpdir(), "refcheck-wf-"));
  try {
    // The workflow runs at the repository root: so does this run, with its out/ folder moved to a temporary one.
    const at = (p: string) => (p.startsWith("out/") ? path.join(tmp, p) : path.join(root, p));
    const summary = path.join(tmp, "summary.md");
    for (const s of steps.filter((x) => x.run?.includes("refcheck"))) {
      const words = s.run!.trim().split(/\s+/);
      assert.deepEqual(words.slice(0, 2), ["npx", "refcheck"], s.run);
      const args = words.slice(2).map((w) => (w.startsWith("out/") ? at(w) : w));
      const r = spawnSync(process.execPath, [path.join(root, "bin", "refcheck.mjs"), ...args], {
        cwd: root,
        encoding: "utf8",
        timeout: 300_000,
        env: { ...process.env, NO_COLOR: "1", REFCHECK_DEBUG: "", GITHUB_ACTIONS: "true", GITHUB_STEP_SUMMARY: summary },
      });
      assert.ok(r.status === 0 || r.status === 1, `${s.run}: exit ${r.status}\n${r.stderr}`);
      assert.ok(r.stdout.split("\n").filter((l) => l.startsWith("::error ")).length <= 10, "at most 10 error annotations");
      for (const flag of ["--sarif", "--junit", "--markdown", "--html"]) {
        const i = words.indexOf(flag);
        if (i >= 0) assert.ok(existsSync(at(words[i + 1]!)), `${flag} ${words[i + 1]} written`);
      }
      const itf = words.indexOf("--itf");
      if (itf >= 0) assert.ok(readdirSync(at(words[itf + 1]!)).some((f) => f.endsWith(".itf.json")));
    }
    assert.match(readFileSync(summary, "utf8"), /^# refcheck/);
    // What the upload steps name exists.
    for (const s of steps) {
      for (const key of ["sarif_file", "report_paths", "path"]) {
        const p = s.with?.[key];
        if (typeof p === "string") assert.ok(existsSync(at(p)), `${s.name}: ${key} ${p}`);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
