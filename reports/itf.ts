// ITF, the Informal Trace Format (Apalache ADR-015, also written by Quint):
// https://apalache-mc.org/docs/adr/015adr-trace.html
//
// What refcheck writes, one file per trace:
//   #meta             format, source (the spec file), description, status ("violation" for a
//                     counterexample, "witness" for an example), and `refcheck`: a JSON string
//                     of {spec, design, configuration, params, property, kind, status, message}
//                     (itf-rs reads #meta values as strings only; older files hold an object).
//   params            the spec's parameters (ITF's CONSTANTS), their values in every state.
//   vars              the state's top-level fields, then `mbt::actionTaken` and
//                     `mbt::nondetPicks`, the names Quint uses for the same thing, so
//                     Quint-side tools (model-based testing drivers) read our traces.
//   states[k]         `#meta`: {index: k, kernel?, thread?, fault?, faultAt?}; the fault is on the failing step.
//                     `mbt::actionTaken`: "init" for state 0, else the action name.
//                     `mbt::nondetPicks`: every pick name of the trace in every state, as
//                     Quint's Option: {tag: "Some", value} when the step picked it, else
//                     {tag: "None", value: {"#tup": []}}. A name whose values differ in shape
//                     between actions is split as "Action.name", so each key has one type.
//                     `refcheck::thread`, when the spec names threads: the thread that ran
//                     the step ("" for state 0), also in #meta.thread for older readers.
//   loop              for a lasso (a liveness violation): where the repeated part starts.
// Values: booleans and strings as JSON, integers always {"#bigint": "n"}, arrays as
// JSON arrays (TLA+ sequences), records as JSON objects.
//
// Reading also accepts what Quint and Apalache write: #set and #tup become sets and tuples
// (reports/values.ts), #bigint beyond 2^53 a bigint, #map a record (keys printed as values),
// variants {tag, value} the tag (unit value) or a variant with its payload, #unserializable
// its text, and module-qualified names ("m::x") are shortened to the last segment when that
// stays unique.
import { createHash } from "node:crypto";
import type { Change, PropertyResult, Step, Trace, Verdict } from "../checker/verdict.ts";
import { fmtValue, runParams } from "./util.ts";
import { ItfSet, ItfTuple, ItfVariant, valueKey } from "./values.ts";

export const ACTION_TAKEN = "mbt::actionTaken";
export const NONDET_PICKS = "mbt::nondetPicks";
/** The thread that ran each step, as a variable so that typed readers see it ("" for the initial state). */
export const THREAD = "refcheck::thread";
const FORMAT_DESCRIPTION = "https://apalache-mc.org/docs/adr/015adr-trace.html";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export class ItfError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ItfError";
  }
}

function encode(v: unknown, where: string): Json {
  if (typeof v === "boolean" || typeof v === "string") return v;
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new ItfError(`${where}: ITF has no non-integer numbers (${v})`);
    return { "#bigint": String(v) };
  }
  if (typeof v === "bigint") return { "#bigint": v.toString() };
  if (Array.isArray(v)) return v.map((x, i) => encode(x, `${where}[${i}]`));
  if (typeof v === "object" && v !== null) {
    const out: Record<string, Json> = {};
    for (const [k, x] of Object.entries(v)) {
      // ITF reserves keys starting with '#' for its own encodings.
      if (k.startsWith("#")) throw new ItfError(`${where}.${k}: record field names may not start with '#'`);
      out[k] = encode(x, `${where}.${k}`);
    }
    return out;
  }
  throw new ItfError(`${where}: cannot encode ${String(v)} in ITF`);
}

/** The shape of an encoded value, for telling whether one pick name keeps one type. */
function shape(j: Json): string {
  if (Array.isArray(j)) return `[${j.length ? shape(j[0]!) : ""}]`;
  if (typeof j === "object" && j !== null) {
    if ("#bigint" in j) return "int";
    return `{${Object.keys(j).sort().map((k) => `${k}:${shape(j[k]!)}`).join(",")}}`;
  }
  return typeof j;
}

