// A search worker: compiles the spec itself (closures cannot cross threads), then expands
// the chunks of each BFS level it is sent (see chunk.ts) against the shared visited set.
import { parentPort, workerData } from "node:worker_threads";
import { ChunkExpander } from "./chunk.ts";
import { compile } from "./compile.ts";
import type { WorkerTask } from "./parallel.ts";
import { importSpecModule } from "./import-spec.ts";
import { isSpec, SpecError } from "./spec.ts";
import { VisitedSet } from "./store.ts";

const { specUrl, params, symmetry } = workerData as { specUrl: string; params: Record<string, unknown>; symmetry: boolean };
const port = parentPort!;
// Spec output (console.log) goes to stderr, so that stdout stays the report (--json).
console.log = console.info = console.debug = console.error;

function fail(e: unknown): void {
  port.postMessage({ type: "error", spec: e instanceof SpecError, message: e instanceof Error ? e.message : String(e) });
}

try {
  const mod = await importSpecModule(specUrl);
  if (!isSpec(mod.default)) throw new SpecError(`${specUrl}: does not default-export a spec`);
  const chunks = new ChunkExpander(compile(mod.default, params), symmetry);
  port.on("message", (t: WorkerTask) => {
    try {
      const r = chunks.run(t, VisitedSet.attach(t.table));
      // Hand over the buffers themselves (no copy); the search reads only the first n candidates.
      port.postMessage(r, [r.candidates.buffer as ArrayBuffer, r.fired.buffer as ArrayBuffer, r.changed.buffer as ArrayBuffer, r.masks.buffer as ArrayBuffer]);
    } catch (e) {
      fail(e);
    }
  });
  port.postMessage({ type: "ready" });
} catch (e) {
  fail(e);
}
