// Simulation: random walks from the initial states, each step an enabled action instance
// chosen uniformly, every property checked at every step as the exhaustive search checks
// it. A violation is shrunk with fast-check to a short walk that still violates the same
// property, then rebuilt and re-validated like any counterexample (trace.ts).
//
// A walk is an array of choices: the initial state, then at each step an action instance:
// that instance when it is enabled there, else the enabled one at the choice's index modulo
// their number. Any array is a valid walk, so every shrunk array is one too, and every step
// of it is enabled; removing a step leaves the later ones naming the same actions where
// they can, which is what lets shrinking drop the steps that do not matter.
//
// Run r uses its own generator, seeded from (seed, r): the result of a run does not depend
// on which thread ran it. Each property keeps its shortest walk (ties: the lowest run).
// With workers (swarm), threads claim run numbers from a shared counter; the verdict is the
// same as on one thread.
import fc from "fast-check";
import { Worker } from "node:worker_threads";
import { compile, type Model } from "./compile.ts";
import { Limits, NO_PARENT, type ExploreOptions, type ExploreResult, type Hit, type PropertyRef, type StopReason } from "./explore.ts";
import { effectReturned, notDeterministic, RUN_ACTION_PROPERTY, RUN_BUSY, RUN_EFFECT, RUN_GUARD, RUN_INVARIANT, RUN_QUIESCENT, RUN_SHIFT, RUN_WITNESS, RUNNING, specFailure } from "./spec-calls.ts";
import { toVerdict, type CheckOptions, type SimulationSummary } from "./index.ts";
import { dependencies, LockOrder, type Dependency, type OrderEdge } from "./lockdep.ts";
import { once, startWorker } from "./parallel.ts";
import { Fault, type Spec } from "./spec.ts";
import { Verdict } from "./verdict.ts";
import { TraceLinks } from "./store.ts";

export interface SimulateOptions {
  /** Number of walks. */
  runs: number;
  /** Most steps per walk. */
  depth: number;
  /** Seed of every walk's generator (an integer, 0 .. 2^53 - 1). */
  seed: number;
  /** Stop at the first failed property (the lowest run that fails one). */
  first?: boolean;
}

export const DEFAULT_RUNS = 10_000;
export const DEFAULT_DEPTH = 100;

/** Where a walk hit a property: the run, and the walk's choices up to the hit. */
export interface WalkHit {
  /** Property slot (see Slots). */
  slot: number;
  run: number;
  /** Initial state index, then the instance of each step; for a fault or an action property the last step is the failing one. */
  choices: number[];
  message?: string;
}

/** A replayed walk up to its violation: the initial state and the instances taken. */
export interface Replayed {
  init: number;
  path: number[];
  message?: string;
}

/** A lock-order dependency (a thread holding `from` took `to`) and the shortest walk whose last step showed it. */
export interface WalkEdge {
  from: string;
  to: string;
  thread: number;
  run: number;
  choices: number[];
}

export interface WalkTotals {
  hits: WalkHit[];
  fired: Float64Array;
  changed: Float64Array;
  steps: number;
  runs: number;
  longest: number;
  stoppedBy?: StopReason;
  /** Lock-order dependencies seen, when the spec declares its locks. */
  edges?: WalkEdge[];
  /** A worker's walking time on the clock shared by threads (its start-up left out of steps per second). */
  from?: number;
  to?: number;
}

/** Properties numbered in one array: fault, deadlock, invariants, action properties, quiescent, witnesses. */
class Slots {
  readonly FAULT = 0;
  readonly DEADLOCK = 1;
  readonly inv: number;
  readonly act: number;
  readonly qui: number;
  readonly wit: number;
  readonly total: number;
  constructor(private readonly model: Model) {
    this.inv = 2;
    this.act = this.inv + model.invariants.length;
    this.qui = this.act + model.actionProperties.length;
    this.wit = this.qui + model.quiescent.length;
    this.total = this.wit + model.witnesses.length;
  }
  ref(slot: number): PropertyRef {
    if (slot === this.FAULT) return { kind: "fault" };
    if (slot === this.DEADLOCK) return { kind: "deadlock" };
    if (slot < this.act) return { kind: "invariant", index: slot - this.inv };
    if (slot < this.qui) return { kind: "action", index: slot - this.act };
    if (slot < this.wit) return { kind: "quiescent", index: slot - this.qui };
    return { kind: "reachable", index: slot - this.wit };
  }
  /** A hit of this slot is a failure (not a witness found as expected). */
  failure(slot: number): boolean {
    return slot < this.wit || this.model.witnesses[slot - this.wit].expect === "unreachable";
  }
  /** The property is about a transition: the walk's last choice is the failing step. */
  transition(slot: number): boolean {
    return slot === this.FAULT || (slot >= this.act && slot < this.qui);
  }
}

