// Liveness: `eventually`, `leadsTo` and `alwaysEventually` under weak and strong fairness,
// decided on the complete state graph.
//
// Semantics. A behaviour is an infinite run of the actions. A state where no action can run
// repeats forever (stuttering, as TLC treats a run that terminates); elsewhere runs do not
// stutter: the system as a whole keeps going while something can run (TLA+'s WF_vars(Next)),
// and `fairness` says which actions must get their turn. An action is enabled where its guard
// holds and its effect completes: a faulting step is the noFault violation, not a transition.
// Running an action counts as taking it even when the state stays the same.
//
// Algorithm. A second breadth-first search, without symmetry or partial-order reduction,
// builds the graph: an id per state (a table of 64-bit keys), edges in compressed rows
// (target, action instance) and a bit per state per predicate. P ~> Q fails iff a fair cycle
// lies among the states a run can be in while "P was seen and Q not since" (the one-bit
// monitor of the standard tableau): those are exactly the states reachable from a P-and-not-Q
// state through not-Q states, so the monitor costs no product graph. Tarjan's SCCs
// (iterative) of that subgraph; a component is fair when every weak constraint is disabled in
// one of its states or taken inside it; a strong constraint enabled in it and never taken
// inside removes the states enabling it, and what is left is decomposed again (the Streett
// refinement). A state with no successor is a fair component of its own (it stutters with
// nothing enabled). `eventually P` is Init ~> P, `alwaysEventually P` is TRUE ~> P.
//
// The lasso: the shortest prefix to a fair component (a BFS over state x monitor bit), then a
// cycle inside it made of BFS segments, to a witness of each constraint (a state disabling a
// weak one, or an edge taking it) and back to the entry.
import type { ActionInstance, Model } from "./compile.ts";
import { didYouMean } from "./codec.ts";
import { closest } from "./names.ts";
import { Limits, type ExploreOptions } from "./explore.ts";
import { effectReturned, RUN_EFFECT, RUN_GUARD, RUN_SHIFT, RUNNING, specFailure } from "./spec-calls.ts";
import { Fault, SpecError, type Spec } from "./spec.ts";
import { fingerprint, fmix, GrowU16, GrowU32 } from "./store.ts";
import { lassoTrace } from "./trace.ts";
import type { PropertyResult, Stats, StopReason } from "./verdict.ts";

export interface FairConstraint {
  kind: "weak" | "strong";
  /** An instance label ("Release(i=1)"), an action without parameters, "thread <name>", or a group's name. */
  name: string;
  instances: number[];
}

export interface LivenessProperty {
  name: string;
  doc?: string;
  kind: "eventually" | "leadsTo" | "alwaysEventually";
  /** The trigger of leadsTo. */
  p?: (s: any) => boolean;
  /** What must (eventually, again) hold. */
  q: (s: any) => boolean;
  fairness: FairConstraint[];
}

const FORMULAS = ["eventually", "leadsTo", "alwaysEventually"] as const;
const SHAPE = "{ eventually: (s) => boolean }, { leadsTo: [P, Q] } or { alwaysEventually: (s) => boolean }, with optional doc and fairness";

function evaluate(spec: Spec, what: string, v: unknown, params: Record<string, unknown>): unknown {
  if (typeof v !== "function") return v;
  try {
    return v(params);
  } catch (e) {
    if (e instanceof SpecError) throw e;
    throw new SpecError(`spec "${spec.name}": "${what}" threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)} while the model was being built`);
  }
}

/**
 * The constraints a `fairness` declaration names, resolved to action instances. An item of a
 * list is an action name (one constraint per instance), an instance label, or a thread
 * `{ thread: "task_work" }` (one constraint over every instance the thread runs: TLC's
 * WF_vars over the thread's next-state relation, "a runnable thread eventually runs"). A
 * named group is one constraint over all its items' instances.
 */
