// Liveness: agreement with a definitional lasso finder on random small graphs, fairness
// mutations, lasso replay, RefPin with a leads-to property, bad declarations.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { z } from "zod";
import { check, defineSpec, Fault, range, SpecError, type Spec } from "../checker/index.ts";
import type { PropertyResult, Trace } from "../checker/verdict.ts";
import refpin from "../specs/conformance/refpin.ts";
import { renderVerdict } from "../reports/console.ts";
import { toItf } from "../reports/itf.ts";
import { threadSchema } from "../specs/kernel/thread.ts";
import { mermaidSequence, stepTable } from "../reports/markdown.ts";

// ---- random graphs ----

/** A target per node: a node, -1 disabled, -2 faults. */
type Table = number[];
interface Graph {
  K: number;
  inits: number[];
  plain: Table[];
  /** The tables of B(i=0), B(i=1), when present. */
  param: Table[] | null;
  P: boolean[];
  Q: boolean[];
  kind: "eventually" | "leadsTo" | "alwaysEventually";
  weak: string[];
  strong: string[];
  group: { kind: "weak" | "strong"; names: string[] } | null;
}

const graphArb: fc.Arbitrary<Graph> = fc.integer({ min: 1, max: 5 }).chain((K) => {
  const table = fc.array(fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: K - 1 }) }, { weight: 3, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: fc.constant(-2) }), { minLength: K, maxLength: K });
  return fc.record({
    K: fc.constant(K),
    inits: fc.uniqueArray(fc.integer({ min: 0, max: K - 1 }), { minLength: 1, maxLength: 2 }),
    plain: fc.array(table, { minLength: 1, maxLength: 3 }),
    param: fc.option(fc.array(table, { minLength: 2, maxLength: 2 }), { nil: null }),
    P: fc.array(fc.boolean(), { minLength: K, maxLength: K }),
    Q: fc.array(fc.boolean(), { minLength: K, maxLength: K }),
    kind: fc.constantFrom("eventually" as const, "leadsTo" as const, "alwaysEventually" as const),
    weak: fc.subarray(["A0", "A1", "A2", "B", "B(i=1)"]),
    strong: fc.subarray(["A0", "A1", "A2", "B", "B(i=0)"]),
    group: fc.option(fc.record({ kind: fc.constantFrom("weak" as const, "strong" as const), names: fc.subarray(["A0", "A1", "B"], { minLength: 1 }) }), { nil: null }),
  });
});

/** Instances in the checker's order: A0..Am, then B(i=0), B(i=1). */
function instancesOf(g: Graph): { name: string; label: string; params: Record<string, number>; table: Table }[] {
  return [
    ...g.plain.map((table, a) => ({ name: `A${a}`, label: `A${a}`, params: {}, table })),
    ...(g.param ?? []).map((table, i) => ({ name: "B", label: `B(i=${i})`, params: { i }, table })),
  ];
}

/** Fairness names that exist in this graph. */
function fairnessOf(g: Graph): { weak?: unknown; strong?: unknown } {
  const known = new Set(instancesOf(g).flatMap((x) => [x.name, x.label]));
  const ok = (xs: string[]) => xs.filter((x) => known.has(x));
  const out: Record<string, unknown> = { weak: ok(g.weak), strong: ok(g.strong) };
  if (g.group && ok(g.group.names).length) {
    // A group and a list cannot share a kind in one declaration: the group takes the list's names along.
    out[g.group.kind] = { grp: ok(g.group.names), ...Object.fromEntries(ok(g.group.kind === "weak" ? g.weak : g.strong).map((x) => [`one_${x}`, [x]])) };
  }
  return out;
}

function specOf(g: Graph): Spec {
  const run = (t: Table) => (s: { v: number }) => {
    if (t[s.v] === -2) throw new Fault("fault");
    s.v = t[s.v];
  };
  const actions: Record<string, any> = {};
  g.plain.forEach((t, a) => (actions[`A${a}`] = { when: (s: { v: number }) => t[s.v] !== -1, then: run(t) }));
  if (g.param) {
    const tabs = g.param;
    actions.B = { each: { i: range(2) }, when: (s: { v: number }, { i }: { i: number }) => tabs[i][s.v] !== -1, then: (s: { v: number }, { i }: { i: number }) => run(tabs[i])(s) };
  }
  const P = (s: { v: number }) => g.P[s.v], Q = (s: { v: number }) => g.Q[s.v];
  const prop = g.kind === "leadsTo" ? { leadsTo: [P, Q] as const } : g.kind === "eventually" ? { eventually: Q } : { alwaysEventually: Q };
  return defineSpec({
    name: "random/graph",
    params: z.object({}),
    state: () => z.object({ v: z.number().int().min(0).max(g.K - 1) }),
    init: () => g.inits.map((v) => ({ v })),
    actions: () => actions,
    liveness: { live: prop },
    fairness: fairnessOf(g) as any,
  });
}

