// The two pictures of a trace that the Markdown, HTML and console views share:
//   lanes            who did what: a lane per thread (Step.thread, a thread record whose pc
//                    moved, else the action's kernel function) and a lane per object the
//                    trace touches; lock holds as spans; the fault at the thread that hit it.
//   ownership graph  per step: the declared objects with their count and lifetime, counted
//                    references (solid) and uncounted pointers (dashed) from their holders,
//                    the locks and who holds them; what the step changed marked.
// Pure functions of the Verdict; no layout here beyond the order of lanes and nodes.
import type { OwnedObject, LockClass, Step, Trace, Verdict } from "../checker/verdict.ts";
import { fieldOf, fmtValue, leaves, objectOf, stepLabel } from "./util.ts";

/** What the views read from a verdict besides the trace (both optional). */
export type Decls = Pick<Verdict, "objects" | "locks">;

/** The first identifier of an action's kernel text ("close(vm fd) -> fput" -> "close"). */
export function kernelFunction(kernel: string | undefined): string | undefined {
  const m = kernel ? /[A-Za-z_][A-Za-z0-9_]*/.exec(kernel) : null;
  return m ? m[0] : undefined;
}

/** A thread record: a top-level record with a program counter ("del.pc" moved -> "del"). */
function pcThread(step: Step): string | undefined {
  for (const c of step.changes) {
    const o = objectOf(c.path);
    if (fieldOf(c.path) === "pc" && o !== c.path) return o;
  }
  return undefined;
}

/** Kernel-function lanes beyond this many become one "userspace" lane (the diagram must fit a column). */
const MAX_KERNEL_LANES = 3;

/**
 * The thread lane of each step (index = step index; the initial state has none): its
 * thread, else the thread record whose pc it moved, else its kernel function, when that
 * gives few lanes, else one "userspace" lane.
 */
export function threadLanes(trace: Trace): (string | undefined)[] {
  const records = [...threadRecords(trace)];
  // A step that faulted before its pc moved: the thread record its action is named after (RelBody -> rel).
  const named = (s: Step) => records.find((r) => s.action!.toLowerCase().startsWith(r.toLowerCase()));
  const own = trace.steps.map((s) => (s.action === null ? undefined : (s.thread ?? pcThread(s) ?? named(s))));
  const byKernel = trace.steps.map((s, i) => (s.action === null || own[i] ? undefined : kernelFunction(s.kernel)));
  const ownLanes = new Set(own.filter((x): x is string => !!x));
  const kernelLanes = new Set(byKernel.filter((x): x is string => !!x));
  const useKernel = ownLanes.size + kernelLanes.size <= MAX_KERNEL_LANES;
  return trace.steps.map((s, i) => (s.action === null ? undefined : (own[i] ?? (useKernel ? byKernel[i] : undefined) ?? "userspace")));
}

/** Objects that are thread records (their pc moves): drawn as thread lanes, not objects. */
function threadRecords(trace: Trace): Set<string> {
  const out = new Set<string>();
  for (const s of trace.steps) {
    const t = pcThread(s);
    if (t) out.add(t);
  }
  return out;
}

/** The lane of a changed path: its declared object or lock, else its object. */
function laneOfPath(path: string, d: Decls): string {
  for (const l of d.locks ?? []) if (path === l.path || path.startsWith(l.path + ".")) return l.name;
  for (const o of d.objects ?? []) if ([...o.count, ...o.live].some((p) => p === path || objectOf(p) === objectOf(path))) return o.name;
  return objectOf(path);
}

export interface LaneArrow {
  step: number;
  from: string;
  to: string;
  /** "3. FileAdd(i=0)" on the step's first arrow, "3." on the others. */
  label: string;
  /** What changed on the target, e.g. ["count 1 -> 0"]. */
  detail: string[];
}

export interface LockSpan {
  lock: string;
  /** Thread lane that took it, when known. */
  holder: string;
  from: number;
  /** Step that released it; undefined when still held at the end. */
  to?: number;
}

export interface LaneModel {
  threads: string[];
  objects: string[];
  /** Objects the trace changes that have no lane (beyond the cap); their changes are in the step table. */
  hidden: string[];
  arrows: LaneArrow[];
  spans: LockSpan[];
  fault?: { step: number; thread: string; object?: string; at?: string; text: string };
}

