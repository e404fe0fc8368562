// A search run in a worker thread that the calling thread supervises. The calling thread
// stays free while the search runs, so it can stop the search on a signal or at the
// deadline even when spec code never returns (an endless loop in a guard), show progress,
// and still produce an honest, incomplete verdict.
import { Worker } from "node:worker_threads";
import { once } from "./parallel.ts";
import { compile, type Model } from "./compile.ts";
import { RUN_ACTION_PROPERTY, RUN_BUSY, RUN_EFFECT, RUN_GUARD, RUN_INVARIANT, RUN_QUIESCENT, RUN_SHIFT, RUN_WITNESS, RUNNING, STOP_INTERRUPT, STOP_TIMEOUT } from "./spec-calls.ts";
import { abandonedVerdict, type CheckOptions } from "./index.ts";
import { startWorker } from "./parallel.ts";
import { SpecError, type Spec } from "./spec.ts";
import type { Verdict } from "./verdict.ts";

/** The options a hosted search takes: plain data, so they can cross to the worker. */
export type HostedOptions = Omit<CheckOptions, "progress" | "stop" | "running" | "specUrl">;

export interface Progress {
  distinct: number;
  generated: number;
  depth: number;
  seconds: number;
}

/** How long spec code may keep the search from answering a stop request. */
const GRACE_MS = 1000;

/** Slot of the shared control array that holds the stop request. */
const STOP = 0;

export class SearchHost {
  private worker?: Worker;
  private ready?: Promise<void>;
  /** [stop request, running spec code] */
  private readonly control = new Int32Array(new SharedArrayBuffer(8));
  /** distinct, generated, depth, seconds: written by the search about once a second. */
  private readonly counts = new Float64Array(new SharedArrayBuffer(32));
  private current?: { abandon: (why: "interrupted" | "timeout") => void };
  /** A stop request is kept: one that comes while the worker starts must not be lost. */
  private interrupted = false;

  /** The running counts of the search in progress (zeros before the first report). */
  progress(): Progress {
    const c = this.counts;
    return { distinct: c[0], generated: c[1], depth: c[2], seconds: c[3] };
  }

  /**
   * Asks the search in progress to stop, as if a bound had stopped it; it answers with an
   * incomplete verdict. Spec code that does not return within a second is abandoned.
   */
  interrupt(): void {
    this.interrupted = true;
    Atomics.store(this.control, STOP, STOP_INTERRUPT);
    const cur = this.current;
    if (cur) setTimeout(() => cur.abandon("interrupted"), GRACE_MS).unref();
  }

  /**
   * Checks `spec` (the default export of `specUrl`) in the worker. One worker serves every
   * spec of a run: it imports each spec file once, the first time a check names it (starting
   * a worker, with tsx and refcheck's own modules, costs about 0.3 s).
   */
  async check(spec: Spec, params: Record<string, unknown>, opts: HostedOptions, specUrl: string): Promise<Verdict> {
    await this.start();
    const w = this.worker!;
    Atomics.store(this.control, STOP, this.interrupted ? STOP_INTERRUPT : 0);
    Atomics.store(this.control, RUNNING, 0);
    this.counts.fill(0);
    const t0 = performance.now();
    return new Promise<Verdict>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        w.off("message", onMessage);
        w.off("error", onError);
        w.off("exit", onExit);
        this.current = undefined;
      };
      const onMessage = (m: any) => {
        if (m?.type === "verdict") {
          done();
          resolve(m.verdict as Verdict);
        } else if (m?.type === "error") {
          done();
          reject(m.spec ? new SpecError(m.message) : Object.assign(new Error(m.message), { stack: m.stack }));
        }
      };
      const onError = (e: Error) => {
        done();
        this.forget();
        reject(e);
      };
      const onExit = (code: number) => {
        done();
        this.forget();
        reject(new Error(`the search worker exited with code ${code}`));
      };
      // Spec code stuck past the deadline: end the worker and say what was running.
      const abandon = (why: "interrupted" | "timeout") => {
        if (this.current?.abandon !== abandon) return;
        done();
        // The model is built here only now, for the names: the worker has its own.
        const model = compile(spec, params);
        const running = runningLabel(model, Atomics.load(this.control, RUNNING));
        const seconds = (performance.now() - t0) / 1000;
        void this.close();
        resolve(abandonedVerdict(model, { ...this.progress(), seconds }, why, running, opts));
      };
      this.current = { abandon };
      if (this.interrupted) setTimeout(() => abandon("interrupted"), GRACE_MS).unref();
      w.on("message", onMessage);
      w.on("error", onError);
      w.on("exit", onExit);
      if (opts.timeoutSeconds !== undefined) {
        timer = setTimeout(() => {
          Atomics.store(this.control, STOP, STOP_TIMEOUT);
          timer = setTimeout(() => abandon("timeout"), GRACE_MS);
        }, opts.timeoutSeconds * 1000);
      }
      w.postMessage({ type: "check", specUrl, params, opts });
    });
  }

  private start(): Promise<void> {
    if (this.ready) return this.ready;
    const w = startWorker("search-worker", {
      workerData: { control: this.control, counts: this.counts },
    });
    this.worker = w;
    // Its first message: "ready" (it imports the spec files later, as checks name them).
    this.ready = once(w).then((m: any) => {
      if (m?.type !== "ready") throw new Error("the search worker did not start");
    });
    this.ready.catch(() => this.forget());
    return this.ready;
  }

  private forget(): void {
    this.worker = undefined;
    this.ready = undefined;
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.forget();
    await w?.terminate();
  }
}

/** What the search was running when it was abandoned, from its RUNNING code. */
export function runningLabel(model: Model, code: number): string | undefined {
  const kind = Math.floor(code / RUN_SHIFT), i = code % RUN_SHIFT;
  switch (kind) {
    case RUN_GUARD:
      return model.instances[i] && `the guard of action ${model.instances[i].label}`;
    case RUN_EFFECT:
      return model.instances[i] && `the effect of action ${model.instances[i].label}`;
    case RUN_INVARIANT:
      return model.invariants[i] && `invariant "${model.invariants[i].name}"`;
    case RUN_WITNESS:
      return model.witnesses[i] && `witness "${model.witnesses[i].name}"`;
    case RUN_ACTION_PROPERTY:
      return model.actionProperties[i] && `action property "${model.actionProperties[i].name}"`;
    case RUN_QUIESCENT:
      return model.quiescent[i] && `quiescent property "${model.quiescent[i].name}"`;
    case RUN_BUSY:
      return "busy";
    default:
      return undefined;
  }
}
