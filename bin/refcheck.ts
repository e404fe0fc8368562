// refcheck's command line. Exit codes (stable, documented in the README):
//   0 every property holds (or fails as the spec declares), 1 a property is violated (or a
//   verdict changed from the declared one), 2 usage or spec error,
//   3 a bound stopped the search before it finished (and nothing failed), or a simulation
//   found no violation (random walks prove nothing).
import { randomInt } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, totalmem } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
// Only light modules here: `--help` and a usage error need nothing else. The engine, the
// reports, the type check and zod load on the commands that use them.
import { closest } from "../checker/names.ts";
import { SpecError } from "../checker/spec.ts";
import type { SimulateOptions } from "../checker/simulate.ts";
import type { HostedOptions, SearchHost } from "../checker/supervise.ts";
import type { Verdict } from "../checker/verdict.ts";
import type { LoadedSpec, SkippedFile } from "./load.ts";
import type { OutputPlan, ReportArgs } from "./outputs.ts";
import type { Shard, ShardFile } from "./shard.ts";
import { FileError, ShardError } from "./errors.ts";
import { beginListing, refcheckVersion } from "./startup.mjs";

class UsageError extends Error {}

/**
 * Spec code may print (console.log while debugging a spec): keep stdout for the report and
 * for --json. Called before any spec is loaded (yargs's own --help and --version still
 * print to stdout).
 */
function specOutputToStderr(): void {
  console.log = console.info = console.debug = console.error;
}

/** --param NAME=VALUE list: each name once, a value after the "=". */
function parseParams(list: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  const items = list === undefined ? [] : Array.isArray(list) ? list : [list];
  if (list !== undefined && items.length === 0) throw new UsageError("--param: expected NAME=VALUE, e.g. --param N=5");
  for (const item of items) {
    const s = String(item);
    const eq = s.indexOf("=");
    if (eq <= 0) throw new UsageError(`--param ${s}: expected NAME=VALUE, e.g. --param N=5`);
    const name = s.slice(0, eq);
    if (name in out) throw new UsageError(`--param ${name} is given twice (${out[name]} and ${s.slice(eq + 1)}); give it once`);
    out[name] = s.slice(eq + 1);
  }
  return out;
}

/** A value flag given more than once: yargs makes an array of it. */
function once(flag: string, v: unknown): unknown {
  if (Array.isArray(v)) throw new UsageError(`${flag} is given ${v.length} times (${v.join(", ")}); give it once`);
  return v;
}

function positiveInt(flag: string, v: unknown): number | undefined {
  v = once(flag, v);
  if (v === undefined) return undefined;
  const n = typeof v === "string" && /^\s*\d+\s*$/.test(v) ? Number(v) : typeof v === "number" ? v : NaN;
  if (!Number.isSafeInteger(n) || n < (flag === "--max-depth" ? 0 : 1)) throw new UsageError(`${flag} ${String(v)}: expected a whole number${flag === "--max-depth" ? "" : " greater than 0"}`);
  return n;
}

/** Seconds, written in decimal (like the other bounds): 90, 1.5. */
function seconds(flag: string, v: unknown): number | undefined {
  v = once(flag, v);
  if (v === undefined) return undefined;
  const n = typeof v === "string" && /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : NaN;
  if (!(n > 0) || !Number.isFinite(n) || n > 1e9) throw new UsageError(`${flag} ${String(v)}: expected a number of seconds greater than 0, e.g. 90 or 1.5`);
  return n;
}

const UNITS: Record<string, number> = { "": 1, b: 1, k: 1e3, kb: 1e3, kib: 2 ** 10, m: 1e6, mb: 1e6, mib: 2 ** 20, g: 1e9, gb: 1e9, gib: 2 ** 30, t: 1e12, tb: 1e12, tib: 2 ** 40 };

/** A memory size: 300MB, 1.5GiB, 2G, or bytes. */
export function parseSize(flag: string, v: unknown): number | undefined {
  v = once(flag, v);
  if (v === undefined) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(String(v));
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  const n = m && unit ? Number(m[1]) * unit : NaN;
  if (!(n >= 1e6) || !Number.isFinite(n)) throw new UsageError(`${flag} ${String(v)}: expected a size of at least 1MB, e.g. 300MB, 2GB or 1.5GiB`);
  return Math.floor(n);
}

/** The memory this process may use: the machine's, or its cgroup's limit when lower. */
function availableMemory(): number {
  let limit = totalmem();
  for (const f of ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]) {
    try {
      const n = Number(readFileSync(f, "utf8").trim());
      if (Number.isFinite(n) && n > 0) limit = Math.min(limit, n);
    } catch {
      // not in a cgroup with a limit
    }
  }
  return limit;
}

