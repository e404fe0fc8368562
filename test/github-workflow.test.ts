// examples/github-workflow.yml, the workflow the README recommends, run locally: its
// refcheck step (npx refcheck replaced by this checkout's bin) must write every file the
// later steps upload. The yaml package reads it: the workflow uses nested mappings and
// sequences, block scalars may follow, and a hand-made subset reader would be a bug source.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
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

/**
 * The sharded recipes (GitHub matrix, GitLab parallel:matrix, Kubernetes Indexed Job) run
 * end to end here: each shard command as the CI would run it (npx refcheck replaced by this
 * checkout's bin; `specs` is the tutorial's folder, two jobs over four shards, so some
 * shards are empty), then the merge command, which must exit 0 and write every report.
 */
function runRecipe(name: string, shardCommands: { cmd: string; env: Record<string, string> }[], mergeCommand: string, reports: string[]) {
  const tmp = mkdtempSync(path.join(tmpdir(), `refcheck-${name}-`));
  try {
    mkdirSync(path.join(tmp, "out"), { recursive: true });
    const sh = (cmd: string, env: Record<string, string>) => {
      const line = cmd
        .replaceAll("npx refcheck", `node ${JSON.stringify(path.join(root, "bin", "refcheck.mjs"))}`)
        .replaceAll(" specs ", ` ${JSON.stringify(path.join(root, "specs", "tutorial"))} `)
        .replaceAll("/out/", `${tmp}/out/`);
      return spawnSync("sh", ["-c", line], { cwd: tmp, encoding: "utf8", timeout: 300_000, env: { ...process.env, NO_COLOR: "1", REFCHECK_DEBUG: "", GITHUB_ACTIONS: "", ...env } });
    };
    for (const { cmd, env } of shardCommands) {
      const r = sh(cmd, env);
      assert.equal(r.status, 0, `${name}: ${cmd}\n${r.stderr}`);
    }
    const m = sh(mergeCommand, {});
    assert.equal(m.status, 0, `${name}: ${mergeCommand}\n${m.stderr}`);
    for (const f of reports) assert.ok(existsSync(path.join(tmp, f)), `${name}: ${f} written`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

test("sharded recipes: GitHub matrix, GitLab parallel:matrix and a Kubernetes Indexed Job, end to end", () => {
  const gh = parse(readFileSync(path.join(root, "examples", "github-sharded.yml"), "utf8")) as {
    jobs: { shard: { strategy: { matrix: { shard: number[] } }; steps: Step[] }; merge: { needs: string; steps: Step[] } };
  };
  const shards = gh.jobs.shard.strategy.matrix.shard;
  assert.equal(gh.jobs.merge.needs, "shard");
  const ghShard = gh.jobs.shard.steps.find((s) => s.run?.includes("--shard"))!.run!;
  const ghMerge = gh.jobs.merge.steps.find((s) => s.run?.includes("refcheck merge"))!.run!;
  runRecipe("github", shards.map((i) => ({ cmd: ghShard.replaceAll("${{ matrix.shard }}", String(i)), env: {} })), ghMerge, ["out/refcheck.sarif", "out/refcheck.xml", "out/refcheck.html"]);

  const gl = parse(readFileSync(path.join(root, "examples", "gitlab-sharded.yml"), "utf8")) as Record<string, { script: string[]; parallel?: { matrix: { SHARD: string[] }[] } }>;
  const glShard = gl["refcheck-shard"], glMerge = gl["refcheck-merge"];
  const glCmds = glShard.parallel!.matrix[0].SHARD.flatMap((i) => glShard.script.filter((l) => l !== "npm ci").map((cmd) => ({ cmd, env: { SHARD: i } })));
  runRecipe("gitlab", glCmds, glMerge.script.find((l) => l.includes("merge"))!, ["out/refcheck.xml", "out/refcheck.html"]);

  const docs = readFileSync(path.join(root, "examples", "k8s-indexed-job.yaml"), "utf8").split(/^---$/m).map((d) => parse(d)) as {
    spec: { completions?: number; completionMode?: string; template: { spec: { containers: { args: string[] }[] } } };
  }[];
  const [shardJob, mergeJob] = docs;
  assert.equal(shardJob.spec.completionMode, "Indexed");
  const k8sShard = shardJob.spec.template.spec.containers[0].args[0];
  const k8sCmds = Array.from({ length: shardJob.spec.completions! }, (_, i) => ({ cmd: k8sShard, env: { JOB_COMPLETION_INDEX: String(i) } }));
  runRecipe("k8s", k8sCmds, mergeJob.spec.template.spec.containers[0].args[0], ["out/refcheck.xml", "out/refcheck.sarif"]);
});
