// The worker side of a supervised search (supervise.ts): runs each check it is sent and
// answers with the verdict, importing each spec file the first time a check names it. The
// stop request and the progress counts live in shared memory, so the supervising thread
// reads and writes them while this thread is busy.
import { parentPort, workerData } from "node:worker_threads";
import { checkAsync } from "./index.ts";
import { importSpecModule } from "./import-spec.ts";
import { simulateAsync } from "./simulate.ts";
import { isSpec, SpecError, type Spec } from "./spec.ts";
import type { HostedOptions } from "./supervise.ts";

const { control, counts } = workerData as { control: Int32Array; counts: Float64Array };
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

const specs = new Map<string, Promise<Spec>>();
function specOf(url: string): Promise<Spec> {
  let p = specs.get(url);
  if (!p) {
    p = importSpecModule(url).then((mod) => {
      if (!isSpec(mod.default)) throw new SpecError(`${url}: does not default-export a spec`);
      return mod.default;
    });
    specs.set(url, p);
  }
  return p;
}

port.on("message", async (m: { type: "check"; specUrl: string; params: Record<string, unknown>; opts: HostedOptions }) => {
  try {
    const specUrl = m.specUrl;
    const spec = await specOf(specUrl);
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