/** Default --max-memory: three quarters of what is available, so the machine stays usable. */
const defaultMaxMemory = () => Math.floor(availableMemory() * 0.75);

const mb = (n: number) => `${Math.round(n / 1e6).toLocaleString("en-US")} MB`;

interface RunArgs {
  paths: string[];
  param?: unknown;
  design?: string;
  "max-states"?: unknown;
  "max-depth"?: unknown;
  "max-memory"?: unknown;
  timeout?: unknown;
  symmetry?: boolean;
  por?: boolean;
  first?: boolean;
  workers?: unknown;
  quiet?: boolean;
  "ignore-expected"?: boolean;
  shard?: unknown;
  "shard-costs"?: unknown;
  runs?: unknown;
  depth?: unknown;
  seed?: unknown;
}

/** --seed: a whole number (decimal or 0x hex) below 2^53, so that JSON keeps it exact. */
function parseSeed(v: unknown): number | undefined {
  v = once("--seed", v);
  if (v === undefined) return undefined;
  const t = String(v).trim();
  const n = /^\d+$/.test(t) ? Number(t) : /^0x[0-9a-f]+$/i.test(t) ? Number.parseInt(t.slice(2), 16) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`--seed ${String(v)}: expected a whole number from 0 to 2^53 - 1 (decimal, or hex with 0x), e.g. --seed 42`);
  return n;
}

/** The simulate command's walk settings; the seed is drawn at random when not given, and printed. */
async function simulateOptions(args: RunArgs & { first?: boolean }): Promise<SimulateOptions> {
  const { DEFAULT_DEPTH, DEFAULT_RUNS } = await import("../checker/simulate.ts");
  return {
    runs: positiveInt("--runs", args.runs) ?? DEFAULT_RUNS,
    depth: positiveInt("--depth", args.depth) ?? DEFAULT_DEPTH,
    seed: parseSeed(args.seed) ?? randomInt(2 ** 48 - 1),
    ...(args.first ? { first: true } : {}),
  };
}

/**
 * Progress on stderr: a line redrawn every second on a terminal; otherwise (a CI log) a
 * line every 30 seconds, so a long run shows it is alive. --quiet: none.
 */
function startProgress(host: SearchHost, label: string, quiet: boolean | undefined, simulation = false): () => void {
  if (quiet) return () => {};
  const tty = process.stderr.isTTY;
  const n = (x: number) => x.toLocaleString("en-US");
  const line = () => {
    const p = host.progress();
    // A simulation reports walks, steps and its longest walk in the same three counts.
    if (simulation) return `${label}: ${n(p.distinct)} runs, ${n(p.generated)} steps, longest walk ${p.depth}, ${p.seconds.toFixed(0)} s`;
    return `${label}: ${n(p.distinct)} states, ${n(p.generated)} generated, depth ${p.depth}, ${p.seconds.toFixed(0)} s`;
  };
  const timer = setInterval(() => {
    if (tty) process.stderr.write(`\r\x1b[K  ${line()}`);
    else process.stderr.write(`refcheck: progress: ${line()}\n`);
  }, tty ? 1000 : ciProgressSeconds() * 1000);
  timer.unref();
  return () => {
    clearInterval(timer);
    if (tty) process.stderr.write("\r\x1b[K");
  };
}

/** Seconds between progress lines when stderr is not a terminal (REFCHECK_PROGRESS_SECONDS, default 30). */
function ciProgressSeconds(): number {
  const v = Number(process.env.REFCHECK_PROGRESS_SECONDS);
  return v > 0 ? v : 30;
}

/** The run in progress, for the signal handlers. */
const session: { host?: SearchHost; interrupted: boolean } = { interrupted: false };

/**
 * SIGINT/SIGTERM stop the search like a bound: the incomplete verdict is printed and the
 * reports are written (exit 3, or 1 if something already failed). A second signal exits at once.
 */
function handleSignals(): void {
  let first = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    // One event often arrives twice (`timeout` signals the group, npm passes it on): a
    // second signal within 300 ms is the same request.
    if (session.interrupted && performance.now() - first < 300) return;
    if (session.interrupted) process.exit(sig === "SIGINT" ? 130 : 143);
    session.interrupted = true;
    first = performance.now();
    process.stderr.write(`\nrefcheck: ${sig}: stopping the search and writing what was found (send it again to exit at once)\n`);
    session.host?.interrupt();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // Under npx, a SIGTERM to npm alone ends npm without passing it on, and this process
  // would run on, orphaned: take the loss of the parent as the signal.
  if (process.env.npm_command) {
    const ppid = process.ppid;
    const watch = setInterval(() => {
      if (process.ppid === ppid) return;
      clearInterval(watch);
      onSignal("SIGTERM");
    }, 500);
    watch.unref();
  }
}

