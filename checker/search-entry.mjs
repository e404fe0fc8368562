// Run from the sources, the search worker starts without the TypeScript loader: register
// it, then run the worker (compiled, supervise.ts starts search-worker.js directly).
import { register } from "tsx/esm/api";

register();
await import("./search-worker.ts");
