// The state schema as the codec reads it: the zod schema turned into a tree of nodes (what
// cannot be packed is refused here), the bits a leaf takes, and the errors a view raises
// (a value outside the schema, a write outside an effect, a field or index that is not
// there), worded once for every view.
import { z } from "zod";
import { editDistance } from "./names.ts";
import { SpecError, zod4Schema } from "./spec.ts";

export type Node =
  | { kind: "bool" }
  | { kind: "int"; min: number; max: number }
  | { kind: "enum"; values: readonly string[] }
  | { kind: "object"; fields: readonly (readonly [string, Node])[] }
  | { kind: "array"; length: number; element: Node };

const MAX_INT_SPAN = 2 ** 30;

function bitsFor(values: number): number {
  let b = 0;
  while (2 ** b < values) b++;
  return b;
}

export function leafBits(n: Node): number {
  switch (n.kind) {
    case "bool":
      return 1;
    case "int":
      return bitsFor(n.max - n.min + 1);
    case "enum":
      return bitsFor(n.values.length);
    default:
      throw new Error("not a leaf");
  }
}

/** Reads a zod schema into the codec's node tree, rejecting what cannot be packed. */
export function schemaToNode(schema: z.ZodType, path = "state"): Node {
  zod4Schema(path, schema);
  const def = (schema as any)._zod.def;
  switch (def.type) {
    case "boolean":
      return { kind: "bool" };
    case "number": {
      const s = schema as z.ZodNumber;
      const min = s.minValue, max = s.maxValue;
      if (!s.isInt) throw new SpecError(`${path}: numbers in a state must be integers: add .int()`);
      if (min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max) ||
          Math.abs(min) > Number.MAX_SAFE_INTEGER / 2 || Math.abs(max) > Number.MAX_SAFE_INTEGER / 2) {
        throw new SpecError(`${path}: integers in a state need bounds: add .min(a).max(b)`);
      }
      if (max < min) throw new SpecError(`${path}: empty integer range ${min}..${max}`);
      if (max - min + 1 > MAX_INT_SPAN) throw new SpecError(`${path}: integer range ${min}..${max} is wider than 2^30 values`);
      return { kind: "int", min, max };
    }
    case "enum": {
      const values = Object.values(def.entries as Record<string, string | number>);
      if (!values.every((v) => typeof v === "string")) throw new SpecError(`${path}: enum values must be strings`);
      return { kind: "enum", values: values as string[] };
    }
    case "literal": {
      const values = def.values as unknown[];
      if (values.length === 1 && typeof values[0] === "string") return { kind: "enum", values: values as string[] };
      throw new SpecError(`${path}: only string literals are supported in a state`);
    }
    case "object": {
      const shape = (schema as z.ZodObject<any>).shape as Record<string, z.ZodType>;
      const fields = Object.entries(shape).map(([k, v]) => [k, schemaToNode(v, `${path}.${k}`)] as const);
      return { kind: "object", fields };
    }
    case "array": {
      const len = (def.checks ?? []).map((c: any) => c._zod?.def).find((d: any) => d?.check === "length_equals");
      if (!len) throw new SpecError(`${path}: arrays in a state need a fixed length: add .length(n)`);
      return { kind: "array", length: len.length, element: schemaToNode(def.element, `${path}[]`) };
    }
    default:
      throw new SpecError(
        `${path}: type "${def.type}" is not supported in a state; use booleans, bounded integers, enums, fixed-length arrays and objects`,
      );
  }
}