export function fairnessOf(where: string, decl: unknown, instances: ActionInstance[], actionNames: string[]): FairConstraint[] {
  const shape = `expected { weak?: [...], strong?: [...] }, each a list of action names and threads ({ thread: "task_work" }), or named groups of them ({ taskWork: ["Fput", "Release"] })`;
  if (typeof decl !== "object" || decl === null || Array.isArray(decl)) throw new SpecError(`${where}: ${shape}`);
  const out: FairConstraint[] = [];
  const labels = instances.map((x) => x.label);
  const threads = [...new Set(instances.flatMap((x) => (x.thread === undefined ? [] : [x.thread])))];
  const threadList = threads.length ? `the spec's threads are ${threads.join(", ")}` : "no action of the spec declares a thread";
  /** The instances of one action name or label. */
  const byName = (name: string, at: string): number[] => {
    const byAction = instances.filter((x) => x.name === name).map((x) => x.id);
    if (byAction.length) return byAction;
    const byLabel = instances.findIndex((x) => x.label === name);
    if (byLabel >= 0) return [byLabel];
    if (threads.includes(name)) throw new SpecError(`${at}: "${name}" is a thread, not an action; name a thread as { thread: "${name}" }`);
    throw new SpecError(`${at}: "${name}" is not an action${didYouMean(name, [...actionNames, ...labels])}; the actions are ${actionNames.join(", ")}`);
  };
  /** The thread names of a `{ thread }` item. */
  const threadsOf = (item: object, at: string): string[] => {
    for (const k of Object.keys(item)) if (k !== "thread") throw new SpecError(`${at}: unknown key "${k}" in ${JSON.stringify(item)}; a thread is named as { thread: "task_work" }`);
    const t = (item as { thread: unknown }).thread;
    const names = Array.isArray(t) ? t : [t];
    if (names.length === 0 || names.some((n) => typeof n !== "string")) throw new SpecError(`${at}: "thread" must be a thread name or a non-empty list of them, got ${JSON.stringify(t) ?? String(t)}`);
    for (const n of names as string[]) {
      if (!threads.includes(n)) {
        const near = closest(n, threads);
        throw new SpecError(`${at}: no action runs in thread "${n}"${near ? `; did you mean ${near}?` : ""}; ${threadList}`);
      }
    }
    return names as string[];
  };
  const inThread = (t: string) => instances.filter((x) => x.thread === t).map((x) => x.id);
  const isThreadItem = (item: unknown): item is object => typeof item === "object" && item !== null && !Array.isArray(item);
  const badItem = (item: unknown, at: string): never => {
    throw new SpecError(`${at}: expected an action name (a string) or a thread ({ thread: "name" }), got ${JSON.stringify(item) ?? String(item)}`);
  };
  for (const [kind, list] of Object.entries(decl)) {
    if (kind !== "weak" && kind !== "strong") throw new SpecError(`${where}: unknown key "${kind}"; ${shape}`);
    if (list === undefined) continue;
    if (Array.isArray(list)) {
      const at = `${where}, ${kind}`;
      for (const item of list) {
        if (typeof item === "string") {
          // A plain name: one constraint per instance, so no instance can starve another.
          for (const i of byName(item, at)) out.push({ kind, name: instances[i].label, instances: [i] });
        } else if (isThreadItem(item)) {
          // A thread is one constraint: it makes progress when any of its steps runs.
          for (const t of threadsOf(item, at)) out.push({ kind, name: `thread ${t}`, instances: inThread(t) });
        } else badItem(item, at);
      }
    } else if (typeof list === "object" && list !== null) {
      for (const [group, items] of Object.entries(list)) {
        const at = `${where}, ${kind} group "${group}"`;
        if (!Array.isArray(items) || items.length === 0) throw new SpecError(`${at}: expected a non-empty list of action names and threads`);
        const ids = items.flatMap((item: unknown) =>
          typeof item === "string" ? byName(item, at) : isThreadItem(item) ? threadsOf(item, at).flatMap(inThread) : badItem(item, at),
        );
        out.push({ kind, name: group, instances: [...new Set(ids)].sort((a, b) => a - b) });
      }
    } else throw new SpecError(`${where}, ${kind}: ${shape}`);
  }
  return out;
}

