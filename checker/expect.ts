// Expected verdicts: a spec declares which runs violate which properties (the buggy
// designs it ships on purpose), so a run can be told "as expected" from "changed".
import { SpecError, type Spec } from "./spec.ts";
import type { Expectation, PropertyResult } from "./verdict.ts";

/** A declared violation of one property, as the verdict compares it. */
export interface DeclaredViolation {
  steps?: number;
  message?: string | RegExp;
}

/** What the spec declares for one run: the properties it violates (every other holds). */
export type RunExpectation = Map<string, DeclaredViolation>;

interface Entry {
  when: Record<string, unknown>;
  violated: Record<string, true | DeclaredViolation>;
  doc?: string;
}

const entryKeys = new Set(["when", "violated", "doc"]);
const violationKeys = new Set(["steps", "message"]);

function show(x: unknown): string {
  return x instanceof RegExp ? String(x) : typeof x === "string" ? JSON.stringify(x) : JSON.stringify(x) ?? String(x);
}

function label(spec: Spec, i: number, e: Partial<Entry>): string {
  const when = e.when && typeof e.when === "object" ? Object.entries(e.when).map(([k, v]) => `${k}: ${show(v)}`).join(", ") : "?";
  return `spec "${spec.name}", expected entry ${i + 1} (when { ${when} })`;
}

