// Assertions on model verdicts shared by the model tests.
import assert from "node:assert/strict";
import type { Verdict } from "../../checker/verdict.ts";

export type PropertyResult = Verdict["properties"][number];

export function prop(v: Verdict, name: string): PropertyResult {
  const p = v.properties.find((x) => x.name === name);
  assert.ok(p, `${v.spec} [${v.design}]: no property ${name}`);
  return p;
}

/** The trace's action names, without the initial state. */
export function actionNames(p: PropertyResult): string[] {
  assert.ok(p.trace, `${p.name}: no trace`);
  return p.trace.steps.slice(1).map((s) => String(s.action));
}

/** The trace's actions with their parameter values, e.g. "FileAdd(0)". */
export function actionLabels(p: PropertyResult): string[] {
  assert.ok(p.trace, `${p.name}: no trace`);
  return p.trace.steps.slice(1).map((s) => {
    const args = Object.values(s.params);
    return args.length ? `${s.action}(${args.join(",")})` : String(s.action);
  });
}

export interface Violation {
  property: string;
  /** Trace length (default: the length of `actions`). */
  length?: number;
  /** The whole trace, when it is short enough to be unambiguous. */
  actions?: string[];
  /** Actions the trace must contain, and the one it must end with. */
  includes?: string[];
  last?: string;
  message?: RegExp;
}

/**
 * The exact set of failed properties on a complete search, each violation with its
 * shortest trace. `labels`: compare actions with their parameters ("FileAdd(0)").
 */
export function expectVerdict(v: Verdict, violations: Violation[], opts: { labels?: boolean } = {}): void {
  const where = `${v.spec} [${JSON.stringify(v.params)}]`;
  assert.equal(v.complete, true, `${where}: search incomplete`);
  const failed = v.properties.filter((p) => p.failed).map((p) => p.name).sort();
  assert.deepEqual(failed, violations.map((x) => x.property).sort(), `${where}: failed properties`);
  assert.equal(v.outcome, violations.length ? "fail" : "pass", `${where}: outcome`);
  for (const x of violations) {
    const p = prop(v, x.property);
    const acts = opts.labels ? actionLabels(p) : actionNames(p);
    assert.equal(p.status, "violated", `${where}: ${x.property}`);
    assert.equal(p.trace?.length, x.length ?? x.actions?.length, `${where}: ${x.property} trace ${acts.join(" · ")}`);
    if (x.actions) assert.deepEqual(acts, x.actions, `${where}: ${x.property} trace`);
    for (const a of x.includes ?? []) assert.ok(acts.includes(a), `${where}: ${x.property} trace lacks ${a}: ${acts.join(" · ")}`);
    if (x.last) assert.equal(acts.at(-1), x.last, `${where}: ${x.property} last step`);
    if (x.message) assert.match(p.message ?? "", x.message, `${where}: ${x.property} message`);
  }
}