/** The spec's liveness properties with their fairness, checked for shape. */
export function compileLiveness(
  spec: Spec,
  params: Record<string, unknown>,
  instances: ActionInstance[],
  actionNames: string[],
  otherProperties: string[],
  checkPredicate: (where: string, fn: Function) => void,
): LivenessProperty[] {
  const where = `spec "${spec.name}"`;
  const decl = evaluate(spec, "liveness", spec.liveness, params);
  const fairDecl = evaluate(spec, "fairness", spec.fairness, params);
  const shared = fairDecl === undefined ? [] : fairnessOf(`${where}, fairness`, fairDecl, instances, actionNames);
  if (decl === undefined) return [];
  if (typeof decl !== "object" || decl === null || Array.isArray(decl)) throw new SpecError(`${where}: "liveness" must be an object of named properties, each ${SHAPE}`);
  return Object.entries(decl).map(([name, v]): LivenessProperty => {
    const at = `${where}, liveness "${name}"`;
    if (otherProperties.includes(name)) throw new SpecError(`${at}: another property has this name; rename one`);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new SpecError(`${at}: expected ${SHAPE}`);
    for (const k of Object.keys(v)) {
      if (!(FORMULAS as readonly string[]).includes(k) && k !== "doc" && k !== "fairness") {
        throw new SpecError(`${at}: unknown key "${k}"${didYouMean(k, [...FORMULAS, "doc", "fairness"])}; expected ${SHAPE}`);
      }
    }
    const given = FORMULAS.filter((k) => k in v);
    if (given.length !== 1) {
      throw new SpecError(`${at}: ${given.length ? `gives ${given.join(" and ")}` : "names no formula"}; expected exactly one of ${FORMULAS.join(", ")}: ${SHAPE}`);
    }
    const kind = given[0];
    const o = v as Record<string, unknown>;
    if (o.doc !== undefined && typeof o.doc !== "string") throw new SpecError(`${at}: "doc" must be a string`);
    const pred = (fn: unknown, what: string): ((s: any) => boolean) => {
      if (typeof fn !== "function") throw new SpecError(`${at}: ${what} must be a predicate of the state, (s) => boolean`);
      checkPredicate(at, fn);
      return fn as (s: any) => boolean;
    };
    let p: ((s: any) => boolean) | undefined, q: (s: any) => boolean;
    if (kind === "leadsTo") {
      const pq = o.leadsTo;
      if (!Array.isArray(pq) || pq.length !== 2 || typeof pq[0] !== "function" || typeof pq[1] !== "function") {
        throw new SpecError(`${at}: "leadsTo" must be [P, Q], two predicates of the state (always, P implies eventually Q)`);
      }
      p = pred(pq[0], "leadsTo[0]");
      q = pred(pq[1], "leadsTo[1]");
    } else q = pred(o[kind], `"${kind}"`);
    const fairness = o.fairness === undefined ? shared : fairnessOf(`${at}: fairness`, o.fairness, instances, actionNames);
    return { name, doc: o.doc as string | undefined, kind, p, q, fairness };
  });
}

// ---- the state graph ----

/** Key -> id, open addressing; a slot is (k0, k1, id) and (0, 0) marks a free one. */
class IndexTable {
  private t: Uint32Array;
  private mask: number;
  size = 0;
  constructor(cap = 1 << 12) {
    this.t = new Uint32Array(3 * cap);
    this.mask = cap - 1;
  }
  get bytes(): number {
    return this.t.byteLength;
  }
  /** The id stored under the key, or `id` after storing it (then size grows). */
  getOrAdd(k0: number, k1: number, id: number): number {
    const t = this.t, mask = this.mask;
    let i = fmix(k0 ^ Math.imul(k1, 0x9e3779b1)) & mask;
    for (;;) {
      const a = t[3 * i], b = t[3 * i + 1];
      if (a === 0 && b === 0) break;
      if (a === k0 && b === k1) return t[3 * i + 2];
      i = (i + 1) & mask;
    }
    t[3 * i] = k0;
    t[3 * i + 1] = k1;
    t[3 * i + 2] = id;
    if (++this.size > 0.75 * (mask + 1)) this.grow();
    return id;
  }
  private grow(): void {
    const old = this.t;
    const cap = (old.length / 3) * 2;
    this.t = new Uint32Array(3 * cap);
    this.mask = cap - 1;
    const t = this.t, mask = this.mask;
    for (let j = 0; j < old.length; j += 3) {
      const a = old[j], b = old[j + 1];
      if (a === 0 && b === 0) continue;
      let i = fmix(a ^ Math.imul(b, 0x9e3779b1)) & mask;
      while (t[3 * i] !== 0 || t[3 * i + 1] !== 0) i = (i + 1) & mask;
      t[3 * i] = a;
      t[3 * i + 1] = b;
      t[3 * i + 2] = old[j + 2];
    }
  }
}

export interface StateGraph {
  n: number;
  /** Edges of state s: off[s] .. off[s+1] in `to` (target) and `via` (action instance). */
  off: Uint32Array;
  to: Uint32Array;
  via: Uint16Array;
  /** The id of each of the model's initial states. */
  initIds: Uint32Array;
  /** Predicate k of state s: bit k % 32 of word s * pw + k / 32. */
  bits: Uint32Array;
  pw: number;
  /** Peak bytes while it was built. */
  bytes: number;
}

/** Writes the key of the W words at buf[0..W) to key[0], key[1] (as VisitedSet keys them). */
function keyInto(buf: Uint32Array, W: number, exact: boolean, key: Uint32Array): void {
  if (exact) {
    key[0] = buf[0];
    key[1] = (W === 2 ? buf[1] : 0) | 0x80000000;
  } else {
    fingerprint(buf, 0, W, key, 0);
    if (key[0] === 0 && key[1] === 0) key[1] = 1;
  }
}

/**
 * The complete reachable graph without reductions, with `preds` evaluated on every state;
 * a StopReason when a bound stopped it first.
 */