/** Run r's generator seed, mixed from the seed's two halves and r (murmur3's finalizer). */
function runSeed(seed: number, run: number): number {
  const fmix = (h: number) => {
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return h ^ (h >>> 16);
  };
  const lo = seed >>> 0, hi = Math.floor(seed / 2 ** 32) >>> 0;
  return fmix(fmix(fmix(lo) ^ Math.imul(hi, 0x9e3779b1)) ^ Math.imul(run + 1, 0x27d4eb2f));
}

/** The walk's hot loop: one packed state and one draft, no allocation per step. */
export class Walker {
  private readonly A: Uint32Array;
  private readonly D: Uint32Array;
  private readonly cur: any;
  private readonly draft: any;
  private readonly ctx = { ro: false };
  private readonly enabled: Int32Array;
  private readonly choices: Int32Array;
  /** The action object action properties receive, one per instance (built once). */
  private readonly acts: { name: string; params: Record<string, unknown> }[];
  readonly slots: Slots;
  /** Per property: the length of the shortest walk that hit it so far. */
  private readonly best: Int32Array;
  private readonly hitOf: (WalkHit | undefined)[];
  /** Replay: the instances enabled at the current step, marked with `stamp`. */
  private readonly mark: Int32Array;
  private stamp = 0;
  readonly fired: Float64Array;
  readonly changed: Float64Array;
  steps = 0;
  runs = 0;
  longest = 0;
  /** Set by a failure under --first: the walk ends there. */
  halted = false;
  haltRun = -1;
  private fault?: string;
  private rs = 0;
  /** "from\0to" -> the shortest walk showing the dependency (specs that declare locks). */
  private readonly edgeOf = new Map<string, WalkEdge>();
  running: Int32Array<ArrayBufferLike> = new Int32Array(2);

  constructor(
    readonly model: Model,
    private readonly opts: SimulateOptions,
  ) {
    const W = model.words, n = model.instances.length;
    this.A = new Uint32Array(W);
    this.D = new Uint32Array(W);
    this.cur = model.codec.view(this.A, { ro: true });
    this.draft = model.codec.view(this.D, this.ctx);
    this.enabled = new Int32Array(n);
    this.choices = new Int32Array(opts.depth + 1);
    this.acts = model.instances.map((x) => Object.freeze({ name: x.name, params: x.params }));
    this.slots = new Slots(model);
    this.best = new Int32Array(this.slots.total).fill(0x7fffffff);
    this.hitOf = new Array(this.slots.total);
    this.mark = new Int32Array(n);
    this.fired = new Float64Array(n);
    this.changed = new Float64Array(n);
  }

