// Type-checks spec files before they run. tsx only strips types, so a misspelt state
// field or a wrong parameter type would otherwise run, and could turn a FAIL into a PASS.
// A successful check is cached by content: a re-run with the same files does not load
// the compiler at all.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type * as TS from "typescript";
import { cacheDir, hash, hashFile, readCacheFile, writeCacheEntry } from "./startup.mjs";
import { once, startModuleWorker } from "../checker/parallel.ts";

export type TypecheckResult = { ok: true; cached: boolean; ms: number } | { ok: false; diagnostics: string[] };

export interface TypecheckOptions {
  /** Where typecheck.json goes (default: node_modules/.cache/refcheck, or REFCHECK_CACHE_DIR). */
  cacheDir?: string;
}

/** Diagnostics after this many are listed without a code frame. */
const FRAMES = 5;
/** Bump when what this module checks or records changes. */
const FORMAT = 1;

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);

// For specs with no tsconfig.json above them: refcheck's strictness, and imports resolved
// the way tsx resolves them (`.ts` extensions, packages' "exports").
const defaults = {
  strict: true,
  target: "ES2022",
  module: "ESNext",
  moduleResolution: "Bundler",
  lib: ["ES2023"],
  types: [],
} as const;

// Always: specs run through tsx (no emit, `.ts` import extensions allowed).
const forced = { noEmit: true, allowImportingTsExtensions: true, skipLibCheck: true } as const;

interface CacheEntry {
  roots: string[];
  ts: string;
  options: string;
  /** Every source file of the program not under node_modules, plus the tsconfig files and package.json of the packages used. */
  files: [file: string, hash: string][];
}

const rel = (file: string) => path.relative(process.cwd(), file).split(path.sep).join("/") || ".";

/** A file, or the .ts files under a folder (the spec loader's folders, plus the shared vocabulary). */
function tsFiles(p: string): string[] {
  if (!statSync(p).isDirectory()) return [p];
  return readdirSync(p, { withFileTypes: true }).flatMap((d) => {
    if (d.isDirectory()) return d.name === "node_modules" || d.name.startsWith(".") ? [] : tsFiles(path.join(p, d.name));
    return d.name.endsWith(".ts") && !d.name.endsWith(".d.ts") ? [path.join(p, d.name)] : [];
  });
}

/** The nearest tsconfig.json at or above the folder. */
function findConfig(dir: string): string | undefined {
  for (let d = dir; ; d = path.dirname(d)) {
    const f = path.join(d, "tsconfig.json");
    if (existsSync(f)) return f;
    if (path.dirname(d) === d) return undefined;
  }
}

function tsVersion(): string | undefined {
  try {
    return (JSON.parse(readFileSync(require.resolve("typescript/package.json"), "utf8")) as { version: string }).version;
  } catch {
    return undefined;
  }
}

function writeCache(file: string, entry: CacheEntry): void {
  try {
    writeCacheEntry(file, FORMAT, entry, (a, b) => a.roots.join("\n") === b.roots.join("\n"));
  } catch {
    // A cache that cannot be written only costs time.
  }
}

function fresh(e: CacheEntry | undefined, version: string, options: string): boolean {
  return e !== undefined && e.ts === version && e.options === options && e.files.every(([f, h]) => hashFile(f) === h);
}

/**
 * Type-checks spec files (or folders of them) and what they import, with the settings of
 * the nearest tsconfig.json (refcheck's strict defaults when there is none). Errors come
 * as "file:line:col - error TSxxxx: message", the first few with a code frame.
 */
/** What is left to check: the groups the cache does not vouch for, or the answer already. */
type Plan = { done: TypecheckResult } | { todo: [config: string, roots: string[]][]; cacheFile: string; version: string; t0: number };

function plan(files: string[], opts: TypecheckOptions): Plan {
  const t0 = performance.now();
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length > 0) {
    return { done: { ok: false, diagnostics: missing.map((f) => `${f}: no such file or folder (expected a spec file or a folder of specs)`) } };
  }
  const roots = [...new Set(files.flatMap((f) => tsFiles(path.resolve(f))))].sort();
  const version = tsVersion();
  if (version === undefined) return { done: { ok: false, diagnostics: ["cannot type-check the specs: the typescript package is not installed"] } };

  // Specs under different tsconfig.json files are checked as separate programs.
  const groups = new Map<string, string[]>();
  for (const f of roots) {
    const config = findConfig(path.dirname(f)) ?? "";
    groups.set(config, [...(groups.get(config) ?? []), f]);
  }
  const dir = opts.cacheDir ?? cacheDir();
  const cacheFile = path.join(dir, "typecheck.json");
  const cache = readCacheFile<CacheEntry>(cacheFile, FORMAT);
  const todo = [...groups].filter(([config, rs]) => {
    const key = rs.join("\n");
    return !fresh(cache.entries.find((e) => e.roots.join("\n") === key), version, optionsKey(config));
  });
  if (todo.length === 0) return { done: { ok: true, cached: true, ms: performance.now() - t0 } };
  return { todo, cacheFile, version, t0 };
}

