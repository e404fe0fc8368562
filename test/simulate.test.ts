// Simulation (`refcheck simulate`): random walks, shrinking, the verdict it gives (never
// "holds"), reproducibility from the seed, swarm workers, and the command line.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import fc from "fast-check";
import { z } from "zod";
import { check, defineSpec, designAssignments, exitCodeOf, Fault, Verdict, type Spec } from "../checker/index.ts";
import { judge } from "../checker/expect.ts";
import { simulate, simulateAsync, type SimulateOptions } from "../checker/simulate.ts";
import { renderVerdict } from "../reports/console.ts";
import { renderers } from "../reports/index.ts";
import refpin from "../specs/conformance/refpin.ts";
import cachedFile from "../specs/tutorial/cached-file.ts";
import vmPinning from "../specs/kvm-vfio/vm-pinning.ts";
import lockOrder from "../specs/guest-memfd/lock-order.ts";
import { assertValidTrace, naiveModel } from "./support/naive.ts";
import { specArb, toSpec } from "./support/random-spec.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const refpinFile = "specs/conformance/refpin.ts";
const tmp = path.join(root, "test", `.tmp-sim-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
before(() => mkdirSync(tmp, { recursive: true }));
after(() => rmSync(tmp, { recursive: true, force: true }));

function sim(spec: Spec, params: Record<string, unknown>, o: Partial<SimulateOptions> = {}, extra: Record<string, unknown> = {}): Verdict {
  return simulate(spec, params, { simulate: { runs: 2000, depth: 100, seed: 1, ...o }, validate: true, ...extra });
}

/** What must not depend on timing: everything but the clock. */
function stable(v: Verdict) {
  const { walkSeconds: _w, shrinkSeconds: _s, stepsPerSecond: _p, workers: _k, ...s } = v.simulation!;
  return { properties: v.properties, coverage: v.coverage, warnings: v.warnings, expectation: v.expectation, outcome: v.outcome, simulation: s };
}

function lengthOf(v: Verdict, name: string): number | undefined {
  return v.properties.find((p) => p.name === name)?.trace?.length;
}

test("simulate: the same seed gives the same verdict, another seed other walks", () => {
  const a = sim(refpin, { N: 4, variant: "plain" }, { seed: 123 });
  const b = sim(refpin, { N: 4, variant: "plain" }, { seed: 123 });
  assert.deepEqual(stable(a), stable(b));
  assert.equal(a.simulation!.seed, 123);
  const c = sim(refpin, { N: 4, variant: "plain" }, { seed: 124 });
  assert.notDeepEqual(c.coverage.map((x) => x.fired), a.coverage.map((x) => x.fired));
});

test("simulate: swarm workers give the verdict of one thread (each run has its own seed)", async () => {
  const opts = { simulate: { runs: 3000, depth: 60, seed: 99 }, validate: true };
  const one = simulate(refpin, { N: 5, variant: "plain" }, opts);
  const two = await simulateAsync(refpin, { N: 5, variant: "plain" }, { ...opts, workers: 2, specUrl: pathToFileURL(path.join(root, refpinFile)).href });
  assert.equal(two.simulation!.workers, 2);
  assert.deepEqual(stable(two), stable(one));
});

test("simulate: RefPin plain N=7 breaks Safe, shrunk to its 2-step minimum, in under 2 s", () => {
  // CPU time of this thread's work: the wall clock also counts other processes on a busy machine.
  const c0 = process.cpuUsage();
  const v = sim(refpin, { N: 7, variant: "plain" }, { runs: 10_000, seed: 2026 });
  const c = process.cpuUsage(c0);
  const seconds = (c.user + c.system) / 1e6;
  const safe = v.properties.find((p) => p.name === "Safe")!;
  assert.equal(safe.status, "violated");
  assert.equal(safe.trace!.length, 2);
  assert.deepEqual(safe.trace!.steps.slice(1).map((s) => s.action), ["CloseVm", "FileAdd"]);
  assert.ok(seconds < 2, `${seconds.toFixed(2)} s of CPU`);
  assert.ok(v.simulation!.stepsPerSecond > 0 && v.stats.stepsPerSecond === v.simulation!.stepsPerSecond);
  // Declared as violated in 2 steps: found as declared, and the simulation stays incomplete.
  assert.equal(v.expectation?.status, "as-expected");
  assert.equal(v.complete, false);
  assert.equal(exitCodeOf([v]), 3);
});

test("simulate: shrunk traces of shipped specs are never shorter than the exhaustive shortest, and equal where known", () => {
  const cases: { spec: Spec; params: Record<string, unknown>; equal: string[] }[] = [
    { spec: cachedFile, params: { design: "borrowed" }, equal: ["noFault", "workAfterClose"] },
    { spec: refpin, params: { N: 3, variant: "plain" }, equal: ["Safe"] },
    // Lock order: a cycle among the dependencies the walks saw, the walk to its last one shrunk.
    { spec: lockOrder, params: { design: "invalidate-lock-first" }, equal: ["noFault", "lockOrder"] },
    ...designAssignments(vmPinning, { modules: "one" })
      // 4b and 4d: greedy shrinking alone stops one step above the shortest; drop-and-swap reaches it.
      .filter((a) => ["4a-get_file", "2-helpers", "4c-strong", "4b-uncleared", "4d-unlocked-read"].includes(String(a.design)))
      .map((params) => ({ spec: vmPinning, params, equal: ["noFault", "vfioPointersIntoLoadedModules", "noLeak", "rightVmFile", "kvmFreedUnreferenced", "vfioHoldsLastVmRef"] })),
  ];
  assert.equal(cases.length, 8);
  for (const { spec, params, equal } of cases) {
    const exhaustive = check(spec, params);
    const v = sim(spec, params, { runs: 10_000, seed: 7 });
    const what = `${spec.name} ${JSON.stringify(params)}`;
    let compared = 0;
    for (const p of exhaustive.properties) {
      // A walk decides no liveness property (its status stays unknown): lassos need the whole graph.
      if (!p.trace || p.kind === "liveness") continue;
      const q = v.properties.find((x) => x.name === p.name)!;
      assert.equal(q.status, p.status, `${what} ${p.name}`);
      assert.equal(q.message, p.message, `${what} ${p.name}`);
      assert.ok(q.trace!.length >= p.trace.length, `${what} ${p.name}: ${q.trace!.length} < ${p.trace.length}`);
      if (equal.includes(p.name)) {
        assert.equal(q.trace!.length, p.trace.length, `${what} ${p.name}`);
        compared++;
      }
    }
    assert.ok(compared > 0, what);
  }
});

test("simulate: on random specs, every finding is real, its trace valid step by step and no shorter than the shortest", () => {
  fc.assert(
    fc.property(specArb(false), fc.nat(), (ast, seed) => {
      const spec = toSpec(ast);
      const exhaustive = check(spec, {});
      const v = sim(spec, {}, { runs: 200, depth: 30, seed });
      const m = naiveModel(spec, {});
      for (const q of v.properties) {
        assert.ok(["violated", "reachable", "unknown"].includes(q.status), `${q.name}: ${q.status}`);
        const p = exhaustive.properties.find((x) => x.name === q.name)!;
        if (q.status === "unknown") {
          assert.equal(q.trace, undefined);
          continue;
        }
        assert.equal(p.status, q.status, q.name);
        assert.equal(q.failed, p.failed, q.name);
        assert.ok(q.trace!.length >= p.trace!.length, `${q.name}: ${q.trace!.length} < ${p.trace!.length}`);
        // Replayed on plain objects: every step enabled, its state as recorded, the property shown at the end.
        assertValidTrace(m, q, q.trace!);
      }
      assert.equal(v.complete, false);
      assert.equal(v.outcome, v.properties.some((p) => p.failed) ? "fail" : "incomplete");
    }),
    { numRuns: 80 },
  );
});

const kinds = defineSpec({
  name: "test/sim-kinds",
  params: z.object({}),
  state: () => z.object({ x: z.number().int().min(0).max(6), y: z.number().int().min(0).max(3), busy: z.boolean() }),
  init: () => ({ x: 0, y: 0, busy: false }),
  actions: () => ({
    Inc: { when: (s) => s.x < 6 && !s.busy, then: (s) => { s.x += 1; } },
    Bump: { when: (s) => s.y < 3, then: (s) => { s.y += 1; if (s.y === 3 && s.x === 2) throw new Fault("y overflow at x = 2"); } },
    Lock: { when: (s) => s.x === 4 && !s.busy, then: (s) => { s.busy = true; } },
  }),
  invariants: { small: (s) => s.x + s.y < 7 },
  actionProperties: { slowX: (b, a) => a.x - b.x < 1 || b.y !== 1 },
  quiescent: { tidy: (s) => s.y === 0 },
  busy: (s) => (s.busy && s.y === 3 ? "locker" : undefined),
  reachable: { x5: (s) => s.x === 5, never: { when: (s) => s.x === 6 && s.busy, expect: "unreachable" } },
});

test("simulate: faults, invariants, action properties, quiescence, deadlock and witnesses are found as the search finds them", () => {
  const exhaustive = check(kinds, {});
  const v = sim(kinds, {}, { runs: 3000, depth: 40, seed: 5 });
  for (const p of exhaustive.properties) {
    const q = v.properties.find((x) => x.name === p.name)!;
    if (p.status === "holds" || p.status === "unreachable") assert.equal(q.status, "unknown", p.name);
    else {
      assert.equal(q.status, p.status, p.name);
      assert.equal(q.message, p.message, p.name);
      assert.equal(q.trace!.length, p.trace!.length, p.name);
    }
  }
  assert.deepEqual(
    Object.fromEntries(v.properties.map((p) => [p.name, p.status])),
    { noFault: "violated", noDeadlock: "violated", small: "violated", slowX: "violated", tidy: "violated", x5: "reachable", never: "unknown" },
  );
  const m = naiveModel(kinds, {});
  for (const p of v.properties) if (p.trace) assertValidTrace(m, p, p.trace);
});

const counter = defineSpec({
  name: "test/sim-counter",
  params: z.object({}),
  state: () => z.object({ x: z.number().int().min(0).max(20) }),
  init: () => ({ x: 0 }),
  actions: () => ({ Inc: { when: (s) => s.x < 20, then: (s) => { s.x += 1; } }, Stay: { when: (s) => s.x < 20, then: () => {} } }),
  invariants: { bounded: (s) => s.x <= 20 },
  reachable: { top: (s) => s.x === 20 },
});

test("simulate: a witness not reached is unknown, never unreachable; reached, it has its trace", () => {
  const short = sim(counter, {}, { runs: 50, depth: 10 });
  const top = short.properties.find((p) => p.name === "top")!;
  assert.equal(top.status, "unknown");
  assert.equal(top.failed, false);
  assert.equal(short.properties.find((p) => p.name === "bounded")!.status, "unknown");
  const long = sim(counter, {}, { runs: 200, depth: 100 });
  assert.equal(lengthOf(long, "top"), 20);
  assert.equal(long.properties.find((p) => p.name === "top")!.status, "reachable");
});

test("simulate: without a violation the verdict says what ran and never that a property holds (exit 3)", () => {
  const v = sim(refpin, { N: 3, variant: "active" }, { runs: 500, seed: 11 });
  assert.ok(v.properties.every((p) => p.status === "unknown" && !p.failed));
  assert.equal(v.mode, "simulation");
  assert.equal(v.complete, false);
  assert.equal(v.outcome, "incomplete");
  assert.equal(exitCodeOf([v]), 3);
  assert.deepEqual(
    { runs: v.simulation!.runs, requestedRuns: v.simulation!.requestedRuns, depth: v.simulation!.depth, seed: v.simulation!.seed },
    { runs: 500, requestedRuns: 500, depth: 100, seed: 11 },
  );
  const said = "no violation found in 500 runs of depth 100";
  const text = renderVerdict(v, { color: false });
  assert.ok(text.includes(said), text);
  assert.ok(text.includes("seed 11"), text);
  assert.doesNotMatch(text, /\bholds\b|PASS/);
  for (const r of renderers) {
    if (r.kind !== "file") continue;
    const out = r.render([v], { cwd: root, root });
    assert.ok(out.includes(said), `--${r.flag} does not say "${said}"`);
  }
});

test("simulate: a bound stops the walks with what they found so far", () => {
  const v = sim(refpin, { N: 5, variant: "active" }, { runs: 1e9 }, { timeoutSeconds: 0.3 });
  assert.equal(v.stoppedBy, "timeout");
  assert.ok(v.simulation!.runs > 0 && v.simulation!.runs < 1e9);
  assert.match(renderVerdict(v, { color: false }), /stopped by timeout after [\d,]+ of 1,000,000,000 runs/);
  const first = sim(refpin, { N: 5, variant: "plain" }, { runs: 1e9, first: true }, { timeoutSeconds: 20 });
  assert.equal(first.stoppedBy, "first-violation");
  assert.equal(lengthOf(first, "Safe"), 2);
});

test("simulate: a declared violation found in more steps than declared is as expected; in fewer, changed", () => {
  const declared = new Map([["Safe", { steps: 3 }]]);
  const at = (n: number) => [{ name: "Safe", kind: "invariant" as const, status: "violated" as const, failed: true, trace: { steps: [], length: n } }];
  assert.equal(judge(at(4), declared, { atLeastSteps: true }).status, "as-expected");
  assert.equal(judge(at(2), declared, { atLeastSteps: true }).status, "changed");
  assert.equal(judge(at(4), declared).status, "changed");
});

// --- the command line ---

function run(...args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "bin/refcheck.ts", ...args], {
    cwd: root,
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, REFCHECK_DEBUG: "", NO_COLOR: "1" },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("cli simulate: a violation exits 1 with its shrunk trace, and the seed is printed", () => {
  const r = run("simulate", refpinFile, "--param", "N=3", "--param", "variant=plain", "--seed", "9", "--runs", "500", "--ignore-expected", "--skip-typecheck");
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /--seed 9\b/);
  assert.match(r.out, /Safe\s+VIOLATED/);
  assert.match(r.out, /1\s+CloseVm/);
  assert.match(r.out, /2\s+FileAdd\(i=\d\)/);
  assert.match(r.out, /simulation, seed 9: 500 runs/);
});

test("cli simulate: no violation exits 3 and says so; --json is a Verdict; the printed seed reproduces the run", () => {
  const a = run("simulate", refpinFile, "--param", "N=3", "--param", "variant=active", "--runs", "300", "--skip-typecheck");
  assert.equal(a.code, 3, a.err);
  assert.match(a.out, /no violation found in 300 runs of depth 100/);
  assert.doesNotMatch(a.out, /\bholds\b/);
  const seed = /--seed (\d+)/.exec(a.err)?.[1];
  assert.ok(seed, a.err);
  const json = (s: string) => Verdict.parse(JSON.parse(s));
  const b = run("simulate", refpinFile, "--param", "N=4", "--param", "variant=plain", "--runs", "300", "--seed", seed, "--json", "--quiet", "--skip-typecheck");
  assert.equal(b.code, 3, b.err); // the violation is declared: as expected, and a simulation is never complete
  const v = json(b.out);
  assert.equal(v.mode, "simulation");
  assert.equal(v.simulation!.seed, Number(seed));
  assert.equal(v.properties.find((p) => p.name === "Safe")!.status, "violated");
  const c = run("simulate", refpinFile, "--param", "N=4", "--param", "variant=plain", "--runs", "300", "--seed", seed, "--json", "--quiet", "--skip-typecheck");
  assert.deepEqual(stable(json(c.out)), stable(v));
});

test("cli simulate: every report format renders the simulation", () => {
  const dir = path.join(tmp, "out");
  const r = run(
    "simulate", refpinFile, "--param", "N=3", "--param", "variant=plain", "--runs", "200", "--seed", "3", "--skip-typecheck",
    "--junit", path.join(dir, "r.xml"), "--sarif", path.join(dir, "r.sarif"), "--markdown", path.join(dir, "r.md"), "--html", path.join(dir, "r.html"), "--itf", path.join(dir, "itf"),
  );
  assert.equal(r.code, 3, r.err);
  const read = (f: string) => spawnSync("cat", [path.join(dir, f)], { encoding: "utf8" }).stdout;
  for (const f of ["r.xml", "r.sarif", "r.md", "r.html"]) assert.match(read(f), /SIMULATION \(seed 3\): 200 runs of depth 100/, f);
  const itf = spawnSync("ls", [path.join(dir, "itf")], { encoding: "utf8" }).stdout.trim().split("\n");
  assert.equal(itf.length, 1);
  assert.match(read(`itf/${itf[0]}`), /CloseVm/);
});

test("cli simulate: bad flags exit 2 naming the flag", () => {
  for (const [flag, value, says] of [
    ["--runs", "0", "--runs 0: expected a whole number greater than 0"],
    ["--depth", "-1", "--depth -1: expected a whole number greater than 0"],
    ["--seed", "abc", "--seed abc: expected a whole number"],
    ["--seed", "9007199254740993", "--seed 9007199254740993: expected a whole number"],
    ["--workers", "0", "--workers 0"],
    ["--timeout", "x", "--timeout x"],
  ]) {
    const r = run("simulate", refpinFile, flag, value);
    assert.equal(r.code, 2, `${flag} ${value}: ${r.err}`);
    assert.ok(r.err.startsWith(`refcheck: ${says}`), r.err);
    assert.doesNotMatch(r.err, /^\s+at /m);
  }
  const unknown = run("simulate", refpinFile, "--max-states", "5");
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /--max-states is not an option of simulate/);
});