export function buildGraph(model: Model, preds: { fn: (s: any) => boolean; what: string }[], limits: Limits, maxStates: number, running?: Int32Array): StateGraph | StopReason {
  const W = model.words;
  // Exact keys when the packed state fits in 63 bits, as the visited set does; else a 64-bit fingerprint.
  const exact = W === 1 || (W === 2 && model.codec.lastWordBits < 32);
  const key = new Uint32Array(2);
  const table = new IndexTable();
  const A = new Uint32Array(W), D = new Uint32Array(W);
  const cur = model.codec.view(A, { ro: true });
  const draft = model.codec.view(D, { ro: false });
  const pw = Math.max(1, Math.ceil(preds.length / 32));
  const bits = new GrowU32(1 << 12);
  const off = new GrowU32(1 << 12), to = new GrowU32(1 << 14), via = new GrowU16(1 << 14);
  let frontier = new GrowU32(1 << 12), next = new GrowU32(1 << 12);
  const slot = running ?? new Int32Array(2);
  // Imported bindings are getters under some loaders: kept out of the loop.
  // A predicate is recorded as no known code (0): the supervisor then names spec code in general.
  const RUN = RUNNING, GUARD = RUN_GUARD * RUN_SHIFT, EFFECT = RUN_EFFECT * RUN_SHIFT, PRED = 0;
  let n = 0;
  const initIds = new Uint32Array(model.inits.length);
  model.inits.forEach((s, i) => {
    keyInto(s, W, exact, key);
    const id = table.getOrAdd(key[0], key[1], n);
    if (id === n) {
      n++;
      const at = next.reserve(W);
      next.a.set(s, at);
    }
    initIds[i] = id;
  });
  const instances = model.instances;
  const I = instances.length;
  let done = 0;
  while (next.n > 0) {
    [frontier, next] = [next, frontier];
    next.n = 0;
    const fa = frontier.a, count = frontier.n / W;
    for (let j = 0; j < count; j++) {
      if ((done & 1023) === 0) {
        const why = limits.check(() => ({ distinct: n, generated: to.n, depth: 0 }));
        if (why) return why;
      }
      done++;
      for (let w = 0; w < W; w++) A[w] = fa[j * W + w];
      const at = bits.reserve(pw);
      const ba = bits.a;
      for (let w = 0; w < pw; w++) ba[at + w] = 0;
      for (let k = 0; k < preds.length; k++) {
        slot[RUN] = PRED;
        let v: boolean;
        try {
          v = preds[k].fn(cur);
        } catch (e) {
          throw specFailure(model, preds[k].what, e);
        }
        if (v) ba[at + (k >>> 5)] |= 1 << (k & 31);
      }
      off.push(to.n);
      for (let i = 0; i < I; i++) {
        const inst = instances[i];
        if (inst.guard !== undefined) {
          slot[RUN] = GUARD + i;
          let g: boolean;
          try {
            g = inst.guard(cur, inst.args);
          } catch (e) {
            throw specFailure(model, `guard of action ${inst.label}`, e);
          }
          if (!g) continue;
        }
        if (!fire(inst, draft, D, A, W, slot, RUN, EFFECT + i, model)) continue;
        keyInto(D, W, exact, key);
        const t = table.getOrAdd(key[0], key[1], n);
        if (t === n) {
          if (n >= maxStates) return "max-states";
          n++;
          const w0 = next.reserve(W);
          next.a.set(D, w0);
        }
        to.push(t);
        via.push(i);
      }
    }
  }
  off.push(to.n);
  // The peak is at the end of the search; the table is dropped and the rest trimmed to size.
  const bytes = table.bytes + off.bytes + to.bytes + via.bytes + bits.bytes + frontier.bytes + next.bytes;
  return {
    n, off: off.a.slice(0, off.n), to: to.a.slice(0, to.n), via: via.a.slice(0, via.n), initIds,
    bits: bits.a.slice(0, bits.n), pw, bytes,
  };
}

/** Runs an enabled instance on D (a copy of A); false when it faults (no transition). */
function fire(inst: ActionInstance, draft: any, D: Uint32Array, A: Uint32Array, W: number, slot: Int32Array, RUN: number, code: number, model: Model): boolean {
  for (let w = 0; w < W; w++) D[w] = A[w];
  slot[RUN] = code;
  try {
    const ret = inst.effect(draft, inst.args);
    if (ret !== undefined) throw effectReturned(ret);
  } catch (e) {
    if (e instanceof Fault) return false;
    throw specFailure(model, `action ${inst.label}`, e);
  }
  return true;
}

// ---- deciding one property ----