/**
 * The lanes of a trace: threads first, then objects, at most `maxLanes` in all. Objects
 * are ranked: the fault's, declared objects, locks, then by the steps that touch them.
 */
export function laneModel(trace: Trace, d: Decls = {}, maxLanes = 7): LaneModel {
  const lanes = threadLanes(trace);
  const records = threadRecords(trace);
  const threads: string[] = [];
  for (const t of lanes) if (t && !threads.includes(t)) threads.push(t);
  const touched = new Map<string, number>();
  const faultStep = trace.steps.find((s) => s.fault !== undefined);
  const faultObj = faultStep?.faultAt ? laneOfPath(faultStep.faultAt, d) : undefined;
  for (const s of trace.steps) {
    if (s.action === null) continue;
    const seen = new Set<string>();
    for (const c of s.changes) {
      const o = laneOfPath(c.path, d);
      if (!records.has(o) && !threads.includes(o)) seen.add(o);
    }
    for (const o of seen) touched.set(o, (touched.get(o) ?? 0) + 1);
  }
  if (faultObj && !threads.includes(faultObj)) touched.set(faultObj, touched.get(faultObj) ?? 0);
  const declared = new Set([...(d.objects ?? []).map((o) => o.name), ...(d.locks ?? []).map((l) => l.name)]);
  const firstSeen = [...touched.keys()];
  const ranked = [...firstSeen].sort((a, b) => {
    const score = (o: string) => (o === faultObj ? 1e6 : 0) + (declared.has(o) ? 1e4 : 0) + (touched.get(o) ?? 0);
    return score(b) - score(a) || firstSeen.indexOf(a) - firstSeen.indexOf(b);
  });
  const room = Math.max(1, maxLanes - threads.length);
  const kept = new Set(ranked.slice(0, room));
  const objects = firstSeen.filter((o) => kept.has(o));
  const hidden = firstSeen.filter((o) => !kept.has(o));

  const arrows: LaneArrow[] = [];
  const spans: LockSpan[] = [];
  const open = new Map<string, LockSpan>();
  const lockOf = new Map((d.locks ?? []).map((l) => [l.path + ".holder", l.name] as const));
  let fault: LaneModel["fault"];
  // A lock held in the initial state is a span from the start.
  for (const [p, v] of leaves(trace.steps[0]?.state ?? {})) {
    const lock = lockOf.get(p) ?? (p.endsWith(".holder") && d.locks === undefined ? objectOf(p) : undefined);
    if (lock && typeof v === "number" && v !== 0 && objects.includes(lock)) {
      const sp: LockSpan = { lock, holder: `thread ${v}`, from: 0 };
      spans.push(sp);
      open.set(lock, sp);
    }
  }
  for (const s of trace.steps) {
    if (s.action === null) continue;
    const from = lanes[s.index]!;
    const label = `${s.index}. ${stepLabel(s)}`;
    const targets: string[] = [];
    const detail = new Map<string, string[]>();
    for (const c of s.changes) {
      const o = laneOfPath(c.path, d);
      if (records.has(o) || threads.includes(o) || !objects.includes(o)) continue;
      if (!targets.includes(o)) targets.push(o);
      const lockPath = d.locks?.find((l) => l.name === o)?.path;
      const field = c.path === o ? "" : lockPath && c.path.startsWith(lockPath + ".") ? c.path.slice(lockPath.length + 1) : c.path.startsWith(o) ? fieldOf(c.path) : c.path;
      detail.set(o, [...(detail.get(o) ?? []), `${field ? field + " " : ""}${fmtValue(c.before)} -> ${fmtValue(c.after)}`]);
      // Lock holder changes open and close spans.
      const lock = lockOf.get(c.path) ?? (c.path.endsWith(".holder") && d.locks === undefined ? objectOf(c.path) : undefined);
      if (lock && lock === o) {
        if (c.before === 0 && c.after !== 0) {
          const sp: LockSpan = { lock, holder: from, from: s.index };
          spans.push(sp);
          open.set(lock, sp);
        } else if (c.after === 0 && open.has(lock)) {
          open.get(lock)!.to = s.index;
          open.delete(lock);
        }
      }
    }
    if (targets.length === 0) arrows.push({ step: s.index, from, to: from, label, detail: [] });
    targets.forEach((to, k) => arrows.push({ step: s.index, from, to, label: k === 0 ? label : `${s.index}.`, detail: detail.get(to) ?? [] }));
    if (s.fault !== undefined) {
      const at = s.faultAt;
      const object = at ? laneOfPath(at, d) : targets[0];
      fault = { step: s.index, thread: from, ...(object && objects.includes(object) ? { object } : {}), ...(at ? { at } : {}), text: s.fault };
    }
  }
  return { threads, objects, hidden, arrows, spans, ...(fault ? { fault } : {}) };
}