  /** mulberry32: a 32-bit generator that is fast and good enough to pick among a few dozen actions. */
  private next(): number {
    let t = (this.rs = (this.rs + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Fills `enabled` with the instances whose guard holds on A; returns their number. */
  private guards(): number {
    const { model, enabled, cur } = this;
    const instances = model.instances;
    let n = 0;
    for (let i = 0; i < instances.length; i++) {
      const inst = instances[i];
      if (inst.guard !== undefined) {
        let g: boolean;
        this.running[RUNNING] = RUN_GUARD * RUN_SHIFT + i;
        try {
          g = inst.guard(cur, inst.args);
        } catch (e) {
          throw specFailure(model, `guard of action ${inst.label}`, e);
        }
        if (!g) continue;
      }
      enabled[n++] = i;
    }
    return n;
  }

  /** Runs instance i on A into D; false (and `fault` set) when it faults. */
  private fire(i: number): boolean {
    const { model, A, D, ctx } = this;
    const inst = model.instances[i];
    for (let w = 0; w < A.length; w++) D[w] = A[w];
    ctx.ro = false;
    this.running[RUNNING] = RUN_EFFECT * RUN_SHIFT + i;
    try {
      const ret = inst.effect(this.draft, inst.args);
      if (ret !== undefined) throw effectReturned(ret);
    } catch (e) {
      ctx.ro = true;
      if (e instanceof Fault) {
        this.fault = e.message;
        return false;
      }
      throw specFailure(model, `action ${inst.label}`, e);
    }
    ctx.ro = true;
    return true;
  }

  private failsInvariant(p: number): boolean {
    const q = this.model.invariants[p];
    this.running[RUNNING] = RUN_INVARIANT * RUN_SHIFT + p;
    return !holds(this.model, "invariant", q.name, q.fn, this.cur);
  }
  private reachesWitness(p: number): boolean {
    const q = this.model.witnesses[p];
    this.running[RUNNING] = RUN_WITNESS * RUN_SHIFT + p;
    return holds(this.model, "witness", q.name, q.fn, this.cur);
  }
  private failsActionProperty(p: number, i: number): boolean {
    const q = this.model.actionProperties[p];
    this.running[RUNNING] = RUN_ACTION_PROPERTY * RUN_SHIFT + p;
    return !holds(this.model, "action property", q.name, q.fn, this.cur, this.draft, this.acts[i]);
  }
  private failsQuiescent(p: number): boolean {
    const q = this.model.quiescent[p];
    this.running[RUNNING] = RUN_QUIESCENT * RUN_SHIFT + p;
    return !holds(this.model, "quiescent property", q.name, q.fn, this.cur);
  }
  /** At a state with no enabled action: the busy thread, if any (a deadlock). */
  private busy(): unknown {
    if (!this.model.busy) return undefined;
    this.running[RUNNING] = RUN_BUSY * RUN_SHIFT;
    try {
      return this.model.busy(this.cur);
    } catch (e) {
      throw specFailure(this.model, "busy", e);
    }
  }

  private record(slot: number, run: number, last: number, message?: string): void {
    this.best[slot] = last;
    this.hitOf[slot] = { slot, run, choices: Array.from(this.choices.subarray(0, last + 1)), ...(message !== undefined ? { message } : {}) };
    if (this.opts.first && this.slots.failure(slot)) {
      this.halted = true;
      this.haltRun = run;
    }
  }

  /** The shortest walk found for each property. */
  get hits(): WalkHit[] {
    return this.hitOf.filter((h) => h !== undefined);
  }

  /** Invariants and witnesses on the state A, reached after `j` steps. */
  private checkState(run: number, j: number): void {
    const { best, slots, model } = this;
    for (let p = 0; p < model.invariants.length; p++) {
      if (j < best[slots.inv + p] && this.failsInvariant(p)) this.record(slots.inv + p, run, j);
    }
    for (let p = 0; p < model.witnesses.length; p++) {
      if (j < best[slots.wit + p] && this.reachesWitness(p)) this.record(slots.wit + p, run, j);
    }
  }

  private terminal(run: number, j: number): void {
    const { best, slots, model } = this;
    const who = this.busy();
    if (who) {
      if (j < best[slots.DEADLOCK]) this.record(slots.DEADLOCK, run, j, deadlockMessage(who));
      return;
    }
    for (let p = 0; p < model.quiescent.length; p++) {
      if (j < best[slots.qui + p] && this.failsQuiescent(p)) this.record(slots.qui + p, run, j);
    }
  }

  /** The lock dependencies the step A -> D by instance `i` adds, as lockdep sees them (lockdep.ts). */
  private lockSteps(i: number): Dependency[] {
    return dependencies(this.model.locks!, this.model.lockTakes, this.cur, this.draft, i);
  }

  private observeLocks(run: number, j: number, i: number): void {
    for (const e of this.lockSteps(i)) {
      const key = `${e.from}\0${e.to}`;
      const old = this.edgeOf.get(key);
      if (!old || j + 1 < old.choices.length) this.edgeOf.set(key, { ...e, run, choices: Array.from(this.choices.subarray(0, j + 1)) });
    }
  }

  /** Like `replay`, for a walk whose last step adds the dependency from -> to in that thread. */
  replayEdge(c: readonly number[], from: string, to: string, thread: number): Replayed | null {
    const { model, A, D, enabled, mark } = this;
    const init = c.length ? c[0] % model.inits.length : 0;
    A.set(model.inits[init]);
    const path: number[] = [];
    for (let j = 1; j < c.length; j++) {
      const n = this.guards();
      if (n === 0) return null;
      const stamp = ++this.stamp;
      for (let k = 0; k < n; k++) mark[enabled[k]] = stamp;
      const i = c[j] < mark.length && mark[c[j]] === stamp ? c[j] : enabled[c[j] % n];
      path.push(i);
      if (!this.fire(i)) return null;
      if (this.lockSteps(i).some((e) => e.from === from && e.to === to && e.thread === thread)) return { init, path };
      A.set(D);
    }
    return null;
  }

  /** One random walk: run `run` of the simulation. */
  walk(run: number): void {
    const { model, A, D, enabled, choices, best, slots } = this;
    const depth = this.opts.depth;
    const W = A.length;
    const actionProperties = model.actionProperties.length;
    this.rs = runSeed(this.opts.seed, run);
    const ini = model.inits.length > 1 ? Math.floor((this.next() * model.inits.length) / 2 ** 32) : 0;
    choices[0] = ini;
    A.set(model.inits[ini]);
    this.runs++;
    this.checkState(run, 0);
    let j = 1;
    for (; !this.halted; j++) {
      const n = this.guards();
      if (n === 0) {
        this.terminal(run, j - 1);
        break;
      }
      if (j > depth) break;
      const i = enabled[n === 1 ? 0 : Math.floor((this.next() * n) / 4294967296)];
      choices[j] = i;
      this.steps++;
      this.fired[i]++;
      if (!this.fire(i)) {
        this.changed[i]++;
        if (j < best[slots.FAULT]) this.record(slots.FAULT, run, j, this.fault);
        break;
      }
      for (let p = 0; p < actionProperties; p++) {
        if (j < best[slots.act + p] && this.failsActionProperty(p, i)) this.record(slots.act + p, run, j);
      }
      if (model.locks) this.observeLocks(run, j, i);
      let same = true;
      for (let w = 0; w < W; w++) {
        if (A[w] !== D[w]) same = false;
        A[w] = D[w];
      }
      if (!same) this.changed[i]++;
      this.checkState(run, j);
    }
    if (j - 1 > this.longest) this.longest = Math.min(j - 1, depth);
  }

  /**
   * Replays a choice array (each choice the instance it names when enabled, else an index
   * modulo the instances enabled at its step) and says
   * whether it violates property `slot`; null if it does not. Only that property is checked:
   * the walk goes on through other failures, as the search does, and ends at a fault or a
   * state with no enabled action.
   */
  replay(c: readonly number[], slot: number): Replayed | null {
    const { model, A, D, enabled, slots, mark } = this;
    const init = c.length ? c[0] % model.inits.length : 0;
    A.set(model.inits[init]);
    const path: number[] = [];
    const stateHit = () => {
      if (slot >= slots.inv && slot < slots.act) return this.failsInvariant(slot - slots.inv);
      if (slot >= slots.wit) return this.reachesWitness(slot - slots.wit);
      return false;
    };
    if (stateHit()) return { init, path };
    for (let j = 1; ; j++) {
      const n = this.guards();
      if (n === 0) {
        const who = this.busy();
        if (slot === slots.DEADLOCK && who) return { init, path, message: deadlockMessage(who) };
        if (slot >= slots.qui && slot < slots.wit && !who && this.failsQuiescent(slot - slots.qui)) return { init, path };
        return null;
      }
      if (j >= c.length) return null;
      const stamp = ++this.stamp;
      for (let k = 0; k < n; k++) mark[enabled[k]] = stamp;
      const i = c[j] < mark.length && mark[c[j]] === stamp ? c[j] : enabled[c[j] % n];
      path.push(i);
      if (!this.fire(i)) return slot === slots.FAULT ? { init, path, message: this.fault } : null;
      if (slot >= slots.act && slot < slots.qui && this.failsActionProperty(slot - slots.act, i)) return { init, path };
      A.set(D);
      if (stateHit()) return { init, path };
    }
  }

  /** Runs walks on the run numbers `claim` hands out (-1: none left) until done or stopped. */
  loop(claim: () => number, stop: () => StopReason | undefined): StopReason | undefined {
    while (!this.halted) {
      const why = stop();
      if (why) return why;
      const run = claim();
      if (run < 0) return undefined;
      this.walk(run);
    }
    return undefined;
  }

  totals(stoppedBy?: StopReason): WalkTotals {
    return {
      hits: this.hits, fired: this.fired, changed: this.changed, steps: this.steps, runs: this.runs, longest: this.longest, stoppedBy,
      ...(this.model.locks ? { edges: [...this.edgeOf.values()] } : {}),
    };
  }
}

function deadlockMessage(who: unknown): string {
  return `deadlock: no action can run while ${String(who)} is blocked`;
}

function holds(model: Model, kind: string, name: string, fn: (...args: any[]) => boolean, a: unknown, b?: unknown, c?: unknown): boolean {
  try {
    return fn(a, b, c);
  } catch (e) {
    throw specFailure(model, `${kind} "${name}"`, e);
  }
}

/** The hit of each property with the shortest walk, then the lowest run. */
export function mergeHits(lists: WalkHit[][], first: boolean, slots: { failure(slot: number): boolean }): WalkHit[] {
  const best = new Map<number, WalkHit>();
  for (const list of lists) for (const h of list) {
    const b = best.get(h.slot);
    if (!b || h.choices.length < b.choices.length || (h.choices.length === b.choices.length && h.run < b.run)) best.set(h.slot, h);
  }
  let hits = [...best.values()];
  if (first) {
    // Under --first the runs after the lowest failing one were cut short: what they found depends on timing.
    const cut = Math.min(...hits.filter((h) => slots.failure(h.slot)).map((h) => h.run));
    hits = hits.filter((h) => h.run <= cut);
  }
  return hits.sort((a, b) => a.slot - b.slot);
}

/** Time shrinking may take per property, beyond which the shortest walk found so far stands. */
const SHRINK_BUDGET_MS = 10_000;
/** Of which the drop-and-swap pass (quadratic in the walk's length) may take this much. */
const SWAP_BUDGET_MS = 2_000;

/**
 * Shrinks a walk with fast-check: an array of natural numbers, seeded with the walk found,
 * under the property "this walk does not violate P"; the shrunk counterexample is then cut
 * at its violation and its choices replaced by the instances they took. Repeated until no
 * shorter walk is found (a pass can expose removals the previous one could not see), then
 * the drop-and-swap pass.
 */
export function shrinkWalk(walker: Walker, hit: WalkHit, budgetMs = SHRINK_BUDGET_MS): Replayed {
  const what = `violated ${propertyLabel(walker, hit.slot)}`;
  return shrinkChoices(walker, hit.choices, (c) => walker.replay(c, hit.slot), `(run ${hit.run}) that ${what}`, budgetMs);
}

/** Shrinks `choices` under `replay` (null: the walk does not show what is sought). */
function shrinkChoices(walker: Walker, choices0: readonly number[], replay: (c: readonly number[]) => Replayed | null, what: string, budgetMs: number): Replayed {
  const deadline = performance.now() + budgetMs;
  const first = replay(choices0);
  if (!first) throw notDeterministic(walker.model, `replaying the simulated walk ${what}, it no longer does`);
  let best = first;
  for (let pass = 0; pass < 8 && performance.now() < deadline; pass++) {
    const choices = [best.init, ...best.path];
    const prop = fc.property(fc.array(fc.nat(), { maxLength: choices.length }), (c) => performance.now() > deadline || replay(c) === null);
    const r = fc.check(prop, { seed: 0x5eed + pass, numRuns: 1, examples: [[choices]] });
    const c = r.counterexample?.[0];
    const got = c ? replay(c) : null;
    if (!got || got.path.length >= best.path.length) {
      if (got && got.path.length === best.path.length) best = got;
      break;
    }
    best = got;
  }
  return dropAndSwap(walker, best, replay, Math.min(deadline, performance.now() + SWAP_BUDGET_MS));
}

/**
 * Greedy shrinking stops where no single removal keeps the violation; a shorter walk may
 * still exist that drops one step and takes another action at a later one. Tries those
 * (steps x positions x instances replays), restarting from each shorter walk, until none
 * is shorter or the time is up.
 */
function dropAndSwap(walker: Walker, best: Replayed, replay: (c: readonly number[]) => Replayed | null, deadline: number): Replayed {
  const n = walker.model.instances.length;
  search: for (;;) {
    const path = best.path;
    for (let d = 0; d < path.length; d++) {
      const rest = [...path.slice(0, d), ...path.slice(d + 1)];
      for (let q = d; q < rest.length; q++) {
        if (performance.now() > deadline) return best;
        const c = [best.init, ...rest];
        for (let x = 0; x < n; x++) {
          c[q + 1] = x;
          const got = replay(c);
          if (got && got.path.length < path.length) {
            best = got;
            continue search;
          }
        }
      }
    }
    return best;
  }
}

function propertyLabel(walker: Walker, slot: number): string {
  const ref = walker.slots.ref(slot);
  const m = walker.model;
  switch (ref.kind) {
    case "fault":
      return "noFault";
    case "deadlock":
      return "noDeadlock";
    case "invariant":
      return `invariant ${m.invariants[ref.index].name}`;
    case "action":
      return `action property ${m.actionProperties[ref.index].name}`;
    case "quiescent":
      return `quiescent property ${m.quiescent[ref.index].name}`;
    case "reachable":
      return `witness ${m.witnesses[ref.index].name}`;
    default:
      return "lockOrder";
  }
}

export type SimulateCheckOptions = CheckOptions & { simulate: SimulateOptions };

const walkCounts = (w: Walker) => () => ({ distinct: w.runs, generated: w.steps, depth: w.longest });

/** Simulates on this thread. */
export function simulate(spec: Spec, params: Record<string, unknown>, opts: SimulateCheckOptions): Verdict {
  const model = compile(spec, params);
  const t0 = performance.now();
  const sim = opts.simulate;
  const deadline = opts.timeoutSeconds !== undefined ? t0 + opts.timeoutSeconds * 1000 : Infinity;
  const limits = new Limits(limitOptions(opts), t0, deadline);
  const walker = new Walker(model, sim);
  if (opts.running) walker.running = opts.running;
  let next = 0;
  const counts = walkCounts(walker);
  const stoppedBy = walker.loop(() => (next < sim.runs ? next++ : -1), () => limits.check(counts));
  return finishSimulation(model, [walker.totals(stoppedBy)], opts, t0, performance.now(), 1);
}

/** The bounds and callbacks of a search that a walk honours (not --max-states or --max-depth). */
function limitOptions(opts: CheckOptions): ExploreOptions {
  return { stop: opts.stop, maxMemoryBytes: opts.maxMemoryBytes, progress: opts.progress };
}

/** Data a simulation worker starts with. */
export interface SimWorkerData {
  specUrl: string;
  params: Record<string, unknown>;
  sim: SimulateOptions;
  /** [next run to claim, lowest failing run under --first] */
  shared: Int32Array;
  stop: Int32Array;
  running?: Int32Array;
  /** Per worker: runs, steps, longest walk (progress). */
  counts: Float64Array;
  index: number;
  /** Deadline on the wall clock shared by threads (performance.timeOrigin + now), or Infinity. */
  deadlineAt: number;
  maxMemoryBytes?: number;
}

/** Like `simulate`, with `opts.workers` threads (swarm) when there is more than one and a spec URL. */
export async function simulateAsync(spec: Spec, params: Record<string, unknown>, opts: SimulateCheckOptions): Promise<Verdict> {
  const workers = opts.workers ?? 1;
  if (workers <= 1 || !opts.specUrl) return simulate(spec, params, opts);
  const model = compile(spec, params);
  const t0 = performance.now();
  const shared = new Int32Array(new SharedArrayBuffer(8));
  shared[1] = 0x7fffffff;
  const counts = new Float64Array(new SharedArrayBuffer(8 * 3 * workers));
  const base: Omit<SimWorkerData, "index"> = {
    specUrl: opts.specUrl,
    params: model.params,
    sim: opts.simulate,
    shared,
    stop: opts.stop ?? new Int32Array(new SharedArrayBuffer(8)),
    running: opts.running,
    counts,
    deadlineAt: opts.timeoutSeconds !== undefined ? performance.timeOrigin + t0 + opts.timeoutSeconds * 1000 : Infinity,
    maxMemoryBytes: opts.maxMemoryBytes,
  };
  const threads = Array.from({ length: workers }, (_, index) => startWorker("sim-worker", { workerData: { ...base, index } }));
  const timer = opts.progress
    ? setInterval(() => {
        let runs = 0, steps = 0, longest = 0;
        for (let k = 0; k < workers; k++) {
          runs += counts[3 * k];
          steps += counts[3 * k + 1];
          longest = Math.max(longest, counts[3 * k + 2]);
        }
        opts.progress!({ distinct: runs, generated: steps, depth: longest, seconds: (performance.now() - t0) / 1000 });
      }, 1000)
    : undefined;
  try {
    const totals = (await Promise.all(threads.map((w) => resultOf(w)))) as WalkTotals[];
    return finishSimulation(model, totals, opts, t0, performance.now(), workers);
  } finally {
    clearInterval(timer);
    await Promise.all(threads.map((w) => w.terminate()));
  }
}

/** A worker's one answer; an error or an exit without one rejects. */
function resultOf(w: Worker): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number) => reject(new Error(`a simulation worker exited with code ${code} before answering`));
    w.once("exit", onExit);
    once(w).then(
      (m) => {
        w.off("exit", onExit);
        resolve(m);
      },
      (e) => {
        w.off("exit", onExit);
        reject(e);
      },
    );
  });
}