/** Parameters given on the command line that no spec of the run declares are an error. */
function checkParamsDeclared(specs: LoadedSpec[], given: Record<string, string>): void {
  for (const k of Object.keys(given)) {
    if (specs.some(({ spec }) => k in spec.params.shape)) continue;
    const known = [...new Set(specs.flatMap(({ spec }) => Object.keys(spec.params.shape)))];
    const near = closest(k, known);
    const one = specs.length === 1 ? `spec "${specs[0].spec.name}" (${specs[0].file})` : "no spec of this run";
    throw new UsageError(
      `--param ${k}=${given[k]}: ${specs.length === 1 ? `${one} has no parameter "${k}"` : `${one} has a parameter "${k}"`}` +
        `${near ? `; did you mean ${near}?` : ""}; ${known.length ? `the parameters are ${known.join(", ")}` : "they have no parameters"}`,
    );
  }
}

/** Worker threads: at most the cores there are (more only costs memory and time). */
function workerCount(v: unknown): number {
  const cores = availableParallelism();
  if (v === undefined) return cores;
  const n = positiveInt("--workers", v)!;
  if (n > cores) {
    process.stderr.write(`refcheck: warning: --workers ${n} is more than the ${cores} cores here; using ${cores}\n`);
    return cores;
  }
  return n;
}

/** One search of the run: a spec under one parameter assignment. */
interface Job {
  loaded: LoadedSpec;
  assignment: Record<string, unknown>;
  id: string;
}

/** The run's jobs in order: every loaded spec under the requested designs and configurations. */
async function planJobs(specs: LoadedSpec[], args: RunArgs, given: Record<string, string>): Promise<Job[]> {
  const { designAssignments, designParamOf, designsOf, resolveParams } = await import("../checker/compile.ts");
  const { jobId } = await import("./shard.ts");
  const jobs: Job[] = [];
  for (const loaded of specs) {
    const { spec, file } = loaded;
    const dp = designParamOf(spec);
    // Parameters this spec does not declare belong to another spec of the run.
    const params = Object.fromEntries(Object.entries(given).filter(([k]) => k in spec.params.shape));
    let design = args.design !== undefined && args.design !== "all" ? args.design : undefined;
    if (design !== undefined) {
      if (!dp) throw new UsageError(`--design ${design}: spec "${spec.name}" (${file}) has no design parameter`);
      const designs = designsOf(spec);
      if (!designs.includes(design)) {
        const near = closest(design, designs);
        throw new UsageError(`--design ${design}: spec "${spec.name}" has designs ${designs.join(", ")} (or "all")${near ? `; did you mean ${near}?` : ""}`);
      }
      if (params[dp] !== undefined && params[dp] !== design) {
        throw new UsageError(`--design ${design} contradicts --param ${dp}=${params[dp]} (both choose the design of spec "${spec.name}"); give one of them`);
      }
    } else if (dp && params[dp] !== undefined) design = String(params[dp]);
    for (const a of designAssignments(spec, design !== undefined && dp ? { ...params, [dp]: design } : params)) {
      jobs.push({ loaded, assignment: a, id: jobId(spec.name, named(file, () => resolveParams(spec, a))) });
    }
  }
  return jobs;
}

/** A spec error names the file: it is fixed there. */
function inFile(file: string, e: unknown): unknown {
  return e instanceof SpecError && !e.message.startsWith(file) && !e.message.includes(` ${file}`) ? new SpecError(`${file}: ${e.message}`) : e;
}

function named<T>(file: string, build: () => T): T {
  try {
    return build();
  } catch (e) {
    throw inFile(file, e);
  }
}

/** What a --shard run needs to write its shard file. */
interface ShardRun {
  shard: Shard;
  jobs: string[];
  assigned: string[];
  run: string;
  /** The run's spec files, for the merged run's report planning. */
  files: string[];
}

