// Rebuilding a trace by replaying actions from the initial state.
//
// The search keeps, per state, its parent and the action instance that first reached it.
// Without symmetry, replaying those instances gives the trace. With symmetry the stored
// states are orbit representatives: the trace follows real states instead, taking at each
// step the first enabled instance whose successor has the recorded representative.
import type { Model } from "./compile.ts";
import { flatten, viewPath } from "./codec.ts";
import { canonicalizerFor, NO_PARENT, specFailure, type ExploreResult, type Hit } from "./explore.ts";
import { Fault } from "./spec.ts";
import type { Change, Step, Trace } from "./verdict.ts";

/** Runs action instances on packed states. */
class Replayer {
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
    return !x.guard || x.guard(this.guardView, x.params);
  }

  /** Applies `inst` to `from`: the state it leaves (as far as it got) and its fault, if any. */
  run(inst: number, from: Uint32Array): { state: Uint32Array; fault?: string; faultAt?: string } {
    const x = this.model.instances[inst];
    this.buf.set(from);
    try {
      x.effect(this.draft, x.params);
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

export function rebuildTrace(model: Model, r: ExploreResult, h: Hit, symmetry: boolean | undefined): Trace {
  const canon = canonicalizerFor(model, symmetry);
  const rep = new Replayer(model);
  const canonical = (s: Uint32Array) => {
    const c = s.slice();
    if (canon) canon(c);
    return c;
  };
  // The real instance to take from `real` to match what `recorded` did from `stored`.
  const matching = (recorded: number, stored: Uint32Array, real: Uint32Array): number => {
    if (!canon) return recorded;
    const want = rep.run(recorded, stored);
    const target = canonical(want.state);
    for (let x = 0; x < model.instances.length; x++) {
      if (!rep.enabled(x, real)) continue;
      const got = rep.run(x, real);
      if (got.fault === want.fault && same(canonical(got.state), target)) return x;
    }
    return recorded;
  };

  const path: number[] = [];
  for (let s = h.state; s !== NO_PARENT; s = r.parent[s]) path.push(s);
  path.reverse();

  let real: Uint32Array = model.inits[r.via[path[0]]].slice();
  let stored: Uint32Array = canonical(real);
  let prev = rep.read(real);
  const steps: Step[] = [{ index: 0, action: null, params: {}, state: prev as Step["state"], changes: [] }];
  const step = (recorded: number): string | undefined => {
    const inst = matching(recorded, stored, real);
    const x = model.instances[inst];
    const next = rep.run(inst, real);
    stored = canonical(rep.run(recorded, stored).state);
    real = next.state;
    const state = rep.read(real);
    steps.push({
      index: steps.length,
      action: x.name,
      params: x.params as Step["params"],
      kernel: model.actionKernel[x.action],
      state: state as Step["state"],
      changes: diff(prev, state),
      ...(next.fault !== undefined ? { fault: next.fault } : {}),
      ...(next.faultAt !== undefined ? { faultAt: next.faultAt } : {}),
    });
    prev = state;
    return next.fault;
  };
  for (let j = 1; j < path.length; j++) step(r.via[path[j]]);
  // A fault or an action property: the failing step itself, from the last state.
  if (h.instance !== undefined) step(h.instance);
  return { steps, length: steps.length - 1 };
}
