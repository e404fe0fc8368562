// The codec's views: classes generated once per record type (and per kind of view: plain,
// read-masked, tracked), whose getters and setters work on the packed words in place, and
// the plain-object reads and writes of a whole view (initial states, traces, toJSON).
import type { LeafSlot, Plan } from "./codec-layout.ts";
import { leavesOf } from "./codec-layout.ts";
import {
  arraySlip, badValue, didYouMean, inspectCustom, leafBits, ownPath, readOnly, readOnlyArrayMethods, trap, type Node, type ViewContext,
} from "./codec-schema.ts";
import { SpecError } from "./spec.ts";

const ident = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * The view classes of one codec. Each record type gets one class; an instance knows its
 * leaves' word index and shift (`w0`, `s0`, ...), so every element of an array of records
 * shares one class and the spec's property accesses stay monomorphic.
 */
export class Views {
  private readonly classes = new Map<Node, { make: Function }>();
  private readonly trackedClasses = new Map<Node, { make: Function }>();
  private readonly maskedClasses = new Map<Node, { make: Function }>();
  private readonly recordArrayProtos = new Map<Node, object>();
  /** The plan each view was made from. */
  private readonly planOf = new WeakMap<object, Plan>();
  // Setters of object/array fields assign a whole subtree: use that subtree's node.
  private readonly helpers = { badValue, readOnly, signed: (a: Uint32Array | undefined) => (a === undefined ? null : signed(a)), assignValue: (v: any, x: unknown) => this.assignNode(v, x, this.planOf.get(v)!.node) };

  /** A view of the state in `buf` for the subtree `p` (the whole state: the layout's root). */
  instantiate(p: Plan, buf: Uint32Array, ctx: ViewContext): any {
    return this.instantiateOn(p, signed(buf), ctx);
  }