/** Runs the jobs of the run (of its shard, with --shard); an interruption keeps what finished. */
export async function runAll(
  specs: LoadedSpec[],
  args: RunArgs,
  command: "check" | "compare" | "simulate" = "compare",
  simulate?: SimulateOptions,
): Promise<Verdict[] & { shardRun?: ShardRun }> {
  const [{ designParamOf, withoutExpectation }, { SearchHost }, { locate }, shards] = await Promise.all([
    import("../checker/index.ts"),
    import("../checker/supervise.ts"),
    import("./load.ts"),
    import("./shard.ts"),
  ]);
  const { assignShards, parseShard, readCosts, runIdentity } = shards;
  const given = parseParams(args.param);
  checkParamsDeclared(specs, given);
  const base: HostedOptions = simulate ? {
    timeoutSeconds: seconds("--timeout", args.timeout),
    maxMemoryBytes: parseSize("--max-memory", args["max-memory"]) ?? defaultMaxMemory(),
    // Swarm threads only when asked: one walk thread is the reproducible speed baseline.
    workers: args.workers === undefined ? 1 : workerCount(args.workers),
    simulate,
  } : {
    maxStates: positiveInt("--max-states", args["max-states"]),
    maxDepth: positiveInt("--max-depth", args["max-depth"]),
    timeoutSeconds: seconds("--timeout", args.timeout),
    maxMemoryBytes: parseSize("--max-memory", args["max-memory"]) ?? defaultMaxMemory(),
    symmetry: args.symmetry,
    por: args.por,
    stopAtFirst: args.first,
    workers: workerCount(args.workers),
  };
  const all = await planJobs(specs, args, given);
  let jobs = all;
  let shardRun: ShardRun | undefined;
  if (args.shard !== undefined) {
    const shard = parseShard(once("--shard", args.shard));
    const costsFile = once("--shard-costs", args["shard-costs"]);
    const costs = costsFile !== undefined ? readCosts(String(costsFile)) : undefined;
    const of = assignShards(all.map((j) => j.id), shard.count, costs);
    jobs = all.filter((_, i) => of[i] === shard.index);
    const flags = Object.fromEntries(
      ["param", "design", "max-states", "max-depth", "timeout", "max-memory", "symmetry", "por", "first", "ignore-expected"].map((k) => [k, (args as unknown as Record<string, unknown>)[k] ?? null]),
    );
    const run = runIdentity({
      version: refcheckVersion() ?? "unknown", command, count: shard.count, flags: { ...flags, costs: costs ? [...costs].sort() : null },
      files: specs.map((s) => ({ file: s.file, content: s.source })),
    });
    shardRun = { shard, jobs: all.map((j) => j.id), assigned: jobs.map((j) => j.id), run, files: specs.map((s) => s.file) };
  } else if (args["shard-costs"] !== undefined) {
    throw new UsageError("--shard-costs balances the shards of a --shard run; give --shard I/K with it");
  }
  const verdicts: Verdict[] & { shardRun?: ShardRun } = [];
  verdicts.shardRun = shardRun;
  // One search host for the whole run: its worker imports each spec file once.
  const host = new SearchHost();
  session.host = host;
  try {
    for (const job of jobs) {
      if (session.interrupted) break;
      const { spec, file, source } = job.loaded;
      const dp = designParamOf(spec);
      const a = job.assignment;
      const label = `${spec.name}${dp ? ` (${String(a[dp] ?? "")})` : ""}`;
      // The seed on every simulation, even with --quiet or --json: it is how a result is reproduced.
      if (simulate) process.stderr.write(`refcheck: simulating ${label} with --seed ${simulate.seed}: ${simulate.runs.toLocaleString("en-US")} runs of depth ${simulate.depth}\n`);
      const stopProgress = startProgress(host, label, args.quiet, !!simulate);
      try {
        const url = pathToFileURL(path.resolve(file)).href;
        const v = locate(await host.check(spec, a, { ...base, file }, url).catch((e: unknown) => { throw inFile(file, e); }), source);
        verdicts.push(args["ignore-expected"] ? withoutExpectation(v) : v);
      } finally {
        stopProgress();
      }
    }
  } finally {
    session.host = undefined;
    await host.close();
  }
  return verdicts;
}

/** Writes the reports; a failed write is reported but a violation's exit code stands. */
async function finishOutputs(verdicts: Verdict[], plan: OutputPlan): Promise<number> {
  const { exitCodeWithOutputs, writeOutputs } = await import("./outputs.ts");
  const r = writeOutputs(verdicts, plan);
  if (r.error) process.stderr.write(`refcheck: ${r.error}\n`);
  return exitCodeWithOutputs(await runExitCode(verdicts), r.error !== undefined);
}

/** tsx only strips types: a misspelt state field would run, and could turn a FAIL into a PASS. */
async function typecheck(paths: string[], skip: boolean | undefined): Promise<void> {
  for (const p of paths) if (!existsSync(p)) throw new SpecError(`${p}: no such file or folder (expected a spec file or a folder of specs)`);
  if (skip) return;
  const { typecheckSpecsIsolated } = await import("./typecheck.ts");
  const r = await typecheckSpecsIsolated(paths);
  if (!r.ok) throw new SpecError(`the spec files do not type-check (--skip-typecheck runs them anyway):\n${r.diagnostics.join("\n")}`);
}

function printJson(verdicts: Verdict[], single: boolean): void {
  process.stdout.write(JSON.stringify(single && verdicts.length === 1 ? verdicts[0] : verdicts, null, 2) + "\n");
}