/** The walks of one simulation worker (sim-worker.ts). */
export function runSimWorker(model: Model, d: SimWorkerData): WalkTotals {
  const from = performance.timeOrigin + performance.now();
  const walker = new Walker(model, d.sim);
  if (d.running) walker.running = d.running;
  const limits = new Limits({ stop: d.stop, maxMemoryBytes: d.maxMemoryBytes }, performance.now(), d.deadlineAt - performance.timeOrigin);
  const { shared, counts } = d;
  const at = 3 * d.index;
  const claim = () => {
    const run = Atomics.add(shared, 0, 1);
    // Under --first, runs after the lowest failing one are not needed.
    return run >= d.sim.runs || run > Atomics.load(shared, 1) ? -1 : run;
  };
  const stop = () => {
    counts[at] = walker.runs;
    counts[at + 1] = walker.steps;
    counts[at + 2] = walker.longest;
    return limits.check(walkCounts(walker));
  };
  const stoppedBy = walker.loop(claim, stop);
  stop();
  if (walker.halted) {
    const run = walker.haltRun;
    for (let cur = Atomics.load(shared, 1); run < cur; cur = Atomics.load(shared, 1)) {
      if (Atomics.compareExchange(shared, 1, cur, run) === cur) break;
    }
  }
  return { ...walker.totals(stoppedBy), from, to: performance.timeOrigin + performance.now() };
}

