// Imports a spec file (TypeScript) for the command line and the worker threads. Run from
// the sources, refcheck's launcher has registered tsx already. Run compiled (the package),
// refcheck's own code is JavaScript: tsx is registered here, at the first spec import, so
// that commands that load no spec (--version, --help, trace) never pay for it.
import { readFileSync } from "node:fs";
import { register } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const compiled = !import.meta.url.endsWith(".ts");
let tsx: Promise<void> | undefined;
let esm: Promise<void> | undefined;

/** The "type" of the package.json nearest to a file ("commonjs" when there is none). */
function packageType(file: string): string {
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    try {
      return (JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as { type?: string }).type ?? "commonjs";
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") return "commonjs";
    }
    if (path.dirname(dir) === dir) return "commonjs";
  }
}

export async function importSpecModule(url: string): Promise<Record<string, unknown>> {
  if (compiled) {
    if (!tsx) {
      // tsx's unawaited WebAssembly lexer start may fail for lack of memory; it falls back.
      process.on("unhandledRejection", (e) => {
        if (e instanceof RangeError && /WebAssembly/.test(e.message)) return;
        throw e;
      });
    }
    await (tsx ??= import("tsx/esm/api").then((api) => void api.register()));
  }
  // In a CommonJS package (what `npm init -y` makes), or outside any package, tsx would
  // compile the spec to CommonJS; a hook registered after tsx's (so it runs first) makes it
  // an ES module.
  if (url.startsWith("file:") && packageType(fileURLToPath(url)) !== "module") {
    await (esm ??= Promise.resolve(register(new URL(`./esm-hooks.${compiled ? "js" : "ts"}`, import.meta.url))));
  }
  return (await import(url)) as Record<string, unknown>;
}