/** What check and compare print: the verdicts, the comparison table, or with --shard --json the shard file. */
async function printRun(
  command: "check" | "compare" | "simulate",
  verdicts: Verdict[] & { shardRun?: ShardRun },
  a: { json?: unknown; traces?: unknown; witnesses?: unknown; "failures-only"?: unknown } & ColorArgs,
): Promise<void> {
  const [{ renderVerdict }, { renderComparison }] = await Promise.all([import("../reports/console.ts"), import("../reports/compare.ts")]);
  const view = { color: colorOf(a), witnesses: !!a.witnesses, failuresOnly: !!a["failures-only"] };
  const sr = verdicts.shardRun;
  if (a.json && sr) {
    const file: ShardFile = {
      refcheckShard: 1, index: sr.shard.index, count: sr.shard.count, run: sr.run, version: refcheckVersion() ?? "unknown", command,
      files: sr.files, jobs: sr.jobs, assigned: sr.assigned,
      finished: verdicts.length === sr.assigned.length, verdicts: [...verdicts],
    };
    process.stdout.write(JSON.stringify(file, null, 2) + "\n");
  } else if (a.json) printJson(verdicts, command !== "compare");
  else if (command !== "compare") process.stdout.write(verdicts.map((v) => renderVerdict(v, view)).join("\n\n") + "\n");
  else process.stdout.write(renderComparison(verdicts, { ...view, traces: !!a.traces, width: process.stdout.isTTY ? process.stdout.columns : undefined }) + "\n");
  if (sr && !a.json) process.stderr.write(`refcheck: shard ${sr.shard.index}/${sr.shard.count}: ${sr.assigned.length} of the run's ${sr.jobs.length} jobs; --json writes the shard file for refcheck merge\n`);
}

/** check, compare and simulate: type-check, load, plan the outputs, run, print, write the reports. */
async function runCommand(command: "check" | "compare" | "simulate", a: Record<string, unknown>, sim?: SimulateOptions): Promise<number> {
  specOutputToStderr();
  await typecheck(a.paths as string[], a["skip-typecheck"] as boolean | undefined);
  const [{ loadSpecs }, { planOutputs }] = await Promise.all([import("./load.ts"), import("./outputs.ts")]);
  const specs = await loadSpecs(a.paths as string[]);
  const plan = planOutputs(a as ReportArgs, specs.map((s) => s.file));
  const verdicts = await runAll(specs, a as unknown as RunArgs, command, sim);
  await printRun(command, verdicts, a);
  return finishOutputs(verdicts, plan);
}

/** The report flags (--junit, --sarif, ...): from the renderers' registry, loaded by the commands that write reports. */
type ReportOptions = Record<string, { type: "string"; describe: string }>;
const reportOptions = async (): Promise<ReportOptions> => (await import("./outputs.ts")).reportOptions;

const runOptions = (reports: ReportOptions) => ({
  param: { type: "string", array: true, describe: "set a spec parameter, NAME=VALUE (repeatable)" },
  design: { type: "string", describe: 'check one design, or "all" (default: all, unless --param sets it)' },
  json: { type: "boolean", describe: "print the Verdict JSON instead of text" },
  "max-states": { type: "string", describe: "stop after this many distinct states (verdict incomplete, exit 3)" },
  "max-depth": { type: "string", describe: "do not explore beyond this many steps (verdict incomplete, exit 3)" },
  timeout: { type: "string", describe: "stop after this many seconds (verdict incomplete, exit 3)" },
  "max-memory": { type: "string", describe: "stop before the process uses this much memory, e.g. 2GB (verdict incomplete, exit 3; default: 3/4 of the machine's or cgroup's memory)" },
  quiet: { type: "boolean", describe: "no progress lines on stderr" },
  "skip-typecheck": { type: "boolean", describe: "skip the TypeScript check of the spec files (tsx runs them with their types unchecked)" },
  symmetry: { type: "boolean", describe: "symmetry reduction over the spec's interchangeable elements" },
  por: { type: "boolean", describe: "partial-order reduction over the actions' declared reads/writes (one thread)" },
  first: { type: "boolean", describe: "stop at the first failed property" },
  "ignore-expected": { type: "boolean", describe: "treat every violation as a failure, even those the spec declares expected" },
  shard: { type: "string", describe: "run only shard I of K of the run's jobs (spec, parameters), e.g. 2/4; with --json, print the shard file that `refcheck merge` reads" },
  "shard-costs": { type: "string", describe: "balance the shards by the seconds each job took in a previous run's --json output (default: a stable hash of each job's name)" },
  "failures-only": { type: "boolean", describe: "print only the runs and properties that failed (a passing run is one line)" },
  witnesses: { type: "boolean", describe: "print the witness traces of passing runs in full (default: one line each)" },
  workers: { type: "string", describe: `threads that expand BFS levels of 100,000 states or more, the search's own included (at most, and by default, the number of cores: ${availableParallelism()} here)` },
  ...reports,
}) as const;

