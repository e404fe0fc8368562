// Rebuilding a trace by replaying actions from the initial state.
//
// The search keeps, per state, its parent and the action instance that first reached it.
// Without symmetry, replaying those instances gives the trace. With symmetry the stored
// states are orbit representatives: the trace follows real states instead, taking at each
// step the first enabled instance whose successor has the recorded representative.
import type { Model } from "./compile.ts";
import { flatten, viewPath } from "./codec.ts";
import { canonicalizerFor } from "./expander.ts";
import { propertyName, type ExploreResult, type Hit } from "./explore.ts";
import { effectReturned, notDeterministic, showState, specFailure, stateDiff } from "./spec-calls.ts";
import { Fault } from "./spec.ts";
import { dependencies } from "./lockdep.ts";
import { recordedRoute, type Route } from "./interleave.ts";
import type { Change, Step, Trace } from "./verdict.ts";

/** Runs action instances on packed states. */
export class Replayer {
  private readonly buf: Uint32Array;
  private readonly draft: any;
  private readonly guardBuf: Uint32Array;
  private readonly guardView: any;

  constructor(private readonly model: Model) {
    this.buf = new Uint32Array(model.words);
    this.draft = model.codec.view(this.buf, { ro: false });
    this.guardBuf = new Uint32Array(model.words);
    this.guardView = model.codec.view(this.guardBuf, { ro: true });
  }

  enabled(inst: number, from: Uint32Array): boolean {
    const x = this.model.instances[inst];
    this.guardBuf.set(from);
    try {
      return !x.guard || !!x.guard(this.guardView, x.args);
    } catch (e) {
      throw specFailure(this.model, `guard of action ${x.label} (trace replay)`, e);
    }
  }

  /** Some action instance is enabled in `s` (it is not quiescent, nor deadlocked). */
  anyEnabled(s: Uint32Array): boolean {
    return this.model.instances.some((_, i) => this.enabled(i, s));
  }

  /** A predicate on a packed state. */
  test(fn: (...a: any[]) => unknown, what: string, from: Uint32Array, after?: Uint32Array, act?: unknown): boolean {
    this.guardBuf.set(from);
    const b = after ? this.model.codec.view(after.slice(), { ro: true }) : undefined;
    try {
      return !!fn(this.guardView, b, act);
    } catch (e) {
      throw specFailure(this.model, `${what} (trace replay)`, e);
    }
  }

  /** Applies `inst` to `from`: the state it leaves (as far as it got) and its fault, if any. */
  run(inst: number, from: Uint32Array): { state: Uint32Array; fault?: string; faultAt?: string } {
    const x = this.model.instances[inst];
    this.buf.set(from);
    try {
      const ret = x.effect(this.draft, x.args);
      if (ret !== undefined) throw effectReturned(ret);
    } catch (e) {
      if (!(e instanceof Fault)) throw specFailure(this.model, `action ${x.label} (trace replay)`, e);
      return { state: this.buf.slice(), fault: e.message, faultAt: viewPath(e.subject) };
    }
    return { state: this.buf.slice() };
  }

  read(state: Uint32Array): Record<string, unknown> {
    return this.model.codec.read(this.model.codec.view(state, { ro: true }));
  }
}

const same = (a: Uint32Array, b: Uint32Array) => a.every((w, i) => w === b[i]);

function diff(before: Record<string, unknown>, after: Record<string, unknown>): Change[] {
  const a = flatten(before), b = flatten(after);
  const out: Change[] = [];
  for (let i = 0; i < b.length; i++) if (a[i][1] !== b[i][1]) out.push({ path: b[i][0], before: a[i][1] as any, after: b[i][1] as any });
  return out;
}

/**
 * Rebuilds the trace of a hit and re-validates it: every replayed step is enabled, gives the
 * same result when run twice and leads to a state the search stored, and the property
 * really fails (or the witness really holds) at the end. A mismatch means the spec is not
 * deterministic, and the verdict would be wrong: a spec error.
 */
