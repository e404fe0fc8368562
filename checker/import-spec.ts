// Imports a spec file (TypeScript) for the command line and the worker threads. Run from
// the sources, refcheck's launcher has registered tsx already. Run compiled (the package),
// refcheck's own code is JavaScript: tsx is registered here, at the first spec import, so
// that commands that load no spec (--version, --help, trace) never pay for it.
import { register } from "node:module";

const compiled = !import.meta.url.endsWith(".ts");
let loader: Promise<void> | undefined;

async function registerLoader(): Promise<void> {
  const tsx = await import("tsx/esm/api");
  tsx.register();
  // After tsx, so that it runs first: spec files load as ES modules in any project.
  register(new URL("./esm-hooks.js", import.meta.url));
}

export async function importSpecModule(url: string): Promise<Record<string, unknown>> {
  if (compiled) await (loader ??= registerLoader());
  return (await import(url)) as Record<string, unknown>;
}