/** Constraints of the naive finder: [kind, instance indexes]. */
function constraintsOf(g: Graph): ["weak" | "strong", number[]][] {
  const xs = instancesOf(g);
  const f = fairnessOf(g);
  const out: ["weak" | "strong", number[]][] = [];
  for (const kind of ["weak", "strong"] as const) {
    const d = f[kind];
    const resolve = (n: string) => xs.flatMap((x, i) => (x.name === n || x.label === n ? [i] : []));
    if (Array.isArray(d)) for (const n of d) for (const i of resolve(n)) out.push([kind, [i]]);
    else if (d) for (const names of Object.values(d as Record<string, string[]>)) out.push([kind, [...new Set(names.flatMap(resolve))]]);
  }
  return out;
}

/** Straight from the definitions: is there a reachable fair run that is pending forever? */
function naiveViolated(g: Graph): boolean {
  const xs = instancesOf(g);
  const edges = (s: number) => xs.flatMap((x, i) => (x.table[s] >= 0 ? [{ i, t: x.table[s] }] : []));
  const trig = (s: number) => (g.kind === "leadsTo" ? g.P[s] : g.kind === "alwaysEventually");
  const trigInit = (s: number) => (g.kind === "leadsTo" ? g.P[s] : true);
  // Product (state, pending) reachability.
  const seen = new Set<string>();
  const todo: [number, boolean][] = g.inits.map((s) => [s, trigInit(s) && !g.Q[s]]);
  const pend = new Set<number>();
  while (todo.length) {
    const [s, b] = todo.pop()!;
    const k = `${s}:${b}`;
    if (seen.has(k)) continue;
    seen.add(k);
    if (b) pend.add(s);
    for (const { t } of edges(s)) todo.push([t, (b || trig(t)) && !g.Q[t]]);
  }
  const cons = constraintsOf(g);
  const nodes = [...pend];
  for (let mask = 1; mask < 1 << nodes.length; mask++) {
    const S = nodes.filter((_, j) => mask & (1 << j));
    const inS = (s: number) => S.includes(s);
    const internal = S.flatMap((s) => edges(s).filter((e) => inS(e.t)));
    // Strongly connected through internal edges (a single state: a self-loop, or it stutters).
    const reach = (from: number) => {
      const r = new Set([from]);
      const st = [from];
      while (st.length) for (const e of edges(st.pop()!)) if (inS(e.t) && !r.has(e.t)) (r.add(e.t), st.push(e.t));
      return r;
    };
    const strongly = S.every((a) => S.every((b) => reach(a).has(b)));
    if (!strongly) continue;
    const terminal = S.length === 1 && edges(S[0]).length === 0;
    if (S.length === 1 && !terminal && !edges(S[0]).some((e) => e.t === S[0])) continue;
    const enabled = (s: number, c: number[]) => edges(s).some((e) => c.includes(e.i));
    const takenIn = (c: number[]) => S.some((s) => edges(s).some((e) => inS(e.t) && c.includes(e.i)));
    const fair = cons.every(([kind, c]) =>
      kind === "weak" ? S.some((s) => !enabled(s, c)) || takenIn(c) : !S.some((s) => enabled(s, c)) || takenIn(c),
    );
    if (fair) return true;
  }
  return false;
}

