// Run from the sources, a worker thread starts without the TypeScript loader: register it,
// then run the module whose URL the thread's argv holds (parallel.ts's startModuleWorker;
// compiled, the module's own .js file starts directly).
// tsx starts its WebAssembly lexer without awaiting it and falls back to a JavaScript one
// when it cannot (no memory under a tight `ulimit -v`): that rejection loses nothing.
process.on("unhandledRejection", (e) => {
  if (e instanceof RangeError && /WebAssembly/.test(e.message)) return;
  throw e;
});
const { register } = await import("tsx/esm/api");

register();
await import(process.argv[2]);