/** A violation: the prefix and the cycle, as action instances from initial state `init`. */
export interface Lasso {
  init: number;
  prefix: number[];
  cycle: number[];
  /** The step from which the monitor stays pending up to the loop (leadsTo: P held there). */
  since: number;
}

/** Working arrays for the SCC pass, allocated once per graph. */
class Work {
  readonly inR: Uint8Array;
  readonly mark: Int32Array;
  readonly index: Int32Array;
  readonly low: Int32Array;
  readonly onStack: Uint8Array;
  readonly stack: Uint32Array;
  readonly csNode: Uint32Array;
  readonly csEdge: Uint32Array;
  readonly queue: Uint32Array;
  tag = 0;
  constructor(n: number) {
    this.inR = new Uint8Array(n);
    this.mark = new Int32Array(n);
    this.index = new Int32Array(n);
    this.low = new Int32Array(n);
    this.onStack = new Uint8Array(n);
    this.stack = new Uint32Array(n);
    this.csNode = new Uint32Array(n);
    this.csEdge = new Uint32Array(n);
    this.queue = new Uint32Array(n);
  }
  get bytes(): number {
    return [this.inR, this.mark, this.index, this.low, this.onStack, this.stack, this.csNode, this.csEdge, this.queue].reduce((s, a) => s + a.byteLength, 0);
  }
}

/**
 * Tarjan's strongly connected components of the subgraph of `nodes` (all marked `tag`),
 * iteratively (a deep graph would overflow the call stack), as lists of states.
 */
function tarjan(g: StateGraph, w: Work, nodes: Uint32Array, tag: number): Uint32Array[] {
  const { off, to } = g;
  const { mark, index, low, onStack, stack, csNode, csEdge } = w;
  for (const s of nodes) index[s] = -1;
  const comps: Uint32Array[] = [];
  let counter = 0, sp = 0, cp = 0;
  for (const root of nodes) {
    if (index[root] !== -1) continue;
    index[root] = low[root] = counter++;
    stack[sp++] = root;
    onStack[root] = 1;
    csNode[cp] = root;
    csEdge[cp++] = off[root];
    while (cp > 0) {
      const v = csNode[cp - 1], e = csEdge[cp - 1];
      if (e < off[v + 1]) {
        csEdge[cp - 1] = e + 1;
        const x = to[e];
        if (mark[x] !== tag) continue;
        if (index[x] === -1) {
          index[x] = low[x] = counter++;
          stack[sp++] = x;
          onStack[x] = 1;
          csNode[cp] = x;
          csEdge[cp++] = off[x];
        } else if (onStack[x] && index[x] < low[v]) low[v] = index[x];
        continue;
      }
      cp--;
      if (cp > 0) {
        const u = csNode[cp - 1];
        if (low[v] < low[u]) low[u] = low[v];
      }
      if (low[v] === index[v]) {
        let k = sp;
        do k--;
        while (stack[k] !== v);
        const comp = stack.slice(k, sp);
        for (const s of comp) onStack[s] = 0;
        sp = k;
        comps.push(comp);
      }
    }
  }
  return comps;
}

const NONE = 0xffffffff;

