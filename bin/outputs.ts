// Report files and CI output for `check` and `compare`, and the `trace` command.
//
// Outputs are complete or absent, never stale: planOutputs checks every path and removes
// the previous run's files before the search; writeOutputs renders every report in memory,
// writes each to a temporary file beside its target and renames them into place only
// when all were written.
import { appendFileSync, closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, realpathSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync, type Stats } from "node:fs";
import { execFileSync } from "node:child_process";
import { basename, dirname, join, resolve } from "node:path";
import type { Verdict } from "../checker/verdict.ts";
import { githubAnnotations, githubSummary } from "../reports/github.ts";
import { renderers, type DirRenderer, type RenderContext } from "../reports/index.ts";
import { renderStep } from "../reports/console.ts";
import { ItfError, itfHeadline, itfReader } from "../reports/itf.ts";
import { scanItf } from "../reports/itf-stream.ts";
import { fmtValue, leaves, stepLabel, termText } from "../reports/util.ts";
import { threadLanes } from "../reports/views.ts";
import { closest } from "../checker/names.ts";
import type { Step } from "../checker/verdict.ts";
import { FileError } from "./errors.ts";
import { refcheckVersion } from "./startup.mjs";

/** Defined elsewhere (the command line tells them apart without loading this module), used here. */
export { FileError, refcheckVersion };

type Opt = { type: "string"; describe: string };

/** The report flags (from the registry in reports/index.ts) and their settings. */
export const reportOptions: Record<string, Opt> = {
  ...Object.fromEntries(renderers.map((r) => [r.flag, { type: "string", describe: r.describe }] as const)),
  "sarif-root": { type: "string", describe: "make the spec paths in SARIF, JUnit and GitHub annotations relative to DIR (default: the git repository root of the specs, else the working directory)" },
};

export interface ReportArgs {
  /** A value per renderer flag ("junit", "itf", ...). */
  [flag: string]: unknown;
  "sarif-root"?: unknown;
  json?: boolean;
}

export interface OutputPlan {
  /** Report files by flag, as given (for messages). */
  files: Record<string, string>;
  /** Report folders by flag (--itf), as given. */
  dirs: Record<string, string>;
  /** --sarif-root, as given. */
  sarifRoot?: string;
  /** --json: GitHub annotations go to stderr so that stdout stays parseable. */
  json: boolean;
  /** Set on GitHub Actions: print annotations; append the summary to this file when given. */
  github?: { summary?: string };
}

/** "no space left on device (ENOSPC)" from a Node system error. */
export function errnoText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (!err || typeof err.message !== "string") return String(e);
  const code = typeof err.code === "string" ? err.code : undefined;
  let text = err.message;
  // Node's message is "CODE: description, syscall 'path'": keep the description.
  if (code && text.startsWith(`${code}: `)) text = text.slice(code.length + 2).replace(/, \w+(?: '.*')?$/s, "");
  return code ? `${text} (${code})` : text;
}

function statOrNull(p: string): Stats | null {
  try {
    return statSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    throw e;
  }
}

/**
 * Creates `dir` and its missing parents one level at a time. (mkdirSync with recursive
 * loops forever where mkdir answers ENOENT for an existing parent, as on procfs.)
 */
export function ensureDir(dir: string, what: string): void {
  const missing: string[] = [];
  let cur = resolve(dir);
  for (;;) {
    let st: Stats | null;
    try {
      st = statOrNull(cur);
    } catch (e) {
      throw new FileError(`${what}: cannot use the folder ${cur}: ${errnoText(e)}`);
    }
    if (st) {
      if (!st.isDirectory()) throw new FileError(`${what}: ${cur} is not a folder`);
      break;
    }
    missing.push(cur);
    const up = dirname(cur);
    if (up === cur) throw new FileError(`${what}: no existing folder above ${dir}`);
    cur = up;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EEXIST" && statOrNull(d)?.isDirectory()) continue;
      if (code === "EEXIST") throw new FileError(`${what}: cannot create the folder ${d}: a file or a dangling link is in the way`);
      throw new FileError(`${what}: cannot create the folder ${d}: ${errnoText(e)}`);
    }
  }
}

function canonical(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    try {
      return join(realpathSync(dirname(resolve(p))), basename(p));
    } catch {
      return resolve(p);
    }
  }
}

