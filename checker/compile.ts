// Compiles a spec and its parameters into a model: the codec, the flat list of action
// instances, the properties, the initial states (packed) and the symmetry canonicalizer.
import { z } from "zod";
import { compileCodec, didYouMean, paramsTrap, type Codec, type LeafSlot, type Node } from "./codec.ts";
import { ownershipProperties, type Owned } from "./ownership.ts";
import { expectationFor, type RunExpectation } from "./expect.ts";
import { checkActionKeys, SpecError, type ActionDef, type Spec } from "./spec.ts";
import { compileThreads, type CompiledThreads, type ThreadDef } from "./threads.ts";
import type { LockClassShape, LocksOf, TakesOf } from "./lockdep.ts";
import { compileLiveness, type LivenessProperty } from "./liveness.ts";

export interface ActionInstance {
  /** Index into the instance list (what parent links record). */
  id: number;
  /** Index of the named action. */
  action: number;
  name: string;
  /** The parameter values, a plain object (for traces and reports). */
  params: Record<string, unknown>;
  /**
   * The same values as the guard and the effect see them: reading a parameter the action
   * does not declare in `each` is a spec error, not a silent undefined.
   */
  args: Record<string, unknown>;
  /** "FileAdd(i=0)" */
  label: string;
  guard: ((s: any, a: any) => boolean) | undefined;
  effect: (s: any, a: any) => void;
  /** Declared footprint (partial-order reduction); undefined: may touch anything. */
  reads?: readonly string[];
  writes?: readonly string[];
  /** The thread that runs it, when the spec says. */
  thread?: string;
}

export interface NamedPredicate {
  name: string;
  doc?: string;
  fn: (...args: any[]) => boolean;
  /** Declared state paths it reads (partial-order reduction); undefined: all. */
  reads?: readonly string[];
}

export interface WitnessDef extends NamedPredicate {
  expect: "reachable" | "unreachable";
}

export interface Model {
  spec: Spec;
  params: Record<string, unknown>;
  designParam?: string;
  codec: Codec;
  words: number;
  actionNames: string[];
  actionKernel: (string | undefined)[];
  instances: ActionInstance[];
  invariants: NamedPredicate[];
  actionProperties: NamedPredicate[];
  quiescent: NamedPredicate[];
  witnesses: WitnessDef[];
  busy?: (s: any) => unknown;
  /** Lock classes for lock-order tracking (see LockOrder). */
  locks?: LocksOf;
  /** The locks a thread's step takes (declared), for lock-order tracking. */
  lockTakes?: TakesOf;
  /** The ownership declaration under these parameters, for the views of traces. */
  ownership?: Record<string, Owned<any>>;
  /** Packed initial states, canonical under symmetry when enabled later. */
  inits: Uint32Array[];
  /** Element leaves of the symmetric array, if the spec declares one. */
  symmetryLeaves: LeafSlot[][] | null;
  /** The violations the spec declares for this run; undefined when it declares none. */
  expected?: RunExpectation;
  /** Liveness properties with their fairness (checker/liveness.ts). */
  liveness: LivenessProperty[];
}

export function formatParams(params: Record<string, unknown>): string {
  const parts = Object.entries(params).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
  return parts.join(", ");
}

/** Parses and validates parameters (strings from the command line are coerced). */
export function resolveParams(spec: Spec, given: Record<string, unknown> = {}): Record<string, unknown> {
  const shape = spec.params.shape as Record<string, z.ZodType>;
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(given)) {
    if (!(k in shape)) {
      const known = Object.keys(shape);
      throw new SpecError(
        `spec "${spec.name}": unknown parameter "${k}"; ${known.length ? `its parameters are ${known.join(", ")}` : "it has no parameters"}`,
      );
    }
    try {
      raw[k] = typeof v === "string" ? coerce(v, shape[k]) : v;
    } catch (e) {
      throw new SpecError(`spec "${spec.name}": parameter "${k}": ${(e as Error).message}`);
    }
  }
  const r = spec.params.strict().safeParse(raw);
  if (!r.success) {
    const msgs = r.error.issues.map((i) => `parameter "${i.path.join(".")}": ${i.message}`);
    throw new SpecError(`spec "${spec.name}": ${msgs.join("; ")}`);
  }
  return r.data as Record<string, unknown>;
}