/** `simulate`: the run options a walk honours, and the walks' own (their defaults from checker/simulate.ts). */
const simOptions = (reports: ReportOptions, defaults: { runs: number; depth: number }) => {
  const run = runOptions(reports);
  return {
    param: run.param,
    design: run.design,
    json: run.json,
    runs: { type: "string", describe: `number of random walks (default ${defaults.runs.toLocaleString("en-US")})` },
    depth: { type: "string", describe: `most steps per walk (default ${defaults.depth})` },
    seed: { type: "string", describe: "seed of the walks (default: random, printed on every run); the same seed gives the same verdict" },
    first: { type: "boolean", describe: "stop at the first violation" },
    timeout: { type: "string", describe: "stop after this many seconds (exit 3 unless a violation was found)" },
    "max-memory": run["max-memory"],
    quiet: run.quiet,
    "skip-typecheck": run["skip-typecheck"],
    "ignore-expected": run["ignore-expected"],
    workers: { type: "string", describe: `threads walking in parallel, each on its own runs (default 1; at most ${availableParallelism()} here)` },
    shard: run.shard,
    "shard-costs": run["shard-costs"],
    "failures-only": run["failures-only"],
    ...reports,
  } as const;
};

const colorOptions = {
  color: { type: "boolean", describe: "colour the output even when stdout is not a terminal" },
  "no-color": { type: "boolean", describe: "no colour (as does a non-empty NO_COLOR)" },
} as const;

/** Colour: the flags, then NO_COLOR, then FORCE_COLOR, then whether stdout is a terminal. */
type ColorArgs = { color?: boolean; "no-color"?: boolean };
function colorOf(a: ColorArgs): boolean {
  if (a["no-color"]) return false;
  if (a.color) return true;
  if (process.env.NO_COLOR) return false;
  const force = process.env.FORCE_COLOR;
  if (force !== undefined && force !== "") return force !== "0" && force !== "false";
  return !!process.stdout.isTTY;
}

/** Long flags of every command, for "did you mean". */
async function knownFlags(): Promise<string[]> {
  const [reports, { DEFAULT_RUNS, DEFAULT_DEPTH }] = await Promise.all([reportOptions(), import("../checker/simulate.ts")]);
  const sim = simOptions(reports, { runs: DEFAULT_RUNS, depth: DEFAULT_DEPTH });
  return [...new Set([...Object.keys(runOptions(reports)), ...Object.keys(sim), ...Object.keys(colorOptions), "traces", "show", "lanes", "allow-unfinished", "help", "version"])];
}

/** Arguments yargs did not know (its "Unknown arguments" failure), explained once main has loaded every command's flags. */
class UnknownArguments extends Error {
  constructor(readonly names: string[]) {
    super(`Unknown arguments: ${names.join(", ")}`);
  }
}

async function unknownArguments(names: string[], argv: string[]): Promise<UsageError> {
  const command = argv.find((x) => !x.startsWith("-")) ?? "";
  const known = names.some((x) => argv.some((y) => y === `--${x}` || y.startsWith(`--${x}=`) || y === `-${x}`)) ? await knownFlags() : [];
  const hints = names.map((x) => {
    const asFlag = argv.some((y) => y === `--${x}` || y.startsWith(`--${x}=`) || y === `-${x}`);
    if (!asFlag) return `unknown argument ${x}`;
    const near = closest(x, known);
    if (near === x) return `--${x} is not an option of ${command} (see refcheck ${command} --help)`;
    return near ? `unknown option --${x}: did you mean --${near}?` : `unknown option --${x}`;
  });
  return new UsageError(hints.join("; "));
}

