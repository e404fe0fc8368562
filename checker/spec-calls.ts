// Calling spec code: where the search is in it (a slot a supervisor reads, to say which
// guard, effect or property never returned), how the search is asked to stop, and how an
// exception or an impurity of the spec reads as a spec error.
import type { Model } from "./compile.ts";
import { flatten } from "./codec.ts";
import { SpecError } from "./spec.ts";

/** Values of `ExploreOptions.stop[0]`. */
export const STOP_INTERRUPT = 1;
export const STOP_TIMEOUT = 2;

/**
 * Slot of `ExploreOptions.running` where the search records the spec code it is about to
 * run, as kind * RUN_SHIFT + index (an action instance or a property), so a supervisor can
 * say what never returned.
 */
export const RUNNING = 1;
export const RUN_SHIFT = 1 << 20;
export const RUN_GUARD = 1, RUN_EFFECT = 2, RUN_INVARIANT = 3, RUN_WITNESS = 4, RUN_ACTION_PROPERTY = 5, RUN_QUIESCENT = 6, RUN_BUSY = 7;

/** Wraps an exception thrown by spec code into a SpecError naming where it happened. */
export function specFailure(model: Model, where: string, e: unknown): Error {
  const head = `spec "${model.spec.name}", ${where}`;
  if (e instanceof SpecError) return new SpecError(`${head}: ${e.message}`);
  // Arrays of records are frozen arrays: strict code assigning or deleting a whole element gets this.
  const frozen = e instanceof TypeError && /^Cannot (assign to read only|delete) property '(\d+)' of (object )?'?\[object Array\]/.exec(e.message);
  if (frozen) {
    return new SpecError(
      `${head}: element [${frozen[2]}] of a state array of records was ${frozen[1] === "delete" ? "deleted" : "assigned as a whole"}; assign the element's fields instead (e.g. s.dev[i].x = ...)`,
    );
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new SpecError(`${head} threw ${e instanceof Error ? e.name : "an exception"}: ${msg}`);
}

const PURITY_RULE = "Guards, effects and properties must be pure and deterministic: no Math.random, Date, I/O, or module/global state.";

/** The spec computed two different results from the same input. */
export function notDeterministic(model: Model, what: string): SpecError {
  return new SpecError(`spec "${model.spec.name}" is not deterministic: ${what}. ${PURITY_RULE}`);
}

/** ", field x differs (1, then 2)": the first leaf where two packed states differ. */
export function stateDiff(model: Model, a: Uint32Array, b: Uint32Array): string {
  const read = (w: Uint32Array) => flatten(model.codec.read(model.codec.view(w, { ro: true })));
  const x = read(a), y = read(b);
  for (let i = 0; i < x.length; i++) {
    if (x[i][1] !== y[i][1]) return `, field ${x[i][0]} differs (${JSON.stringify(x[i][1])}, then ${JSON.stringify(y[i][1])})`;
  }
  return "";
}

/** A short rendering of a packed state for messages. */
export function showState(model: Model, w: Uint32Array): string {
  const t = JSON.stringify(model.codec.read(model.codec.view(w, { ro: true })));
  return t.length > 300 ? `${t.slice(0, 300)}...` : t;
}

/** An effect's return value: anything but undefined means it built a state instead of mutating the draft. */
export function effectReturned(v: unknown): SpecError {
  const what = typeof v === "object" && v !== null ? (Array.isArray(v) ? "an array" : "an object") : `${typeof v} ${String(v)}`;
  return new SpecError(
    `the effect returned a value (${what}); an effect mutates the draft's fields in place and returns nothing ` +
      "(give an arrow function a block body: (s) => { s.x = s.x + 1; })",
  );
}

/** Evaluates a spec predicate; an exception in it is a spec error naming the predicate. */
export function holds(model: Model, kind: string, name: string, fn: (...args: any[]) => boolean, a: unknown, b?: unknown, c?: unknown): boolean {
  try {
    return fn(a, b, c);
  } catch (e) {
    throw specFailure(model, `${kind} "${name}"`, e);
  }
}