/** The default of each parameter that declares one. */
export function paramDefaults(spec: Spec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, schema] of Object.entries(spec.params.shape as Record<string, z.ZodType>)) {
    const r = schema.safeParse(undefined);
    if (r.success && r.data !== undefined) out[k] = r.data;
  }
  return out;
}

/** Command-line values are strings: convert to what the parameter's schema expects. */
function coerce(v: string, schema: z.ZodType): unknown {
  let s: any = schema;
  while (s?._zod?.def?.innerType) s = s._zod.def.innerType;
  const type = s?._zod?.def?.type;
  if (type === "boolean" && (v === "true" || v === "false")) return v === "true";
  if (type === "number") {
    if (/^-?\d+(\.\d+)?$/.test(v)) return Number(v);
    // Leave it to the schema's message, but say what was typed: "1e3" and "0x2" are not decimal.
    throw new SpecError(`expected a decimal number, got "${v}"`);
  }
  return v;
}

/** The spec's design parameter, if any: explicit `designParam`, else a param named "design". */
export function designParamOf(spec: Spec): string | undefined {
  const shape = spec.params.shape as Record<string, z.ZodType>;
  if (spec.designParam) {
    if (!(spec.designParam in shape)) throw new SpecError(`spec "${spec.name}": designParam "${spec.designParam}" is not a parameter`);
    return spec.designParam;
  }
  return "design" in shape ? "design" : undefined;
}

/** The values of the design parameter (its enum options), or [] without one. */
export function designsOf(spec: Spec): string[] {
  const p = designParamOf(spec);
  if (!p) return [];
  let s: any = (spec.params.shape as Record<string, z.ZodType>)[p];
  while (s?._zod?.def?.innerType) s = s._zod.def.innerType;
  if (s?._zod?.def?.type !== "enum") throw new SpecError(`spec "${spec.name}": design parameter "${p}" must be a z.enum(...)`);
  return Object.values(s._zod.def.entries as Record<string, string>);
}

/**
 * The parameter assignments to check: every design (unless `params` fixes it) under every
 * configuration the spec declares (unless `params` sets one of its parameters).
 */
export function designAssignments(spec: Spec, params: Record<string, unknown> = {}): Record<string, unknown>[] {
  const p = designParamOf(spec);
  const designs = p && params[p] === undefined ? designsOf(spec) : [];
  const configs = (spec.configurations ?? []).filter((c) => Object.keys(c).every((k) => params[k] === undefined));
  const withConfigs = configs.length ? configs.map((c) => ({ ...params, ...c })) : [params];
  if (!p || designs.length === 0) return withConfigs;
  return withConfigs.flatMap((c) => designs.map((d) => ({ ...c, [p]: d })));
}

/** The property names of a run, in verdict order, without building its model. */
function propertyNamesOf(spec: Spec, params: Record<string, unknown>): string[] {
  const keys = (section: string, v: unknown): string[] => {
    const o = ofParams(spec, section, v, params);
    return o && typeof o === "object" ? Object.keys(o) : [];
  };
  return [
    "noFault",
    ...(spec.busy || spec.threads ? ["noDeadlock"] : []),
    ...keys("invariants", spec.invariants),
    ...keys("actionProperties", spec.actionProperties),
    ...keys("quiescent", spec.quiescent),
    ...keys("reachable", spec.reachable),
    ...(spec.locks ? ["lockOrder"] : []),
    ...keys("ownership", spec.ownership).flatMap((o) => [`${o}CountExact`, `${o}NoHolderAfterFree`, `${o}NoLeak`]),
    ...keys("liveness", spec.liveness),
  ];
}

/**
 * Runs one phase of building the model from the spec (state, actions, init, ...); an
 * exception there is a spec error naming the spec and the phase.
 */
function phase<T>(spec: Spec, name: string, build: () => T): T {
  try {
    return build();
  } catch (e) {
    if (e instanceof SpecError) throw e;
    const what = e instanceof Error ? `${e.name}: ${e.message}` : `an exception: ${String(e)}`;
    throw new SpecError(`spec "${spec.name}": "${name}" threw ${what} while the model was being built`);
  }
}