/** Merges the walkers' totals, shrinks each hit, and builds the verdict with its traces rebuilt and re-validated. */
function finishSimulation(model: Model, totals: WalkTotals[], opts: SimulateCheckOptions, t0: number, tWalks: number, workers: number): Verdict {
  const sim = opts.simulate;
  const n = model.instances.length;
  const fired = new Float64Array(n), changed = new Float64Array(n);
  let steps = 0, runs = 0, longest = 0;
  let stoppedBy: StopReason | undefined;
  for (const t of totals) {
    for (let i = 0; i < n; i++) {
      fired[i] += t.fired[i];
      changed[i] += t.changed[i];
    }
    steps += t.steps;
    runs += t.runs;
    longest = Math.max(longest, t.longest);
    stoppedBy ??= t.stoppedBy;
  }
  const walker = new Walker(model, sim);
  const hits = mergeHits(totals.map((t) => t.hits), !!sim.first, walker.slots);
  if (!stoppedBy && sim.first && hits.some((h) => walker.slots.failure(h.slot))) stoppedBy = "first-violation";

  // Each shrunk walk becomes a chain of parent links, as the search would have stored it.
  const parent: number[] = [], via: number[] = [];
  const found: Hit[] = [];
  const budget = opts.timeoutSeconds !== undefined ? Math.max(1000, t0 + opts.timeoutSeconds * 1000 - performance.now()) / Math.max(1, hits.length) : SHRINK_BUDGET_MS;
  for (const h of hits) {
    const w = shrinkWalk(walker, h, Math.min(SHRINK_BUDGET_MS, budget));
    const transition = walker.slots.transition(h.slot);
    const states = transition ? w.path.length - 1 : w.path.length;
    const base = parent.length;
    parent.push(NO_PARENT);
    via.push(w.init);
    for (let j = 0; j < states; j++) {
      parent.push(base + j);
      via.push(w.path[j]);
    }
    found.push({
      property: walker.slots.ref(h.slot),
      state: base + states,
      ...(transition ? { instance: w.path[w.path.length - 1] } : {}),
      ...(w.message !== undefined ? { message: w.message } : {}),
      failure: walker.slots.failure(h.slot),
    });
  }
  const lockEdges = model.locks ? lockChains(walker, totals, parent, via) : undefined;
  const now = performance.now();
  // With workers: from the first one's start of walking to the last one's end.
  const timed = totals.filter((t) => t.from !== undefined && t.to !== undefined);
  const walkSeconds = timed.length ? (Math.max(...timed.map((t) => t.to!)) - Math.min(...timed.map((t) => t.from!))) / 1000 : (tWalks - t0) / 1000;
  const r: ExploreResult = {
    hits: found,
    lockEdges,
    distinct: 0,
    generated: steps,
    depth: longest,
    seconds: (now - t0) / 1000,
    complete: false,
    stoppedBy,
    fired,
    changed,
    links: TraceLinks.of(parent, via, model.instances.length),
    storeBytes: 0,
    traceBytes: 0,
    fingerprintBits: 0,
    workers,
    por: false,
  };
  const summary: SimulationSummary = {
    runs,
    requestedRuns: sim.runs,
    depth: sim.depth,
    seed: sim.seed,
    steps,
    stepsPerSecond: walkSeconds > 0 ? Math.round(steps / walkSeconds) : steps,
    longestWalk: longest,
    workers,
    walkSeconds,
    shrinkSeconds: (now - tWalks) / 1000,
  };
  const v = toVerdict(model, r, { ...opts, symmetry: false }, summary);
  return opts.validate ? Verdict.parse(v) : v;
}

