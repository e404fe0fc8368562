// Sharding: `--shard I/K` runs as separate processes, `refcheck merge` gives the reports of the
// unsharded run (timings aside), and merge refuses shards that do not make one whole run.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { assignShards, jobId, parseShard, ShardError } from "../bin/shard.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const tmp = path.join(root, "test", `.tmp-shard-${process.pid}`);
const bin = ["--import", "tsx", "bin/refcheck.ts"];
const env = { ...process.env, REFCHECK_DEBUG: "", NO_COLOR: "1", GITHUB_ACTIONS: "" };
const common = ["--quiet", "--skip-typecheck", "--workers", "1"];

before(() => mkdirSync(tmp, { recursive: true }));
after(() => rmSync(tmp, { recursive: true, force: true }));

function run(args: string[]) {
  const r = spawnSync(process.execPath, [...bin, ...args], { cwd: root, encoding: "utf8", timeout: 300_000, env, maxBuffer: 1 << 28 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function runAsync(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [...bin, ...args], { cwd: root, env });
    let out = "", err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("exit", (code) => resolve({ code, out, err }));
  });
}

/** Timings and speeds differ between runs; everything else must not. */
const untimed = (s: string) =>
  s
    .replace(/"(seconds|statesPerSecond)": [0-9.e+-]+/g, '"$1": T')
    .replace(/\b[0-9][0-9,]*(\.[0-9]+)? ?(s|ms)\b/g, "T")
    .replace(/time="[0-9.]+"/g, 'time="T"')
    .replace(/[0-9,]+ states\/s/g, "R");

/** Equal apart from timings; on a difference, the first line that differs. */
function sameText(got: string, want: string, what: string): void {
  const a = untimed(got).split("\n"), b = untimed(want).split("\n");
  const i = a.findIndex((x, j) => x !== b[j]);
  if (i >= 0 || a.length !== b.length) assert.fail(`${what}: line ${i + 1} differs:\n  merged:    ${a[i]}\n  unsharded: ${b[i]}`);
}

const outputs = (dir: string) => ["--json", `--junit=${dir}/r.xml`, `--sarif=${dir}/r.sarif`, `--markdown=${dir}/r.md`, `--html=${dir}/r.html`, `--itf=${dir}/itf`];

test("shard: parseShard and its errors", () => {
  assert.deepEqual(parseShard("2/4"), { index: 2, count: 4 });
  for (const bad of ["0/4", "5/4", "1/0", "a/b", "1-4", "", "1/4/2"]) assert.throws(() => parseShard(bad), ShardError, bad);
});

test("shard: the hash assignment is stable when jobs are added; costs balance longest-first", () => {
  const ids = Array.from({ length: 40 }, (_, i) => `spec${i} [design=x]`);
  const a = assignShards(ids, 4);
  const b = assignShards([...ids, "new [design=y]"], 4);
  assert.deepEqual(b.slice(0, ids.length), a, "adding a job moves no other");
  assert.ok(a.every((k) => k >= 1 && k <= 4));
  const costs = new Map(ids.map((id, i) => [id, i + 1]));
  const c = assignShards(ids, 4, costs);
  const load = [0, 0, 0, 0];
  ids.forEach((id, i) => (load[c[i] - 1] += costs.get(id)!));
  assert.ok(Math.max(...load) - Math.min(...load) <= 40, `balanced: ${load.join(", ")}`);
  assert.deepEqual(assignShards(ids, 4, costs), c, "deterministic");
  assert.equal(jobId("a", { y: 1, x: "b" }), jobId("a", { x: "b", y: 1 }));
});

test("shard: for K = 1..5, K shard processes merged equal the unsharded run of every shipped spec", async () => {
  const whole = path.join(tmp, "whole");
  mkdirSync(whole, { recursive: true });
  const u = run(["compare", "specs", ...common, ...outputs(whole)]);
  assert.equal(u.code, 0, u.err);
  for (let K = 1; K <= 5; K++) {
    const dir = path.join(tmp, `k${K}`);
    mkdirSync(dir, { recursive: true });
    const files: string[] = [];
    // Two at a time: the machine has two cores.
    for (let i = 1; i <= K; i += 2) {
      const batch = [i, i + 1].filter((x) => x <= K);
      const rs = await Promise.all(batch.map((x) => runAsync(["compare", "specs", ...common, "--shard", `${x}/${K}`, "--json"])));
      rs.forEach((r, j) => {
        assert.equal(r.code, 0, r.err);
        const f = path.join(dir, `shard-${batch[j]}.json`);
        writeFileSync(f, r.out);
        files.push(f);
      });
    }
    const m = run(["merge", ...files, ...outputs(dir)]);
    assert.equal(m.code, 0, m.err);
    sameText(m.out, u.out, `K=${K}: merged --json`);
    for (const f of ["r.xml", "r.sarif", "r.md", "r.html"]) {
      sameText(readFileSync(path.join(dir, f), "utf8"), readFileSync(path.join(whole, f), "utf8"), `K=${K}: ${f}`);
    }
    const itf = (d: string) => spawnSync("ls", [path.join(d, "itf")], { encoding: "utf8" }).stdout;
    assert.equal(itf(dir), itf(whole), `K=${K}: the ITF files`);
  }
});

test("shard: merge refuses a missing, duplicated, foreign or unfinished shard (exit 2)", () => {
  const dir = path.join(tmp, "refuse");
  mkdirSync(dir, { recursive: true });
  const spec = "specs/tutorial/cached-file.ts";
  const shard = (i: number, K: number, extra: string[] = []) => {
    const r = run(["compare", spec, ...common, "--shard", `${i}/${K}`, "--json", ...extra]);
    assert.equal(r.code, 0, r.err);
    const f = path.join(dir, `s${i}of${K}${extra.length ? "x" : ""}.json`);
    writeFileSync(f, r.out);
    return f;
  };
  const s1 = shard(1, 2), s2 = shard(2, 2), t1 = shard(1, 3), p2 = shard(2, 2, ["--param", "design=pinned"]);
  const refuse = (files: string[], re: RegExp) => {
    const r = run(["merge", ...files]);
    assert.equal(r.code, 2, r.out + r.err);
    assert.match(r.err, re);
  };
  refuse([s1], /shard 2\/2 missing/);
  refuse([s1, s1], /shard 1\/2 is given twice/);
  refuse([s1, t1], /different runs \(3 shards, not 2\)/);
  refuse([s1, p2], /different runs \(other spec contents, parameters or flags\)/);
  refuse([spec], /not JSON/);
  // A shard interrupted before its jobs were done.
  const cut = JSON.parse(readFileSync(s2, "utf8"));
  if (cut.assigned.length === 0) cut.assigned = [...cut.jobs];
  cut.verdicts = [];
  cut.finished = false;
  const c2 = path.join(dir, "cut.json");
  writeFileSync(c2, JSON.stringify(cut));
  refuse([s1, c2], /did not finish .* --allow-unfinished/);
  const r = run(["merge", s1, c2, "--allow-unfinished"]);
  assert.equal(r.code, 3, r.err);
  assert.match(r.err, /never finished/);
  // --shard-costs without --shard is a usage error.
  const u = run(["compare", spec, ...common, "--shard-costs", s1]);
  assert.equal(u.code, 2);
  assert.match(u.err, /--shard-costs balances the shards of a --shard run/);
});