/** The lasso is a real run of the graph, returns where it says, stays pending and is fair. */
function checkLasso(g: Graph, t: Trace): void {
  const xs = instancesOf(g);
  const vs = t.steps.map((s) => s.state.v as number);
  const insts = t.steps.slice(1).map((s) => xs.findIndex((x) => x.name === s.action && JSON.stringify(x.params) === JSON.stringify(s.params)));
  insts.forEach((i, k) => assert.equal(xs[i].table[vs[k]], vs[k + 1], `step ${k + 1} is an edge`));
  assert.ok(g.inits.includes(vs[0]));
  const loop = t.loop!;
  assert.ok(loop !== undefined && loop <= t.length);
  assert.equal(vs[loop], vs[t.length], "the loop index points at a state equal to the last one");
  let b = (g.kind === "leadsTo" ? g.P[vs[0]] : true) && !g.Q[vs[0]];
  const pending = [b];
  for (let k = 1; k < vs.length; k++) pending.push((b = (b || (g.kind === "leadsTo" ? g.P[vs[k]] : g.kind === "alwaysEventually")) && !g.Q[vs[k]]));
  for (let k = loop; k < vs.length; k++) assert.ok(pending[k], `pending at step ${k}`);
  const cycStates = vs.slice(loop), cycInsts = insts.slice(loop);
  const enabled = (s: number, c: number[]) => c.some((i) => xs[i].table[s] >= 0);
  if (loop === t.length) assert.ok(xs.every((x) => x.table[vs[loop]] < 0), "a run stops only where no step can be taken");
  for (const [kind, c] of constraintsOf(g)) {
    const taken = cycInsts.some((i) => c.includes(i));
    const ok = kind === "weak" ? taken || cycStates.some((s) => !enabled(s, c)) : taken || !cycStates.some((s) => enabled(s, c));
    assert.ok(ok, `${kind} fairness of ${c.map((i) => xs[i].label)} on the cycle`);
  }
}

const live = (v: ReturnType<typeof check>) => v.properties.find((p) => p.kind === "liveness")!;

test("random graphs: the checker agrees with the definitional finder, and each lasso is a fair run", () => {
  fc.assert(
    fc.property(graphArb, (g) => {
      const v = check(specOf(g), {}, { validate: true });
      const p = live(v);
      assert.equal(p.status, naiveViolated(g) ? "violated" : "holds", JSON.stringify(g));
      if (p.status === "violated") checkLasso(g, p.trace!);
    }),
    { numRuns: 400, seed: 13 },
  );
});

// ---- fairness mutations ----

/** A lock held until Release runs; Spin is always enabled, or Blink makes Release come and go. */
function lockSpec(opts: { blink: boolean; fairness?: object }): Spec {
  return defineSpec({
    name: "test/lock",
    params: z.object({}),
    state: () => z.object({ held: z.boolean(), spin: z.number().int().min(0).max(1), open: z.boolean() }),
    init: () => ({ held: true, spin: 0, open: true }),
    actions: () => ({
      Release: { when: (s) => s.held && s.open, then: (s) => { s.held = false; } },
      // Blink instead of Spin: else a run could spin forever where Release is disabled.
      ...(opts.blink ? { Blink: { then: (s: { open: boolean }) => { s.open = !s.open; } } } : { Spin: { then: (s: { spin: number }) => { s.spin = 1 - s.spin; } } }),
    }),
    liveness: { released: { eventually: (s) => !s.held, doc: "the lock is eventually released" } },
    ...(opts.fairness ? { fairness: opts.fairness } : {}),
  });
}

test("a release that is always enabled but never has to run: violated without fairness, holds under weak fairness", () => {
  const unfair = live(check(lockSpec({ blink: false }), {}, { validate: true }));
  assert.equal(unfair.status, "violated");
  assert.match(unfair.message!, /never holds: steps 1\.\.2 repeat forever \(no fairness declared\)/);
  assert.deepEqual(unfair.trace!.steps.map((s) => s.action), [null, "Spin", "Spin"]);
  assert.equal(unfair.trace!.loop, 0);
  assert.equal(live(check(lockSpec({ blink: false, fairness: { weak: ["Release"] } }), {})).status, "holds");
  // Fairness of the wrong action does not help.
  assert.equal(live(check(lockSpec({ blink: false, fairness: { weak: ["Spin"] } }), {})).status, "violated");
});

test("a release enabled only now and then needs strong fairness", () => {
  const weak = live(check(lockSpec({ blink: true, fairness: { weak: ["Release"] } }), {}, { validate: true }));
  assert.equal(weak.status, "violated");
  // The cycle must pass a state where Release is disabled (else weak fairness forbids it).
  const cyc = weak.trace!.steps.slice(weak.trace!.loop!);
  assert.ok(cyc.some((s) => s.state.open === false));
  assert.equal(live(check(lockSpec({ blink: true, fairness: { strong: ["Release"] } }), {})).status, "holds");
  // A property's own fairness replaces the spec's.
  const own = defineSpec({ ...strip(lockSpec({ blink: true, fairness: { weak: ["Release"] } })), liveness: { released: { eventually: (s: any) => !s.held, fairness: { strong: ["Release"] } } } });
  assert.equal(live(check(own, {})).status, "holds");
});