function decide(model: Model, g: StateGraph, w: Work, prop: LivenessProperty, pBit: number, qBit: number): Lasso | null {
  const { n, off, to, via, bits, pw } = g;
  const bit = (s: number, k: number) => (bits[s * pw + (k >>> 5)] >>> (k & 31)) & 1;
  const Q = (s: number) => bit(s, qBit) === 1;
  const trig = prop.kind === "leadsTo" ? (s: number) => bit(s, pBit) === 1 : prop.kind === "alwaysEventually" ? () => true : () => false;
  const trigInit = prop.kind === "leadsTo" ? trig : () => true;
  const { inR, queue, mark } = w;

  // The pending states: forward from the triggers through not-Q states.
  inR.fill(0);
  let qh = 0, qt = 0;
  const seed = (s: number) => {
    if (!inR[s] && !Q(s)) {
      inR[s] = 1;
      queue[qt++] = s;
    }
  };
  if (prop.kind === "eventually") for (const s of g.initIds) seed(s);
  else for (let s = 0; s < n; s++) if (trig(s)) seed(s);
  while (qh < qt) {
    const s = queue[qh++];
    for (let e = off[s]; e < off[s + 1]; e++) seed(to[e]);
  }
  if (qt === 0) return null;

  // Constraints: per instance, the constraints it belongs to.
  const K = prop.fairness.length;
  const I = model.instances.length;
  const member = prop.fairness.map((c) => {
    const m = new Uint8Array(I);
    for (const i of c.instances) m[i] = 1;
    return m;
  });
  const consOf: number[][] = Array.from({ length: I }, () => []);
  prop.fairness.forEach((c, k) => c.instances.forEach((i) => consOf[i].push(k)));
  const enabledCount = new Int32Array(K), taken = new Uint8Array(K), stamp = new Int32Array(K);
  let stampVal = 0;

  const rNodes = queue.slice(0, qt);
  const tag0 = ++w.tag;
  for (const s of rNodes) mark[s] = tag0;
  const work: [Uint32Array, number][] = [[rNodes, tag0]];
  let fairFound = false;
  while (work.length) {
    const [nodes, tag] = work.pop()!;
    for (const c of tarjan(g, w, nodes, tag)) {
      const tagC = ++w.tag;
      for (const s of c) mark[s] = tagC;
      const s0 = c[0];
      let cyclic = c.length > 1 || off[s0] === off[s0 + 1];
      for (let e = off[s0]; !cyclic && e < off[s0 + 1]; e++) if (to[e] === s0) cyclic = true;
      if (!cyclic) continue;
      enabledCount.fill(0);
      taken.fill(0);
      for (const s of c) {
        stampVal++;
        for (let e = off[s]; e < off[s + 1]; e++) {
          const inside = mark[to[e]] === tagC;
          for (const k of consOf[via[e]]) {
            if (stamp[k] !== stampVal) {
              stamp[k] = stampVal;
              enabledCount[k]++;
            }
            if (inside) taken[k] = 1;
          }
        }
      }
      let weakFails = false;
      const strongFailing: number[] = [];
      for (let k = 0; k < K; k++) {
        if (taken[k]) continue;
        if (prop.fairness[k].kind === "weak") {
          if (enabledCount[k] === c.length) weakFails = true;
        } else if (enabledCount[k] > 0) strongFailing.push(k);
      }
      // Weak: every cycle inside has the action enabled throughout and never takes it.
      if (weakFails) continue;
      if (strongFailing.length === 0) {
        for (const s of c) inR[s] = 2;
        fairFound = true;
        continue;
      }
      // Strong: a fair cycle must avoid the states that enable an action it never takes.
      const rest: number[] = [];
      for (const s of c) {
        let keep = true;
        for (let e = off[s]; keep && e < off[s + 1]; e++) for (const k of strongFailing) if (member[k][via[e]]) keep = false;
        if (keep) rest.push(s);
      }
      if (rest.length === 0) continue;
      const tagR = ++w.tag;
      for (const s of rest) mark[s] = tagR;
      work.push([Uint32Array.from(rest), tagR]);
    }
  }
  if (!fairFound) return null;

  // The shortest prefix: BFS over (state, pending bit) to a pending state of a fair component.
  const seen = new Uint8Array(n);
  const pq = new Uint32Array(2 * n);
  const par = new Uint32Array(2 * n).fill(NONE);
  const pvia = new Uint32Array(2 * n);
  qh = qt = 0;
  model.inits.forEach((_, i) => {
    const s = g.initIds[i];
    const x = 2 * s + (trigInit(s) && !Q(s) ? 1 : 0);
    if (seen[s] & (1 << (x & 1))) return;
    seen[s] |= 1 << (x & 1);
    pvia[x] = i;
    pq[qt++] = x;
  });
  let entry = -1;
  while (qh < qt) {
    const x = pq[qh++];
    const s = x >>> 1, b = x & 1;
    if (b === 1 && inR[s] === 2) {
      entry = x;
      break;
    }
    for (let e = off[s]; e < off[s + 1]; e++) {
      const t = to[e];
      const y = 2 * t + ((b === 1 || trig(t)) && !Q(t) ? 1 : 0);
      if (seen[t] & (1 << (y & 1))) continue;
      seen[t] |= 1 << (y & 1);
      par[y] = x;
      pvia[y] = via[e];
      pq[qt++] = y;
    }
  }
  if (entry < 0) throw new Error("liveness: a fair component was found but no pending run reaches it");
  const prefix: number[] = [], pending: number[] = [];
  let x = entry;
  for (; par[x] !== NONE; x = par[x]) {
    prefix.push(pvia[x]);
    pending.push(x & 1);
  }
  pending.push(x & 1);
  const init = pvia[x];
  prefix.reverse();
  pending.reverse();
  let since = pending.length - 1;
  while (since > 0 && pending[since - 1] === 1) since--;

  return { init, prefix, cycle: fairCycle(g, w, entry >>> 1, prop, member), since };
}

/**
 * A cycle from `entry` inside its fair component (the states marked like it) that meets
 * every constraint: BFS segments to a state disabling each weak one or an edge taking it, to
 * an edge taking each strong one enabled on the way, then back; repeated until the closed
 * walk is fair (each round settles a constraint for good). Empty for a state that stutters.
 */
