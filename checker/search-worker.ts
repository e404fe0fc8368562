// The worker side of a supervised search (supervise.ts): imports the spec once, then runs
// each check it is sent and answers with the verdict. The stop request and the progress
// counts live in shared memory, so the supervising thread reads and writes them while this
// thread is busy.
import { parentPort, workerData } from "node:worker_threads";
import { checkAsync } from "./index.ts";
import { importSpecModule } from "./import-spec.ts";
import { simulateAsync } from "./simulate.ts";
import { isSpec, SpecError, type Spec } from "./spec.ts";
import type { HostedOptions } from "./supervise.ts";

const { specUrl, control, counts } = workerData as { specUrl: string; control: Int32Array; counts: Float64Array };
const port = parentPort!;
// Spec output (console.log) goes to stderr, so that stdout stays the report (--json).
console.log = console.info = console.debug = console.error;

function fail(e: unknown): void {
  port.postMessage({
    type: "error",
    spec: e instanceof SpecError,
    message: e instanceof Error ? e.message : String(e),
    stack: e instanceof Error ? e.stack : undefined,
  });
}

try {
  const mod = await importSpecModule(specUrl);
  if (!isSpec(mod.default)) throw new SpecError(`${specUrl}: does not default-export a spec`);
  const spec: Spec = mod.default;
  port.on("message", async (m: { type: "check"; params: Record<string, unknown>; opts: HostedOptions }) => {
    try {
      const run = m.opts.simulate ? (s: Spec, p: Record<string, unknown>, o: Parameters<typeof checkAsync>[2]) => simulateAsync(s, p, { ...o, simulate: m.opts.simulate! }) : checkAsync;
      const verdict = await run(spec, m.params, {
        ...m.opts,
        specUrl,
        stop: control,
        running: control,
        progress: (p) => {
          counts[0] = p.distinct;
          counts[1] = p.generated;
          counts[2] = p.depth;
          counts[3] = p.seconds;
        },
      });
      port.postMessage({ type: "verdict", verdict });
    } catch (e) {
      fail(e);
    }
  });
  port.postMessage({ type: "ready" });
} catch (e) {
  fail(e);
}