async function main(argv: string[]): Promise<number> {
  let code = 0;
  const cli = yargs(argv)
    .scriptName("refcheck")
    .usage("$0 <command> [options]")
    .command(
      "check <paths..>",
      "check spec files (or folders of specs) under every design",
      async (y) => y.positional("paths", { type: "string", array: true, describe: "spec files or folders" }).options(runOptions(await reportOptions())),
      async (a) => {
        code = await runCommand("check", a);
      },
    )
    .command(
      "compare <paths..>",
      "check every design of each scenario and print the comparison table",
      async (y) =>
        y
          .positional("paths", { type: "string", array: true, describe: "spec files or folders" })
          .options(runOptions(await reportOptions()))
          .option("traces", { type: "boolean", describe: "print every counterexample below the tables" }),
      async (a) => {
        code = await runCommand("compare", a);
      },
    )
    .command(
      "merge <files..>",
      "merge the shard files of a --shard run (each shard's --json output) into the reports the unsharded run writes",
      async (y) => {
        const reports = await reportOptions();
        const run = runOptions(reports);
        return y
          .positional("files", { type: "string", array: true, describe: "shard files" })
          .options({ json: run.json, ...reports, quiet: run.quiet, "failures-only": run["failures-only"], witnesses: run.witnesses })
          .option("traces", { type: "boolean", describe: "print every counterexample below the tables" })
          .option("allow-unfinished", { type: "boolean", describe: "merge shards that did not finish all their jobs (interrupted): the run is reported incomplete (exit 3)" });
      },
      async (a) => {
        const [{ mergeShards }, { planOutputs }] = await Promise.all([import("./shard.ts"), import("./outputs.ts")]);
        const m = mergeShards(a.files as string[], !!a["allow-unfinished"]);
        const plan = planOutputs(a as ReportArgs, m.files);
        if (m.unfinished.length) process.stderr.write(`refcheck: warning: ${m.unfinished.length} job(s) of the run never finished: ${m.unfinished.join(", ")}; the merged run is incomplete\n`);
        await printRun(m.command, m.verdicts, a);
        code = await finishOutputs(m.verdicts, plan);
        if (m.unfinished.length && code === 0) code = 3;
      },
    )
    .command(
      "simulate <paths..>",
      "random walks checking every property at every step; a violation is shrunk to a short trace (no violation found is not a proof: exit 3)",
      async (y) => {
        const [reports, { DEFAULT_RUNS, DEFAULT_DEPTH }] = await Promise.all([reportOptions(), import("../checker/simulate.ts")]);
        return y.positional("paths", { type: "string", array: true, describe: "spec files or folders" }).options(simOptions(reports, { runs: DEFAULT_RUNS, depth: DEFAULT_DEPTH }));
      },
      async (a) => {
        code = await runCommand("simulate", a, await simulateOptions(a as unknown as RunArgs & { first?: boolean }));
      },
    )
    .command(
      "trace <file>",
      "print an ITF trace file (refcheck's --itf output, or Quint's) step by step",
      (y) =>
        y
          .positional("file", { type: "string", demandOption: true, describe: "an .itf.json file" })
          .option("show", { type: "string", describe: "print only these variables, e.g. --show vmFile,vfio (a name covers its fields)" })
          .option("lanes", { type: "boolean", describe: "print the steps in lanes, one column per thread" }),
      async (a) => {
        const show = once("--show", a.show);
        if (show !== undefined && (typeof show !== "string" || show.split(",").every((x) => x.trim() === ""))) {
          throw new UsageError("--show: expected variable names separated by commas, e.g. --show vmFile,vfio");
        }
        const { printTrace } = await import("./outputs.ts");
        printTrace(a.file, undefined, { show: typeof show === "string" ? show.split(",").map((x) => x.trim()).filter(Boolean) : undefined, lanes: a.lanes });
      },
    )
    .command(
      "init <name>",
      "write specs/NAME.ts, a small model to start from (the README tutorial's: a buggy and a fixed design)",
      (y) => y.positional("name", { type: "string", demandOption: true, describe: "the spec's name, e.g. kvm/my-race" }),
      async (a) => {
        const file = initSpec(String(a.name));
        process.stdout.write(`wrote ${file}\ncheck it with: npx refcheck check ${file}\n`);
      },
    )
    .command(
      "list [paths..]",
      "list specs, their parameters and designs",
      (y) => y.positional("paths", { type: "string", array: true, default: ["specs"] }),
      async (a) => {
        specOutputToStderr();
        // The whole engine (and zod), which a spec importing "refcheck" loads anyway: modules
        // load several times faster before beginListing (or tsx) starts Node's module hooks.
        const [{ loadSpecs }, { designParamOf, designsOf }] = await Promise.all([import("./load.ts"), import("../checker/index.ts")]);
        const paths = a.paths as string[];
        // A listing the launcher's quickStart found no fresh copy of: cached once printed.
        const listing = await beginListing(paths);
        const skipped: SkippedFile[] = [];
        const specs = await loadSpecs(paths, skipped);
        listing.loaded();
        let out = "";
        for (const { spec, file } of specs) {
          const shape = spec.params.shape as Record<string, any>;
          const params = Object.entries(shape).map(([k, s]) => `${k}${describeParam(s)}`);
          const designs = designsOf(spec);
          out += `${spec.name}  (${file})\n`;
          if (spec.summary) out += `  ${spec.summary}\n`;
          out += `  params: ${params.join(", ") || "none"}\n`;
          if (designs.length) out += `  designs (${designParamOf(spec)}): ${designs.join(", ")}\n`;
        }
        for (const { file, why } of skipped) out += `skipped ${file}: ${why}\n`;
        process.stdout.write(out);
        listing.done(out);
      },
    )
    .demandCommand(1, "name a command: check, compare, simulate, merge, trace, list or init")
    // Flags are spelled one way (no camelCase twins in messages) and --no-X is not magic.
    .parserConfiguration({ "camel-case-expansion": false, "boolean-negation": false })
    .options(colorOptions)
    .strict()
    .recommendCommands()
    .help()
    .alias("h", "help")
    .version(refcheckVersion() ?? "unknown")
    .alias("V", "version")
    .fail((msg, err) => {
      if (err) throw err;
      const unknown = /^Unknown arguments?: (.*)$/.exec(msg ?? "");
      if (unknown) throw new UnknownArguments(unknown[1].split(", "));
      const command = /^Did you mean (\w+)\?$/.exec(msg ?? "");
      if (command) throw new UsageError(`unknown command ${argv[0]}: did you mean ${command[1]}?`);
      throw new UsageError(msg);
    });
  try {
    await cli.parseAsync();
  } catch (e) {
    throw e instanceof UnknownArguments ? await unknownArguments(e.names, argv) : e;
  }
  return code;
}

