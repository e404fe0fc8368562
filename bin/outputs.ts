// Report files and CI output for `check` and `compare`, and the `trace` command.
//
// Outputs are complete or absent, never stale: planOutputs checks every path and removes
// the previous run's files before the search; writeOutputs renders every report in memory,
// writes each to a temporary file beside its target and renames them into place only
// when all were written.
import { appendFileSync, closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, realpathSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync, type Stats } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Verdict } from "../checker/verdict.ts";
import { githubAnnotations, githubSummary } from "../reports/github.ts";
import { renderHtml } from "../reports/html.ts";
import { itfFileName, toItf } from "../reports/itf.ts";
import { renderJunit } from "../reports/junit.ts";
import { renderMarkdown } from "../reports/markdown.ts";
import { renderSarif } from "../reports/sarif.ts";
import { renderStep } from "../reports/console.ts";
import { ItfError, itfReader } from "../reports/itf.ts";
import { scanItf } from "../reports/itf-stream.ts";
import { termText } from "../reports/util.ts";

export const reportOptions = {
  itf: { type: "string", describe: "write every counterexample and witness as an ITF trace file into DIR" },
  junit: { type: "string", describe: "write JUnit XML to FILE" },
  sarif: { type: "string", describe: "write SARIF 2.1.0 to FILE (code scanning)" },
  markdown: { type: "string", describe: "write the Markdown report (tables, traces, Mermaid) to FILE" },
  html: { type: "string", describe: "write the self-contained HTML report to FILE" },
} as const;

export interface ReportArgs {
  itf?: unknown;
  junit?: unknown;
  sarif?: unknown;
  markdown?: unknown;
  html?: unknown;
  json?: boolean;
}

/** A bad output path or a failed write or read: exit 2, a message naming the flag and path, no usage hint. */
export class FileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FileError";
  }
}

type FileFlag = "junit" | "sarif" | "markdown" | "html";
const FILE_FLAGS: FileFlag[] = ["junit", "sarif", "markdown", "html"];