  private instantiateOn(p: Plan, buf: Int32Array, ctx: ViewContext): any {
    const n = p.node;
    let v: any;
    if (n.kind === "array" && (n.element.kind === "object" || n.element.kind === "array")) {
      v = (p.kids as Plan[]).map((k) => this.instantiateOn(k, buf, ctx));
      Object.setPrototypeOf(v, this.recordArrayProto(n));
      Object.freeze(v);
    } else {
      const kids: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(p.kids as Record<string, Plan>)) kids[k] = this.instantiateOn(x, buf, ctx);
      v = this.classFor(n, ctx.track !== undefined ? "tracked" : ctx.readMask !== undefined ? "masked" : "plain").make(buf, ctx, p.path.replace(/^\./, ""), p.slots, kids, p.lis);
    }
    this.planOf.set(v, p);
    return v;
  }

  /** The class for an object or primitive-array node (cached per node identity and kind of view). */
  private classFor(n: Node, variant: "plain" | "tracked" | "masked"): { make: Function } {
    const cache = variant === "tracked" ? this.trackedClasses : variant === "masked" ? this.maskedClasses : this.classes;
    const hit = cache.get(n);
    if (hit) return hit;
    const views = this;
    const tracked = variant === "tracked";
    const masked = variant === "masked";
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
      const own = ["$$b", "$$c", "$$p", "$$m"];
      leaves.forEach(([i]) => own.push(`$$w${i}`, `$$s${i}`, ...(tracked ? [`$$l${i}`] : [])));
      n.fields.forEach(([, f], i) => (f.kind === "object" || f.kind === "array") && own.push(`$$k${i}`));
      src += `class V { ${own.join("; ")};\nconstructor(b, c, p, slots, kids, li) { this.$$b = b; this.$$c = c; this.$$p = p; this.$$m = H.signed(c.readMask);`;
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
      src += "class A { $$b; $$c; $$p; $$m; $$sl; $$li;\nconstructor(b, c, p, slots, kids, li) { this.$$b = b; this.$$c = c; this.$$p = p; this.$$m = H.signed(c.readMask); this.$$sl = slots; this.$$li = li[0]; }\n";
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
    const made = new Function("H", "N", "M", ...Object.keys(consts), src)(this.helpers, n, readOnlyArrayMethods, ...Object.values(consts));
    V = made.V;
    Object.defineProperty(V.prototype, "toJSON", { value(this: any) { return views.readNode(this, n); }, configurable: true });
    Object.defineProperty(V.prototype, inspectCustom, { value(this: any) { return views.readNode(this, n); }, configurable: true });
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
  private recordArrayProto(n: Node & { kind: "array" }): object {
    const hit = this.recordArrayProtos.get(n);
    if (hit) return hit;
    const views = this;
    const proto: object = Object.create(trap((r, prop) => arraySlip(this.planOf.get(r)?.path.replace(/^\./, "") ?? "", n.length, prop)));
    for (const m of readOnlyArrayMethods) Object.defineProperty(proto, m, { value: (Array.prototype as any)[m], writable: true, configurable: true });
    Object.defineProperty(proto, Symbol.iterator, { value: Array.prototype[Symbol.iterator], writable: true, configurable: true });
    Object.defineProperty(proto, "constructor", { value: Array, writable: true, configurable: true });
    Object.defineProperty(proto, inspectCustom, { value(this: any) { return views.readNode(this, n); }, configurable: true });
    this.recordArrayProtos.set(n, proto);
    return proto;
  }

  /** For an array view: each element's leaves, in field order (null for anything else). */
  elementLeaves(target: unknown): LeafSlot[][] | null {
    const p = typeof target === "object" && target !== null ? this.planOf.get(target) : undefined;
    if (!p || p.node.kind !== "array") return null;
    const n = p.node;
    if (n.element.kind === "object" || n.element.kind === "array") return (p.kids as Plan[]).map((k) => leavesOf(k, []));
    const all = leavesOf(p, []);
    return all.map((l) => [l]);
  }

  /** Writes a plain value (already validated) into the view of node `n`. */
  assignNode(view: any, value: any, n: Node): void {
    if (n.kind === "object") for (const [k] of n.fields) {
      const f = n.fields.find((x) => x[0] === k)![1];
      if (f.kind === "object" || f.kind === "array") this.assignNode(view[k], value?.[k], f);
      else view[k] = value?.[k];
    }
    else if (n.kind === "array") {
      if (!Array.isArray(value) || value.length !== n.length) badValue(this.planOf.get(view)?.path.replace(/^\./, "") ?? "array", n, value);
      for (let i = 0; i < n.length; i++) {
        if (n.element.kind === "object" || n.element.kind === "array") this.assignNode(view[i], value[i], n.element);
        else view[i] = value[i];
      }
    }
  }

  /** The view of node `n` read into a plain value. */
  readNode(view: any, n: Node): unknown {
    if (n.kind === "object") {
      const o: Record<string, unknown> = {};
      for (const [k, f] of n.fields) o[k] = f.kind === "object" || f.kind === "array" ? this.readNode(view[k], f) : view[k];
      return o;
    }
    if (n.kind === "array") {
      const a: unknown[] = [];
      for (let i = 0; i < n.length; i++) a.push(n.element.kind === "object" || n.element.kind === "array" ? this.readNode(view[i], n.element) : view[i]);
      return a;
    }
    return view;
  }
}

/**
 * The same words as signed 32-bit integers. The accessors read and write packed words through
 * these: a Uint32Array element of 2^31 or more is no small integer, and optimized code that
 * had only seen small ones deoptimizes on it ("lost precision"), once per accessor and per
 * spec function it was inlined into, then compiles again.
 */
function signed(a: Uint32Array): Int32Array {
  return new Int32Array(a.buffer, a.byteOffset, a.length);
}

/** Tracking code for a leaf accessor: sets bit `li` of the read or write set. */
function track(which: "r" | "w", li: string | undefined): string {
  return li === undefined ? "" : `{ const t = this.$$c.track.${which}, l = ${li}; t[l >>> 5] |= 1 << (l & 31); } `;
}

/** Mask tracking code for a leaf accessor: ORs the leaf's bits into readMask[word]. */
function readMask(f: Node, w: string, s: string): string {
  const bits = leafBits(f);
  return bits === 0 ? "" : `this.$$m[${w}] |= ${(2 ** bits - 1) >>> 0} << ${s}; `;
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