/** A spec key given as a value or as a function of `arg` (the parameters), evaluated in its phase. */
function ofParams(spec: Spec, section: string, value: unknown, arg: unknown): unknown {
  return typeof value === "function" ? phase(spec, section, () => (value as (a: unknown) => unknown)(arg)) : value;
}

/** Source text with comments and string/template literals blanked out. */
function code(src: string): string {
  return src.replace(/\/\/[^\n]*|\/\*[\s\S]*?\*\/|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|`(?:\\.|[^`\\])*`/g, (m) =>
    m.startsWith("/") ? " " : '""',
  );
}

/** The simple (not destructured) parameter names of a function, from its source. */
export function paramNames(fn: Function): { names: string[]; body: string } {
  const src = code(Function.prototype.toString.call(fn)).replace(/^\s*async\s+/, "");
  const bare = /^([A-Za-z_$][\w$]*)\s*=>/.exec(src);
  if (bare) return { names: [bare[1]], body: src.slice(bare[0].length) };
  const open = src.indexOf("(");
  if (open < 0) return { names: [], body: src };
  let depth = 0, close = open;
  for (; close < src.length; close++) {
    if ("([{".includes(src[close])) depth++;
    else if (")]}".includes(src[close]) && --depth === 0) break;
  }
  const names: string[] = [];
  let d = 0, part = "";
  for (const ch of src.slice(open + 1, close) + ",") {
    if ("([{".includes(ch)) d++;
    else if (")]}".includes(ch)) d--;
    if (ch === "," && d === 0) {
      const m = /^\s*([A-Za-z_$][\w$]*)\s*(=.*)?$/s.exec(part);
      names.push(m ? m[1] : "");
      part = "";
    } else part += ch;
  }
  return { names, body: src.slice(close + 1) };
}

/**
 * The first assignment to parameter `name` in `body` (`s = ...`, `s += ...`), if any:
 * not a property (`.s =`), a comparison (`s == x`), an arrow (`s =>`) or a declaration.
 */
export function assignsParam(body: string, name: string): string | undefined {
  const n = name.replace(/\$/g, "\\$");
  const re = new RegExp(`(?<![\\w$.])(?<!\\b(?:let|const|var)\\s+)${n}\\s*(?:\\*\\*|<<|>>>|>>|&&|\\|\\||\\?\\?|[-+*/%&|^])?=(?![=>])`);
  const m = re.exec(body);
  return m ? `${name} ${m[0].slice(name.length).trim()}` : undefined;
}

/** A guard, effect or property that assigns its own parameter is a spec error. */
function checkNoParamAssign(where: string, fn: Function, what: string, params: "first" | "all"): void {
  const { names, body } = paramNames(fn);
  for (const name of params === "first" ? names.slice(0, 1) : names) {
    if (!name) continue;
    const hit = assignsParam(body, name);
    if (hit) {
      throw new SpecError(
        `${where}: the ${what} assigns its parameter ("${hit} ..."), which replaces a local variable and leaves the state as it was; ` +
          `mutate the draft's fields instead (${name}.field = ...)${what === "effect" ? "" : ", and only in an action's effect"}`,
      );
    }
  }
}

function named<T>(
  spec: Spec,
  section: string,
  value: unknown,
  params: Record<string, unknown>,
  pick: (name: string, v: any) => T,
): T[] {
  const obj = ofParams(spec, section, value, params);
  if (obj === undefined) return [];
  if (typeof obj !== "object" || obj === null) throw new SpecError(`spec "${spec.name}": "${section}" must be an object of named properties`);
  return Object.entries(obj).map(([name, v]) => pick(name, v));
}

function predicate(spec: Spec, section: string, name: string, v: any, key: string): NamedPredicate {
  const fn = typeof v === "function" ? v : v && typeof v === "object" ? v[key] : undefined;
  if (typeof fn === "function") checkNoParamAssign(`spec "${spec.name}", ${section} "${name}"`, fn, "property", "all");
  if (typeof v === "function") return { name, fn: v };
  if (v && typeof v === "object" && typeof v[key] === "function") {
    for (const k of Object.keys(v)) {
      if (k !== key && k !== "doc" && k !== "reads" && !(section === "reachable" && k === "expect")) {
        throw new SpecError(`spec "${spec.name}", ${section} "${name}": unknown key "${k}"`);
      }
    }
    return { name, fn: v[key], doc: v.doc, reads: v.reads };
  }
  throw new SpecError(`spec "${spec.name}", ${section} "${name}": expected a predicate function or { ${key}: (s) => boolean }`);
}

