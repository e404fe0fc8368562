// refcheck's command line. Exit codes (stable, documented in the README):
//   0 every property holds, 1 a property is violated, 2 usage or spec error,
//   3 a bound stopped the search before it finished (and nothing failed).
import { availableParallelism } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { checkAsync, designAssignments, designParamOf, designsOf, exitCodeOf, SpecError, type CheckOptions } from "../checker/index.ts";
import type { Verdict } from "../checker/verdict.ts";
import { renderComparison } from "../reports/compare.ts";
import { renderVerdict } from "../reports/console.ts";
import { loadSpecs, locate, type LoadedSpec } from "./load.ts";
import { exitCodeWithOutputs, FileError, planOutputs, printTrace, reportOptions, writeOutputs, type ReportArgs } from "./outputs.ts";

class UsageError extends Error {}

function parseParams(list: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  const items = list === undefined ? [] : Array.isArray(list) ? list : [list];
  for (const item of items) {
    const s = String(item);
    const eq = s.indexOf("=");
    if (eq <= 0) throw new UsageError(`--param ${s}: expected NAME=VALUE, e.g. --param N=5`);
    out[s.slice(0, eq)] = s.slice(eq + 1);
  }
  return out;
}

function positiveInt(flag: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === "string" && /^\s*\d+\s*$/.test(v) ? Number(v) : typeof v === "number" ? v : NaN;
  if (!Number.isInteger(n) || n < (flag === "--max-depth" ? 0 : 1)) throw new UsageError(`${flag} ${String(v)}: expected a whole number${flag === "--max-depth" ? "" : " greater than 0"}`);
  return n;
}

interface RunArgs {
  paths: string[];
  param?: unknown;
  design?: string;
  "max-states"?: unknown;
  "max-depth"?: unknown;
  timeout?: unknown;
  symmetry?: boolean;
  por?: boolean;
  first?: boolean;
  workers?: unknown;
}

function progressReporter(): CheckOptions["progress"] {
  if (!process.stderr.isTTY) return undefined;
  return (p) => {
    process.stderr.write(`\r  ${p.distinct.toLocaleString("en-US")} states, ${p.generated.toLocaleString("en-US")} generated, depth ${p.depth}, ${p.seconds.toFixed(0)} s`);
  };
}

/** Runs every loaded spec under the requested designs. */
export async function runAll(specs: LoadedSpec[], args: RunArgs): Promise<Verdict[]> {
  const given = parseParams(args.param);
  const timeout = args.timeout === undefined ? undefined : Number(args.timeout);
  if (timeout !== undefined && !(timeout > 0)) throw new UsageError(`--timeout ${String(args.timeout)}: expected a number of seconds greater than 0`);
  const progress = progressReporter();
  const verdicts: Verdict[] = [];
  const workers = args.workers === undefined ? availableParallelism() : positiveInt("--workers", args.workers)!;
  for (const { spec, file, source } of specs) {
    const dp = designParamOf(spec);
    const params = { ...given };
    // Parameters not declared by this spec are an error only when one spec is checked.
    if (specs.length > 1) for (const k of Object.keys(params)) if (!(k in spec.params.shape)) delete params[k];
    const opts: CheckOptions = {
      file,
      maxStates: positiveInt("--max-states", args["max-states"]),
      maxDepth: positiveInt("--max-depth", args["max-depth"]),
      timeoutSeconds: timeout,
      symmetry: args.symmetry,
      por: args.por,
      stopAtFirst: args.first,
      progress,
      workers,
      specUrl: pathToFileURL(path.resolve(file)).href,
    };
    let design = args.design !== undefined && args.design !== "all" ? args.design : undefined;
    if (design !== undefined) {
      if (!dp) throw new UsageError(`--design ${design}: spec "${spec.name}" (${file}) has no design parameter`);
      const designs = designsOf(spec);
      if (!designs.includes(design)) {
        throw new UsageError(`--design ${design}: spec "${spec.name}" has designs ${designs.join(", ")} (or "all")`);
      }
    } else if (dp && params[dp] !== undefined) design = String(params[dp]);
    const assignments = designAssignments(spec, design !== undefined && dp ? { ...params, [dp]: design } : params);
    const results: Verdict[] = [];
    for (const a of assignments) {
      try {
        results.push(await checkAsync(spec, a, opts));
      } catch (e) {
        // Name the file: a spec error is fixed there.
        if (e instanceof SpecError && !e.message.startsWith(file)) throw new SpecError(`${file}: ${e.message}`);
        throw e;
      }
    }
    if (progress) process.stderr.write("\r\x1b[K");
    verdicts.push(...results.map((v) => locate(v, source)));
  }
  return verdicts;
}

/** Writes the reports; a failed write is reported but a violation's exit code stands. */
function finishOutputs(verdicts: Verdict[], plan: ReturnType<typeof planOutputs>): number {
  const r = writeOutputs(verdicts, plan);
  if (r.error) process.stderr.write(`refcheck: ${r.error}\n`);
  return exitCodeWithOutputs(exitCodeOf(verdicts), r.error !== undefined);
}