function flagValue(flag: string, v: unknown, what: "file" | "folder"): string | undefined {
  if (v === undefined) return undefined;
  if (Array.isArray(v)) throw new FileError(`--${flag} is given ${v.length} times (${v.map((x) => JSON.stringify(String(x))).join(", ")}); expected one ${what}`);
  const s = String(v);
  if (s.trim() === "") throw new FileError(`--${flag} "": expected a ${what} path, got an empty value`);
  return s;
}

/**
 * Checks every output path before the search and removes the previous run's outputs, so
 * that an interrupted or failed run cannot leave stale results in place. `inputFiles` are
 * the spec files of this run: no output may overwrite one.
 */
export function planOutputs(args: ReportArgs, inputFiles: string[]): OutputPlan {
  const plan: OutputPlan = { files: {}, dirs: {}, json: !!args.json };
  const inputs = new Map(inputFiles.map((f) => [canonical(f), f]));
  const taken = new Map<string, string>();
  const claim = (flag: string, p: string) => {
    const c = canonical(p);
    const input = inputs.get(c);
    if (input !== undefined) throw new FileError(`--${flag} ${p}: this is the spec file ${input}, an input of this run; choose another path`);
    const other = taken.get(c);
    if (other !== undefined) throw new FileError(`--${flag} ${p}: the same path as ${other}; each output needs its own path`);
    taken.set(c, `--${flag} ${p}`);
  };

  // Folders first, so that a clash names the folder flag as the earlier claim.
  const ordered = [...renderers.filter((r) => r.kind === "dir"), ...renderers.filter((r) => r.kind === "file")];
  for (const r of ordered) {
    const p = flagValue(r.flag, args[r.flag], r.kind === "dir" ? "folder" : "file");
    if (p === undefined) continue;
    if (r.kind === "dir") {
      const st = statOrNullFor(`--${r.flag}`, p);
      if (st && !st.isDirectory()) throw new FileError(`--${r.flag} ${p}: is a file; expected a folder for the ${r.flag === "itf" ? "trace " : ""}files`);
      claim(r.flag, p);
      plan.dirs[r.flag] = p;
    } else {
      if (/[/\\]$/.test(p)) throw new FileError(`--${r.flag} ${p}: names a folder; expected a file path`);
      const st = statOrNullFor(`--${r.flag}`, p);
      if (st?.isDirectory()) throw new FileError(`--${r.flag} ${p}: is a folder; expected a file path`);
      claim(r.flag, p);
      plan.files[r.flag] = p;
    }
  }
  const root = flagValue("sarif-root", args["sarif-root"], "folder");
  if (root !== undefined) {
    if (!statOrNullFor("--sarif-root", root)?.isDirectory()) throw new FileError(`--sarif-root ${root}: expected an existing folder (the repository root SARIF paths are relative to)`);
    plan.sarifRoot = root;
  }
  // A report inside an output folder with a name that folder owns would be taken for one of its files, or removed as stale.
  for (const [dflag, d] of Object.entries(plan.dirs)) {
    const r = dirRenderer(dflag);
    const dir = canonical(d);
    for (const [flag, p] of Object.entries(plan.files)) {
      if (dirname(canonical(p)) === dir && r.owns(basename(p))) throw new FileError(`--${flag} ${p}: inside the --${dflag} folder with a ${dflag === "itf" ? "trace" : dflag} file's name; choose another path`);
    }
  }

  // Folders first (nothing is removed if one cannot be created), then stale outputs.
  for (const [flag, d] of Object.entries(plan.dirs)) ensureDir(d, `--${flag} ${d}`);
  for (const [flag, p] of Object.entries(plan.files)) ensureDir(dirname(resolve(p)), `--${flag} ${p}`);
  for (const [flag, d] of Object.entries(plan.dirs)) {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch (e) {
      throw new FileError(`--${flag} ${d}: cannot read the folder: ${errnoText(e)}`);
    }
    const r = dirRenderer(flag);
    for (const n of names) if (r.owns(n)) removeStale(`--${flag}`, join(d, n));
  }
  for (const [flag, p] of Object.entries(plan.files)) removeStale(`--${flag}`, p);

  if (process.env.GITHUB_ACTIONS === "true") plan.github = { summary: process.env.GITHUB_STEP_SUMMARY || undefined };
  return plan;
}

