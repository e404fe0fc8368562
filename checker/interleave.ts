// The least-interleaved shortest counterexample. Breadth-first search finds a shortest trace,
// but among the equally short ones it keeps the first found, which often switches between
// threads more than needed. This pass walks the layers of the state graph again up to the
// trace's length and, by dynamic programming over (state, thread of the last step), picks a
// trace of the same length with the fewest context switches and the same outcome (the same
// property, and for a fault the same message). Ties go to the first in search order.
//
// A step's thread is its action's declared `thread`, else the action itself.
import type { Model } from "./compile.ts";
import { canonicalizerFor } from "./expander.ts";
import { NO_PARENT, type ExploreResult, type Hit } from "./explore.ts";
import { Replayer } from "./trace.ts";

/** A trace as the initial state's index and the instances taken. */
export interface Route {
  init: number;
  steps: number[];
}

/** Beyond this many states within the trace's depth, keep the search's own trace. */
export const INTERLEAVE_STATE_CAP = 200_000;

interface Entry {
  cost: number;
  prev: Node | null;
  prevThread: number;
  inst: number;
}
interface Node {
  state: Uint32Array;
  best: Map<number, Entry>;
  init: number;
}

/** The route the search recorded for a hit (parent links), with the hit's own last step. */
export function recordedRoute(r: ExploreResult, h: Hit): Route {
  const path: number[] = [];
  for (let s = h.state; s !== NO_PARENT; s = r.links.parentOf(s)) path.push(s);
  path.reverse();
  const steps = path.slice(1).map((s) => r.links.viaOf(s));
  if (h.instance !== undefined) steps.push(h.instance);
  return { init: r.links.viaOf(path[0]), steps };
}

/** Thread id of each instance: its declared thread, else its action. */
function threadIds(model: Model): number[] {
  const ids = new Map<string, number>();
  return model.instances.map((x) => {
    const k = x.thread !== undefined ? `t:${x.thread}` : `a:${x.name}`;
    if (!ids.has(k)) ids.set(k, ids.size);
    return ids.get(k)!;
  });
}

/** Context switches along a route. */
export function switchesOf(model: Model, steps: readonly number[]): number {
  const t = threadIds(model);
  let n = 0;
  for (let i = 1; i < steps.length; i++) if (t[steps[i]] !== t[steps[i - 1]]) n++;
  return n;
}

/**
 * A route of the same length as the recorded one, reaching the same outcome, with the fewest
 * context switches; the recorded route when no better one exists, the property is decided on
 * the whole graph (lock order), or the layers hold more than the cap.
 */
export function leastInterleaved(model: Model, r: ExploreResult, h: Hit, symmetry: boolean | undefined, cap = INTERLEAVE_STATE_CAP): Route {
  const recorded = recordedRoute(r, h);
  const kind = h.property.kind;
  if (kind === "lock-order" || !r.visited || recorded.steps.length < 2) return recorded;
  const thread = threadIds(model);
  if (new Set(recorded.steps.map((x) => thread[x])).size < 2) return recorded;
  // Under symmetry the trace is rebuilt through orbit representatives, which a route of
  // real states does not follow: keep the recorded one.
  if (canonicalizerFor(model, symmetry)) return recorded;
  const rep = new Replayer(model);
  const visited = r.visited;
  const inSearch = (s: Uint32Array) => visited.has(s, 0);
  const keyOf = (s: Uint32Array) => Buffer.from(s.buffer, s.byteOffset, s.byteLength).toString("latin1");
  const instances = model.instances.map((x) => x.id);
  const p = h.property as { kind: string; index: number };
  // The target: a state at the last layer (state properties), or a last step (faults, action properties).
  const stateTarget = (s: Uint32Array): boolean => {
    switch (kind) {
      case "invariant":
        return !rep.test(model.invariants[p.index].fn, "invariant", s);
      case "reachable":
        return rep.test(model.witnesses[p.index].fn, "witness", s);
      case "quiescent":
        return !rep.anyEnabled(s) && !rep.test(model.quiescent[p.index].fn, "quiescent property", s);
      case "deadlock":
        return !rep.anyEnabled(s) && !!model.busy && rep.test(model.busy, "busy", s);
      default:
        return false;
    }
  };
  const stepTarget = (s: Uint32Array, x: number): boolean => {
    if (!rep.enabled(x, s)) return false;
    const out = rep.run(x, s);
    if (kind === "fault") return out.fault === h.message;
    if (out.fault !== undefined) return false;
    const ap = model.actionProperties[p.index];
    const inst = model.instances[x];
    return !rep.test(ap.fn, "action property", s, out.state, { name: inst.name, params: inst.params });
  };

  const lastStep = h.instance !== undefined;
  const layers = lastStep ? recorded.steps.length - 1 : recorded.steps.length;
  const seen = new Set<string>();
  let layer: Node[] = model.inits.map((s, i) => ({ state: s.slice(), init: i, best: new Map([[-1, { cost: 0, prev: null, prevThread: -1, inst: -1 }]]) }));
  for (const n of layer) seen.add(keyOf(n.state));
  let count = layer.length;
  for (let d = 0; d < layers; d++) {
    const next = new Map<string, Node>();
    for (const u of layer) {
      for (const x of instances) {
        if (!rep.enabled(x, u.state)) continue;
        const out = rep.run(x, u.state);
        if (out.fault !== undefined) continue;
        const k = keyOf(out.state);
        let v = next.get(k);
        if (!v) {
          if (seen.has(k) || !inSearch(out.state)) continue;
          seen.add(k);
          if (++count > cap) return recorded;
          v = { state: out.state, init: u.init, best: new Map() };
          next.set(k, v);
        }
        for (const [t, e] of u.best) {
          const cost = e.cost + (t !== -1 && t !== thread[x] ? 1 : 0);
          const old = v.best.get(thread[x]);
          if (!old || cost < old.cost) v.best.set(thread[x], { cost, prev: u, prevThread: t, inst: x });
        }
      }
    }
    layer = [...next.values()];
  }

  // The cheapest end among the targets, in search order.
  let end: { node: Node; thread: number; cost: number; last?: number } | undefined;
  for (const u of layer) {
    if (lastStep) {
      for (const x of instances) {
        if (!stepTarget(u.state, x)) continue;
        for (const [t, e] of u.best) {
          const cost = e.cost + (t !== -1 && t !== thread[x] ? 1 : 0);
          if (!end || cost < end.cost) end = { node: u, thread: t, cost, last: x };
        }
      }
    } else if (stateTarget(u.state)) {
      for (const [t, e] of u.best) if (!end || e.cost < end.cost) end = { node: u, thread: t, cost: e.cost };
    }
  }
  if (!end || end.cost >= switchesOf(model, recorded.steps)) return recorded;
  const steps: number[] = end.last !== undefined ? [end.last] : [];
  let node: Node = end.node, t = end.thread;
  for (;;) {
    const e: Entry = node.best.get(t)!;
    if (e.inst < 0) break;
    steps.push(e.inst);
    t = e.prevThread;
    node = e.prev!;
  }
  steps.reverse();
  return { init: node.init, steps };
}