// ---- the ownership graph ----

export interface GraphNode {
  id: string;
  kind: "object" | "holder" | "lock";
  label: string;
  /** A type or description shown under the name (the declaration's doc). */
  type?: string;
  /** Column from the left: holders 0, objects after the objects that hold them. */
  rank: number;
}

export interface GraphEdge {
  from: string;
  to: string;
  kind: "counted" | "weak";
}

export interface GraphStep {
  /** Per node: text lines (count, lifetime, holder), its state, whether the step changed it. */
  nodes: { lines: string[]; state: string; changed: boolean }[];
  /** Per edge: shown, its label (×2), whether the step changed it. */
  edges: { on: boolean; label: string; changed: boolean }[];
}

export interface OwnershipGraph {
  /** True when built from the spec's ownership declaration; false: fields grouped by object. */
  declared: boolean;
  nodes: GraphNode[];
  edges: GraphEdge[];
  steps: GraphStep[];
}

const LIFETIMES = new Set(["live", "dying", "freed", "none", "released"]);

/** An object's lifetime word: the `state` field beside its count (struct file), else live/freed. */
function lifetime(o: OwnedObject, s: Step): string {
  const st = s.owned?.[o.name];
  for (const p of o.count) {
    const sib = p.replace(/[^.[\]]+$/, "state");
    const v = leaves(s.state).find(([k]) => k === sib)?.[1];
    if (typeof v === "string" && LIFETIMES.has(v)) return v;
  }
  if (!st) return "";
  return st.live ? "live" : "freed";
}

/** Thread names by lock holder id, learnt from the steps that took a lock. */
function holderNames(trace: Trace, locks: LockClass[]): Map<number, string> {
  const names = new Map<number, string>();
  const lanes = threadLanes(trace);
  for (const s of trace.steps) {
    for (const c of s.changes) {
      if (locks.some((l) => c.path === l.path + ".holder") && typeof c.after === "number" && c.after !== 0 && lanes[s.index]) names.set(c.after, lanes[s.index]!);
    }
  }
  return names;
}

function lockNodes(trace: Trace, d: Decls): { locks: LockClass[]; names: Map<number, string> } {
  const locks = d.locks ?? [];
  return { locks, names: holderNames(trace, locks) };
}