test("a named group is fair to the group as a whole; a plain name to each instance", () => {
  const spec = (fairness: object) =>
    defineSpec({
      name: "test/threads",
      params: z.object({}),
      state: () => z.object({ tick: z.number().int().min(0).max(1), done: z.array(z.boolean()).length(2) }),
      init: () => ({ tick: 0, done: [false, false] }),
      actions: () => ({
        Tick: { then: (s) => { s.tick = 1 - s.tick; } },
        Finish: { each: { i: range(2) }, when: (s, { i }) => !s.done[i], then: (s, { i }) => { s.done[i] = true; } },
      }),
      liveness: { allDone: { eventually: (s) => s.done[0] && s.done[1] } },
      fairness,
    });
  assert.equal(live(check(spec({ weak: { task: ["Tick", "Finish"] } }), {})).status, "violated");
  // Fair to Finish as a whole: finishing one is enough to satisfy it while the other starves.
  assert.equal(live(check(spec({ weak: { anyFinish: ["Finish"] } }), {})).status, "holds");
  assert.equal(live(check(spec({ weak: ["Finish"] }), {})).status, "holds");
  assert.equal(live(check(spec({ weak: ["Finish(i=0)"] }), {})).status, "violated");
});

test("a thread is one constraint over the actions it runs, like a named group; a list of threads is one constraint per thread", () => {
  const spec = (fairness: object, thread: (i: number) => string = (i) => `cpu${i}`) =>
    defineSpec({
      name: "test/threads",
      params: z.object({}),
      state: () => z.object({ tick: z.number().int().min(0).max(1), done: z.array(z.boolean()).length(2) }),
      init: () => ({ tick: 0, done: [false, false] }),
      actions: () => ({
        Tick: { thread: "timer", then: (s) => { s.tick = 1 - s.tick; } },
        Finish: { each: { i: range(2) }, thread: ({ i }) => thread(i), when: (s, { i }) => !s.done[i], then: (s, { i }) => { s.done[i] = true; } },
      }),
      liveness: { allDone: { eventually: (s) => s.done[0] && s.done[1] } },
      fairness,
    });
  const both = live(check(spec({ weak: [{ thread: ["cpu0", "cpu1"] }] }), {}, { validate: true }));
  assert.equal(both.status, "holds");
  const one = live(check(spec({ weak: [{ thread: "cpu0" }] }), {}));
  assert.equal(one.status, "violated");
  assert.match(one.message!, /\(weak fairness of thread cpu0\)/);
  // A lasso's steps carry their thread, as a safety trace's do (the diagrams' lanes).
  assert.deepEqual(one.trace!.steps.map((s) => s.thread), [undefined, "cpu0", "timer", "timer"]);
  // Both instances in one thread: the thread's verdict is the named group's over the same actions.
  const same = () => "cpu0";
  assert.equal(live(check(spec({ weak: [{ thread: "cpu0" }] }, same), {})).status, "holds");
  assert.equal(live(check(spec({ weak: { cpu0: ["Finish"] } }, same), {})).status, "holds");
  // A thread that also runs an always-enabled step is satisfied by that step alone: Finish(i=0) starves.
  assert.equal(live(check(spec({ weak: [{ thread: "timer" }, { thread: "cpu1" }] }, (i) => (i === 0 ? "timer" : "cpu1")), {})).status, "violated");
  assert.equal(live(check(spec({ weak: { timer: ["Tick", "Finish(i=0)"], cpu1: ["Finish(i=1)"] } }, (i) => (i === 0 ? "timer" : "cpu1")), {})).status, "violated");
  // Threads and names mix in a group (and in a list).
  assert.equal(live(check(spec({ weak: { mixed: [{ thread: "timer" }, "Finish(i=1)"] } }), {})).status, "violated");
  assert.equal(live(check(spec({ weak: [{ thread: "cpu0" }, "Finish(i=1)"] }), {})).status, "holds");
});

