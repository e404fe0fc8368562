#!/usr/bin/env node
// Launcher: runs the TypeScript command line through tsx (no build step). A failure to
// start at all is an internal error, exit 4, never exit 1 ("a property is violated").
const internal = (e) => {
  const msg = (e instanceof Error ? e.message : String(e)).split("\n")[0].slice(0, 300);
  process.stderr.write(`refcheck: internal error: ${msg}\nThis is not a problem with your spec (REFCHECK_DEBUG=1 prints the stack).\n`);
  if (process.env.REFCHECK_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  process.exit(4);
};
process.on("unhandledRejection", (e) => {
  // tsx starts its WebAssembly lexer without awaiting it and falls back to a JavaScript one
  // when it cannot (no memory under a tight `ulimit -v`): nothing is lost.
  if (e instanceof RangeError && /WebAssembly/.test(e.message)) return;
  internal(e);
});
// An error no part of refcheck handled (the loader's own thread failing, say) is ours.
process.on("uncaughtException", internal);
try {
  // --version, and a `list` the cache answers, before anything else loads (tsx takes 0.2 s).
  const { quickStart } = await import("./startup.mjs");
  if (!quickStart(process.argv.slice(2))) {
    const { register: registerHooks } = await import("node:module");
    registerHooks("./loader-guard.mjs", import.meta.url);
    const { register } = await import("tsx/esm/api");
    register();
    await import("./refcheck.ts");
  }
} catch (e) {
  internal(e);
}
