// A simulation worker (swarm): compiles the spec itself (closures cannot cross threads),
// runs the walks whose run numbers it claims from the shared counter, and answers once
// with its totals and first hits.
import { parentPort, workerData } from "node:worker_threads";
import { compile } from "./compile.ts";
import { importSpecModule } from "./import-spec.ts";
import { runSimWorker, type SimWorkerData } from "./simulate.ts";
import { isSpec, SpecError } from "./spec.ts";

const d = workerData as SimWorkerData;
const port = parentPort!;
// Spec output (console.log) goes to stderr, so that stdout stays the report (--json).
console.log = console.info = console.debug = console.error;

try {
  const mod = await importSpecModule(d.specUrl);
  if (!isSpec(mod.default)) throw new SpecError(`${d.specUrl}: does not default-export a spec`);
  const t = runSimWorker(compile(mod.default, d.params), d);
  port.postMessage(t, [t.fired.buffer as ArrayBuffer, t.changed.buffer as ArrayBuffer]);
} catch (e) {
  port.postMessage({ type: "error", spec: e instanceof SpecError, message: e instanceof Error ? e.message : String(e) });
}
