// A search worker: compiles the spec itself (closures cannot cross threads), then expands
// chunks of each BFS level and keeps the successors not already in the shared visited set.
import { parentPort, workerData } from "node:worker_threads";
import { compile } from "./compile.ts";
import { candidateStride, canonicalizerFor, Expander, frontierStride } from "./expander.ts";
import { STOP_INTERRUPT, STOP_TIMEOUT } from "./spec-calls.ts";
import type { ChunkResult, LevelTask } from "./parallel.ts";
import { importSpecModule } from "./import-spec.ts";
import { isSpec, SpecError } from "./spec.ts";
import { GrowU32, RecentKeys, VisitedSet } from "./store.ts";

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
  const model = compile(mod.default, params);
  const W = model.words;
  const cs = candidateStride(model), fs = frontierStride(model);
  const ex = new Expander(model, canonicalizerFor(model, symmetry));
  const D = ex.D, carry = ex.carry;
  // Keys this worker found in the shared set or kept earlier (the main thread inserts every
  // kept candidate, in frontier order, before any later chunk's): a hit is a duplicate.
  const recent = new RecentKeys();
  // A successor with a recent key is dropped as it is made (see LocalSearch); `key` holds the
  // key of the one being emitted.
  const key = new Uint32Array(2);
  let keyOf: VisitedSet | undefined;
  ex.accept = (d) => recent.takeState(keyOf!, d, key);
  port.on("message", (t: LevelTask) => {
    try {
      const seen = VisitedSet.attach(t.table);
      keyOf = seen;
      const frontier = new Uint32Array(t.frontier);
      const out = new GrowU32(Math.max(1024, (t.to - t.from) * cs));
      // Successors repeated within this chunk: only the first is kept (the main thread
      // would drop the others anyway, in the same order).
      const local = new VisitedSet(W, model.codec.lastWordBits, Math.max(1024, (t.to - t.from) * 2));
      let pending = 0;
      // Drops the pending candidates known from earlier levels or earlier in this chunk (the
      // recent keys are gone already): touch their home slots first so that the cache misses
      // overlap, then compact.
      const filter = () => {
        const a = out.a;
        const n = (out.n - pending) / cs;
        seen.touch(a.subarray(pending), n, cs, W + 2);
        let to = pending;
        for (let from = pending, j = 0; from < out.n; from += cs, j++) {
          const k0 = a[from + W + 2], k1 = a[from + W + 3];
          if (seen.hasKey(k0, k1) || !local.addKey(k0, k1)) continue;
          if (to !== from) a.copyWithin(to, from, from + cs);
          to += cs;
        }
        out.n = to;
        pending = to;
      };
      const emit = (parentId: number, inst: number) => {
        const at = out.reserve(cs);
        const a = out.a;
        for (let w = 0; w < W; w++) a[at + w] = D[w];
        a[at + W] = parentId;
        a[at + W + 1] = inst;
        a[at + W + 2] = key[0];
        a[at + W + 3] = key[1];
        for (let k = 0; k < carry.length; k++) a[at + W + 4 + k] = carry[k];
        if (out.n - pending >= 512 * cs) filter();
      };
      ex.importMasks(t.masks);
      ex.fired.fill(0);
      ex.changed.fill(0);
      ex.generated = 0;
      ex.hidden = false;
      const hitsBefore = ex.hits.length;
      let stoppedBy: ChunkResult["stoppedBy"];
      for (let k = t.from; k < t.to; k++) {
        if (((k - t.from) & 15) === 15) {
          const r = t.stop ? Atomics.load(t.stop, 0) : 0;
          if (r === STOP_INTERRUPT) stoppedBy = "interrupted";
          else if (r === STOP_TIMEOUT || performance.now() > t.deadline) stoppedBy = "timeout";
          if (stoppedBy) break;
        }
        const off = k * fs;
        ex.expand(frontier, off, frontier[off + W], emit, t.atBound ? seen : undefined);
      }
      filter();
      // Hand over the buffer itself (no copy); the main thread reads only the first n.
      const candidates = out.a;
      const r: ChunkResult = {
        chunk: t.chunk,
        candidates,
        n: out.n / cs,
        hits: ex.hits.slice(hitsBefore),
        fired: ex.fired.slice(),
        changed: ex.changed.slice(),
        generated: ex.generated,
        hidden: ex.hidden,
        stoppedBy,
        masks: ex.exportMasks(),
        lockEdges: ex.lockOrder ? [...ex.lockOrder.edges.values()] : undefined,
      };
      port.postMessage(r, [candidates.buffer as ArrayBuffer, r.fired.buffer as ArrayBuffer, r.changed.buffer as ArrayBuffer, r.masks.buffer as ArrayBuffer]);
    } catch (e) {
      fail(e);
    }
  });
  port.postMessage({ type: "ready" });
} catch (e) {
  fail(e);
}
