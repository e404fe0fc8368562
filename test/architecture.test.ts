// The one-way flow of DESIGN.md, checked on the sources: specs -> checker -> verdict ->
// reports. The engine knows nothing of kernels, output formats or the command line, and a
// renderer only formats a verdict.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Every import or re-export of a module in a source file: [specifier, type-only]. */
export function importsOf(source: string): { from: string; typeOnly: boolean }[] {
  const out: { from: string; typeOnly: boolean }[] = [];
  const re = /^\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?["']([^"']+)["']/gm;
  for (let m; (m = re.exec(source)); ) out.push({ from: m[3], typeOnly: !!m[2] });
  for (const m of source.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) out.push({ from: m[1], typeOnly: false });
  return out;
}

function sources(dir: string): string[] {
  return readdirSync(path.join(root, dir))
    .filter((f) => /\.(ts|mjs)$/.test(f) && !f.endsWith(".d.ts"))
    .map((f) => path.join(dir, f));
}

/** The top folder a relative import from `file` lands in ("checker", "specs", ...). */
function folderOf(file: string, spec: string): string | undefined {
  if (!spec.startsWith(".")) return undefined;
  return path.relative(root, path.resolve(root, path.dirname(file), spec)).split(path.sep)[0];
}

test("importsOf sees static, type-only, re-exported and dynamic imports", () => {
  const src = `import { a } from "../specs/x.ts";\nimport type { B } from "./b.ts";\nexport { c } from "../reports/c.ts";\nconst m = await import("../bin/d.ts");\n`;
  assert.deepEqual(importsOf(src), [
    { from: "../specs/x.ts", typeOnly: false },
    { from: "./b.ts", typeOnly: true },
    { from: "../reports/c.ts", typeOnly: false },
    { from: "../bin/d.ts", typeOnly: false },
  ]);
});

test("checker/ imports nothing from specs/, reports/ or bin/", () => {
  for (const f of sources("checker")) {
    for (const { from } of importsOf(readFileSync(path.join(root, f), "utf8"))) {
      const to = folderOf(f, from);
      assert.ok(!["specs", "reports", "bin"].includes(to ?? ""), `${f} imports ${from}`);
    }
  }
});

test("reports/ imports only types from checker/, and nothing from specs/ or bin/", () => {
  for (const f of sources("reports")) {
    for (const { from, typeOnly } of importsOf(readFileSync(path.join(root, f), "utf8"))) {
      const to = folderOf(f, from);
      assert.ok(!["specs", "bin"].includes(to ?? ""), `${f} imports ${from}`);
      if (to === "checker") assert.ok(typeOnly, `${f} imports values from ${from}: a renderer only formats a verdict`);
    }
  }
});

test("the kernel vocabulary uses only the checker's spec API", () => {
  for (const f of sources("specs/kernel")) {
    for (const { from } of importsOf(readFileSync(path.join(root, f), "utf8"))) {
      const to = folderOf(f, from);
      assert.ok(!["reports", "bin"].includes(to ?? ""), `${f} imports ${from}`);
    }
  }
});