test("a thread of the spec's `threads` is fair as one: its steps are the actions \"thread.label\"", () => {
  const spec = (fairness?: object) =>
    defineSpec({
      name: "test/thread-steps",
      params: z.object({}),
      state: () => z.object({ rel: threadSchema(["second"], {}, { once: true }), spin: z.number().int().min(0).max(1), done: z.boolean() }),
      init: () => ({ rel: { pc: "idle" as const }, spin: 0, done: false }),
      actions: () => ({ Spin: { thread: "timer", then: (s) => { s.spin = 1 - s.spin; } } }),
      threads: { release: { id: 1, pc: (s) => s.rel, once: true, steps: { first: {}, second: { then: (s) => { s.done = true; } } } } },
      liveness: { released: { eventually: (s) => s.done } },
      ...(fairness ? { fairness } : {}),
    });
  assert.equal(live(check(spec(), {})).status, "violated");
  assert.equal(live(check(spec({ weak: [{ thread: "release" }] }), {}, { validate: true })).status, "holds");
  assert.equal(live(check(spec({ weak: [{ thread: "timer" }] }), {})).status, "violated");
});

test("a run that stops before the goal is a lasso on its last state", () => {
  const spec = defineSpec({
    name: "test/stop",
    params: z.object({}),
    state: () => z.object({ x: z.number().int().min(0).max(3) }),
    init: () => ({ x: 0 }),
    actions: () => ({ Step: { when: (s) => s.x < 2, then: (s) => { s.x++; } } }),
    liveness: { reaches3: { eventually: (s) => s.x === 3 }, triggered: { leadsTo: [(s) => s.x === 1, (s) => s.x === 0] }, again: { alwaysEventually: (s) => s.x === 0 } },
  });
  const v = check(spec, {}, { validate: true });
  for (const p of v.properties.filter((x) => x.kind === "liveness")) {
    assert.equal(p.status, "violated", p.name);
    assert.equal(p.trace!.length, 2);
    assert.equal(p.trace!.loop, 2);
    assert.match(p.message!, /the run stops at step 2 \(no action can run\) and stays there forever/);
  }
  assert.match(v.properties.find((p) => p.name === "triggered")!.message!, /its first predicate holds at step 1/);
  assert.match(v.properties.find((p) => p.name === "again")!.message!, /does not hold from step 1 on/);
});

test("a run stopped by a fault or a deadlock says so: such a state is not quiescent, yet the run goes no further", () => {
  const spec = (stop: "fault" | "deadlock") =>
    defineSpec({
      name: "test/stuck",
      params: z.object({}),
      state: () => z.object({ x: z.number().int().min(0).max(2) }),
      init: () => ({ x: 0 }),
      actions: () => ({
        Step: { when: (s) => s.x === 0, then: (s) => { s.x = 1; } },
        Free: { when: (s) => s.x === 1 && stop === "fault", then: () => { throw new Fault("refcount_t: underflow"); } },
      }),
      busy: (s) => (stop === "deadlock" && s.x === 1 ? "release at lock" : undefined),
      liveness: { freed: { eventually: (s) => s.x === 2 } },
    });
  const fault = live(check(spec("fault"), {}, { validate: true }));
  assert.match(fault.message!, /the run stops at step 1 \(no action can run: every step enabled there faults \(Free\)\) and stays there forever/);
  const deadlock = live(check(spec("deadlock"), {}));
  assert.match(deadlock.message!, /the run stops at step 1 \(no action can run: deadlock, release at lock is blocked\)/);
});

// ---- RefPin ----

function strip(s: Spec): any {
  const { kind: _k, expected: _e, ...def } = s;
  return def;
}

/** RefPin with "the VM's last reference gone leads to its release". */
function refpinLive(fair: boolean): Spec {
  return defineSpec({
    ...strip(refpin),
    liveness: { vmReleased: { leadsTo: [(s: any) => s.vmState === 1, (s: any) => s.vmState === 2], doc: "kvm_put_kvm runs once the VM's last reference is gone" } },
    ...(fair ? { fairness: { weak: ["ReleaseVm"] } } : {}),
  });
}

test("RefPin: a leads-to property under weak fairness of ReleaseVm; the safety counts stay exact", () => {
  const v = check(refpinLive(true), { N: 4, variant: "active" }, { validate: true });
  assert.deepEqual([v.stats.distinctStates, v.stats.generatedStates, v.stats.depth, v.complete], [25314, 217244, 14, true]);
  assert.equal(live(v).status, "holds");
  assert.equal(v.stats.liveness!.states, 25314);
  assert.equal(v.stats.liveness!.edges, 217244 - 1);
  assert.ok(v.stats.liveness!.bytesPerState > 0);
  const unfair = live(check(refpinLive(false), { N: 4, variant: "active" }, { validate: true }));
  assert.equal(unfair.status, "violated");
  assert.equal(unfair.trace!.steps[unfair.trace!.loop!].state.vmState, 1);
});