const NONE: Json = { tag: "None", value: { "#tup": [] } };

/** One trace (a property's counterexample or witness) as an ITF document. */
export function toItf(verdict: Verdict, property: PropertyResult): string {
  const trace = property.trace;
  if (!trace) throw new ItfError(`property ${property.name} of ${verdict.spec} has no trace`);
  const fields = Object.keys(trace.steps[0]?.state ?? {});
  const params = Object.keys(verdict.params).filter((p) => !fields.includes(p));
  const paramValues = Object.fromEntries(params.map((p) => [p, encode(verdict.params[p], `params.${p}`)]));

  // One key per pick name and shape: typed readers need one type per key.
  const picks = trace.steps.map((s, k) => Object.entries(s.params).map(([p, v]) => ({ action: s.action ?? "init", p, v: encode(v, `states[${k}].params.${p}`) })));
  const shapes = new Map<string, Set<string>>();
  for (const x of picks.flat()) shapes.set(x.p, (shapes.get(x.p) ?? new Set()).add(shape(x.v)));
  const keyOf = (x: { action: string; p: string }) => ((shapes.get(x.p)?.size ?? 0) > 1 ? `${x.action}.${x.p}` : x.p);
  const keys = [...new Set(picks.flat().map(keyOf))];

  const rc = {
    spec: verdict.spec,
    ...(verdict.design !== undefined ? { design: verdict.design } : {}),
    ...(verdict.configuration !== undefined ? { configuration: verdict.configuration } : {}),
    params: verdict.params,
    property: property.name,
    kind: property.kind,
    status: property.status,
    ...(property.message ? { message: property.message } : {}),
  };
  const threaded = trace.steps.some((s) => s.thread !== undefined);
  const doc = {
    "#meta": {
      format: "ITF",
      "format-description": FORMAT_DESCRIPTION,
      source: verdict.file ?? verdict.spec,
      description:
        `refcheck: ${verdict.spec}${verdict.design !== undefined ? ` (${verdict.design})` : ""}: ` +
        `${property.name} ${property.status}${property.message ? `: ${property.message}` : ""}`,
      status: property.status === "violated" ? "violation" : "witness",
      refcheck: JSON.stringify(rc),
    },
    ...(params.length ? { params } : {}),
    vars: [...fields, ACTION_TAKEN, NONDET_PICKS, ...(threaded ? [THREAD] : [])],
    states: trace.steps.map((s, k) => {
      const meta: Record<string, Json> = { index: k };
      if (s.kernel) meta.kernel = s.kernel;
      if (s.thread) meta.thread = s.thread;
      if (s.fault) meta.fault = s.fault;
      if (s.faultAt) meta.faultAt = s.faultAt;
      const st: Record<string, Json> = { "#meta": meta, ...paramValues };
      for (const f of fields) st[f] = encode(s.state[f], `states[${k}].${f}`);
      st[ACTION_TAKEN] = s.action ?? "init";
      if (threaded) st[THREAD] = s.thread ?? "";
      const mine = new Map(picks[k]!.map((x) => [keyOf(x), x.v] as const));
      st[NONDET_PICKS] = Object.fromEntries(keys.map((key) => [key, mine.has(key) ? { tag: "Some", value: mine.get(key)! } : NONE]));
      return st;
    }),
    // ITF's loop runs from states[loop] to the last state, then back to states[loop]. A
    // refcheck lasso's last state equals the one after step `loop`, so ITF's loop starts one
    // later; a run that stops for good repeats its last state.
    ...(trace.loop !== undefined ? { loop: Math.min(trace.loop + 1, trace.length) } : {}),
  };
  return JSON.stringify(doc, null, 2) + "\n";
}

/** Longest file name refcheck writes, leaving room for the temporary-name prefix and suffix. */
export const MAX_NAME = 200;