export function rebuildTrace(model: Model, r: ExploreResult, h: Hit, symmetry: boolean | undefined, route: Route = recordedRoute(r, h)): Trace {
  const canon = canonicalizerFor(model, symmetry);
  const rep = new Replayer(model);
  const canonical = (s: Uint32Array) => {
    const c = s.slice();
    if (canon) canon(c);
    return c;
  };
  const label = (i: number) => model.instances[i].label;
  const property = describeHit(model, h);
  const fail = (k: number, inst: number, what: string): never => {
    throw notDeterministic(model, `replaying the trace of ${property}, ${what} at step ${k} (action ${label(inst)})`);
  };
  // The recorded step from the stored state: enabled, and the same result twice.
  const replay = (k: number, recorded: number, stored: Uint32Array): { state: Uint32Array; fault?: string; faultAt?: string } => {
    if (!rep.enabled(recorded, stored)) fail(k, recorded, `the guard is false on ${showState(model, stored)}, though the search took this step`);
    const a = rep.run(recorded, stored), b = rep.run(recorded, stored);
    if (a.fault !== b.fault) fail(k, recorded, `the effect run twice gave ${a.fault ?? "no fault"}, then ${b.fault ?? "no fault"}`);
    if (!same(a.state, b.state)) fail(k, recorded, `the effect run twice on the same state gave different states${stateDiff(model, a.state, b.state)}`);
    return a;
  };
  // The real instance to take from `real` to match what `recorded` did from `stored`.
  const matching = (want: { state: Uint32Array; fault?: string }, recorded: number, real: Uint32Array): number => {
    if (!canon) return recorded;
    const target = canonical(want.state);
    for (let x = 0; x < model.instances.length; x++) {
      if (!rep.enabled(x, real)) continue;
      const got = rep.run(x, real);
      if (got.fault === want.fault && same(canonical(got.state), target)) return x;
    }
    return recorded;
  };


  let real: Uint32Array = model.inits[route.init].slice();
  let stored: Uint32Array = canonical(real);
  let prev = rep.read(real);
  const steps: Step[] = [{ index: 0, action: null, params: {}, state: prev as Step["state"], changes: [] }];
  const step = (recorded: number, last: boolean): { before: Uint32Array; after: Uint32Array; fault?: string } => {
    const k = steps.length;
    const before = stored;
    const want = replay(k, recorded, stored);
    const inst = matching(want, recorded, real);
    const x = model.instances[inst];
    // The state shown is the one validated: without symmetry it is `want` itself (running the
    // effect once more could give another result in an impure spec); with symmetry the real
    // step must land in the same orbit.
    const next = canon ? rep.run(inst, real) : want;
    if (canon && (next.fault !== want.fault || !same(canonical(next.state), canonical(want.state)))) {
      fail(k, recorded, "the step from the real state leaves the orbit the search recorded");
    }
    stored = canonical(want.state);
    real = next.state;
    if (!last) {
      if (want.fault !== undefined) fail(k, recorded, `the step faults ("${want.fault}"), though the search went on from it`);
      if (r.visited && !r.visited.has(stored, 0)) fail(k, recorded, `the step leads to ${showState(model, stored)}, a state the search never reached`);
    }
    const state = rep.read(real);
    steps.push({
      index: steps.length,
      action: x.name,
      params: x.params as Step["params"],
      kernel: model.actionKernel[x.action],
      ...(x.thread ? { thread: x.thread } : {}),
      state: state as Step["state"],
      changes: diff(prev, state),
      ...(next.fault !== undefined ? { fault: next.fault } : {}),
      ...(next.faultAt !== undefined ? { faultAt: next.faultAt } : {}),
    });
    prev = state;
    return { before, after: want.state, fault: want.fault };
  };
  const tail = h.instance !== undefined;
  const through = tail ? route.steps.length - 1 : route.steps.length;
  for (let j = 0; j < through; j++) step(route.steps[j], false);
  // A fault or an action property: the failing step itself, from the last state.
  const end = tail ? step(route.steps[through], true) : undefined;

  // The property must really fail (or the witness hold) where the trace ends.
  const k = steps.length - 1;
  const at = (what: string): never => {
    throw notDeterministic(model, `replaying the trace of ${property}, ${what} at step ${k}${k > 0 && steps[k].action ? ` (action ${label(route.steps[route.steps.length - 1])})` : " (the initial state)"}`);
  };
  const p = h.property;
  switch (p.kind) {
    case "fault":
      if (end!.fault !== h.message) at(`the step gave ${end!.fault === undefined ? "no fault" : `the fault "${end!.fault}"`} instead of "${h.message}"`);
      break;
    case "action": {
      const ap = model.actionProperties[p.index];
      const x = model.instances[h.instance!];
      if (rep.test(ap.fn, `action property "${ap.name}"`, end!.before, end!.after, { name: x.name, params: x.params })) at("the action property holds on the replayed step");
      break;
    }
    case "invariant": {
      const inv = model.invariants[p.index];
      if (rep.test(inv.fn, `invariant "${inv.name}"`, stored)) at(`the invariant holds on the last state ${showState(model, stored)}`);
      break;
    }
    case "reachable": {
      const w = model.witnesses[p.index];
      if (!rep.test(w.fn, `witness "${w.name}"`, stored)) at(`the witness is false on the last state ${showState(model, stored)}`);
      break;
    }
    case "quiescent": {
      const q = model.quiescent[p.index];
      if (rep.anyEnabled(stored)) at("an action is enabled in the last state, which the search found quiescent");
      if (rep.test(q.fn, `quiescent property "${q.name}"`, stored)) at(`the quiescent property holds on the last state ${showState(model, stored)}`);
      break;
    }
    case "lock-order": {
      // The last step must take a lock while its thread holds another.
      const nested = (bv: any, av: any) => dependencies(model.locks!, model.lockTakes, bv, av, h.instance!).length > 0;
      if (!rep.test(nested, "locks", end!.before, end!.after)) at("the last step takes no lock while holding another");
      break;
    }
    case "deadlock":
      if (rep.anyEnabled(stored)) at("an action is enabled in the last state, which the search found deadlocked");
      if (!model.busy || !rep.test(model.busy, "busy", stored)) at("no thread is busy in the last state, which the search found deadlocked");
      break;
  }
  return { steps, length: steps.length - 1 };
}

