// Helpers shared by the renderers: value formatting, step labels, property cells,
// the objects a trace touches. Pure functions of checker types.
import path from "node:path";
import type { Change, PropertyResult, Step, Trace, Verdict } from "../checker/verdict.ts";
import { isItfValue, ItfSet, ItfTuple, ItfVariant } from "./values.ts";

/**
 * A spec path (relative to `cwd`) made relative to the repository `root`, which CI tools
 * resolve paths against; unchanged without a root or when the file lies outside it.
 */
export function repoPath(file: string, root?: string, cwd?: string): string {
  if (root === undefined) return file;
  const rel = path.relative(path.resolve(root), path.resolve(cwd ?? process.cwd(), file));
  return rel === "" || rel.startsWith("..") || path.isAbsolute(rel) ? file : rel.split(path.sep).join("/");
}

// C0 and C1 controls (ESC starts terminal sequences, CR rewrites a line, a newline lets text
// start a line), line separators and bidirectional overrides, which reorder what is shown.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NEEDS_ESCAPE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]|^\s*::/;
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * Text from a spec or a trace file made safe for a terminal or a CI log: control characters
 * shown as escapes (ESC as \u001b, a newline as \n), and a leading "::" (a GitHub workflow
 * command) broken up.
 */
export function termText(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return s;
  const t = s.replace(UNSAFE, (ch) => NAMED[ch] ?? `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return t.replace(/^(\s*):(?=:)/, "$1\\u003a");
}

/**
 * A verdict, trace or value with every string (keys too) passed through termText: the
 * same object when nothing needed escaping, else a copy.
 */
export function termSafe<T>(x: T): T {
  if (typeof x === "string") return termText(x) as T;
  if (Array.isArray(x)) {
    let out: unknown[] | undefined;
    x.forEach((v, i) => {
      const t = termSafe(v);
      if (t !== v) (out ??= x.slice())[i] = t;
    });
    return (out ?? x) as T;
  }
  if (typeof x === "object" && x !== null) {
    const entries = Object.entries(x);
    const safe = entries.map(([k, v]) => [termText(k), termSafe(v)] as const);
    if (safe.every(([k, v], i) => k === entries[i]![0] && v === entries[i]![1])) return x;
    const out = {} as Record<string, unknown>;
    // defineProperty keeps a key named "__proto__" as data.
    for (const [k, v] of safe) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    return out as T;
  }
  return x;
}

/**
 * A value the way a kernel developer reads it: bare enum strings, [a, b], {k: v}; and what
 * other tools' ITF traces hold the way Quint prints it: Set(1, 2), (1, a), Some(x).
 */
export function fmtValue(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === "string") return /^[\w.:-]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === "boolean" || typeof v === "number" || typeof v === "bigint") return String(v);
  if (v instanceof ItfSet) return `Set(${v.items.map(fmtValue).join(", ")})`;
  if (v instanceof ItfTuple) return `(${v.items.map(fmtValue).join(", ")})`;
  if (v instanceof ItfVariant) return `${v.tag}(${fmtValue(v.value)})`;
  if (Array.isArray(v)) return `[${v.map(fmtValue).join(", ")}]`;
  if (typeof v === "object") {
    return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${k}: ${fmtValue(x)}`).join(", ")}}`;
  }
  return String(v);
}

/** "FileAdd(i=0)", "CloseVm", or "(initial state)". */
export function stepLabel(step: Pick<Step, "action" | "params">): string {
  if (step.action === null) return "(initial state)";
  const ps = Object.entries(step.params);
  return ps.length === 0 ? step.action : `${step.action}(${ps.map(([k, v]) => `${k}=${fmtValue(v)}`).join(", ")})`;
}

export function fmtChange(c: Change): string {
  return `${c.path}: ${fmtValue(c.before)} -> ${fmtValue(c.after)}`;
}

/** Every leaf of a state as [path, value], paths spelled like Change.path. */
export function leaves(v: unknown, path = ""): [string, unknown][] {
  // An empty list or record is a value of its own, not nothing; sets, tuples and variants are shown whole.
  if (isItfValue(v)) return [[path, v]];
  if (Array.isArray(v)) return v.length ? v.flatMap((x, i) => leaves(x, `${path}[${i}]`)) : [[path, v]];
  if (typeof v === "object" && v !== null && path !== "" && Object.keys(v).length === 0) return [[path, v]];
  if (typeof v === "object" && v !== null) {
    return Object.entries(v as Record<string, unknown>).flatMap(([k, x]) => leaves(x, path ? `${path}.${k}` : k));
  }
  return [[path, v]];
}

/**
 * The object a field path belongs to: the top-level field, or its element for an
 * array of records ("dev[1].pinned" -> "dev[1]"), so each device is its own object.
 */
export function objectOf(path: string): string {
  const m = /^([^.[]+)(\[\d+\])?(.)?/.exec(path);
  if (!m) return path;
  return m[2] && m[3] ? m[1] + m[2] : m[1]!;
}

/** The rest of a path once its object is removed ("dev[1].pinned" -> "pinned"). */
export function fieldOf(path: string): string {
  const o = objectOf(path);
  const rest = path.slice(o.length).replace(/^\./, "");
  return rest === "" ? o : rest;
}

/** Objects changed along a trace, in order of first change. */
export function traceObjects(trace: Trace): string[] {
  const seen: string[] = [];
  const add = (path: string) => {
    if (!seen.includes(objectOf(path))) seen.push(objectOf(path));
  };
  for (const s of trace.steps) {
    for (const c of s.changes) add(c.path);
    if (s.faultAt) add(s.faultAt);
  }
  return seen;
}

/** A thread is a top-level record with a program counter; its steps are sent from it. */
export function threadOf(step: Step): string | undefined {
  for (const c of step.changes) {
    const o = objectOf(c.path);
    if (fieldOf(c.path) === "pc" && o !== c.path) return o;
  }
  return undefined;
}

/** The failing step of a trace, if one faulted. */
export function faultStep(trace: Trace): Step | undefined {
  return trace.steps.find((s) => s.fault !== undefined);
}

/** Spec line of an action, from coverage. */
export function actionLine(v: Verdict, action: string | null): number | undefined {
  if (action === null) return undefined;
  return v.coverage.find((c) => c.action === action)?.line;
}

/** Where a property "lives": its own line, else the failing action's, else the first action's. */
export function propertyLine(v: Verdict, p: PropertyResult): number | undefined {
  if (p.line) return p.line;
  const steps = p.trace?.steps ?? [];
  const failing = steps.find((s) => s.fault !== undefined) ?? steps[steps.length - 1];
  return actionLine(v, failing?.action ?? null);
}

/**
 * What a lasso (a liveness violation) says at step k: where its cycle starts, where it
 * closes, or that the run stops there for good; undefined elsewhere and for other traces.
 */
export function loopNote(trace: Trace, k: number): string | undefined {
  const loop = trace.loop, n = trace.length;
  if (loop === undefined) return undefined;
  if (loop === n) return k === n ? "no action can run: the run stays in this state forever" : undefined;
  if (k === loop) return `the cycle starts after this state: steps ${loop + 1}..${n} repeat forever`;
  if (k === n) return `back to the state of step ${loop}: the cycle repeats forever`;
  return undefined;
}

export function steps(n: number): string {
  return `${n} step${n === 1 ? "" : "s"}`;
}

/** The short comparison-table cell for a property. */
export function cellText(p: PropertyResult): string {
  const n = p.trace?.length;
  switch (p.status) {
    case "holds":
      return "holds";
    case "violated":
      return `violated: ${p.message ?? p.name}${n !== undefined ? ` in ${steps(n)}` : ""}`;
    case "reachable":
      return `witness reachable${n !== undefined ? ` in ${steps(n)}` : ""}${p.failed ? " (expected unreachable)" : ""}`;
    case "unreachable":
      return `witness unreachable${p.failed ? " (expected reachable)" : ""}`;
    case "unknown":
      return "unknown (incomplete)";
  }
}

/** A shorter cell for terminals: the message goes below the table. */
export function shortCell(p: PropertyResult | undefined): string {
  if (!p) return "-";
  const n = p.trace?.length;
  switch (p.status) {
    case "holds":
      return "holds";
    case "violated":
      return `VIOLATED (${steps(n ?? 0)})`;
    case "reachable":
      return `reachable (${steps(n ?? 0)})${p.failed ? " !" : ""}`;
    case "unreachable":
      return `unreachable${p.failed ? " !" : ""}`;
    case "unknown":
      return "unknown";
  }
}

/** Display name of a verdict's design ("get_file"), or its spec when it has none. */
export function designName(v: Verdict): string {
  if (v.design !== undefined && v.configuration) return `${v.design} (${v.configuration})`;
  return v.design ?? (Object.keys(v.params).length ? Object.entries(v.params).map(([k, x]) => `${k}=${fmtValue(x)}`).join(" ") : v.spec);
}

/**
 * The parameters that set a run apart besides its design: those of its configuration,
 * then every other parameter that differs from the spec's default (all of them when the
 * verdict does not record defaults).
 */
export function runParams(v: Verdict): [string, unknown][] {
  const config = new Set((v.configuration ?? "").split(" ").filter(Boolean).map((kv) => kv.split("=")[0]!));
  const same = (k: string) => v.defaults !== undefined && k in v.defaults && JSON.stringify(v.defaults[k]) === JSON.stringify(v.params[k]);
  const entries = Object.entries(v.params).filter(([k]) => k !== v.designParam);
  return [...entries.filter(([k]) => config.has(k)), ...entries.filter(([k]) => !config.has(k) && !same(k))];
}

/** Verdicts grouped by scenario (spec name), in first-seen order. */
export function byScenario(verdicts: Verdict[]): [string, Verdict[]][] {
  const m = new Map<string, Verdict[]>();
  for (const v of verdicts) m.set(v.spec, [...(m.get(v.spec) ?? []), v]);
  return [...m];
}

/** Union of property names over verdicts, in first-seen order. */
export function propertyNames(verdicts: Verdict[]): string[] {
  const names: string[] = [];
  for (const v of verdicts) for (const p of v.properties) if (!names.includes(p.name)) names.push(p.name);
  return names;
}

/** Properties that carry a trace worth showing. */
export function traced(v: Verdict): (PropertyResult & { trace: Trace })[] {
  return v.properties.filter((p): p is PropertyResult & { trace: Trace } => p.trace !== undefined);
}

export function headline(p: PropertyResult): string {
  if (p.status === "violated") return `${p.name} violated${p.message ? `: ${p.message}` : ""}`;
  if (p.status === "reachable") return `${p.name} witness reached`;
  return `${p.name} ${p.status}`;
}

/** "1,234" with a fixed locale so goldens do not depend on the machine. */
export function num(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

export function statsLine(v: Verdict): string {
  const s = v.stats;
  const m = v.simulation;
  if (m) {
    return (
      `simulation, seed ${m.seed}: ${num(m.runs)} run${m.runs === 1 ? "" : "s"} of depth <= ${m.depth}, ${num(m.steps)} steps (longest walk ${m.longestWalk}), ` +
      `${s.seconds < 1 ? s.seconds.toFixed(3) : s.seconds.toFixed(2)} s, ${num(m.stepsPerSecond)} steps/s` +
      (m.workers > 1 ? `, ${m.workers} workers` : "")
    );
  }
  return (
    `${num(s.distinctStates)} distinct states, ${num(s.generatedStates)} generated, depth ${s.depth}, ` +
    `${s.seconds < 1 ? s.seconds.toFixed(3) : s.seconds.toFixed(2)} s, ${num(s.statesPerSecond)} states/s, ` +
    `${s.bytesPerState.toFixed(1)} B/state stored + ${s.traceBytesPerState.toFixed(1)} for traces, ` +
    (s.fingerprintBits === 0 ? "exact keys" : `${s.fingerprintBits}-bit fingerprints, P(missed state) ~ ${s.collisionProbability.toExponential(1)}`) +
    (s.symmetry ? ", symmetry" : "") +
    (s.por ? ", partial-order reduction" : "") +
    (s.workers > 1 ? `, ${s.workers} workers` : "")
  );
}

/**
 * Why a verdict is not complete: the bound that stopped the search, or for a simulation what
 * it ran (never "holds": a simulation that found nothing proves nothing). `suffix` follows
 * the bound's wording only.
 */
export function incompleteText(v: Verdict, suffix = ""): string {
  const m = v.simulation;
  if (!m) return `INCOMPLETE: stopped by ${v.stoppedBy ?? "a bound"}${suffix}`;
  const runs = `${num(m.runs)} run${m.runs === 1 ? "" : "s"} of depth ${m.depth}`;
  const cut = m.runs < m.requestedRuns ? ` (stopped by ${v.stoppedBy ?? "a bound"} after ${num(m.runs)} of ${num(m.requestedRuns)} runs)` : "";
  const found = v.properties.some((p) => p.status === "violated" || (p.failed && p.kind === "reachable"));
  return found
    ? `SIMULATION (seed ${m.seed}): ${runs}${cut}; not a proof: properties not violated are unknown`
    : `SIMULATION (seed ${m.seed}): no violation found in ${runs}${cut}; not a proof: the properties are unknown`;
}

/** Actions that never fired, one line each. */
export function coverageWarnings(v: Verdict): string[] {
  const out: string[] = [];
  for (const c of v.coverage) {
    if (c.fired === 0) out.push(`action ${c.action} never fired`);
    else if (c.neverFired.length) out.push(`action ${c.action} never fired as ${c.neverFired.join(", ")}`);
  }
  return out;
}

/** Warnings from the verdict plus coverage ones it does not already state. */
export function allWarnings(v: Verdict): string[] {
  const extra = coverageWarnings(v).filter((w) => !v.warnings.some((x) => x.startsWith(w.split(" never")[0]! + " never")));
  return [...v.warnings, ...extra];
}

export interface SeqMessage {
  from: string;
  to: string;
  /** Step number and action, e.g. "2. FileAdd(i=0)". */
  label: string;
  /** What changed on the target, e.g. ["count 1 -> 0"]. */
  detail: string[];
  step: number;
}

export interface SeqModel {
  participants: string[];
  messages: SeqMessage[];
  fault?: { step: number; over: string[]; text: string };
}

/**
 * A trace as a sequence diagram: userspace and the objects whose fields change.
 * Each step is an arrow from userspace (or the thread whose pc moved) to every object
 * it changed, labelled with those changes; a step that changed nothing points at
 * itself. The fault sits over the object it is about (or the objects the step changed).
 */
export function sequenceModel(trace: Trace): SeqModel {
  const objects = traceObjects(trace);
  const participants = ["userspace", ...objects.filter((o) => o !== "userspace")];
  const messages: SeqMessage[] = [];
  let fault: SeqModel["fault"];
  for (const s of trace.steps) {
    if (s.action === null) continue;
    const from = threadOf(s) ?? "userspace";
    const label = `${s.index}. ${stepLabel(s)}`;
    const targets: string[] = [];
    for (const c of s.changes) {
      const o = objectOf(c.path);
      if (!(o === from && fieldOf(c.path) === "pc") && !targets.includes(o)) targets.push(o);
    }
    if (targets.length === 0) messages.push({ from, to: from, label, detail: [], step: s.index });
    targets.forEach((to, k) => {
      const detail = s.changes
        .filter((c) => objectOf(c.path) === to && !(to === from && fieldOf(c.path) === "pc"))
        .map((c) => `${c.path === to ? "" : fieldOf(c.path) + " "}${fmtValue(c.before)} -> ${fmtValue(c.after)}`);
      messages.push({ from, to, label: k === 0 ? label : `${s.index}. (cont.)`, detail, step: s.index });
    });
    if (s.fault) {
      const over = s.faultAt ? [objectOf(s.faultAt)] : targets.length ? targets : [from];
      fault = { step: s.index, over, text: s.fault };
    }
  }
  return { participants, messages, ...(fault ? { fault } : {}) };
}

/**
 * Whether a property is reported as a failure: it failed and the spec did not declare it,
 * or its result differs from what the spec declares (a declared violation that now holds).
 */
export function reportedFailure(p: PropertyResult): boolean {
  return p.failed ? p.expected !== true : p.expected === false;
}

/** The expectation difference about a property, when its result changed. */
export function differenceOf(v: Verdict, p: PropertyResult): string | undefined {
  return v.expectation?.differences.find((d) => d.startsWith(`${p.name}: `));
}

/** The result column of a comparison: expected / CHANGED / pass / FAIL / incomplete. */
export function resultWord(v: Verdict): "expected" | "CHANGED" | "pass" | "FAIL" | "incomplete" {
  if (v.expectation?.status === "changed") return "CHANGED";
  if (v.outcome === "fail") return v.expectation ? "expected" : "FAIL";
  return v.outcome;
}
