// Run from the sources, a worker thread starts without the TypeScript loader: register it,
// then run the worker module named by the thread's argv (parallel.ts's startWorker; compiled,
// the worker's own .js file starts directly).
// tsx starts its WebAssembly lexer without awaiting it and falls back to a JavaScript one
// when it cannot (no memory under a tight `ulimit -v`): that rejection loses nothing.
process.on("unhandledRejection", (e) => {
  if (e instanceof RangeError && /WebAssembly/.test(e.message)) return;
  throw e;
});
const { register } = await import("tsx/esm/api");

register();
await import(`./${process.argv[2]}.ts`);