function describe(n: Node): string {
  switch (n.kind) {
    case "bool":
      return "a boolean";
    case "int":
      return `an integer in ${n.min}..${n.max}`;
    case "enum":
      return `one of ${n.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "object":
      return "an object";
    case "array":
      return `an array of length ${n.length}`;
  }
}

/** Thrown by setters; the explorer adds the spec and action. */
export function badValue(path: string, n: Node, v: unknown): never {
  throw new SpecError(`field ${path} = ${showValue(v)} is outside the state schema: expected ${describe(n)}`);
}

/** A value as a spec author wrote it: NaN and Infinity stay themselves (JSON would print null). */
function showValue(v: unknown): string {
  if (typeof v === "number" && !Number.isFinite(v)) return String(v);
  if (v === undefined) return "undefined";
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

export const READ_ONLY = "was assigned outside an action's effect";

export function readOnly(path: string): never {
  throw new SpecError(`field ${path} ${READ_ONLY} (guards and properties must not change the state)`);
}

export interface ViewContext {
  /** Setters throw while true (guards, properties). */
  ro: boolean;
  /**
   * Footprint tracking (--por only): the leaf indexes (flatten order) read and written
   * are set in these bitsets. Tracked views are separate generated classes, so an
   * untracked view pays nothing for this.
   */
  track?: { r: Uint32Array; w: Uint32Array };
  /**
   * Read masks in packed-word space (guard reuse and the transition cache, see expander.ts):
   * a getter, and a setter that is allowed to run, ORs the bits of its leaf into
   * readMask[word]. Also separate generated classes; the engine clears the array between calls.
   */
  readMask?: Uint32Array;
}

/** " (did you mean freed?)" when a known name is close to `name`. */
export function didYouMean(name: string, known: readonly string[]): string {
  let best: string | undefined, bd = Infinity;
  for (const k of known) {
    const x = k.toLowerCase() === name.toLowerCase() ? 0 : editDistance(name, k);
    if (x < bd) [best, bd] = [k, x];
  }
  return best !== undefined && bd <= Math.max(2, Math.floor(name.length / 3)) && bd < name.length ? `; did you mean ${best}?` : "";
}

// Names a missing property may be asked for without being a spec slip: Object.prototype
// members, promise and JSON probes, util.inspect, and the views' own "$$" internals.
function harmless(prop: string | symbol, target: object): boolean {
  return typeof prop === "symbol" || prop in target || prop === "then" || prop === "toJSON" || prop.startsWith("$$");
}

/**
 * The last link of every view's prototype chain. Known fields are accessors (or array
 * elements) found before it, so only a slip (an unknown name, an index out of range)
 * reaches these traps, in strict and sloppy code alike, at no cost to correct accesses.
 */
export function trap(unknown: (receiver: any, prop: string) => string): object {
  const target = {};
  return new Proxy(target, {
    get(t, prop, receiver) {
      if (harmless(prop, t)) return Reflect.get(t, prop, receiver);
      throw new SpecError(unknown(receiver, prop as string));
    },
    set(t, prop, value, receiver) {
      if (typeof prop === "symbol") return Reflect.defineProperty(receiver, prop, { value, writable: true, configurable: true });
      throw new SpecError(unknown(receiver, prop));
    },
  });
}

/**
 * The prototype of an action's (or a thread call's) parameter object, `subject` naming it:
 * reading a parameter not among `keys` (its \`each\`) is a spec error, not undefined.
 */
export function paramsTrap(subject: string, keys: readonly string[]): object {
  return trap((_r, prop) =>
    keys.length === 0
      ? `reads parameter "${prop}", but ${subject} has no parameters (declare them with \`each: { ${prop}: [...] }\`)`
      : `reads parameter "${prop}", which is not in the \`each\` of ${subject} (its parameters: ${keys.join(", ")})${didYouMean(prop, keys)}`);
}

export const ownPath = (v: object): string => {
  const p = Object.getOwnPropertyDescriptor(v, "$$p")?.value;
  return typeof p === "string" ? p : "";
};

const arrayMutators = new Set(["push", "pop", "shift", "unshift", "splice", "sort", "reverse", "fill", "copyWithin", "length"]);

export function arraySlip(path: string, length: number, prop: string): string {
  const where = path || "state";
  if (/^-?\d+$/.test(prop) || prop === "undefined" || prop === "NaN") {
    return `field ${where}[${prop}] is not in the state schema: ${where} has ${length} element${length === 1 ? "" : "s"} (indexes 0..${length - 1})`;
  }
  if (arrayMutators.has(prop)) {
    return `field ${where}.${prop}: a state array has a fixed length of ${length}; its elements cannot be added, removed or reordered (assign their fields instead)`;
  }
  return `field ${where}.${prop} is not in the state schema: ${where} is an array of ${length} element${length === 1 ? "" : "s"}`;
}

// Array methods that leave the array as it is; the state arrays offer these.
export const readOnlyArrayMethods = [
  "at", "concat", "entries", "every", "filter", "find", "findIndex", "findLast", "findLastIndex", "flat", "flatMap",
  "forEach", "includes", "indexOf", "join", "keys", "lastIndexOf", "map", "reduce", "reduceRight", "slice", "some",
  "toLocaleString", "toString", "values",
];
export const inspectCustom = Symbol.for("nodejs.util.inspect.custom");
