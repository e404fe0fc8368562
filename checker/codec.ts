// The state codec, generated once per model from the zod schema.
//
// A state is packed into a few 32-bit words: every leaf (boolean, bounded integer, enum)
// gets a bit field that never straddles a word. Specs read and mutate states through
// *views*: generated classes (one per record type) whose getters and setters work
// directly on the packed words, so an effect never decodes, copies or re-encodes a state.
// Setters carry the TypeOK checks (range, type).
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

/** Bit position of one leaf. */
interface Slot {
  word: number;
  shift: number;
}

class Allocator {
  words = 0;
  used = 32; // bits used in the current word; 32 forces a new word
  total = 0;
  place(bits: number): Slot {
    this.total += bits;
    if (bits === 0) return { word: 0, shift: 0 };
    if (this.used + bits > 32) {
      this.words++;
      this.used = 0;
    }
    const slot = { word: this.words - 1, shift: this.used };
    this.used += bits;
    return slot;
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
function trap(unknown: (receiver: any, prop: string) => string): object {
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

const ownPath = (v: object): string => {
  const p = Object.getOwnPropertyDescriptor(v, "$$p")?.value;
  return typeof p === "string" ? p : "";
};

const arrayMutators = new Set(["push", "pop", "shift", "unshift", "splice", "sort", "reverse", "fill", "copyWithin", "length"]);

function arraySlip(path: string, length: number, prop: string): string {
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
const readOnlyArrayMethods = [
  "at", "concat", "entries", "every", "filter", "find", "findIndex", "findLast", "findLastIndex", "flat", "flatMap",
  "forEach", "includes", "indexOf", "join", "keys", "lastIndexOf", "map", "reduce", "reduceRight", "slice", "some",
  "toLocaleString", "toString", "values",
];
const inspectCustom = Symbol.for("nodejs.util.inspect.custom");

export interface Codec {
  node: Node;
  /** Words per packed state. */
  words: number;
  /** Bits actually used. */
  bits: number;
  /** A view tree over `buf` (which must have at least `words` entries). */
  view(buf: Uint32Array, ctx: ViewContext): any;
  /** Writes a plain object (already validated) into a view. */
  assign(view: any, value: unknown): void;
  /** Reads a view into a plain object. */
  read(view: any): Record<string, unknown>;
  /** Bits used in the last word (the rest are always zero). */
  lastWordBits: number;
  /** Number of leaves (the bit indexes of `ViewContext.track`, in `flatten` order). */
  leaves: number;
  /**
   * For an array view of this codec: each element's leaves (word, shift, mask), in field
   * order. Null when `target` is not an array view. Used by symmetry reduction.
   */
  elementLeaves(target: unknown): LeafSlot[][] | null;
}

export interface LeafSlot {
  word: number;
  shift: number;
  mask: number;
}

const ident = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * Generates the view classes. Each record type gets one class; an instance knows its
 * leaves' word index and shift (`w0`, `s0`, ...), so every element of an array of records
 * shares one class and the spec's property accesses stay monomorphic.
 */
export function compileCodec(schema: z.ZodType): Codec {
  const node = schemaToNode(schema);
  if (node.kind !== "object") throw new SpecError("state: the state schema must be a z.object(...)");
  const alloc = new Allocator();
  const classes = new Map<Node, { make: Function }>();
  const trackedClasses = new Map<Node, { make: Function }>();
  const maskedClasses = new Map<Node, { make: Function }>();
  const recordArrayProtos = new Map<Node, object>();
  // Setters of object/array fields assign a whole subtree: use that subtree's node.
  const helpers = { badValue, readOnly, assignValue: (v: any, x: unknown) => assignNode(v, x, planOf.get(v)!.node) };

  // Build the class for an object or primitive-array node (cached per node identity and
  // tracking variant).
  function classFor(n: Node, variant: "plain" | "tracked" | "masked"): { make: Function } {
    const cache = variant === "tracked" ? trackedClasses : variant === "masked" ? maskedClasses : classes;
    const tracked = variant === "tracked";
    const masked = variant === "masked";
    const hit = cache.get(n);
    if (hit) return hit;
    let src = "";
    let V: { prototype: object };
    if (n.kind === "object") {
      for (const [name] of n.fields) {
        if (!ident.test(name)) throw new SpecError(`state: field name "${name}" is not a valid identifier`);
        // The generated views keep their internals in "$$"-prefixed properties.
        if (name.startsWith("$$") || name === "constructor") throw new SpecError(`state: field name "${name}" is reserved`);
      }
      const leaves = n.fields.map(([, f], i) => [i, f] as const).filter(([, f]) => f.kind !== "object" && f.kind !== "array");
      // Class fields define the internals as own properties (never reaching the trap).
      const own = ["$$b", "$$c", "$$p"];
      leaves.forEach(([i]) => own.push(`$$w${i}`, `$$s${i}`, ...(tracked ? [`$$l${i}`] : [])));
      n.fields.forEach(([, f], i) => (f.kind === "object" || f.kind === "array") && own.push(`$$k${i}`));
      src += `class V { ${own.join("; ")};\nconstructor(b, c, p, slots, kids, li) { this.$$b = b; this.$$c = c; this.$$p = p;`;
      leaves.forEach(([i], j) => (src += ` this.$$w${i} = slots[${2 * j}]; this.$$s${i} = slots[${2 * j + 1}];${tracked ? ` this.$$l${i} = li[${j}];` : ""}`));
      n.fields.forEach(([name, f], i) => {
        if (f.kind === "object" || f.kind === "array") src += ` this.$$k${i} = kids[${JSON.stringify(name)}];`;
      });
      src += " }\n";
      n.fields.forEach(([name, f], i) => {
        const path = `(this.$$p ? this.$$p + ${JSON.stringify("." + name)} : ${JSON.stringify(name)})`;
        if (f.kind === "object" || f.kind === "array") {
          src += `get ${name}() { return this.$$k${i}; }\n`;
          src += `set ${name}(v) { if (this.$$c.ro) H.readOnly(${path}); H.assignValue(this.$$k${i}, v); }\n`;
        } else {
          src += leafAccessors(name, f, `this.$$w${i}`, `this.$$s${i}`, path, i, tracked ? `this.$$l${i}` : undefined, masked);
        }
      });
      src += "}\n";
      src += "return { V, make: (b, c, p, slots, kids, li) => new V(b, c, p, slots, kids, li) };";
    } else if (n.kind === "array") {
      // Array of leaves: indexed accessors on the prototype.
      src += "class A { $$b; $$c; $$p; $$sl; $$li;\nconstructor(b, c, p, slots, kids, li) { this.$$b = b; this.$$c = c; this.$$p = p; this.$$sl = slots; this.$$li = li[0]; }\n";
      src += `get length() { return ${n.length}; }\n`;
      src += "*[Symbol.iterator]() { for (let i = 0; i < this.length; i++) yield this[i]; }\n";
      src += "}\n";
      for (let i = 0; i < n.length; i++) {
        const li = tracked ? `this.$$li + ${i}` : undefined;
        src += `Object.defineProperty(A.prototype, ${i}, { get() { const w = this.$$sl[${2 * i}], s = this.$$sl[${2 * i + 1}]; ${track("r", li)}${masked ? readMask(n.element, "w", "s") : ""}${leafGet(n.element, "w", "s", "E")} },`;
        src += ` set(v) { if (this.$$c.ro) H.readOnly(this.$$p + "[${i}]"); const w = this.$$sl[${2 * i}], s = this.$$sl[${2 * i + 1}]; ${track("w", li)}${masked ? readMask(n.element, "w", "s") : ""}${leafSet(n.element, "w", "s", `this.$$p + "[${i}]"`, "E")} } });\n`;
      }
      src += "for (const m of M) A.prototype[m] = function (...a) { return Array.from(this)[m](...a); };\n";
      src += "return { V: A, make: (b, c, p, slots, kids, li) => new A(b, c, p, slots, kids, li) };";
    } else throw new Error("class of a leaf");
    const consts: Record<string, unknown> = {};
    if (n.kind === "object") n.fields.forEach(([, f], i) => (consts[`E${i}`] = enumOf(f)));
    else if (n.kind === "array") consts.E = enumOf(n.element);
    const made = new Function("H", "N", "M", ...Object.keys(consts), src)(helpers, n, readOnlyArrayMethods, ...Object.values(consts));
    V = made.V;
    Object.defineProperty(V.prototype, "toJSON", { value(this: any) { return readNode(this, n); }, configurable: true });
    Object.defineProperty(V.prototype, inspectCustom, { value(this: any) { return readNode(this, n); }, configurable: true });
    if (n.kind === "object") {
      const names = n.fields.map(([k]) => k);
      Object.setPrototypeOf(V.prototype, trap((r, prop) => {
        const p = ownPath(r);
        return `field ${p ? `${p}.` : ""}${prop} is not in the state schema (fields${p ? ` of ${p}` : ""}: ${names.join(", ")})${didYouMean(prop, names)}`;
      }));
    } else {
      Object.setPrototypeOf(V.prototype, trap((r, prop) => arraySlip(ownPath(r), n.length, prop)));
    }
    const c = { make: made.make };
    cache.set(n, c);
    return c;
  }

  // An array of records is a frozen plain array (fast indexed reads) whose prototype
  // offers the read-only Array methods and ends in the trap, so an index out of range or
  // a mutator is a spec error.
  function recordArrayProto(n: Node & { kind: "array" }): object {
    const hit = recordArrayProtos.get(n);
    if (hit) return hit;
    const proto: object = Object.create(trap((r, prop) => arraySlip(planOf.get(r)?.path.replace(/^\./, "") ?? "", n.length, prop)));
    for (const m of readOnlyArrayMethods) Object.defineProperty(proto, m, { value: (Array.prototype as any)[m], writable: true, configurable: true });
    Object.defineProperty(proto, Symbol.iterator, { value: Array.prototype[Symbol.iterator], writable: true, configurable: true });
    Object.defineProperty(proto, "constructor", { value: Array, writable: true, configurable: true });
    Object.defineProperty(proto, inspectCustom, { value(this: any) { return readNode(this, n); }, configurable: true });
    recordArrayProtos.set(n, proto);
    return proto;
  }

  /** Tracking code for a leaf accessor: sets bit `li` of the read or write set. */
  function track(which: "r" | "w", li: string | undefined): string {
    return li === undefined ? "" : `{ const t = this.$$c.track.${which}, l = ${li}; t[l >>> 5] |= 1 << (l & 31); } `;
  }

  /** Mask tracking code for a leaf accessor: ORs the leaf's bits into readMask[word]. */
  function readMask(f: Node, w: string, s: string): string {
    const bits = leafBits(f);
    return bits === 0 ? "" : `this.$$c.readMask[${w}] |= ${(2 ** bits - 1) >>> 0} << ${s}; `;
  }

  function enumOf(n: Node) {
    if (n.kind !== "enum") return undefined;
    return { values: n.values, index: new Map(n.values.map((v, i) => [v, i])), node: n };
  }

  function leafGet(f: Node, w: string, s: string, e: string): string {
    const bits = leafBits(f);
    const mask = bits === 0 ? 0 : (2 ** bits - 1) >>> 0;
    const raw = `((this.$$b[${w}] >>> ${s}) & ${mask})`;
    if (f.kind === "bool") return `return ${raw} === 1;`;
    if (f.kind === "int") return `return ${raw} + ${f.min};`;
    if (f.kind === "enum") return `return ${e}.values[${raw}];`;
    throw new Error("leaf");
  }

  function leafSet(f: Node, w: string, s: string, path: string, e: string): string {
    const bits = leafBits(f);
    const mask = bits === 0 ? 0 : (2 ** bits - 1) >>> 0;
    let raw: string;
    let check: string;
    const node = e === "E" ? "N.element" : `N.fields[${e.slice(1)}][1]`;
    if (f.kind === "bool") {
      check = `if (v !== true && v !== false) H.badValue(${path}, ${node}, v);`;
      raw = "(v ? 1 : 0)";
    } else if (f.kind === "int") {
      check = `if (typeof v !== "number" || !(v >= ${f.min} && v <= ${f.max}) || v !== Math.floor(v)) H.badValue(${path}, ${node}, v);`;
      raw = `(v - ${f.min})`;
    } else if (f.kind === "enum") {
      check = `const x = ${e}.index.get(v); if (x === undefined) H.badValue(${path}, ${node}, v);`;
      raw = "x";
    } else throw new Error("leaf");
    if (bits === 0) return check;
    return `${check} const m = ${mask} << ${s}; this.$$b[${w}] = (this.$$b[${w}] & ~m) | ((${raw} << ${s}) & m);`;
  }

  function leafAccessors(name: string, f: Node, w: string, s: string, path: string, i: number, li: string | undefined, masked: boolean): string {
    return (
      `get ${name}() { ${track("r", li)}${masked ? readMask(f, w, s) : ""}${leafGet(f, w, s, `E${i}`)} }\n` +
      `set ${name}(v) { if (this.$$c.ro) H.readOnly(${path}); ${track("w", li)}${masked ? readMask(f, w, s) : ""}${leafSet(f, w, s, path, `E${i}`)} }\n`
    );
  }

  // Layout: walk the tree once, placing leaves in order; remember each instance's slots.
  interface Plan {
    node: Node;
    path: string;
    slots: number[];
    /** Flatten-order index of each own leaf (what por.ts's paths are indexed by). */
    lis: number[];
    kids: Record<string, Plan> | Plan[];
  }
  let leafCount = 0;
  function plan(n: Node, path: string): Plan {
    if (n.kind === "object") {
      const slots: number[] = [];
      const lis: number[] = [];
      const kids: Record<string, Plan> = {};
      for (const [name, f] of n.fields) {
        if (f.kind === "object" || f.kind === "array") kids[name] = plan(f, `${path}.${name}`);
        else {
          const sl = alloc.place(leafBits(f));
          slots.push(sl.word, sl.shift);
          lis.push(leafCount++);
        }
      }
      return { node: n, path, slots, lis, kids };
    }
    if (n.kind === "array") {
      const el = n.element;
      if (el.kind === "object" || el.kind === "array") {
        return { node: n, path, slots: [], lis: [], kids: Array.from({ length: n.length }, (_, i) => plan(el, `${path}[${i}]`)) };
      }
      const slots: number[] = [];
      const lis: number[] = [];
      for (let i = 0; i < n.length; i++) {
        const sl = alloc.place(leafBits(el));
        slots.push(sl.word, sl.shift);
        lis.push(leafCount++);
      }
      return { node: n, path, slots, lis, kids: [] };
    }
    throw new Error("plan of a leaf");
  }
  const rootPlan = plan(node, "");
  const words = Math.max(1, alloc.words);

  const planOf = new WeakMap<object, Plan>();
  function instantiate(p: Plan, buf: Uint32Array, ctx: ViewContext): any {
    const n = p.node;
    let v: any;
    if (n.kind === "array" && (n.element.kind === "object" || n.element.kind === "array")) {
      v = (p.kids as Plan[]).map((k) => instantiate(k, buf, ctx));
      Object.setPrototypeOf(v, recordArrayProto(n));
      Object.freeze(v);
    } else {
      const kids: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(p.kids as Record<string, Plan>)) kids[k] = instantiate(x, buf, ctx);
      v = classFor(n, ctx.track !== undefined ? "tracked" : ctx.readMask !== undefined ? "masked" : "plain").make(buf, ctx, p.path.replace(/^\./, ""), p.slots, kids, p.lis);
    }
    planOf.set(v, p);
    return v;
  }

  // Leaves of a plan subtree in layout order.
  function leavesOf(p: Plan, out: LeafSlot[]): LeafSlot[] {
    const n = p.node;
    const leafNodes: Node[] =
      n.kind === "object"
        ? n.fields.map(([, f]) => f).filter((f) => f.kind !== "object" && f.kind !== "array")
        : n.kind === "array" && n.element.kind !== "object" && n.element.kind !== "array"
          ? Array.from({ length: n.length }, () => n.element)
          : [];
    leafNodes.forEach((f, j) => {
      const bits = leafBits(f);
      out.push({ word: p.slots[2 * j], shift: p.slots[2 * j + 1], mask: bits === 0 ? 0 : (2 ** bits - 1) >>> 0 });
    });
    const kids = Array.isArray(p.kids) ? p.kids : Object.values(p.kids);
    for (const k of kids) leavesOf(k, out);
    return out;
  }

  function elementLeaves(target: unknown): LeafSlot[][] | null {
    const p = typeof target === "object" && target !== null ? planOf.get(target) : undefined;
    if (!p || p.node.kind !== "array") return null;
    const n = p.node;
    if (n.element.kind === "object" || n.element.kind === "array") return (p.kids as Plan[]).map((k) => leavesOf(k, []));
    const all = leavesOf(p, []);
    return all.map((l) => [l]);
  }

  function assign(view: any, value: unknown): void {
    assignNode(view, value, node);
  }
  function assignNode(view: any, value: any, n: Node): void {
    if (n.kind === "object") for (const [k] of n.fields) {
      const f = n.fields.find((x) => x[0] === k)![1];
      if (f.kind === "object" || f.kind === "array") assignNode(view[k], value?.[k], f);
      else view[k] = value?.[k];
    }
    else if (n.kind === "array") {
      if (!Array.isArray(value) || value.length !== n.length) badValue(planOf.get(view)?.path.replace(/^\./, "") ?? "array", n, value);
      for (let i = 0; i < n.length; i++) {
        if (n.element.kind === "object" || n.element.kind === "array") assignNode(view[i], value[i], n.element);
        else view[i] = value[i];
      }
    }
  }

  function read(view: any): Record<string, unknown> {
    return readNode(view, node) as Record<string, unknown>;
  }
  function readNode(view: any, n: Node): unknown {
    if (n.kind === "object") {
      const o: Record<string, unknown> = {};
      for (const [k, f] of n.fields) o[k] = f.kind === "object" || f.kind === "array" ? readNode(view[k], f) : view[k];
      return o;
    }
    if (n.kind === "array") {
      const a: unknown[] = [];
      for (let i = 0; i < n.length; i++) a.push(n.element.kind === "object" || n.element.kind === "array" ? readNode(view[i], n.element) : view[i]);
      return a;
    }
    return view;
  }

  return {
    node,
    words,
    bits: alloc.total,
    view: (buf, ctx) => instantiate(rootPlan, buf, ctx),
    assign,
    read,
    lastWordBits: alloc.words === 0 ? 0 : alloc.used,
    leaves: leafCount,
    elementLeaves,
  };
}

/** The state path of a view ("vmFile", "dev[1]"), or undefined for anything else. */
export function viewPath(v: unknown): string | undefined {
  const p = typeof v === "object" && v !== null ? (v as { $$p?: unknown }).$$p : undefined;
  return typeof p === "string" && p !== "" ? p : undefined;
}

/** Flattens a plain state into [path, leaf value] pairs, in field order. */
export function flatten(value: unknown, path = "", out: [string, unknown][] = []): [string, unknown][] {
  if (Array.isArray(value)) value.forEach((v, i) => flatten(v, `${path}[${i}]`, out));
  else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) flatten(v, path ? `${path}.${k}` : k, out);
  } else out.push([path, value]);
  return out;
}