/** Paths of keys in `value` that the schema node does not have (with "did you mean"). */
function unknownKeys(value: unknown, n: Node, path: string, out: string[]): string[] {
  if (n.kind === "object" && value !== null && typeof value === "object" && !Array.isArray(value)) {
    const names = n.fields.map(([k]) => k);
    for (const k of Object.keys(value)) {
      const f = n.fields.find(([x]) => x === k);
      const p = path ? `${path}.${k}` : k;
      if (!f) out.push(`${p}${didYouMean(k, names).replace(/^; (.*)\?$/, " ($1?)")}`);
      else unknownKeys((value as Record<string, unknown>)[k], f[1], p, out);
    }
  } else if (n.kind === "array" && Array.isArray(value)) {
    value.forEach((v, i) => unknownKeys(v, n.element, `${path}[${i}]`, out));
  }
  return out;
}

const isLock = (l: unknown): boolean => typeof l === "object" && l !== null && "holder" in l && typeof (l as { holder: unknown }).holder === "number";

/**
 * The spec's `locks`, checked on a zero state: lock classes, each a lock with a numeric
 * holder or a non-empty array of them (the instances of the class). Gives each class's
 * number of instances (-1 for one lock) and whether its locks keep a lockdep subclass.
 */
function checkLocks(spec: Spec, codec: Codec): Record<string, LockClassShape> | undefined {
  if (spec.locks === undefined) return undefined;
  const where = `spec "${spec.name}"`;
  if (typeof spec.locks !== "function") throw new SpecError(`${where}: "locks" must be a function of the state, e.g. (s) => ({ slots_lock: s.slotsLock })`);
  const view = codec.view(new Uint32Array(codec.words), { ro: true });
  const locks = phase(spec, "locks", () => spec.locks!(view));
  const ok = (l: unknown) => isLock(l) || (Array.isArray(l) && l.length > 0 && l.every(isLock));
  const bad = locks && typeof locks === "object" ? Object.entries(locks).filter(([, l]) => !ok(l)).map(([k]) => k) : ["(not an object)"];
  if (bad.length || Object.keys(locks).length < 1) {
    throw new SpecError(`${where}: "locks" must give one or more lock classes, each a lock with a numeric holder (lockSchema in specs/kernel/lock.ts) or an array of them${bad.length ? `; not a lock: ${bad.join(", ")}` : ""}`);
  }
  const subclasses = (l: object) => "sub" in l;
  return Object.fromEntries(Object.entries(locks).map(([k, l]) => [k, Array.isArray(l) ? { instances: l.length, subclasses: l.every(subclasses) } : { instances: -1, subclasses: subclasses(l) }]));
}

/** Per action instance, the locks a thread's step takes (undefined for a declared action). */
function takesOf(instances: ActionInstance[], threads: CompiledThreads): TakesOf {
  const by = instances.map((x) => {
    const f = threads.takes[x.name];
    return f ? (s: unknown) => f(s, x.params as Record<string, unknown>) : undefined;
  });
  return (instance, before) => by[instance]?.(before);
}

