#!/usr/bin/env node
// The installed command (package.json "bin", compiled to dist/bin/cli.js). In a clone of
// refcheck's repository the sources sit beside dist/: run them, so that edits need no
// rebuild and the shipped specs, which import the sources, share one copy of the checker.
import { existsSync } from "node:fs";

const sources = new URL("../../bin/refcheck.mjs", import.meta.url);
if (!import.meta.url.endsWith(".ts") && existsSync(sources)) await import(sources.href);
else {
  // --version, and a `list` the cache answers, before the command line loads.
  const { quickStart } = await import("./startup.mjs");
  if (!quickStart(process.argv.slice(2))) await import("./refcheck.ts");
}