function printJson(verdicts: Verdict[], single: boolean): void {
  process.stdout.write(JSON.stringify(single && verdicts.length === 1 ? verdicts[0] : verdicts, null, 2) + "\n");
}

const runOptions = {
  param: { type: "string", array: true, describe: "set a spec parameter, NAME=VALUE (repeatable)" },
  design: { type: "string", describe: 'check one design, or "all" (default: all, unless --param sets it)' },
  json: { type: "boolean", describe: "print the Verdict JSON instead of text" },
  "max-states": { type: "string", describe: "stop after this many distinct states (verdict incomplete, exit 3)" },
  "max-depth": { type: "string", describe: "do not explore beyond this many steps (verdict incomplete, exit 3)" },
  timeout: { type: "string", describe: "stop after this many seconds (verdict incomplete, exit 3)" },
  symmetry: { type: "boolean", describe: "symmetry reduction over the spec's interchangeable elements" },
  por: { type: "boolean", describe: "partial-order reduction over the actions' declared reads/writes (one thread)" },
  first: { type: "boolean", describe: "stop at the first failed property" },
  workers: { type: "string", describe: `worker threads for BFS levels of 100,000 states or more (default: the number of cores, ${availableParallelism()} here)` },
  ...reportOptions,
} as const;

async function main(argv: string[]): Promise<number> {
  let code = 0;
  const cli = yargs(argv)
    .scriptName("refcheck")
    .usage("$0 <command> [options]")
    .command(
      "check <paths..>",
      "check spec files (or folders of specs) under every design",
      (y) => y.positional("paths", { type: "string", array: true, describe: "spec files or folders" }).options(runOptions),
      async (a) => {
        const specs = await loadSpecs(a.paths as string[]);
        const plan = planOutputs(a as ReportArgs, specs.map((s) => s.file));
        const verdicts = await runAll(specs, a as unknown as RunArgs);
        if (a.json) printJson(verdicts, true);
        else process.stdout.write(verdicts.map((v) => renderVerdict(v)).join("\n\n") + "\n");
        code = finishOutputs(verdicts, plan);
      },
    )
    .command(
      "compare <paths..>",
      "check every design of each scenario and print the comparison table",
      (y) =>
        y
          .positional("paths", { type: "string", array: true, describe: "spec files or folders" })
          .options(runOptions)
          .option("traces", { type: "boolean", describe: "print every counterexample below the tables" }),
      async (a) => {
        const specs = await loadSpecs(a.paths as string[]);
        const plan = planOutputs(a as ReportArgs, specs.map((s) => s.file));
        const verdicts = await runAll(specs, a as unknown as RunArgs);
        if (a.json) printJson(verdicts, false);
        else process.stdout.write(renderComparison(verdicts, { traces: a.traces, width: process.stdout.isTTY ? process.stdout.columns : undefined }) + "\n");
        code = finishOutputs(verdicts, plan);
      },
    )
    .command(
      "trace <file>",
      "print an ITF trace file (refcheck's --itf output, or Quint's) step by step",
      (y) => y.positional("file", { type: "string", demandOption: true, describe: "an .itf.json file" }),
      async (a) => {
        printTrace(a.file);
      },
    )
    .command(
      "list [paths..]",
      "list specs, their parameters and designs",
      (y) => y.positional("paths", { type: "string", array: true, default: ["specs"] }),
      async (a) => {
        const specs = await loadSpecs(a.paths as string[]);
        for (const { spec, file } of specs) {
          const shape = spec.params.shape as Record<string, any>;
          const params = Object.entries(shape).map(([k, s]) => `${k}${describeParam(s)}`);
          const designs = designsOf(spec);
          process.stdout.write(`${spec.name}  (${file})\n`);
          if (spec.summary) process.stdout.write(`  ${spec.summary}\n`);
          process.stdout.write(`  params: ${params.join(", ") || "none"}\n`);
          if (designs.length) process.stdout.write(`  designs (${designParamOf(spec)}): ${designs.join(", ")}\n`);
        }
      },
    )
    .demandCommand(1, "name a command: check, compare, trace or list")
    // Flags are spelled one way (no camelCase twins in messages) and --no-X is not magic.
    .parserConfiguration({ "camel-case-expansion": false, "boolean-negation": false })
    .strict()
    .help()
    .version(false)
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    });
  await cli.parseAsync();
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

main(hideBin(process.argv)).then(
  // process.exit drops what a pipe has not taken yet: exit once stdout is flushed.
  (code) => process.stdout.write("", () => process.exit(code)),
  (e) => {
    if (e instanceof SpecError || e instanceof UsageError || e instanceof FileError) {
      process.stderr.write(`refcheck: ${e.message}\n`);
      if (e instanceof UsageError) process.stderr.write("Run 'refcheck --help' for usage.\n");
    } else {
      const msg = e instanceof Error ? e.message : String(e);
      // yargs reports unknown flags and bad arguments as plain errors.
      process.stderr.write(`refcheck: ${msg}\nRun 'refcheck --help' for usage.\n`);
      if (process.env.REFCHECK_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    }
    process.exit(2);
  },
);