function describeParam(s: any): string {
  let def: unknown;
  while (s?._zod?.def?.innerType) {
    if (s._zod.def.type === "default") def = s._zod.def.defaultValue;
    s = s._zod.def.innerType;
  }
  const d = s?._zod?.def;
  let dom = "";
  if (d?.type === "number") dom = ` ${s.minValue ?? "?"}..${s.maxValue ?? "?"}`;
  else if (d?.type === "enum") dom = ` {${Object.values(d.entries).join(", ")}}`;
  else if (d?.type === "boolean") dom = " {true, false}";
  return `${dom}${def !== undefined ? ` (default ${typeof def === "function" ? (def as () => unknown)() : String(def)})` : ""}`;
}

/**
 * `refcheck init NAME`: the tutorial model as specs/NAME.ts, named NAME, its imports pointing
 * at this refcheck (relative inside its own tree, the package name elsewhere). Never overwrites.
 */
function initSpec(name: string): string {
  if (!/^[a-z0-9][a-z0-9_-]*(\/[a-z0-9][a-z0-9_-]*)*$/i.test(name)) {
    throw new UsageError(`init ${name}: expected a name like my-race or kvm/my-race (letters, digits, - and _, folders separated by /)`);
  }
  const file = path.join("specs", `${name}.ts`);
  if (existsSync(file)) throw new UsageError(`init ${name}: ${file} exists already; choose another name or remove it`);
  const root = fileURLToPath(new URL("..", import.meta.url));
  const template = readFileSync(path.join(root, "specs", "tutorial", "cached-file.ts"), "utf8");
  const dir = path.resolve(path.dirname(file));
  const inside = !path.relative(root, dir).startsWith("..");
  const from = (p: string) => {
    const r = path.relative(dir, path.join(root, p)).split(path.sep).join("/");
    return r.startsWith(".") ? r : `./${r}`;
  };
  const text = template
    .replace(/^\/\/ Tutorial: /, `// ${name}: `)
    .replace('name: "tutorial/cached-file"', `name: ${JSON.stringify(name)}`)
    .replace('source: "README tutorial"', 'source: "refcheck init (from the README tutorial): say where the design comes from"')
    .replace('"../../checker/spec.ts"', JSON.stringify(inside ? from("checker/spec.ts") : "refcheck"))
    .replace('"../kernel/file.ts"', JSON.stringify(inside ? from("specs/kernel/file.ts") : "refcheck/kernel/file"));
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text, { flag: "wx" });
  return file.split(path.sep).join("/");
}

/** The verdicts' exit code; an interrupted run that failed nothing is incomplete (3). */
async function runExitCode(verdicts: Verdict[]): Promise<number> {
  const { exitCodeOf } = await import("../checker/verdict.ts");
  const code = exitCodeOf(verdicts);
  return session.interrupted && code === 0 ? 3 : code;
}

/** Exit code of an error refcheck did not expect: a bug in refcheck, told apart from user errors. */
const INTERNAL_ERROR = 4;

handleSignals();
main(hideBin(process.argv)).then(
  // process.exit drops what a pipe has not taken yet: exit once stdout is flushed.
  (code) => process.stdout.write("", () => process.exit(code)),
  (e) => {
    const debug = !!process.env.REFCHECK_DEBUG;
    if (e instanceof SpecError || e instanceof UsageError || e instanceof FileError || e instanceof ShardError) {
      process.stderr.write(`refcheck: ${e.message}\n`);
      if (e instanceof UsageError && !e.message.startsWith("--")) process.stderr.write("Run 'refcheck --help' for usage.\n");
      if (debug) process.stderr.write(`${e.stack}\n`);
      process.exit(2);
    }
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`refcheck: internal error: ${msg}\nThis is a refcheck bug, not a problem with your spec: please report it with the command line${debug ? "" : " (REFCHECK_DEBUG=1 prints the stack)"}.\n`);
    if (debug && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    process.exit(INTERNAL_ERROR);
  },
);