test("RefPin N=5 with the leads-to property checks in seconds", () => {
  const t = performance.now();
  const v = check(refpinLive(true), { N: 5, variant: "active" });
  const s = (performance.now() - t) / 1000;
  assert.equal(v.stats.distinctStates, 235662);
  assert.equal(live(v).status, "holds");
  // 5 s on an idle machine; the bound here leaves room for a shared one.
  assert.ok(s < 30, `${s.toFixed(1)} s`);
});

test("symmetry and partial-order reduction apply to the safety search only; liveness runs unreduced", () => {
  const plain = check(refpinLive(false), { N: 2, variant: "active" });
  const sym = check(refpinLive(false), { N: 2, variant: "active" }, { symmetry: true, por: true });
  assert.ok(sym.stats.distinctStates < plain.stats.distinctStates);
  assert.equal(sym.stats.liveness!.states, plain.stats.distinctStates);
  assert.deepEqual(live(sym), live(plain));
  assert.ok(sym.warnings.some((w) => /liveness properties were checked on the unreduced state graph: symmetry .* applies to the safety search only/.test(w)), sym.warnings.join("\n"));
});

test("a bound leaves liveness unknown and the run incomplete", () => {
  const v = check(refpinLive(true), { N: 2, variant: "active" }, { maxStates: 100 });
  assert.equal(live(v).status, "unknown");
  assert.equal(v.complete, false);
});

test("a declared liveness violation is as expected", () => {
  const spec = defineSpec({ ...strip(lockSpec({ blink: false })), expected: [{ when: {}, violated: { released: { steps: 2, message: "never holds" } } }] });
  const v = check(spec, {});
  assert.equal(v.expectation?.status, "as-expected");
  assert.equal(live(v).expected, true);
});

// ---- renderers ----

test("every renderer shows the lasso's cycle", () => {
  const v = check(refpinLive(false), { N: 1, variant: "active" }, { validate: true });
  const p = live(v) as PropertyResult & { trace: Trace };
  const { loop, length } = p.trace;
  assert.ok(loop! < length);
  const text = renderVerdict(v, { color: false });
  assert.match(text, new RegExp(`-- the cycle starts after this state: steps ${loop! + 1}\\.\\.${length} repeat forever --`));
  assert.match(text, new RegExp(`-- back to the state of step ${loop}: the cycle repeats forever --`));
  assert.match(mermaidSequence(p.trace), new RegExp(`loop steps ${loop! + 1}\\.\\.${length} repeat forever[\\s\\S]*\\n    end`));
  assert.match(stepTable(p.trace), /↺ the cycle starts after this state/);
  const itf = JSON.parse(toItf(v, p));
  assert.equal(itf.loop, loop! + 1);
  assert.equal(itf.states.length, length + 1);
});

// ---- bad declarations ----