export function compile(spec: Spec, given: Record<string, unknown> = {}): Model {
  const params = resolveParams(spec, given);
  const where = `spec "${spec.name}"`;
  const stateSchema = phase(spec, "state", () => spec.state(params as any));
  let codec: Codec;
  try {
    codec = compileCodec(stateSchema);
  } catch (e) {
    if (e instanceof SpecError) throw new SpecError(`${where}: ${e.message}`);
    throw e;
  }

  const declared = phase(spec, "actions", () => spec.actions(params as any)) as Record<string, ActionDef<any, any>>;
  if (!declared || typeof declared !== "object") throw new SpecError(`${where}: "actions" must return an object of named actions`);
  const lockShape = checkLocks(spec, codec);
  let threads: CompiledThreads | undefined;
  if (spec.threads !== undefined) {
    const decl = ofParams(spec, "threads", spec.threads, params);
    if (typeof decl !== "object" || decl === null) throw new SpecError(`${where}: "threads" must be an object of named threads`);
    const probe = codec.view(new Uint32Array(codec.words), { ro: true });
    const lockdep = ofParams(spec, "lockdep", spec.lockdep, params) ?? true;
    if (typeof lockdep !== "boolean") throw new SpecError(`${where}: "lockdep" must be true or false (or a function of the parameters giving one), got ${JSON.stringify(lockdep)}`);
    threads = phase(spec, "threads", () => compileThreads(where, decl as Record<string, ThreadDef<unknown>>, spec.locks, lockShape ?? {}, probe, lockdep));
    for (const n of Object.keys(threads.actions)) if (n in declared) throw new SpecError(`${where}: action "${n}" is both declared and a thread's step; rename one`);
  }
  if (spec.lockdep !== undefined && spec.threads === undefined) {
    throw new SpecError(`${where}: "lockdep" applies to the steps of "threads", and the spec has none (a hand-written acquire reports recursion itself)`);
  }
  const defs = { ...declared, ...threads?.actions };
  if (Object.keys(defs).length === 0) throw new SpecError(`${where}: "actions" must return at least one action`);
  const actionNames: string[] = [];
  const actionKernel: (string | undefined)[] = [];
  const instances: ActionInstance[] = [];
  for (const [name, def] of Object.entries(defs)) {
    if (!def || typeof def !== "object") throw new SpecError(`${where}, action "${name}": expected { when?, then, each?, kernel? }`);
    checkActionKeys(spec.name, name, def);
    if (typeof def.then !== "function") throw new SpecError(`${where}, action "${name}": "then" (the effect) must be a function`);
    if (def.when !== undefined && typeof def.when !== "function") throw new SpecError(`${where}, action "${name}": "when" (the guard) must be a function`);
    checkNoParamAssign(`${where}, action ${name}`, def.then, "effect", "first");
    if (def.when) checkNoParamAssign(`${where}, action ${name}`, def.when, "guard", "first");
    const a = actionNames.length;
    actionNames.push(name);
    actionKernel.push(def.kernel);
    const each = def.each ?? {};
    const keys = Object.keys(each);
    for (const k of keys) {
      if (!Array.isArray(each[k]) || each[k].length === 0) {
        throw new SpecError(`${where}, action "${name}": parameter domain "${k}" must be a non-empty array`);
      }
    }
    const argsProto = paramsTrap(`action "${name}"`, keys);
    const combos: Record<string, unknown>[] = [{}];
    for (const k of keys) {
      const next: Record<string, unknown>[] = [];
      for (const c of combos) for (const v of each[k]) next.push({ ...c, [k]: v });
      combos.splice(0, combos.length, ...next);
    }
    for (const c of combos) {
      const label = keys.length ? `${name}(${formatParams(c)})` : name;
      const args: Record<string, unknown> = Object.freeze(Object.create(argsProto, Object.getOwnPropertyDescriptors(c)));
      const footprint = (f: unknown, what: string): readonly string[] | undefined => {
        const v = typeof f === "function" ? f(args) : f;
        if (v === undefined) return undefined;
        if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) {
          throw new SpecError(`${where}, action ${label}: "${what}" must give an array of state paths`);
        }
        return v;
      };
      const thread = ofParams(spec, `actions: ${label}'s thread`, def.thread, args);
      if (thread !== undefined && (typeof thread !== "string" || thread === "")) {
        throw new SpecError(`${where}, action ${label}: "thread" must be a non-empty string (or a function of the parameters giving one)`);
      }
      instances.push({
        id: instances.length, action: a, name, params: Object.freeze(c), args, label, guard: def.when, effect: def.then,
        reads: footprint(def.reads, "reads"), writes: footprint(def.writes, "writes"), ...(thread ? { thread } : {}),
      });
    }
  }
  if (instances.length > 0xffff) throw new SpecError(`${where}: ${instances.length} action instances; at most 65535 are supported`);

  const invariants = named(spec, "invariants", spec.invariants, params, (n, v) => predicate(spec, "invariants", n, v, "holds"));
  const actionProperties = named(spec, "actionProperties", spec.actionProperties, params, (n, v) => predicate(spec, "actionProperties", n, v, "holds"));
  const quiescent = named(spec, "quiescent", spec.quiescent, params, (n, v) => predicate(spec, "quiescent", n, v, "holds"));
  let ownership: Record<string, Owned<any>> | undefined;
  if (spec.ownership !== undefined) {
    const decl = ofParams(spec, "ownership", spec.ownership, params);
    if (typeof decl !== "object" || decl === null) throw new SpecError(`${where}: "ownership" must be an object of counted objects`);
    const derived = ownershipProperties(where, decl as Record<string, Owned<unknown>>);
    ownership = decl as Record<string, Owned<any>>;
    for (const p of [...derived.invariants, ...derived.quiescent]) {
      if ([...invariants, ...quiescent].some((q) => q.name === p.name)) throw new SpecError(`${where}: property "${p.name}" is both declared and derived from "ownership"; rename one`);
    }
    invariants.push(...derived.invariants);
    quiescent.push(...derived.quiescent);
  }
  const witnesses = named(spec, "reachable", spec.reachable, params, (n, v): WitnessDef => {
    const p = predicate(spec, "reachable", n, v, "when");
    const expect = typeof v === "object" && v.expect !== undefined ? v.expect : "reachable";
    if (expect !== "reachable" && expect !== "unreachable") throw new SpecError(`${where}, reachable "${n}": expect must be "reachable" or "unreachable"`);
    return { ...p, expect };
  });

  // Initial states: validated against the schema (TypeOK), then packed.
  const initRaw = phase(spec, "init", () => spec.init(params as any));
  const initList = Array.isArray(initRaw) ? initRaw : [initRaw];
  if (initList.length === 0) throw new SpecError(`${where}: "init" returned no initial state`);
  const inits = initList.map((s, i) => {
    const which = initList.length > 1 ? ` #${i}` : "";
    // zod strips unknown keys silently; a misspelt field would start at its default.
    const extra = unknownKeys(s, codec.node, "", []);
    if (extra.length) {
      throw new SpecError(
        `${where}: initial state${which} has field${extra.length > 1 ? "s" : ""} not in the state schema: ${extra.join(", ")}`,
      );
    }
    const r = stateSchema.safeParse(s);
    if (!r.success) {
      const msgs = r.error.issues.map((x) => `field ${x.path.map(String).join(".") || "(state)"}: ${x.message}`);
      throw new SpecError(`${where}: initial state${which} is outside the state schema: ${msgs.join("; ")}`);
    }
    const buf = new Uint32Array(codec.words);
    const view = codec.view(buf, { ro: false });
    try {
      codec.assign(view, r.data);
    } catch (e) {
      if (e instanceof SpecError) throw new SpecError(`${where}: initial state${which}: ${e.message}`);
      throw e;
    }
    return buf;
  });

  let symmetryLeaves: LeafSlot[][] | null = null;
  if (spec.symmetry) {
    const view = codec.view(new Uint32Array(codec.words), { ro: true });
    symmetryLeaves = codec.elementLeaves(phase(spec, "symmetry", () => spec.symmetry!(view)));
    if (!symmetryLeaves) throw new SpecError(`${where}: "symmetry" must return an array field of the state, e.g. (s) => s.dev`);
  }
  const liveness = compileLiveness(
    spec, params, instances, actionNames,
    ["noFault", "noDeadlock", "lockOrder", ...[...invariants, ...actionProperties, ...quiescent, ...witnesses].map((p) => p.name)],
    (at, fn) => checkNoParamAssign(at, fn, "property", "all"),
  );
  const expected = expectationFor(spec, params, () => designAssignments(spec).map((a) => resolveParams(spec, a)), (p) => propertyNamesOf(spec, p));

  return {
    spec,
    params,
    designParam: designParamOf(spec),
    expected,
    codec,
    words: codec.words,
    actionNames,
    actionKernel,
    instances,
    invariants,
    actionProperties,
    quiescent,
    witnesses,
    busy: spec.busy ?? threads?.busy,
    locks: spec.locks,
    ...(spec.locks && threads ? { lockTakes: takesOf(instances, threads) } : {}),
    ownership,
    inits,
    symmetryLeaves,
    liveness,
  };
}