/**
 * File name for a trace: "<spec>-<design>-<configuration and non-default params>-<property>.itf.json",
 * path-safe, never hidden, and at most MAX_NAME characters (a longer name keeps its start
 * and gets a hash of the whole so that it stays unique and stable).
 */
export function itfFileName(verdict: Verdict, property: PropertyResult): string {
  const parts = [
    verdict.spec,
    verdict.design,
    ...runParams(verdict).map(([k, x]) => `${k}=${fmtValue(x)}`),
    property.name,
  ].filter((x): x is string => !!x);
  // Never empty and never hidden: a name of empty strings would leave just ".itf.json".
  let stem = parts.map((p) => p.replace(/[^A-Za-z0-9_.=-]+/g, "_")).join("-").replace(/^\./, "_") || "trace";
  const ext = ".itf.json";
  if (stem.length + ext.length > MAX_NAME) {
    const hash = createHash("sha256").update(parts.join("\0")).digest("hex").slice(0, 12);
    stem = `${stem.slice(0, MAX_NAME - ext.length - hash.length - 1)}-${hash}`;
  }
  return stem + ext;
}

// ---- reading ----

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** Deepest nesting of a value refcheck reads; deeper input is refused, not overflowed. */
export const MAX_ITF_DEPTH = 512;

/** Sets an own data property: a key named "__proto__" stays data instead of changing the prototype. */
function put(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === "__proto__") Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

function shortWhere(where: string): string {
  return where.length > 120 ? `${where.slice(0, 100)}...` : where;
}

function decode(v: unknown, where: string, fail: (where: string, msg: string) => never, depth = 0): unknown {
  if (depth > MAX_ITF_DEPTH) return fail(shortWhere(where), `nested more than ${MAX_ITF_DEPTH} levels deep`);
  if (typeof v === "boolean" || typeof v === "string") return v;
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) fail(where, `integer out of range or not an integer: ${v} (use {"#bigint": "..."})`);
    return v;
  }
  if (Array.isArray(v)) return v.map((x, i) => decode(x, `${where}[${i}]`, fail, depth + 1));
  if (!isObj(v)) return fail(where, `unexpected ${v === null ? "null" : typeof v}`);
  if (Object.hasOwn(v, "#bigint")) {
    const s = v["#bigint"];
    if (typeof s !== "string" || !/^-?\d+$/.test(s)) return fail(where, `#bigint must be a decimal string, got ${JSON.stringify(s)}`);
    const n = Number(s);
    // Beyond 2^53 (Quint's uint256 and the like): exact, as a bigint.
    return Number.isSafeInteger(n) ? n : BigInt(s);
  }
  if (Object.hasOwn(v, "#tup") || Object.hasOwn(v, "#set")) {
    const key = Object.hasOwn(v, "#tup") ? "#tup" : "#set";
    const xs = v[key];
    if (!Array.isArray(xs)) return fail(where, `${key} must be an array`);
    const items = xs.map((x, i) => decode(x, `${where}.${key}[${i}]`, fail, depth + 1));
    return key === "#tup" ? new ItfTuple(items) : new ItfSet(items);
  }
  if (Object.hasOwn(v, "#map")) {
    const xs = v["#map"];
    if (!Array.isArray(xs)) return fail(where, `#map must be an array of [key, value] pairs`);
    const out: Record<string, unknown> = {};
    xs.forEach((pair, i) => {
      if (!Array.isArray(pair) || pair.length !== 2) fail(`${where}.#map[${i}]`, "expected a [key, value] pair");
      const k = decode(pair[0], `${where}.#map[${i}][0]`, fail, depth + 2);
      put(out, typeof k === "string" ? k : fmtValue(k), decode(pair[1], `${where}.#map[${i}][1]`, fail, depth + 2));
    });
    return out;
  }
  if (Object.hasOwn(v, "#unserializable")) return String(v["#unserializable"]);
  const hashKey = Object.keys(v).find((k) => k.startsWith("#"));
  if (hashKey) return fail(where, `unknown ITF encoding "${hashKey}"`);
  if (typeof v.tag === "string" && (Object.keys(v).length === 1 || (Object.hasOwn(v, "value") && Object.keys(v).length === 2))) {
    // Unit is Quint's empty tuple or Apalache's empty record (or no value at all); an empty
    // set, list or map is a payload and is kept.
    const raw = v.value;
    const unit = raw === undefined || (isObj(raw) && (Object.keys(raw).length === 0 || (Array.isArray(raw["#tup"]) && raw["#tup"].length === 0 && Object.keys(raw).length === 1)));
    if (unit) return v.tag;
    return new ItfVariant(v.tag, decode(raw, `${where}.value`, fail, depth + 1));
  }
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) put(out, k, decode(x, `${where}.${k}`, fail, depth + 1));
  return out;
}