test("bad declarations are spec errors naming the property and what was expected", () => {
  const base = strip(lockSpec({ blink: false }));
  const bad = (extra: object, re: RegExp) => assert.throws(() => check(defineSpec({ ...base, ...extra }), {}), (e: unknown) => e instanceof SpecError && re.test(e.message));
  bad({ liveness: { released: { eventualy: (s: any) => !s.held } } }, /liveness "released": unknown key "eventualy"; did you mean eventually\?; expected \{ eventually/);
  bad({ liveness: { released: { leadsTo: [(s: any) => s.held] } } }, /liveness "released": "leadsTo" must be \[P, Q\], two predicates of the state/);
  bad({ liveness: { released: { eventually: true } } }, /liveness "released": "eventually" must be a predicate of the state/);
  bad({ liveness: { released: { eventually: (s: any) => !s.held, alwaysEventually: (s: any) => !s.held } } }, /liveness "released": gives eventually and alwaysEventually; expected exactly one/);
  bad({ liveness: { released: { doc: "x" } } }, /liveness "released": names no formula/);
  bad({ liveness: { released: 3 } }, /liveness "released": expected \{ eventually/);
  bad({ fairness: { weak: ["Relase"] } }, /spec "test\/lock", fairness, weak: "Relase" is not an action; did you mean Release\?; the actions are Release, Spin/);
  bad({ fairness: { often: ["Release"] } }, /fairness: unknown key "often"; expected \{ weak\?/);
  bad({ fairness: { weak: { thread: [] } } }, /fairness, weak group "thread": expected a non-empty list of action names/);
  bad({ liveness: { released: { eventually: (s: any) => !s.held, fairness: { strong: [3] } } } }, /liveness "released": fairness, strong: expected an action name/);
  bad({ invariants: { released: (s: any) => s.spin >= 0 } }, /liveness "released": another property has this name/);
});

test("a thread unknown to the spec is a spec error listing its threads", () => {
  const base = strip(lockSpec({ blink: false }));
  const threaded = { ...base, actions: () => ({ Release: { thread: "task_work", when: (s: any) => s.held, then: (s: any) => { s.held = false; } }, Spin: { thread: "ioctl", then: (s: any) => { s.spin = 1 - s.spin; } } }) };
  const bad = (def: object, re: RegExp) => assert.throws(() => check(defineSpec(def as any), {}), (e: unknown) => e instanceof SpecError && re.test(e.message));
  bad({ ...threaded, fairness: { weak: [{ thread: "taskwork" }] } }, /fairness, weak: no action runs in thread "taskwork"; did you mean task_work\?; the spec's threads are task_work, ioctl/);
  bad({ ...threaded, fairness: { strong: { deferred: [{ thread: ["task_work", "rcu"] }] } } }, /fairness, strong group "deferred": no action runs in thread "rcu"; the spec's threads are task_work, ioctl/);
  bad({ ...base, fairness: { weak: [{ thread: "task_work" }] } }, /no action runs in thread "task_work"; no action of the spec declares a thread/);
  // A group named "thread" is a group: its items are actions, and a thread name there says how to name a thread.
  bad({ ...threaded, fairness: { weak: { thread: ["task_work"] } } }, /weak group "thread": "task_work" is a thread, not an action; name a thread as \{ thread: "task_work" \}/);
  bad({ ...threaded, fairness: { weak: ["ioctl"] } }, /fairness, weak: "ioctl" is a thread, not an action/);
  bad({ ...threaded, fairness: { weak: [{ thread: [] }] } }, /"thread" must be a thread name or a non-empty list of them/);
  bad({ ...threaded, fairness: { weak: [{ thread: "ioctl", weak: true }] } }, /unknown key "weak" in .*; a thread is named as \{ thread: "task_work" \}/);
  bad({ ...threaded, fairness: { weak: [["Release"]] } }, /fairness, weak: expected an action name \(a string\) or a thread/);
  assert.equal(live(check(defineSpec({ ...threaded, fairness: { weak: [{ thread: "task_work" }] } } as any), {})).status, "holds");
});

// ---- the shipped demo: get_file_rcu's retry loop ----

test("get_file_rcu: returns once the replacer stops (no fairness needed); a replacer that never stops starves it under any reader fairness", async () => {
  const { default: rcu } = await import("../specs/fs/get-file-rcu.ts");
  const base = strip(rcu);
  const bounded = live(check(defineSpec({ ...base, fairness: {} }), { replacer: "bounded", replacements: 3 }, { validate: true }));
  assert.equal(bounded.status, "holds");
  for (const fairness of [{ weak: { reader: ["Load", "Get", "Reload"] } }, { strong: ["Load", "Get", "Reload"] }, { strong: { reader: ["Load", "Get", "Reload"] } }]) {
    const p = live(check(defineSpec({ ...base, fairness }), { replacer: "forever" }, { validate: true }));
    assert.equal(p.status, "violated", JSON.stringify(fairness));
    assert.ok(p.trace!.steps.slice(p.trace!.loop! + 1).some((s) => s.action === "Get" || s.action === "Reload"), "the reader keeps retrying on the cycle");
  }
});

test("a liveness predicate that throws is a spec error naming the property", () => {
  const spec = (fn: (s: any) => boolean) => defineSpec({ ...strip(lockSpec({ blink: false })), liveness: { released: { eventually: fn } } });
  assert.throws(() => check(spec((s) => s.nope.x), {}), (e: unknown) => e instanceof SpecError && /liveness "released": field nope is not in the state schema/.test(e.message));
  assert.throws(() => check(spec(() => { throw new Error("boom"); }), {}), (e: unknown) => e instanceof SpecError && /spec "test\/lock", liveness "released" threw Error: boom/.test(e.message));
});