/** The ownership graph of every step of a trace. */
export function ownershipGraph(trace: Trace, d: Decls = {}): OwnershipGraph {
  const { locks, names } = lockNodes(trace, d);
  const holderText = (v: unknown) => (v === 0 ? "free" : `held by ${typeof v === "number" ? (names.get(v) ?? `thread ${v}`) : fmtValue(v)}`);
  const lockState = (l: LockClass, s: Step) => leaves(s.state).find(([k]) => k === l.path + ".holder")?.[1];
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  let stepNodes: (s: Step) => { lines: string[]; state: string }[];
  let stepEdges: (s: Step) => { on: boolean; label: string }[] = () => [];
  const objects = d.objects ?? [];
  const declared = objects.length > 0 && trace.steps.every((s) => s.owned !== undefined);
  if (declared) {
    const objNames = new Set(objects.map((o) => o.name));
    // Ranks: holders 0; an object one right of the objects that hold it (cycles stop at 4).
    const rank = new Map<string, number>();
    const rankOf = (name: string, depth = 0): number => {
      if (!objNames.has(name)) return 0;
      if (rank.has(name)) return rank.get(name)!;
      const o = objects.find((x) => x.name === name)!;
      const r = depth > 4 ? 1 : 1 + Math.max(0, ...[...o.holders, ...(o.weak ?? [])].filter((h) => h !== name).map((h) => rankOf(h, depth + 1)));
      rank.set(name, r);
      return r;
    };
    for (const o of objects) {
      for (const h of [...o.holders, ...(o.weak ?? [])]) {
        if (!objNames.has(h) && !nodes.some((n) => n.id === h)) nodes.push({ id: h, kind: "holder", label: h, rank: 0 });
      }
    }
    for (const o of objects) nodes.push({ id: o.name, kind: "object", label: o.name, ...(o.doc ? { type: o.doc } : {}), rank: rankOf(o.name) });
    for (const o of objects) {
      for (const h of o.holders) edges.push({ from: h, to: o.name, kind: "counted" });
      for (const h of o.weak ?? []) edges.push({ from: h, to: o.name, kind: "weak" });
    }
    stepNodes = (s) =>
      nodes.map((n) => {
        if (n.kind === "holder") return { lines: [], state: "" };
        if (n.kind === "lock") return { lines: [holderText(lockState(locks.find((l) => l.name === n.id)!, s))], state: lockState(locks.find((l) => l.name === n.id)!, s) === 0 ? "free" : "held" };
        const o = objects.find((x) => x.name === n.id)!;
        const st = s.owned?.[o.name];
        const life = lifetime(o, s);
        return { lines: [`count ${st?.count ?? "?"}${life ? ` · ${life}` : ""}`], state: life };
      });
    stepEdges = (s) =>
      edges.map((e) => {
        const st = s.owned?.[e.to];
        if (e.kind === "weak") return { on: !!st?.weak?.[e.from], label: "" };
        const n = st?.holders[e.from] ?? 0;
        return { on: n > 0, label: n > 1 ? `×${n}` : "" };
      });
  } else {
    // No declaration: the objects the trace touches (and the fault's), their fields as lines.
    const records = threadRecords(trace);
    const lockPaths = new Set(locks.map((l) => l.path));
    const objs: string[] = [];
    const add = (p: string) => {
      const o = objectOf(p);
      if (!records.has(o) && !lockPaths.has(o) && !objs.includes(o)) objs.push(o);
    };
    for (const s of trace.steps) {
      for (const c of s.changes) if (!c.path.endsWith(".holder") || locks.length) add(c.path);
      if (s.faultAt) add(s.faultAt);
    }
    for (const o of objs) nodes.push({ id: o, kind: "object", label: o, rank: 1 });
    stepNodes = (s) => {
      const lv = leaves(s.state);
      return nodes.map((n) => {
        if (n.kind === "lock") {
          const l = locks.find((x) => x.name === n.id)!;
          return { lines: [holderText(lockState(l, s))], state: lockState(l, s) === 0 ? "free" : "held" };
        }
        const fields = lv.filter(([p]) => p === n.id || objectOf(p) === n.id);
        const life = fields.find(([p, v]) => fieldOf(p) === "state" && typeof v === "string" && LIFETIMES.has(v))?.[1];
        const lines = fields.map(([p, v]) => (p === n.id ? fmtValue(v) : `${fieldOf(p)} ${fmtValue(v)}`));
        return { lines: lines.length > 4 ? [...lines.slice(0, 3), `+${lines.length - 3} more`] : lines, state: typeof life === "string" ? life : "" };
      });
    };
  }
  for (const l of locks) nodes.push({ id: l.name, kind: "lock", label: l.name, rank: 0 });
  // Lock nodes are appended after stepNodes was defined over `nodes`: it maps the final list.
  const steps: GraphStep[] = [];
  let prev: { lines: string[]; state: string }[] | undefined;
  let prevE: { on: boolean; label: string }[] | undefined;
  for (const s of trace.steps) {
    const ns = stepNodes(s);
    const es = stepEdges(s);
    steps.push({
      nodes: ns.map((n, i) => ({ ...n, changed: !!prev && (prev[i]!.state !== n.state || prev[i]!.lines.join() !== n.lines.join()) })),
      edges: es.map((e, i) => ({ ...e, changed: !!prevE && (prevE[i]!.on !== e.on || prevE[i]!.label !== e.label) })),
    });
    prev = ns;
    prevE = es;
  }
  return { declared, nodes, edges, steps };
}
