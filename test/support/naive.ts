// A deliberately naive explorer, independent of checker/ internals: plain-object states,
// JSON.stringify keys in a Set, BFS level by level, a deep clone per effect. Its counts and
// verdicts are the reference the real checker is compared against.
import assert from "node:assert/strict";
import { Fault, type Spec } from "../../checker/spec.ts";
import type { Trace } from "../../checker/verdict.ts";

type State = any;
type Pred = (...a: any[]) => boolean;

interface Inst {
  name: string;
  params: Record<string, unknown>;
  guard?: (s: State, a: any) => boolean;
  effect: (s: State, a: any) => void;
}

export interface NaiveProperty {
  kind: "fault" | "deadlock" | "invariant" | "action" | "quiescent" | "reachable";
  status: "holds" | "violated" | "reachable" | "unreachable";
  failed: boolean;
  /** Shortest trace length to the violation or witness. */
  length?: number;
}

export interface NaiveResult {
  distinct: number;
  /** Like TLC: initial states count as generated. */
  generated: number;
  depth: number;
  properties: Map<string, NaiveProperty>;
}

export interface NaiveModel {
  params: Record<string, unknown>;
  inits: State[];
  instances: Inst[];
  invariants: [string, Pred][];
  actionProperties: [string, Pred][];
  quiescent: [string, Pred][];
  witnesses: [string, Pred, "reachable" | "unreachable"][];
  busy?: (s: State) => unknown;
}

function named(x: unknown, params: unknown, key: string): [string, Pred, any][] {
  const o = typeof x === "function" ? (x as (p: unknown) => unknown)(params) : x;
  if (!o) return [];
  return Object.entries(o as Record<string, any>).map(([n, v]) =>
    typeof v === "function" ? [n, v, "reachable"] : [n, v[key], v.expect ?? "reachable"],
  );
}

export function naiveModel(spec: Spec, given: Record<string, unknown> = {}): NaiveModel {
  const params = spec.params.parse(given) as Record<string, unknown>;
  const init = spec.init(params as any);
  const instances: Inst[] = [];
  for (const [name, def] of Object.entries(spec.actions(params as any))) {
    let combos: Record<string, unknown>[] = [{}];
    for (const [k, dom] of Object.entries(def.each ?? {})) {
      combos = combos.flatMap((c) => (dom as unknown[]).map((v) => ({ ...c, [k]: v })));
    }
    for (const c of combos) instances.push({ name, params: c, guard: def.when, effect: def.then });
  }
  return {
    params,
    inits: (Array.isArray(init) ? init : [init]).map((s) => structuredClone(s)),
    instances,
    invariants: named(spec.invariants, params, "holds").map(([n, f]) => [n, f]),
    actionProperties: named(spec.actionProperties, params, "holds").map(([n, f]) => [n, f]),
    quiescent: named(spec.quiescent, params, "holds").map(([n, f]) => [n, f]),
    witnesses: named(spec.reachable, params, "when"),
    busy: spec.busy,
  };
}

