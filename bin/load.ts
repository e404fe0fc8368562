// Finding and loading spec files, and locating the lines that define properties and
// actions (for SARIF, annotations and review documents).
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { importSpecModule } from "../checker/import-spec.ts";
import { isSpec, SpecError, type Spec } from "../checker/spec.ts";
import type { Verdict } from "../checker/verdict.ts";
import { syntaxLocation } from "./typecheck.ts";

export interface LoadedSpec {
  spec: Spec;
  /** Path relative to the working directory, with forward slashes. */
  file: string;
  source: string;
}

/** A file found in a spec folder and not loaded as a spec, with the reason. */
export interface SkippedFile {
  file: string;
  why: string;
}

/**
 * The one rule that tells helpers from specs in a folder: a helper lives in a folder named
 * `kernel` or `lib`, or its file name starts with `_`. Every other `.ts` file must
 * default-export a spec. Returns why a path is a helper, or undefined.
 */
export function helperReason(file: string): string | undefined {
  const parts = file.split(/[\/]/);
  const dir = parts.slice(0, -1).find((d) => d === "kernel" || d === "lib");
  if (dir) return `helper (in a ${dir}/ folder)`;
  if (parts[parts.length - 1].startsWith("_")) return "helper (its name starts with _)";
  return undefined;
}

const HELPER_RULE = "helpers live in a folder named kernel/ or lib/, or have a file name starting with _";

/** .ts files under a folder, in name order (dot folders and node_modules left out). */
function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir).sort()) {
    if (name === "node_modules" || name.startsWith(".")) continue;
    const p = path.join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) walk(p, out);
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(p);
  }
}

const rel = (f: string) => path.relative(process.cwd(), path.resolve(f)).split(path.sep).join("/");

/**
 * Loads the specs named by the inputs (files or folders). Inputs that yield no spec, and
 * files in a folder that are neither specs nor helpers, are spec errors: a check that
 * silently checks nothing must not read as a pass.
 */
export async function loadSpecs(inputs: string[], skipped: SkippedFile[] = []): Promise<LoadedSpec[]> {
  const out: LoadedSpec[] = [];
  for (const input of inputs) {
    let st;
    try {
      st = statSync(input);
    } catch {
      throw new SpecError(`${input}: no such file or folder (expected a spec file or a folder of specs)`);
    }
    const files: string[] = [];
    if (st.isDirectory()) walk(input, files);
    else files.push(input);
    const before = out.length;
    const skippedHere: SkippedFile[] = [];
    for (const f of files) {
      const helper = st.isDirectory() ? helperReason(rel(f)) : undefined;
      if (helper) {
        skippedHere.push({ file: rel(f), why: helper });
        continue;
      }
      const spec = await importSpec(f);
      out.push({ spec, file: rel(f), source: readFileSync(f, "utf8") });
    }
    skipped.push(...skippedHere);
    if (out.length === before) {
      const what = files.length === 0 ? "holds no .ts files" : `holds no spec, only helpers (${skippedHere.map((s) => s.file).join(", ")})`;
      throw new SpecError(`${input}: ${what}; nothing to check (a spec file default-exports defineSpec({...}))`);
    }
  }
  return out;
}

/** Imports a spec file; it must default-export a spec. */
async function importSpec(file: string): Promise<Spec> {
  let mod: Record<string, unknown>;
  try {
    mod = await importSpecModule(pathToFileURL(path.resolve(file)).href);
  } catch (e) {
    if (e instanceof SpecError) throw new SpecError(`${file}: ${e.message}`);
    const located = syntaxLocation(e);
    if (located) throw new SpecError(`cannot load the spec file ${file}: syntax error at ${located}`);
    throw new SpecError(`${file}: cannot load the spec file: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`);
  }
  if (isSpec(mod.default)) return mod.default;
  const named = Object.keys(mod).filter((k) => k !== "default" && isSpec(mod[k]));
  if (named.length) {
    throw new SpecError(`${file}: exports a spec as "${named[0]}" but not as default; write export default defineSpec({...})`);
  }
  const has = mod.default === undefined ? "has no default export" : "default-exports something that is not a spec";
  throw new SpecError(`${file}: ${has}; a spec file must export default defineSpec({...}), and ${HELPER_RULE}`);
}

/** 1-based line of the first `name:` (or `"name":`, or `name(`) key in the source. */
export function lineOf(source: string, name: string): number | undefined {
  const esc = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const re = new RegExp(`^\\s*(?:["']${esc}["']|${esc})\\s*[:(]`);
  const lines = source.split("\n");
  const i = lines.findIndex((l) => re.test(l));
  return i >= 0 ? i + 1 : undefined;
}

/** Fills in the source lines of properties and actions. */
export function locate(v: Verdict, source: string): Verdict {
  for (const p of v.properties) {
    const line = p.kind === "fault" || p.kind === "deadlock" ? undefined : lineOf(source, p.kind === "lock-order" ? "locks" : p.name);
    if (line) p.line = line;
  }
  for (const c of v.coverage) {
    const line = lineOf(source, c.action);
    if (line) c.line = line;
  }
  return v;
}
