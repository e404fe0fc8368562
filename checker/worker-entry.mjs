// Run from the sources, a worker thread starts without the TypeScript loader: register it,
// then run the worker (compiled, parallel.ts starts worker.js directly).
import { register } from "tsx/esm/api";

register();
await import("./worker.ts");