function diffValues(a: unknown, b: unknown, path: string, out: Change[]): void {
  const tupA = a instanceof ItfTuple ? a.items : undefined;
  const tupB = b instanceof ItfTuple ? b.items : undefined;
  if (tupA && tupB && tupA.length === tupB.length) {
    tupA.forEach((x, i) => diffValues(x, tupB[i], `${path}[${i}]`, out));
  } else if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    a.forEach((x, i) => diffValues(x, b[i], `${path}[${i}]`, out));
  } else if (isObj(a) && isObj(b) && a.constructor === Object && b.constructor === Object && Object.keys(a).join() === Object.keys(b).join()) {
    for (const k of Object.keys(a)) diffValues(a[k], b[k], path ? `${path}.${k}` : k, out);
  } else if (valueKey(a) !== valueKey(b)) {
    // Sets (and everything else) change as a whole: the same elements in another order are no change.
    out.push({ path, before: a as Change["before"], after: b as Change["after"] });
  }
}

export interface ItfDocument {
  trace: Trace;
  /** The document's #meta (refcheck's own fields under `refcheck`), or {}. */
  meta: Record<string, unknown>;
  /** State variable names as shown (module prefixes removed). */
  vars: string[];
  /** The values of the document's `params` (ITF's constants), kept out of the states. */
  params: Record<string, unknown>;
  /** A lasso's `loop`: the index of the state the last one returns to. */
  loop?: number;
}

/** refcheck's own meta: an object in older files, a JSON string since itf-rs reads strings only. */
export function refcheckMeta(meta: Record<string, unknown>): Record<string, unknown> | undefined {
  let rc = meta.refcheck;
  if (typeof rc === "string") {
    try {
      rc = JSON.parse(rc);
    } catch {
      return undefined;
    }
  }
  return isObj(rc) ? rc : undefined;
}

/** The first line `refcheck trace` prints for a document: what it is, whose, and how it ends. */
export function itfHeadline(doc: { meta: Record<string, unknown>; params: Record<string, unknown>; loop?: number }, file: string, length: number): string {
  const meta = doc.meta;
  const rc = refcheckMeta(meta);
  let head =
    rc && typeof rc.spec === "string"
      ? `${rc.spec}${rc.design !== undefined ? ` (${String(rc.design)}${rc.configuration ? `, ${String(rc.configuration)}` : ""})` : ""}: ${String(rc.property)} ${String(rc.status)}${rc.message ? `: ${String(rc.message)}` : ""}`
      : `${typeof meta.source === "string" ? meta.source : file}${typeof meta.description === "string" ? `: ${meta.description}` : ""}`;
  // Quint's status tells a counterexample from a sample trace.
  const status = typeof meta.status === "string" ? meta.status : undefined;
  if (status && !rc) head += ` [${STATUS_WORDS[status] ? `${STATUS_WORDS[status]}, ` : ""}status ${status}]`;
  const ps = Object.entries(doc.params);
  if (ps.length && !rc) head += ` [params ${ps.map(([k, v]) => `${k}=${fmtValue(v)}`).join(", ")}]`;
  const tail = [`${length} step${length === 1 ? "" : "s"}`];
  if (doc.loop !== undefined) tail.push(`lasso: after step ${length} the trace returns to state ${doc.loop}`);
  return `${head} (${tail.join("; ")})`;
}