export function naiveCheck(spec: Spec, given: Record<string, unknown> = {}): NaiveResult {
  const m = naiveModel(spec, given);
  const seen = new Set<string>();
  const props = new Map<string, NaiveProperty>();
  const hit = (name: string, p: NaiveProperty) => {
    if (!props.has(name)) props.set(name, p);
  };
  let generated = 0;
  let level: State[] = [];
  const discover = (s: State, depth: number) => {
    const k = JSON.stringify(s);
    if (seen.has(k)) return;
    seen.add(k);
    level.push(s);
    for (const [n, f] of m.invariants) if (!f(s)) hit(n, { kind: "invariant", status: "violated", failed: true, length: depth });
    for (const [n, f, expect] of m.witnesses) {
      if (f(s)) hit(n, { kind: "reachable", status: "reachable", failed: expect !== "reachable", length: depth });
    }
  };
  for (const s of m.inits) {
    generated++;
    discover(structuredClone(s), 0);
  }
  let depth = 0;
  for (let d = 0; level.length > 0; d++) {
    const cur = level;
    level = [];
    for (const s of cur) {
      let enabled = false;
      for (const x of m.instances) {
        if (x.guard && !x.guard(s, x.params)) continue;
        enabled = true;
        generated++;
        const t = structuredClone(s);
        try {
          x.effect(t, x.params);
        } catch (e) {
          if (!(e instanceof Fault)) throw e;
          hit("noFault", { kind: "fault", status: "violated", failed: true, length: d + 1 });
          continue;
        }
        for (const [n, f] of m.actionProperties) {
          if (!f(s, t, { name: x.name, params: x.params })) hit(n, { kind: "action", status: "violated", failed: true, length: d + 1 });
        }
        discover(t, d + 1);
      }
      if (!enabled) {
        if (m.busy?.(s)) hit("noDeadlock", { kind: "deadlock", status: "violated", failed: true, length: d });
        else for (const [n, f] of m.quiescent) if (!f(s)) hit(n, { kind: "quiescent", status: "violated", failed: true, length: d });
      }
    }
    if (level.length > 0) depth = d + 1;
  }
  // Everything never hit holds (the search is complete).
  const out = new Map<string, NaiveProperty>();
  const put = (n: string, kind: NaiveProperty["kind"]) => out.set(n, props.get(n) ?? { kind, status: "holds", failed: false });
  put("noFault", "fault");
  if (m.busy) put("noDeadlock", "deadlock");
  for (const [n] of m.invariants) put(n, "invariant");
  for (const [n] of m.actionProperties) put(n, "action");
  for (const [n] of m.quiescent) put(n, "quiescent");
  for (const [n, , expect] of m.witnesses) {
    out.set(n, props.get(n) ?? { kind: "reachable", status: "unreachable", failed: expect === "reachable" });
  }
  return { distinct: seen.size, generated, depth, properties: out };
}

/**
 * Replays a verdict trace with plain objects: the first state is an initial state, every
 * step is an enabled action whose effect gives the recorded state, and the last state (or
 * step) shows the property's failure or witness.
 */
export function assertValidTrace(m: NaiveModel, property: { name: string; kind: string }, trace: Trace): void {
  const steps = trace.steps;
  assert.equal(trace.length, steps.length - 1);
  assert.ok(m.inits.some((s) => isDeepEqual(s, steps[0].state)), `${property.name}: trace does not start in an initial state`);
  let cur: State = structuredClone(steps[0].state);
  let prev: State = cur;
  let last: Inst | undefined;
  for (let j = 1; j < steps.length; j++) {
    const st = steps[j];
    const x = m.instances.find((i) => i.name === st.action && isDeepEqual(i.params, st.params));
    assert.ok(x, `${property.name}: step ${j} names an unknown action ${st.action} ${JSON.stringify(st.params)}`);
    assert.ok(!x.guard || x.guard(cur, x.params), `${property.name}: step ${j} ${st.action} is not enabled`);
    const t = structuredClone(cur);
    let fault: string | undefined;
    try {
      x.effect(t, x.params);
    } catch (e) {
      if (!(e instanceof Fault)) throw e;
      fault = e.message;
    }
    assert.equal(st.fault, fault, `${property.name}: step ${j} fault`);
    if (fault !== undefined) assert.equal(j, steps.length - 1, "only the last step may fault");
    assert.deepEqual(t, st.state, `${property.name}: step ${j} state`);
    prev = cur;
    cur = t;
    last = x;
  }
  const enabled = m.instances.some((x) => !x.guard || x.guard(cur, x.params));
  const fn = (list: [string, Pred, ...unknown[]][]) => list.find(([n]) => n === property.name)![1];
  switch (property.kind) {
    case "fault":
      assert.ok(steps[steps.length - 1].fault !== undefined);
      break;
    case "invariant":
      assert.ok(!fn(m.invariants)(cur));
      break;
    case "action":
      assert.ok(last && !fn(m.actionProperties)(prev, cur, { name: last.name, params: last.params }));
      break;
    case "quiescent":
      assert.ok(!enabled && !fn(m.quiescent)(cur));
      break;
    case "deadlock":
      assert.ok(!enabled && m.busy?.(cur));
      break;
    case "reachable":
      assert.ok(fn(m.witnesses)(cur));
      break;
  }
}

function isDeepEqual(a: unknown, b: unknown): boolean {
  try {
    assert.deepEqual(a, b);
    return true;
  } catch {
    return false;
  }
}
