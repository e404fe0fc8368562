// Finding and loading spec files, and locating the lines that define properties and
// actions (for SARIF, annotations and review documents).
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { isSpec, SpecError, type Spec } from "../checker/spec.ts";
import type { Verdict } from "../checker/verdict.ts";

export interface LoadedSpec {
  spec: Spec;
  /** Path relative to the working directory, with forward slashes. */
  file: string;
  source: string;
}

/** Spec files under a folder: every .ts file except the shared vocabulary in specs/kernel. */
function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) {
      if (name === "kernel" || name === "node_modules" || name.startsWith(".")) continue;
      walk(p, out);
    } else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(p);
  }
}

export async function loadSpecs(inputs: string[]): Promise<LoadedSpec[]> {
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
    for (const f of files) {
      const spec = await importSpec(f, !st.isDirectory());
      if (spec) {
        const rel = path.relative(process.cwd(), path.resolve(f)).split(path.sep).join("/");
        out.push({ spec, file: rel, source: readFileSync(f, "utf8") });
      }
    }
    if (st.isDirectory() && files.length === 0) throw new SpecError(`${input}: folder holds no spec files`);
  }
  return out;
}

/** Imports a spec file. A file named explicitly must default-export a spec. */
async function importSpec(file: string, explicit: boolean): Promise<Spec | undefined> {
  let mod: { default?: unknown };
  try {
    mod = await import(pathToFileURL(path.resolve(file)).href);
  } catch (e) {
    if (e instanceof SpecError) throw new SpecError(`${file}: ${e.message}`);
    const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
    throw new SpecError(`${file}: cannot load the spec file: ${msg}`);
  }
  if (isSpec(mod.default)) return mod.default;
  if (explicit) throw new SpecError(`${file}: does not default-export a spec (export default defineSpec({...}))`);
  return undefined;
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
    const line = p.kind === "fault" || p.kind === "deadlock" ? undefined : lineOf(source, p.name);
    if (line) p.line = line;
  }
  for (const c of v.coverage) {
    const line = lineOf(source, c.action);
    if (line) c.line = line;
  }
  return v;
}