const STATUS_WORDS: Record<string, string> = { violation: "counterexample", ok: "sample trace", success: "sample trace", witness: "example", sample: "sample trace" };

/**
 * Reads an ITF document state by state: built from the top-level fields other than
 * "states" (and how many states there are), then `step` turns each state into a Step in
 * order, keeping only the previous state. parseItf and the streaming `refcheck trace` share it.
 */
export interface ItfReader {
  meta: Record<string, unknown>;
  vars: string[];
  /** Parameter values, filled in by the first state that holds them. */
  params: Record<string, unknown>;
  loop?: number;
  step(raw: unknown, k: number): Step;
}

export function itfReader(fileName: string, top: Record<string, unknown>, states: { isArray: boolean; length: number }): ItfReader {
  const fail = (where: string, msg: string): never => {
    throw new ItfError(`${fileName}: ${where}: ${msg}`);
  };
  const meta = top["#meta"] ?? {};
  if (!isObj(meta)) fail("#meta", "expected an object");
  const vars = top.vars;
  if (!Array.isArray(vars) || !vars.every((x) => typeof x === "string")) fail("vars", "expected an array of variable names");
  const params = top.params ?? [];
  if (!Array.isArray(params) || !params.every((x) => typeof x === "string")) fail("params", "expected an array of parameter names");
  if (!states.isArray) fail("states", "expected an array of states");
  if (states.length === 0) fail("states", "the trace has no states");
  const loop = top.loop;
  if (loop !== undefined && !(Number.isInteger(loop) && (loop as number) >= 0 && (loop as number) < states.length)) {
    fail("loop", `expected a state index below ${states.length}`);
  }

  // Quint repeats the mbt:: names in vars; the real set is the union, in order.
  const special = new Set([ACTION_TAKEN, NONDET_PICKS, THREAD]);
  const paramSet = new Set(params as string[]);
  const stateVars = [...new Set(vars as string[])].filter((v) => !special.has(v) && !paramSet.has(v));
  const stateVarSet = new Set(stateVars);
  const paramValues: Record<string, unknown> = {};
  const short = (v: string) => (v.includes("::") ? v.slice(v.lastIndexOf("::") + 2) : v);
  const shortNames = stateVars.map(short);
  const unique = new Set(shortNames).size === shortNames.length;
  const shown = unique ? shortNames : stateVars;

  let prev: Record<string, unknown> | undefined;
  const step = (raw: unknown, k: number): Step => {
    const at = `states[${k}]`;
    if (!isObj(raw)) fail(at, "expected an object");
    const st = raw as Record<string, unknown>;
    const smeta = (Object.hasOwn(st, "#meta") ? st["#meta"] : undefined) ?? {};
    if (!isObj(smeta)) fail(`${at}.#meta`, "expected an object");
    const m = smeta as Record<string, unknown>;
    if (m.index !== undefined && m.index !== k) fail(`${at}.#meta.index`, `expected ${k}, got ${JSON.stringify(m.index)}`);
    if (m.fault !== undefined && typeof m.fault !== "string") fail(`${at}.#meta.fault`, "expected a string");
    if (m.faultAt !== undefined && typeof m.faultAt !== "string") fail(`${at}.#meta.faultAt`, "expected a string");
    if (m.kernel !== undefined && typeof m.kernel !== "string") fail(`${at}.#meta.kernel`, "expected a string");
    if (m.thread !== undefined && typeof m.thread !== "string") fail(`${at}.#meta.thread`, "expected a string");

    const state: Record<string, unknown> = {};
    stateVars.forEach((v, i) => {
      if (Object.hasOwn(st, v)) put(state, shown[i]!, decode(st[v], `${at}.${v}`, fail));
      else fail(`${at}.${v}`, `variable "${v}" listed in vars is missing from the state`);
    });
    // Parameters are constants: the first state that holds one gives its value (they may appear once).
    for (const p of paramSet) {
      if (Object.hasOwn(st, p) && !Object.hasOwn(paramValues, p)) put(paramValues, p, decode(st[p], `${at}.${p}`, fail));
    }
    for (const key of Object.keys(st)) {
      if (key !== "#meta" && !special.has(key) && !stateVarSet.has(key) && !paramSet.has(key)) fail(`${at}.${key}`, "not listed in vars");
    }

    let action: string | null = k === 0 ? null : "step";
    if (Object.hasOwn(st, ACTION_TAKEN)) {
      const a = st[ACTION_TAKEN];
      if (typeof a !== "string") fail(`${at}.${ACTION_TAKEN}`, "expected a string");
      if (k > 0) action = (a as string) || "step";
    }
    const stepParams: Record<string, unknown> = {};
    if (Object.hasOwn(st, NONDET_PICKS)) {
      const picks = st[NONDET_PICKS];
      if (!isObj(picks)) fail(`${at}.${NONDET_PICKS}`, "expected a record of picks");
      for (const [p, x] of Object.entries(picks as Record<string, unknown>)) {
        // Quint wraps each pick in an Option: {tag: "Some"|"None", value}.
        // refcheck splits a name whose shape differs between actions as "Action.name".
        const name = action !== null && p.startsWith(`${action}.`) ? p.slice(action.length + 1) : p;
        if (isObj(x) && (x.tag === "None" || x.tag === "Some") && Object.hasOwn(x, "value")) {
          if (x.tag === "Some") put(stepParams, name, decode(x.value, `${at}.${NONDET_PICKS}.${p}.value`, fail));
        } else {
          put(stepParams, name, decode(x, `${at}.${NONDET_PICKS}.${p}`, fail));
        }
      }
    }
    const changes: Change[] = [];
    if (prev) for (const v of shown) diffValues(prev[v], state[v], v, changes);
    prev = state;
    return {
      index: k,
      action,
      params: k === 0 ? {} : (stepParams as Step["params"]),
      ...(typeof m.kernel === "string" ? { kernel: m.kernel } : {}),
      ...(typeof st[THREAD] === "string" && st[THREAD] !== "" ? { thread: st[THREAD] as string } : typeof m.thread === "string" ? { thread: m.thread } : {}),
      state: state as Step["state"],
      changes,
      ...(typeof m.fault === "string" ? { fault: m.fault } : {}),
      ...(typeof m.faultAt === "string" ? { faultAt: m.faultAt } : {}),
    };
  };
  return { meta: meta as Record<string, unknown>, vars: shown, params: paramValues, ...(loop !== undefined ? { loop: loop as number } : {}), step };
}

/** Parses an ITF document; errors name the file and the offending field. */
export function parseItf(text: string, fileName: string): ItfDocument {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ItfError(`${fileName}: not valid JSON: ${(e as Error).message}`);
  }
  if (!isObj(doc)) throw new ItfError(`${fileName}: (top level): expected a JSON object with "vars" and "states"`);
  const states = doc.states;
  const list = Array.isArray(states) ? states : [];
  const reader = itfReader(fileName, doc, { isArray: Array.isArray(states), length: list.length });
  const steps = list.map((raw, k) => reader.step(raw, k));
  return { trace: { steps, length: steps.length - 1 }, meta: reader.meta, vars: reader.vars, params: reader.params, ...(reader.loop !== undefined ? { loop: reader.loop } : {}) };
}

/** The trace of an ITF document (refcheck's or Quint's). */
export function fromItf(text: string, fileName: string): Trace {
  return parseItf(text, fileName).trace;
}