function fairCycle(g: StateGraph, w: Work, entry: number, prop: LivenessProperty, member: Uint8Array[]): number[] {
  const { off, to, via, n } = g;
  if (off[entry] === off[entry + 1]) return [];
  // The component's states keep the tag they were given when it was found fair.
  const tag = w.mark[entry];
  const seen = new Int32Array(n).fill(-1);
  const parEdge = new Int32Array(n);
  const parNode = new Int32Array(n);
  const q = w.queue;
  let gen = 0;
  const bfs = (start: number, goalNode: ((s: number) => boolean) | null, goalEdge: ((e: number) => boolean) | null, acceptStart: boolean): number[] => {
    gen++;
    let h = 0, t = 0;
    q[t++] = start;
    seen[start] = gen;
    parEdge[start] = -1;
    const path = (s: number, last?: number): number[] => {
      const out = last === undefined ? [] : [last];
      for (let v = s; v !== start; v = parNode[v]) out.push(parEdge[v]);
      return out.reverse();
    };
    while (h < t) {
      const s = q[h++];
      if (goalNode && (s !== start || acceptStart) && goalNode(s)) return path(s);
      for (let e = off[s]; e < off[s + 1]; e++) {
        const x = to[e];
        if (w.mark[x] !== tag) continue;
        if (goalEdge && goalEdge(e)) return path(s, e);
        if (x === start && !acceptStart && goalNode?.(x)) {
          // Back at the start by one more step: the path so far plus this edge.
          return path(s, e);
        }
        if (seen[x] === gen) continue;
        seen[x] = gen;
        parEdge[x] = e;
        parNode[x] = s;
        q[t++] = x;
      }
    }
    throw new Error(`liveness: no path inside the fair component for ${prop.name}`);
  };
  const enabledAt = (s: number, k: number) => {
    for (let e = off[s]; e < off[s + 1]; e++) if (member[k][via[e]]) return true;
    return false;
  };
  const edges: number[] = [];
  const visited = new Set<number>([entry]);
  let cur = entry;
  const walk = (p: number[]) => {
    for (const e of p) {
      edges.push(e);
      cur = to[e];
      visited.add(cur);
    }
  };
  const satisfied = (k: number): boolean => {
    if (edges.some((e) => member[k][via[e]])) return true;
    const c = prop.fairness[k];
    return c.kind === "weak" ? [...visited].some((s) => !enabledAt(s, k)) : ![...visited].some((s) => enabledAt(s, k));
  };
  const K = prop.fairness.length;
  for (let round = 0; round <= K + 1; round++) {
    for (let k = 0; k < K; k++) {
      if (satisfied(k)) continue;
      const weak = prop.fairness[k].kind === "weak";
      walk(bfs(cur, weak ? (s) => !enabledAt(s, k) : null, (e) => member[k][via[e]] === 1, false));
    }
    if (cur !== entry || edges.length === 0) walk(bfs(cur, (s) => s === entry, null, false));
    let fair = true;
    for (let k = 0; k < K && fair; k++) fair = satisfied(k);
    if (fair) return edges.map((e) => via[e]);
  }
  throw new Error(`liveness: could not close a fair cycle for ${prop.name}`);
}

// ---- the verdict's part ----

export interface LivenessOutcome {
  results: PropertyResult[];
  warnings: string[];
  /** A bound stopped the graph's search: the liveness properties are unknown. */
  stoppedBy?: StopReason;
  stats?: NonNullable<Stats["liveness"]>;
}

function fairnessText(fs: FairConstraint[]): string {
  if (fs.length === 0) return "no fairness declared";
  const part = (kind: string) => fs.filter((f) => f.kind === kind).map((f) => f.name);
  return ["weak", "strong"].filter((k) => part(k).length).map((k) => `${k} fairness of ${part(k).join(", ")}`).join("; ");
}

/**
 * Why a run stops in this state, for the message: nothing enabled (quiescent), a thread
 * blocked (deadlock), or every enabled step faults. The last two are not quiescent states, so
 * a quiescent property does not see them; the run stops there all the same.
 */
function stopReason(model: Model, state: Uint32Array): string {
  const view = model.codec.view(state, { ro: true });
  const enabled = model.instances.filter((x) => x.guard === undefined || x.guard(view, x.args)).map((x) => x.label);
  if (enabled.length) return `no action can run: every step enabled there faults (${enabled.join(", ")})`;
  const who = model.busy?.(view);
  return who ? `no action can run: deadlock, ${String(who)} is blocked` : "no action can run";
}