export async function typecheckSpecs(files: string[], opts: TypecheckOptions = {}): Promise<TypecheckResult> {
  const p = plan(files, opts);
  if ("done" in p) return p.done;
  // require, not import(): the ESM loader would scan the whole 9 MB compiler for named exports.
  const ts = require("typescript") as typeof TS;
  const diagnostics: string[] = [];
  for (const [config, rs] of p.todo) {
    const r = checkProgram(ts, rs, config);
    if (r.diagnostics.length > 0) diagnostics.push(...r.diagnostics);
    else writeCache(p.cacheFile, { roots: rs, ts: p.version, options: optionsKey(config), files: r.files });
  }
  if (diagnostics.length > 0) return { ok: false, diagnostics };
  return { ok: true, cached: false, ms: performance.now() - p.t0 };
}

/**
 * typecheckSpecs, with the compiler on a thread of its own when the cache does not answer.
 * On the command's thread its heap (over 100 MB for the shipped specs) would stay for the
 * whole run: the search runs on another thread, and nothing here allocates enough to make
 * V8 collect it, so it would count against --max-memory and the peak. With the thread it goes.
 */
export async function typecheckSpecsIsolated(files: string[], opts: TypecheckOptions = {}): Promise<TypecheckResult> {
  const p = plan(files, opts);
  if ("done" in p) return p.done;
  const here = import.meta.url;
  const w = startModuleWorker(new URL(`./typecheck-worker.${here.endsWith(".ts") ? "ts" : "js"}`, here), { workerData: { files, opts } });
  try {
    return (await once(w)) as TypecheckResult;
  } finally {
    await w.terminate();
  }
}

/** What decides the compiler options besides the tsconfig files' content (recorded as files). */
function optionsKey(config: string): string {
  return hash(JSON.stringify({ FORMAT, config, defaults, forced }));
}

function checkProgram(ts: typeof TS, roots: string[], config: string): { diagnostics: string[]; files: [string, string][] } {
  const recorded = new Set<string>();
  let options: TS.CompilerOptions;
  if (config) {
    const read = ts.readConfigFile(config, ts.sys.readFile);
    if (read.error) return { diagnostics: format(ts, [read.error]), files: [] };
    const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, path.dirname(config), undefined, config);
    // "No inputs were found" (TS18003) is about the tsconfig's own include list, which is not used here.
    const errors = parsed.errors.filter((d) => d.code !== 18003);
    if (errors.length > 0) return { diagnostics: format(ts, errors), files: [] };
    options = parsed.options;
    recorded.add(config);
    if ((read.config as { extends?: unknown }).extends) for (const f of extendedConfigs(ts, config)) recorded.add(f);
  } else {
    options = ts.convertCompilerOptionsFromJson(defaults, process.cwd()).options;
  }
  // Nothing is written: no build info, declarations or project references.
  options = { ...options, ...forced, incremental: false, composite: false, declaration: false, tsBuildInfoFile: undefined };
  // First without ambient @types (half the parse time: @types/node alone is 100 files).
  // Adding declarations does not break a program that passes without them, so only a
  // failure is checked again with the tsconfig's own types, which it may need.
  // Both passes share the parsed files.
  const host = ts.createCompilerHost(options);
  const parsed = new Map<string, TS.SourceFile | undefined>();
  const parse = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, onError, create) => {
    if (create || !parsed.has(name)) parsed.set(name, parse(name, lang, onError, create));
    return parsed.get(name);
  };
  let r = diagnose(ts, host, roots, { ...options, types: [] });
  if (r.errors.length > 0 && !r.syntactic && (options.types === undefined || options.types.length > 0)) r = diagnose(ts, host, roots, options);
  if (r.errors.length > 0) return { diagnostics: format(ts, r.errors), files: [] };
  for (const sf of r.program.getSourceFiles()) {
    if (!isLib(sf.fileName)) recorded.add(path.resolve(sf.fileName));
    else {
      const pkg = packageJsonOf(sf.fileName);
      if (pkg) recorded.add(pkg);
    }
  }
  const files: [string, string][] = [];
  for (const f of [...recorded].sort()) {
    const h = hashFile(f);
    // An unreadable file is not recorded: its hash would match itself next time.
    if (h !== null && !h.startsWith("unreadable ")) files.push([f, h]);
  }
  return { diagnostics: [], files };
}

