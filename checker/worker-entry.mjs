// Worker threads start without the TypeScript loader: register it, then run the worker.
import { register } from "tsx/esm/api";

// Spec output (console.log) goes to stderr, so that stdout stays the report (--json).
console.log = console.info = console.debug = console.error;
register();
await import("./worker.ts");