function lassoMessage(prop: LivenessProperty, since: number, loop: number, n: number, stop: string): string {
  const cycle =
    loop === n ? `the run stops at step ${n} (${stop}) and stays there forever`
    : loop + 1 === n ? `step ${n} repeats forever`
    : `steps ${loop + 1}..${n} repeat forever`;
  const what =
    prop.kind === "leadsTo" ? `its first predicate holds at step ${since} and its second never holds from there on`
    : prop.kind === "eventually" ? "it never holds"
    : `it does not hold from step ${since} on`;
  return `${what}: ${cycle} (${fairnessText(prop.fairness)})`;
}

/**
 * Decides the model's liveness properties: the graph is built once, each property is decided
 * on it, and each violation's lasso is replayed and checked.
 */
export function checkLiveness(model: Model, opts: ExploreOptions, elapsedSeconds: number, symmetry: boolean, por: boolean): LivenessOutcome {
  const t0 = performance.now();
  const props = model.liveness;
  const deadline = opts.timeoutSeconds !== undefined ? t0 + (opts.timeoutSeconds - elapsedSeconds) * 1000 : Infinity;
  const limits = new Limits(opts, t0, deadline);
  const preds: { fn: (s: any) => boolean; what: string }[] = [];
  const slot = (fn: (s: any) => boolean, what: string) => {
    const k = preds.findIndex((x) => x.fn === fn);
    return k >= 0 ? k : preds.push({ fn, what }) - 1;
  };
  const at = props.map((p) => ({ p: p.p ? slot(p.p, `liveness "${p.name}"`) : -1, q: slot(p.q, `liveness "${p.name}"`) }));
  const warnings: string[] = [];
  if (symmetry || por) {
    warnings.push(
      `liveness properties were checked on the unreduced state graph: ${[symmetry && "symmetry (a cycle of orbits is a lasso only up to a permutation)", por && "partial-order reduction (not sound for liveness without a cycle proviso it lacks)"].filter(Boolean).join(" and ")} applies to the safety search only`,
    );
  }
  const g = buildGraph(model, preds, limits, opts.maxStates ?? Infinity, opts.running as Int32Array | undefined);
  const unknown = (p: LivenessProperty): PropertyResult => ({ name: p.name, kind: "liveness", status: "unknown", failed: false, doc: p.doc });
  if (typeof g === "string") {
    warnings.push(`liveness not decided: building the state graph was stopped by ${g}`);
    return { results: props.map(unknown), warnings, stoppedBy: g };
  }
  const w = new Work(g.n);
  const results = props.map((p, i): PropertyResult => {
    if (p.kind === "leadsTo") {
      let any = false;
      for (let s = 0; s < g.n && !any; s++) any = ((g.bits[s * g.pw + (at[i].p >>> 5)] >>> (at[i].p & 31)) & 1) === 1;
      if (!any) warnings.push(`liveness ${p.name}: its first predicate holds in no reachable state, so it holds vacuously`);
    }
    const lasso = decide(model, g, w, p, at[i].p, at[i].q);
    if (!lasso) return { name: p.name, kind: "liveness", status: "holds", failed: false, doc: p.doc };
    const steps = [...lasso.prefix, ...lasso.cycle];
    const loop = lasso.prefix.length;
    const { trace, states } = lassoTrace(model, lasso.init, steps, loop, p.name);
    checkMonitor(model, p, states, lasso.since, loop);
    const stop = loop === steps.length ? stopReason(model, states[loop]) : "";
    return { name: p.name, kind: "liveness", status: "violated", failed: true, doc: p.doc, message: lassoMessage(p, lasso.since, loop, steps.length, stop), trace };
  });
  const seconds = (performance.now() - t0) / 1000;
  const held = g.off.byteLength + g.to.byteLength + g.via.byteLength + g.bits.byteLength + w.bytes;
  const bytes = Math.max(g.bytes, held);
  return { results, warnings, stats: { states: g.n, edges: g.to.length, seconds, bytes, bytesPerState: g.n ? bytes / g.n : 0 } };
}

/** The replayed lasso must really violate the property: pending from `since` through the cycle. */
function checkMonitor(model: Model, p: LivenessProperty, states: Uint32Array[], since: number, loop: number): void {
  const view = (s: Uint32Array) => model.codec.view(s, { ro: true });
  for (let k = since; k < states.length; k++) {
    const fail = (what: string): never => {
      throw new SpecError(`spec "${model.spec.name}" is not deterministic: replaying the lasso of liveness property ${p.name}, ${what} at step ${k}`);
    };
    if (p.q(view(states[k]))) fail("the goal holds");
    if (k === since && p.kind === "leadsTo" && !p.p!(view(states[k]))) fail("the trigger does not hold");
  }
  if (loop < since) throw new Error("liveness: the cycle starts before the monitor is pending");
}