function dirRenderer(flag: string): DirRenderer {
  const r = renderers.find((x) => x.flag === flag);
  if (!r || r.kind !== "dir") throw new Error(`no folder renderer for --${flag}`);
  return r;
}

function statOrNullFor(flag: string, p: string): Stats | null {
  try {
    return statOrNull(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOTDIR") throw new FileError(`${flag} ${p}: a part of the path is a file, not a folder`);
    throw new FileError(`${flag} ${p}: cannot use this path: ${errnoText(e)}`);
  }
}

/** Removes a previous run's output; devices and other special files are left alone. */
function removeStale(flag: string, p: string): void {
  const st = statOrNullFor(flag, p);
  if (!st || !st.isFile()) return;
  try {
    unlinkSync(p);
  } catch (e) {
    throw new FileError(`${flag} ${p}: cannot remove the previous run's file: ${errnoText(e)}`);
  }
}

export interface RenderedOutput {
  /** "--junit", "--itf", ... */
  flag: string;
  path: string;
  text: string;
}

/**
 * The folder report paths are relative to: the git repository holding the first spec (GitHub
 * resolves paths against the repository root), else the working directory.
 */
export function repoRoot(verdicts: Verdict[], cwd: string): string {
  const file = verdicts.find((v) => v.file !== undefined)?.file;
  const dir = file !== undefined ? dirname(resolve(cwd, file)) : cwd;
  try {
    const top = execFileSync("git", ["rev-parse", "--show-toplevel"], { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 10_000 }).trim();
    if (top) return top;
  } catch {
    // not a git checkout, or no git: paths stay relative to the working directory
  }
  return cwd;
}

/** Every report file of the plan, rendered in memory. Two files of a folder with one name are an error. */
export function renderOutputs(verdicts: Verdict[], plan: OutputPlan): RenderedOutput[] {
  const out: RenderedOutput[] = [];
  const cwd = process.cwd();
  const ctx: RenderContext = { version: refcheckVersion(), cwd, ...(Object.keys(plan.files).length ? { root: plan.sarifRoot ?? repoRoot(verdicts, cwd) } : {}) };
  const attempt = <T>(flag: string, path: string, fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      if (e instanceof FileError) throw e;
      throw new FileError(`--${flag} ${path}: cannot render the report: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  for (const r of renderers) {
    if (r.kind === "dir") {
      const d = plan.dirs[r.flag];
      if (d === undefined) continue;
      const names = new Map<string, string>();
      for (const e of attempt(r.flag, d, () => r.render(verdicts, ctx))) {
        const other = names.get(e.name);
        const what = r.flag === "itf" ? "traces" : "files";
        if (other !== undefined) throw new FileError(`--${r.flag} ${d}: two ${what} would be written to ${e.name}: ${other} and ${e.who}; nothing was written`);
        names.set(e.name, e.who);
        out.push({ flag: `--${r.flag}`, path: join(d, e.name), text: e.text });
      }
    } else {
      const f = plan.files[r.flag];
      if (f === undefined) continue;
      out.push({ flag: `--${r.flag}`, path: f, text: attempt(r.flag, f, () => r.render(verdicts, ctx)) });
    }
  }
  return out;
}

export interface WriteResult {
  /** Paths written, in order. */
  written: string[];
  /** Set when an output could not be rendered or written: one paragraph naming the flag and path. */
  error?: string;
}

let tmpCounter = 0;

/**
 * Writes the plan's outputs for these verdicts: every file to a temporary beside its target,
 * then renamed into place once all were written. A failure removes the temporaries, so the
 * set is complete or absent (a device such as /dev/stdout is written in place). Never throws.
 */
export function writeOutputs(verdicts: Verdict[], plan: OutputPlan): WriteResult {
  const written: string[] = [];
  let error: string | undefined;
  let outputs: RenderedOutput[] = [];
  try {
    outputs = renderOutputs(verdicts, plan);
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  }

  const temps: { o: RenderedOutput; tmp: string }[] = [];
  const cleanup = () => {
    for (const t of temps) {
      try {
        unlinkSync(t.tmp);
      } catch {
        // already gone
      }
    }
  };
  if (error === undefined) {
    try {
      const special: RenderedOutput[] = [];
      for (const o of outputs) {
        const st = statOrNull(o.path);
        if (st && !st.isFile()) {
          special.push(o);
          continue;
        }
        const tmp = join(dirname(o.path), `.${basename(o.path).slice(0, 200)}.${process.pid}-${++tmpCounter}.tmp`);
        temps.push({ o, tmp });
        writeFileWhole(o, tmp);
      }
      for (const o of special) {
        writeFileWhole(o, o.path);
        written.push(o.path);
      }
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
      cleanup();
    }
  }
  if (error === undefined) {
    for (let i = 0; i < temps.length; i++) {
      const { o, tmp } = temps[i]!;
      try {
        renameSync(tmp, o.path);
        written.push(o.path);
      } catch (e) {
        cleanup();
        const rest = temps.length - i;
        error = `${o.flag} ${o.path}: cannot write the report: ${errnoText(e)}; ${rest} file${rest === 1 ? " was" : "s were"} not written`;
        if (written.length) error += `, ${written.length} already in place (${written.join(", ")})`;
        break;
      }
    }
  } else if (written.length) {
    error += `; already written: ${written.join(", ")}`;
  }

  if (plan.github) {
    try {
      // Keep --json output parseable: the runner reads workflow commands on stderr too.
      const gh = { root: plan.sarifRoot ?? repoRoot(verdicts, process.cwd()), cwd: process.cwd() };
      (plan.json ? process.stderr : process.stdout).write(githubAnnotations(verdicts, gh));
      if (plan.github.summary) appendFileSync(plan.github.summary, githubSummary(verdicts, gh));
    } catch (e) {
      error = [error, `GITHUB_STEP_SUMMARY ${plan.github.summary}: cannot append the job summary: ${errnoText(e)}`].filter(Boolean).join("; ");
    }
  }
  return error === undefined ? { written } : { written, error };
}

function writeFileWhole(o: RenderedOutput, target: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(target, target === o.path ? "w" : "wx");
    writeFileSync(fd, o.text);
  } catch (e) {
    throw new FileError(`${o.flag} ${o.path}: cannot write the report: ${errnoText(e)}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * The exit code of a run that wrote outputs: a violation (1) wins over an output error (2),
 * which wins over an incomplete search (3) and a pass (0).
 */
export function exitCodeWithOutputs(verdictCode: number, outputFailed: boolean): number {
  if (verdictCode === 1) return 1;
  if (outputFailed) return 2;
  return verdictCode;
}

/** Blocking writes to a file descriptor, batched; a closed pipe (`| head`) ends output quietly. */
export class FdWriter {
  private pending: string[] = [];
  private size = 0;
  closed = false;
  constructor(private fd: number, private batch = 1 << 16) {}
  write(s: string): void {
    if (this.closed) return;
    this.pending.push(s);
    this.size += s.length;
    if (this.size >= this.batch) this.flush();
  }
  flush(): void {
    if (this.closed || this.pending.length === 0) return;
    let data = Buffer.from(this.pending.join(""), "utf8");
    this.pending = [];
    this.size = 0;
    while (data.length > 0) {
      try {
        const n = writeSync(this.fd, data);
        data = data.subarray(n);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "EAGAIN") {
          // A non-blocking pipe is full: wait for the reader.
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
          continue;
        }
        if (code === "EPIPE") {
          this.closed = true;
          return;
        }
        throw new FileError(`cannot write to the output: ${errnoText(e)}`);
      }
    }
  }
}

/**
 * `refcheck trace FILE`: an ITF trace (refcheck's or Quint's) printed like `check` does.
 * The file is read twice in chunks (the top-level fields and the number of states, then the
 * states one at a time), and each step is written as soon as it is rendered, so memory stays
 * a small multiple of one state whatever the size of the file.
 */
export interface TraceView {
  /** Print only these variables (a name covers the fields under it), like TLC's ALIAS. */
  show?: string[];
  /** Print the steps in lanes, one column per thread (the trace is read whole first). */
  lanes?: boolean;
}

const under = (path: string, name: string) => path === name || path.startsWith(name + ".") || path.startsWith(name + "[");

/** A step with only the chosen variables: its changes, and for the initial state its leaves. */
function showOnly(step: Step, names: string[]): Step {
  const keep = (p: string) => names.some((n) => under(p, n));
  const state = step.action === null ? Object.fromEntries(leaves(step.state).filter(([p]) => keep(p))) : step.state;
  return { ...step, state: state as Step["state"], changes: step.changes.filter((c) => keep(c.path)) };
}

/** --show names every variable it is given: a misspelt one would silently print nothing. */
function checkShown(file: string, names: string[], state: Record<string, unknown>): void {
  const paths = leaves(state).map(([p]) => p);
  const tops = Object.keys(state);
  for (const n of names) {
    if (paths.some((p) => under(p, n))) continue;
    const near = closest(n, [...tops, ...paths]);
    throw new FileError(`--show ${n}: ${file} has no variable ${n}${near ? ` (did you mean ${near}?)` : ""}; its variables are ${tops.join(", ")}`);
  }
}

/** The steps side by side in a column per thread lane; the initial state above them. */
export function laneText(steps: Step[], width = 100): string {
  const trace = { steps, length: steps.length - 1 };
  const lanes = threadLanes(trace);
  const names: string[] = [];
  for (const l of lanes) if (l && !names.includes(l)) names.push(l);
  if (names.length === 0) return "";
  const num = String(steps.length - 1).length;
  const col = Math.max(16, Math.min(36, Math.floor((width - num - 2) / names.length) - 3));
  const cut = (t: string) => (t.length > col ? t.slice(0, col - 1) + "…" : t.padEnd(col));
  const row = (no: string, cells: string[]) => `${no.padStart(num)}  ${cells.map(cut).join(" │ ")}`.trimEnd();
  const out = [row("", names), `${" ".repeat(num)}  ${names.map(() => "─".repeat(col)).join("─┼─")}`];
  for (const s of steps) {
    if (s.action === null) continue;
    const lines = [stepLabel(s), ...s.changes.map((c) => `${c.path}: ${fmtValue(c.before)} -> ${fmtValue(c.after)}`), ...(s.fault ? [`FAULT: ${s.fault}`] : [])];
    const at = names.indexOf(lanes[s.index]!);
    lines.forEach((l, i) => out.push(row(i === 0 ? String(s.index) : "", names.map((_, j) => (j === at ? termText(l) : "")))));
  }
  return out.join("\n");
}

export function printTrace(file: string, out: { write(s: string): void; flush?(): void } = new FdWriter(1), view: TraceView = {}): void {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (e) {
    throw new FileError(`${file}: cannot read the trace file: ${errnoText(e)}`);
  }
  try {
    if (fstatSync(fd).isDirectory()) throw new FileError(`${file}: is a folder; expected an ITF trace file (.itf.json)`);
    let pos = 0;
    const read = (buf: Buffer) => {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, pos);
      } catch (e) {
        throw new FileError(`${file}: cannot read the trace file: ${errnoText(e)}`);
      }
      pos += n;
      return n;
    };
    const parse = (json: string, where: string): unknown => {
      try {
        return JSON.parse(json);
      } catch (e) {
        throw new ItfError(`${file}: not valid JSON in ${where}: ${(e as Error).message}`);
      }
    };
    const top: Record<string, unknown> = {};
    const wanted = new Set(["#meta", "vars", "params", "loop"]);
    const shape = scanItf(file, read, {
      wantTop: (k) => wanted.has(k),
      top: (k, json) => Object.defineProperty(top, k, { value: parse(json, k), enumerable: true, configurable: true, writable: true }),
    });
    const reader = itfReader(file, top, { isArray: shape.statesIsArray, length: shape.states });
    const length = shape.states - 1;
    const width = String(length).length;
    pos = 0;
    const kept: Step[] = [];
    scanItf(file, read, {
      state: (json, k) => {
        let step = reader.step(parse(json, `states[${k}]`), k);
        if (view.show) {
          if (k === 0) checkShown(file, view.show, step.state);
          step = showOnly(step, view.show);
        }
        // The head waits for state 0, which holds the parameter values it names.
        if (k === 0) out.write(`${termText(itfHeadline(reader, file, length))}\n`);
        if (view.lanes) {
          if (k === 0) out.write(renderStep(step, width) + "\n");
          kept.push(step);
          return;
        }
        if (k === reader.loop) out.write(`${" ".repeat(2 + width)}  -- loop: the trace returns to this state after step ${length} --\n`);
        out.write(renderStep(step, width) + "\n");
      },
    });
    if (view.lanes) out.write(laneText(kept, process.stdout.columns || 100) + "\n");
    out.flush?.();
  } catch (e) {
    if (e instanceof ItfError) throw new FileError(e.message);
    throw e;
  } finally {
    closeSync(fd);
  }
}
