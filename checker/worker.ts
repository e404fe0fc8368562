// A search worker: compiles the spec itself (closures cannot cross threads), then expands
// chunks of each BFS level and keeps the successors not already in the shared visited set.
import { parentPort, workerData } from "node:worker_threads";
import { compile } from "./compile.ts";
import { candidateStride, canonicalizerFor, Expander } from "./explore.ts";
import type { ChunkResult, LevelTask } from "./parallel.ts";
import { isSpec, SpecError } from "./spec.ts";
import { GrowU32, VisitedSet } from "./store.ts";

const { specUrl, params, symmetry } = workerData as { specUrl: string; params: Record<string, unknown>; symmetry: boolean };
const port = parentPort!;

function fail(e: unknown): void {
  port.postMessage({ type: "error", spec: e instanceof SpecError, message: e instanceof Error ? e.message : String(e) });
}

try {
  const mod = await import(specUrl);
  if (!isSpec(mod.default)) throw new SpecError(`${specUrl}: does not default-export a spec`);
  const model = compile(mod.default, params);
  const W = model.words;
  const cs = candidateStride(W);
  const ex = new Expander(model, canonicalizerFor(model, symmetry));
  const D = ex.D;
  port.on("message", (t: LevelTask) => {
    try {
      const seen = VisitedSet.attach(t.table);
      const frontier = new Uint32Array(t.frontier);
      const out = new GrowU32(Math.max(1024, (t.to - t.from) * 4 * cs));
      const emit = (parentId: number, inst: number) => {
        const at = out.reserve(cs);
        const a = out.a;
        for (let w = 0; w < W; w++) a[at + w] = D[w];
        a[at + W] = parentId;
        a[at + W + 1] = inst;
        seen.keyInto(a, at, a, at + W + 2);
        // Known from an earlier level: the main thread would drop it anyway.
        if (seen.hasKey(a[at + W + 2], a[at + W + 3])) out.n -= cs;
      };
      ex.fired.fill(0);
      ex.generated = 0;
      ex.hidden = false;
      const hitsBefore = ex.hits.length;
      let timedOut = false;
      for (let k = t.from; k < t.to; k++) {
        if (((k - t.from) & 1023) === 1023 && performance.now() > t.deadline) {
          timedOut = true;
          break;
        }
        const off = k * (W + 1);
        ex.expand(frontier, off, frontier[off + W], emit, t.atBound ? seen : undefined);
      }
      const candidates = out.a.slice(0, out.n);
      const r: ChunkResult = {
        chunk: t.chunk,
        candidates,
        n: out.n / cs,
        hits: ex.hits.slice(hitsBefore),
        fired: ex.fired.slice(),
        generated: ex.generated,
        hidden: ex.hidden,
        timedOut,
      };
      port.postMessage(r, [candidates.buffer as ArrayBuffer, r.fired.buffer as ArrayBuffer]);
    } catch (e) {
      fail(e);
    }
  });
  port.postMessage({ type: "ready" });
} catch (e) {
  fail(e);
}