function diagnose(ts: typeof TS, host: TS.CompilerHost, roots: string[], options: TS.CompilerOptions) {
  const program = ts.createProgram({ rootNames: roots, options, host });
  // The specs and what they import; libraries are trusted (skipLibCheck).
  const own = program.getSourceFiles().filter((sf) => !isLib(sf.fileName) && !path.resolve(sf.fileName).startsWith(library));
  let ds: readonly TS.Diagnostic[] = [...program.getOptionsDiagnostics(), ...own.flatMap((sf) => program.getSyntacticDiagnostics(sf))];
  // Like tsc: type errors only once the files parse.
  const syntactic = ds.length > 0;
  if (!syntactic) ds = [...program.getGlobalDiagnostics(), ...own.flatMap((sf) => program.getSemanticDiagnostics(sf))];
  return { program, syntactic, errors: ds.filter((d) => d.category === ts.DiagnosticCategory.Error) };
}

const isLib = (f: string) => /[\\/]node_modules[\\/]/.test(f);
// refcheck's own spec language: checked by its own build, and perhaps not clean under a
// spec author's stricter settings, which are not theirs to fix.
const library = path.join(packageRoot, "checker") + path.sep;

/** package.json of the package holding a node_modules file: a changed version invalidates the cache. */
function packageJsonOf(file: string): string | undefined {
  const m = /^(.*[\\/]node_modules[\\/](?:@[^\\/]+[\\/])?[^\\/]+)[\\/]/.exec(path.resolve(file));
  return m ? path.join(m[1]!, "package.json") : undefined;
}

/** The files a tsconfig.json extends, recursively. */
function extendedConfigs(ts: typeof TS, config: string): string[] {
  const sf = ts.readJsonConfigFile(config, ts.sys.readFile);
  ts.parseJsonSourceFileConfigFileContent(sf, ts.sys, path.dirname(config), undefined, config);
  return (sf.extendedSourceFiles ?? []).map((f) => path.resolve(f));
}

function format(ts: typeof TS, ds: readonly TS.Diagnostic[]): string[] {
  return ds.map((d, i) => {
    const msg = ts.flattenDiagnosticMessageText(d.messageText, "\n  ");
    const code = `error TS${d.code}: ${msg}`;
    if (!d.file || d.start === undefined) return code;
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    const head = `${rel(path.resolve(d.file.fileName))}:${line + 1}:${character + 1} - ${code}`;
    if (i >= FRAMES) return head;
    const starts = d.file.getLineStarts();
    const end = line + 1 < starts.length ? starts[line + 1]! : d.file.text.length;
    const text = d.file.text.slice(starts[line]!, end).replace(/\r?\n$/, "");
    return `${head}\n${codeFrame(line + 1, character, text, d.length ?? 1)}`;
  });
}

/** The source line and a caret under the span (column 0-based). */
export function codeFrame(line: number, column: number, text: string, length = 1): string {
  const num = String(line);
  const pad = " ".repeat(num.length);
  // Keep tabs so the caret lines up under the same characters.
  const lead = text.slice(0, column).replace(/[^\t]/g, " ");
  const width = Math.max(1, Math.min(length, text.length - column));
  return `  ${num} | ${text}\n  ${pad} | ${lead}${"^".repeat(width)}`;
}

/**
 * file:line:col, the message and a code frame from an esbuild transform error (what tsx
 * throws for a spec that does not parse); undefined for any other error.
 */
export function syntaxLocation(e: unknown): string | undefined {
  const first = (e as { errors?: { text?: unknown; location?: unknown }[] } | null)?.errors?.[0];
  const loc = first?.location as { file?: unknown; line?: unknown; column?: unknown; lineText?: unknown; length?: unknown } | null | undefined;
  if (loc && typeof loc.file === "string" && typeof loc.line === "number" && typeof loc.column === "number") {
    const lineText = typeof loc.lineText === "string" ? loc.lineText : lineOfFile(loc.file, loc.line);
    return located(loc.file, loc.line, loc.column, String(first?.text ?? "syntax error"), lineText, typeof loc.length === "number" ? loc.length : 1);
  }
  // Without the structured errors: esbuild's message names them "file:line:col: ERROR: text".
  const msg = e instanceof Error ? e.message : typeof e === "string" ? e : "";
  const m = /^(.+?):(\d+):(\d+): ERROR: (.*)$/m.exec(msg);
  if (!m) return undefined;
  const line = Number(m[2]);
  return located(m[1]!, line, Number(m[3]), m[4]!, lineOfFile(m[1]!, line), 1);
}

function located(file: string, line: number, byteColumn: number, text: string, lineText: string | undefined, length: number): string {
  const abs = path.resolve(file);
  // esbuild counts the column in UTF-8 bytes.
  const column = lineText === undefined ? byteColumn : Buffer.from(lineText).subarray(0, byteColumn).toString().length;
  const head = `${rel(abs)}:${line}:${column + 1} - error: ${text}`;
  return lineText === undefined ? head : `${head}\n${codeFrame(line, column, lineText, length)}`;
}

function lineOfFile(file: string, line: number): string | undefined {
  try {
    return readFileSync(file, "utf8").split(/\r?\n/)[line - 1];
  } catch {
    return undefined;
  }
}