/**
 * The lock-order dependencies the walks saw, each with a chain of parent links to the state
 * its step starts from (appended in the order of their walks: shortest, then lowest run, as
 * the search's order would have them). The dependency that closes a cycle, if there is one,
 * gets a shrunk walk: toVerdict finds the cycle again and rebuilds its trace from that chain.
 */
function lockChains(walker: Walker, totals: WalkTotals[], parent: number[], via: number[]): OrderEdge[] {
  const best = new Map<string, WalkEdge>();
  for (const t of totals) for (const e of t.edges ?? []) {
    const key = `${e.from}\0${e.to}`;
    const b = best.get(key);
    if (!b || e.choices.length < b.choices.length || (e.choices.length === b.choices.length && e.run < b.run)) best.set(key, e);
  }
  const edges = [...best.values()].sort((x, y) => x.choices.length - y.choices.length || x.run - y.run || (x.from + "\0" + x.to < y.from + "\0" + y.to ? -1 : 1));
  const walks: Replayed[] = edges.map((e) => ({ init: e.choices[0], path: e.choices.slice(1) }));
  const order = new LockOrder(walker.model.locks!);
  order.merge(edges.map((e, k) => ({ from: e.from, to: e.to, state: k, instance: e.choices[e.choices.length - 1], thread: e.thread })));
  const cycle = order.cycle();
  if (cycle) {
    const last = cycle[cycle.length - 1];
    const k = last.state;
    walks[k] = shrinkChoices(walker, edges[k].choices, (c) => walker.replayEdge(c, last.from, last.to, last.thread), `(run ${edges[k].run}) that took ${last.to} while holding ${last.from}`, SHRINK_BUDGET_MS);
  }
  return edges.map((e, k) => {
    const w = walks[k];
    const base = parent.length;
    parent.push(NO_PARENT);
    via.push(w.init);
    for (let j = 0; j < w.path.length - 1; j++) {
      parent.push(base + j);
      via.push(w.path[j]);
    }
    return { from: e.from, to: e.to, state: base + w.path.length - 1, instance: w.path[w.path.length - 1], thread: e.thread };
  });
}