/** "invariant X", "witness Y", or noFault / noDeadlock / lockOrder, for messages. */
function describeHit(model: Model, h: Hit): string {
  const kind: Partial<Record<Hit["property"]["kind"], string>> = { invariant: "invariant ", action: "action property ", quiescent: "quiescent property ", reachable: "witness " };
  return `${kind[h.property.kind] ?? ""}${propertyName(model, h.property)}`;
}

/**
 * The trace of a lasso (a liveness violation): `instances` replayed from initial state `init`,
 * each step enabled, not faulting and deterministic, and the last state equal to the one
 * after step `loop`. Also gives the packed states, for the caller's checks.
 */
export function lassoTrace(model: Model, init: number, instances: number[], loop: number, property: string): { trace: Trace; states: Uint32Array[] } {
  const rep = new Replayer(model);
  let cur: Uint32Array = model.inits[init].slice();
  const states = [cur];
  let prev = rep.read(cur);
  const steps: Step[] = [{ index: 0, action: null, params: {}, state: prev as Step["state"], changes: [] }];
  instances.forEach((i, j) => {
    const k = j + 1, x = model.instances[i];
    const fail = (what: string): never => {
      throw notDeterministic(model, `replaying the lasso of liveness property ${property}, ${what} at step ${k} (action ${x.label})`);
    };
    if (!rep.enabled(i, cur)) fail(`the guard is false on ${showState(model, cur)}, though the state graph has this step`);
    const a = rep.run(i, cur), b = rep.run(i, cur);
    if (a.fault !== undefined) fail(`the step faults ("${a.fault}"), though the state graph has it`);
    if (b.fault !== undefined || !same(a.state, b.state)) fail(`the effect run twice on the same state gave different results${stateDiff(model, a.state, b.state)}`);
    cur = a.state;
    states.push(cur);
    const state = rep.read(cur);
    steps.push({
      index: k, action: x.name, params: x.params as Step["params"], kernel: model.actionKernel[x.action],
      ...(x.thread ? { thread: x.thread } : {}), state: state as Step["state"], changes: diff(prev, state),
    });
    prev = state;
  });
  if (!same(states[loop], cur)) {
    throw notDeterministic(model, `replaying the lasso of liveness property ${property}, the last state ${showState(model, cur)} is not the state after step ${loop} that the cycle returns to`);
  }
  return { trace: { steps, length: steps.length - 1, loop }, states };
}