export interface OutputPlan {
  /** Report files by flag, as given (for messages). */
  files: Partial<Record<FileFlag, string>>;
  /** The --itf folder, as given. */
  itf?: string;
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

function flagValue(flag: string, v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (Array.isArray(v)) throw new FileError(`--${flag} is given ${v.length} times (${v.map((x) => JSON.stringify(String(x))).join(", ")}); expected one ${flag === "itf" ? "folder" : "file"}`);
  const s = String(v);
  if (s.trim() === "") throw new FileError(`--${flag} "": expected a ${flag === "itf" ? "folder" : "file"} path, got an empty value`);
  return s;
}

/**
 * Checks every output path before the search and removes the previous run's outputs, so
 * that an interrupted or failed run cannot leave stale results in place. `inputFiles` are
 * the spec files of this run: no output may overwrite one.
 */
export function planOutputs(args: ReportArgs, inputFiles: string[]): OutputPlan {
  const plan: OutputPlan = { files: {}, json: !!args.json };
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

  const itf = flagValue("itf", args.itf);
  if (itf !== undefined) {
    const st = statOrNullFor("--itf", itf);
    if (st && !st.isDirectory()) throw new FileError(`--itf ${itf}: is a file; expected a folder for the trace files`);
    claim("itf", itf);
    plan.itf = itf;
  }
  for (const flag of FILE_FLAGS) {
    const p = flagValue(flag, args[flag]);
    if (p === undefined) continue;
    if (/[/\\]$/.test(p)) throw new FileError(`--${flag} ${p}: names a folder; expected a file path`);
    const st = statOrNullFor(`--${flag}`, p);
    if (st?.isDirectory()) throw new FileError(`--${flag} ${p}: is a folder; expected a file path`);
    claim(flag, p);
    plan.files[flag] = p;
  }
  // A report inside the trace folder would be taken for a trace, or removed as stale.
  if (plan.itf !== undefined) {
    const dir = canonical(plan.itf);
    for (const [flag, p] of Object.entries(plan.files)) {
      if (dirname(canonical(p)) === dir && p.endsWith(".itf.json")) throw new FileError(`--${flag} ${p}: inside the --itf folder with a trace file's name; choose another path`);
    }
  }

  // Folders first (nothing is removed if one cannot be created), then stale outputs.
  if (plan.itf !== undefined) ensureDir(plan.itf, `--itf ${plan.itf}`);
  for (const [flag, p] of Object.entries(plan.files)) ensureDir(dirname(resolve(p)), `--${flag} ${p}`);
  if (plan.itf !== undefined) {
    let names: string[];
    try {
      names = readdirSync(plan.itf);
    } catch (e) {
      throw new FileError(`--itf ${plan.itf}: cannot read the folder: ${errnoText(e)}`);
    }
    for (const n of names) if (n.endsWith(".itf.json")) removeStale("--itf", join(plan.itf, n));
  }
  for (const [flag, p] of Object.entries(plan.files)) removeStale(`--${flag}`, p);

  if (process.env.GITHUB_ACTIONS === "true") plan.github = { summary: process.env.GITHUB_STEP_SUMMARY || undefined };
  return plan;
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

/** refcheck's version: its package.json is one folder up from bin/, two from dist/bin/. */
export function refcheckVersion(): string | undefined {
  for (const up of ["../package.json", "../../package.json"]) {
    try {
      const p = JSON.parse(readFileSync(new URL(up, import.meta.url), "utf8")) as { name?: string; version?: string };
      if (p.name === "refcheck" && p.version) return p.version;
    } catch {
      // Not this one.
    }
  }
  return undefined;
}

/** Every report file of the plan, rendered in memory. Two traces with one name are an error. */
export function renderOutputs(verdicts: Verdict[], plan: OutputPlan): RenderedOutput[] {
  const out: RenderedOutput[] = [];
  const render = (flag: string, path: string, fn: () => string) => {
    try {
      out.push({ flag, path, text: fn() });
    } catch (e) {
      throw new FileError(`${flag} ${path}: cannot render the report: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  if (plan.itf !== undefined) {
    const names = new Map<string, string>();
    for (const v of verdicts) {
      for (const p of v.properties) {
        if (!p.trace) continue;
        const name = itfFileName(v, p);
        const who = `${v.spec}${v.design !== undefined ? ` (${v.design}${v.configuration ? `, ${v.configuration}` : ""})` : v.configuration ? ` (${v.configuration})` : ""}: ${p.name}`;
        const other = names.get(name);
        if (other !== undefined) throw new FileError(`--itf ${plan.itf}: two traces would be written to ${name}: ${other} and ${who}; nothing was written`);
        names.set(name, who);
        render("--itf", join(plan.itf, name), () => toItf(v, p));
      }
    }
  }
  const f = plan.files;
  if (f.junit !== undefined) render("--junit", f.junit, () => renderJunit(verdicts));
  if (f.sarif !== undefined) render("--sarif", f.sarif, () => renderSarif(verdicts, { version: refcheckVersion() }));
  if (f.markdown !== undefined) render("--markdown", f.markdown, () => renderMarkdown(verdicts));
  if (f.html !== undefined) render("--html", f.html, () => renderHtml(verdicts));
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
      (plan.json ? process.stderr : process.stdout).write(githubAnnotations(verdicts));
      if (plan.github.summary) appendFileSync(plan.github.summary, githubSummary(verdicts));
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
export function printTrace(file: string, out: { write(s: string): void; flush?(): void } = new FdWriter(1)): void {
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
    const meta = reader.meta;
    const rc = (isRecord(meta.refcheck) ? meta.refcheck : {}) as Record<string, unknown>;
    const head =
      typeof rc.spec === "string"
        ? `${rc.spec}${rc.design !== undefined ? ` (${String(rc.design)})` : ""}: ${String(rc.property)} ${String(rc.status)}${rc.message ? `: ${String(rc.message)}` : ""}`
        : `${typeof meta.source === "string" ? meta.source : file}${typeof meta.description === "string" ? `: ${meta.description}` : ""}`;
    const length = shape.states - 1;
    out.write(`${termText(head)} (${length} step${length === 1 ? "" : "s"})\n`);
    const width = String(length).length;
    pos = 0;
    scanItf(file, read, {
      state: (json, k) => out.write(renderStep(reader.step(parse(json, `states[${k}]`), k), width) + "\n"),
    });
    out.flush?.();
  } catch (e) {
    if (e instanceof ItfError) throw new FileError(e.message);
    throw e;
  } finally {
    closeSync(fd);
  }
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}