/** The entries the spec declares for these parameters, checked for shape. */
function entriesOf(spec: Spec, params: Record<string, unknown>): Entry[] {
  let list: unknown = spec.expected;
  if (typeof list === "function") {
    try {
      list = (list as (p: unknown) => unknown)(params);
    } catch (e) {
      throw new SpecError(`spec "${spec.name}": "expected" threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    }
  }
  if (!Array.isArray(list)) throw new SpecError(`spec "${spec.name}": "expected" must be a list of { when, violated, doc? } entries (or a function of the parameters returning one)`);
  const shape = spec.params.shape as Record<string, unknown>;
  return list.map((e: any, i) => {
    const where = label(spec, i, e ?? {});
    if (!e || typeof e !== "object") throw new SpecError(`${where}: expected an object { when, violated, doc? }`);
    for (const k of Object.keys(e)) if (!entryKeys.has(k)) throw new SpecError(`${where}: unknown key "${k}"; expected one of when, violated, doc`);
    if (!e.when || typeof e.when !== "object") throw new SpecError(`${where}: "when" must be an object of parameter values, e.g. { design: "get_file" }`);
    for (const k of Object.keys(e.when)) {
      if (!(k in shape)) throw new SpecError(`${where}: "when" names "${k}", which is not a parameter; the parameters are ${Object.keys(shape).join(", ")}`);
    }
    if (!e.violated || typeof e.violated !== "object" || Object.keys(e.violated).length === 0) {
      throw new SpecError(`${where}: "violated" must name at least one property, e.g. { noFault: { steps: 2 } }`);
    }
    for (const [name, v] of Object.entries(e.violated as Record<string, unknown>)) {
      if (v === true) continue;
      const ok =
        v !== null && typeof v === "object" &&
        Object.keys(v).every((k) => violationKeys.has(k)) &&
        ((v as DeclaredViolation).steps === undefined || (Number.isInteger((v as DeclaredViolation).steps) && (v as DeclaredViolation).steps! >= 0)) &&
        ((v as DeclaredViolation).message === undefined || typeof (v as DeclaredViolation).message === "string" || (v as DeclaredViolation).message instanceof RegExp);
      if (!ok) throw new SpecError(`${where}: violated "${name}" must be true or { steps?: a whole number, message?: a string or RegExp }`);
    }
    return e as Entry;
  });
}

function matches(e: Entry, params: Record<string, unknown>): boolean {
  return Object.entries(e.when).every(([k, v]) => JSON.stringify(params[k]) === JSON.stringify(v));
}

/** The declaration for one run: every entry matching it, merged. */
function forRun(spec: Spec, entries: Entry[], params: Record<string, unknown>, properties: string[]): RunExpectation {
  const out: RunExpectation = new Map();
  entries.forEach((e, i) => {
    if (!matches(e, params)) return;
    for (const [name, v] of Object.entries(e.violated)) {
      if (!properties.includes(name)) {
        throw new SpecError(`${label(spec, i, e)}: declares "${name}" violated, but the run ${show(params)} has no such property; its properties are ${properties.join(", ")}`);
      }
      if (out.has(name)) throw new SpecError(`${label(spec, i, e)}: "${name}" is declared by another entry matching the same run ${show(params)}; declare it once`);
      out.set(name, v === true ? {} : v);
    }
  });
  return out;
}

const validated = new WeakSet<Spec>();

/**
 * The spec's declaration for the run with these (resolved) parameters, or undefined when the
 * spec declares none. The first call for a spec also checks the declaration against every run
 * of its designs and configurations (`runs`): property names, and that each entry matches one.
 */
export function expectationFor(
  spec: Spec,
  params: Record<string, unknown>,
  runs: () => Record<string, unknown>[],
  propertiesOf: (params: Record<string, unknown>) => string[],
): RunExpectation | undefined {
  if (spec.expected === undefined) return undefined;
  if (!validated.has(spec)) {
    const used = new Set<number>();
    let last: Entry[] = [];
    for (const r of runs()) {
      last = entriesOf(spec, r);
      forRun(spec, last, r, propertiesOf(r));
      last.forEach((e, i) => matches(e, r) && used.add(i));
    }
    const unused = last.findIndex((_, i) => !used.has(i));
    if (unused >= 0) {
      throw new SpecError(`${label(spec, unused, last[unused]!)}: matches no run of the spec's designs and configurations; check the parameter values in "when"`);
    }
    validated.add(spec);
  }
  return forRun(spec, entriesOf(spec, params), params, propertiesOf(params));
}

const stepsText = (n: number) => `${n} step${n === 1 ? "" : "s"}`;

function declaredText(d: DeclaredViolation): string {
  const m = d.message === undefined ? "" : d.message instanceof RegExp ? ` with a message matching ${d.message}` : ` with a message containing ${JSON.stringify(d.message)}`;
  return `${d.steps !== undefined ? ` in ${stepsText(d.steps)}` : ""}${m}`;
}

/** What was found for a property, in the words of a difference. */
function foundText(p: PropertyResult): string {
  const n = p.trace ? ` in ${stepsText(p.trace.length)}` : "";
  if (p.status === "violated") return `violated${n}`;
  if (p.status === "unknown") return "not decided (search incomplete)";
  if (p.kind === "reachable") return `witness ${p.status}${n}${p.failed ? ` (expected ${p.expect ?? "reachable"})` : ", as its expect says"}`;
  return "holds";
}

/**
 * Compares a run's properties with its declaration: marks each property's `expected` and
 * says what differs. A property merely unknown (incomplete search) never makes it "changed".
 * `atLeastSteps` (a simulation, whose traces need not be the shortest): a trace longer than
 * the declared steps is as declared, a shorter one still differs.
 */
export function judge(properties: PropertyResult[], declared: RunExpectation, opts: { atLeastSteps?: boolean } = {}): Expectation {
  const differences: string[] = [];
  let changed = false;
  for (const p of properties) {
    const d = declared.get(p.name);
    if (!d) {
      if (p.failed) {
        differences.push(`${p.name}: expected to hold, ${foundText(p)}`);
        p.expected = false;
        changed = true;
      }
      continue;
    }
    const want = `expected violated${declaredText(d)}`;
    if (p.status === "unknown") {
      differences.push(`${p.name}: ${want}, not decided (search incomplete)`);
      continue;
    }
    if (!p.failed) {
      differences.push(`${p.name}: ${want}, ${foundText(p)}`);
      p.expected = false;
      changed = true;
      continue;
    }
    const msg = p.message ?? "";
    const len = p.trace?.length;
    const stepsDiffer = d.steps !== undefined && (opts.atLeastSteps && len !== undefined ? len < d.steps : len !== d.steps);
    const messageDiffers = d.message !== undefined && !(d.message instanceof RegExp ? ((d.message.lastIndex = 0), d.message.test(msg)) : msg.includes(d.message));
    if (stepsDiffer || messageDiffers) {
      differences.push(`${p.name}: ${want}, found ${foundText(p)}${messageDiffers ? `: ${JSON.stringify(msg)}` : ""}`);
      p.expected = false;
      changed = true;
    } else {
      p.expected = true;
    }
  }
  return {
    status: changed ? "changed" : "as-expected",
    declared: [...declared].map(([name, d]) => `${name}${declaredText(d)}`),
    differences,
  };
}
