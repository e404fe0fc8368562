// The state codec: random schemas and values, checked against plain-object semantics.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { z } from "zod";
import { compileCodec, schemaToNode } from "../checker/codec.ts";
import { SpecError } from "../checker/spec.ts";
import refpin from "../specs/conformance/refpin.ts";
import { fileSchema } from "../specs/kernel/file.ts";
import { moduleSchema } from "../specs/kernel/module.ts";
import { refcountSchema } from "../specs/kernel/refcount.ts";
import { lockSchema } from "../specs/kernel/lock.ts";

// A schema description, from which both the zod schema and the expected layout follow.
type Desc =
  | { k: "bool" }
  | { k: "int"; min: number; max: number }
  | { k: "enum"; values: string[] }
  | { k: "obj"; fields: [string, Desc][] }
  | { k: "arr"; len: number; el: Desc };

const SPAN = 2 ** 30;

const leafArb: fc.Arbitrary<Desc> = fc.oneof(
  fc.constant<Desc>({ k: "bool" }),
  // Small ranges (often around negative numbers) and wide ones, up to the 2^30 limit.
  fc
    .tuple(fc.integer({ min: -5, max: 5 }), fc.integer({ min: 1, max: 9 }))
    .map(([min, n]): Desc => ({ k: "int", min, max: min + n - 1 })),
  fc
    .tuple(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), fc.integer({ min: 1, max: SPAN }))
    .map(([min, n]): Desc => ({ k: "int", min, max: min + n - 1 })),
  fc
    .uniqueArray(fc.constantFrom("none", "live", "dying", "freed", "x", "Y_2"), { minLength: 1, maxLength: 5 })
    .map((values): Desc => ({ k: "enum", values })),
);

const fieldName = fc.constantFrom("a", "b", "count", "state", "gen", "x1", "_y", "$z", "pc");

const descArb = fc.letrec<{ node: Desc; obj: Desc; arr: Desc }>((tie) => ({
  node: fc.oneof({ depthSize: "small", withCrossShrink: true }, leafArb, tie("obj"), tie("arr")),
  obj: fc
    .uniqueArray(fc.tuple(fieldName, tie("node")), { minLength: 1, maxLength: 4, selector: (t) => t[0] })
    .map((fields): Desc => ({ k: "obj", fields })),
  arr: fc.record({ k: fc.constant("arr" as const), len: fc.integer({ min: 1, max: 3 }), el: tie("node") }),
})).obj;

function zodOf(d: Desc): z.ZodType {
  switch (d.k) {
    case "bool":
      return z.boolean();
    case "int":
      return z.number().int().min(d.min).max(d.max);
    case "enum":
      return z.enum(d.values as [string, ...string[]]);
    case "obj":
      return z.object(Object.fromEntries(d.fields.map(([k, f]) => [k, zodOf(f)])));
    case "arr":
      return z.array(zodOf(d.el)).length(d.len);
  }
}

function valueArb(d: Desc): fc.Arbitrary<unknown> {
  switch (d.k) {
    case "bool":
      return fc.boolean();
    case "int":
      return fc.oneof(fc.constantFrom(d.min, d.max), fc.integer({ min: d.min, max: d.max }));
    case "enum":
      return fc.constantFrom(...d.values);
    case "obj":
      return fc.record(Object.fromEntries(d.fields.map(([k, f]) => [k, valueArb(f)])), { noNullPrototype: true });
    case "arr":
      return fc.array(valueArb(d.el), { minLength: d.len, maxLength: d.len });
  }
}

type Seg = string | number;
interface Place {
  path: Seg[];
  desc: Desc;
  /** The generated views have a setter here (object fields, elements of leaf arrays). */
  settable: boolean;
}

const isLeaf = (d: Desc) => d.k !== "obj" && d.k !== "arr";

function places(d: Desc, path: Seg[] = [], out: Place[] = []): Place[] {
  if (d.k === "obj") {
    for (const [k, f] of d.fields) {
      out.push({ path: [...path, k], desc: f, settable: true });
      places(f, [...path, k], out);
    }
  } else if (d.k === "arr") {
    for (let i = 0; i < d.len; i++) {
      out.push({ path: [...path, i], desc: d.el, settable: isLeaf(d.el) });
      places(d.el, [...path, i], out);
    }
  }
  return out;
}

const pathText = (p: Seg[]) => p.map((s, i) => (typeof s === "number" ? `[${s}]` : i === 0 ? s : `.${s}`)).join("");

function getAt(o: any, p: Seg[]): any {
  for (const s of p) o = o[s];
  return o;
}
function setAt(o: any, p: Seg[], v: unknown): void {
  getAt(o, p.slice(0, -1))[p[p.length - 1]] = v;
}

function leafBits(d: Desc): number {
  const n = d.k === "bool" ? 2 : d.k === "int" ? d.max - d.min + 1 : d.k === "enum" ? d.values.length : 0;
  let b = 0;
  while (2 ** b < n) b++;
  return b;
}
function leaves(d: Desc, out: Desc[] = []): Desc[] {
  if (d.k === "obj") d.fields.forEach(([, f]) => leaves(f, out));
  else if (d.k === "arr") for (let i = 0; i < d.len; i++) leaves(d.el, out);
  else out.push(d);
  return out;
}
/** Words the documented layout needs: leaves in field order, none straddling a word. */
function expectedWords(d: Desc): number {
  let words = 0, used = 32;
  for (const l of leaves(d)) {
    const b = leafBits(l);
    if (b === 0) continue;
    if (used + b > 32) (words++, (used = 0));
    used += b;
  }
  return Math.max(1, words);
}

function fresh(d: Desc) {
  const codec = compileCodec(zodOf(d));
  const buf = new Uint32Array(codec.words);
  const ctx = { ro: false };
  return { codec, buf, ctx, view: codec.view(buf, ctx) };
}

const schemaAndValue = descArb.chain((d) => fc.tuple(fc.constant(d), valueArb(d)));

test("codec: assign then read round-trips, layout is as documented", () => {
  fc.assert(
    fc.property(schemaAndValue, ([d, v]) => {
      assert.ok(zodOf(d).safeParse(v).success);
      const { codec, buf, view } = fresh(d);
      codec.assign(view, v);
      assert.deepEqual(codec.read(view), v);
      // The state lives in the words alone: a new view over a copy reads the same.
      const copy = Uint32Array.from(buf);
      assert.deepEqual(codec.read(codec.view(copy, { ro: true })), v);
      const bits = leaves(d).reduce((s, l) => s + leafBits(l), 0);
      assert.equal(codec.bits, bits);
      assert.equal(codec.words, expectedWords(d));
      // Unused high bits of the last word stay zero (exact visited keys rely on it).
      if (codec.lastWordBits > 0 && codec.lastWordBits < 32) assert.equal(buf[codec.words - 1] >>> codec.lastWordBits, 0);
    }),
    { numRuns: 300 },
  );
});

// A schema, a value, one settable place in it and a new value for that place.
const writeArb = schemaAndValue.chain(([d, v]) => {
  const ps = places(d).filter((p) => p.settable);
  return fc
    .integer({ min: 0, max: ps.length - 1 })
    .chain((i) => fc.tuple(fc.constant(d), fc.constant(v), fc.constant(ps[i]), valueArb(ps[i].desc)));
});

test("codec: writing one field (leaf or whole sub-object/array) changes that field only", () => {
  fc.assert(
    fc.property(writeArb, ([d, v, place, x]) => {
      const { codec, view } = fresh(d);
      codec.assign(view, v);
      setAt(view, place.path, x);
      const want = structuredClone(v);
      setAt(want, place.path, structuredClone(x));
      assert.deepEqual(codec.read(view), want);
      assert.deepEqual(structuredClone(getAt(codec.read(view), place.path)), x);
    }),
    { numRuns: 300 },
  );
});

function badValues(d: Desc): unknown[] {
  switch (d.k) {
    case "bool":
      return [0, 1, "true", null, undefined];
    case "int":
      return [d.min - 1, d.max + 1, d.min + 0.5, String(d.min), NaN, true, null, undefined];
    case "enum":
      return ["not-a-value", 0, null, undefined, d.values[0].toUpperCase() + "!"];
    case "obj":
      return [5, null, "x"];
    case "arr":
      return [[], null, 3, new Array(d.len + 1).fill(null)];
  }
}

const badWriteArb = schemaAndValue.chain(([d, v]) => {
  const ps = places(d).filter((p) => p.settable);
  return fc
    .integer({ min: 0, max: ps.length - 1 })
    .chain((i) => fc.tuple(fc.constant(d), fc.constant(v), fc.constant(ps[i]), fc.constantFrom(...badValues(ps[i].desc))));
});

function throwsSpecErrorNaming(fn: () => void, path: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SpecError, `expected a SpecError, got ${String(e)}`);
    assert.ok(e.message.includes(path), `"${e.message}" should name ${path}`);
    return true;
  });
}

test("codec: out-of-range and wrong-type writes throw a SpecError naming the field path", () => {
  fc.assert(
    fc.property(badWriteArb, ([d, v, place, bad]) => {
      const { codec, view } = fresh(d);
      codec.assign(view, v);
      const leaf = isLeaf(place.desc);
      // A bad sub-object is reported at the leaf or array inside it that does not fit.
      throwsSpecErrorNaming(() => setAt(view, place.path, bad), leaf ? pathText(place.path) : pathText(place.path.slice(0, 1)));
      // A rejected leaf write leaves the state untouched.
      if (leaf) assert.deepEqual(codec.read(view), v);
    }),
    { numRuns: 300 },
  );
});

test("codec: read-only views (guards, properties) reject every write, naming the path", () => {
  fc.assert(
    fc.property(writeArb, ([d, v, place, x]) => {
      const { codec, view, ctx } = fresh(d);
      codec.assign(view, v);
      ctx.ro = true;
      throwsSpecErrorNaming(() => setAt(view, place.path, x), pathText(place.path));
      assert.deepEqual(codec.read(view), v);
    }),
    { numRuns: 200 },
  );
});

test("codec: a bad whole-array write names the array", () => {
  const d: Desc = {
    k: "obj",
    fields: [
      ["xs", { k: "arr", len: 2, el: { k: "bool" } }],
      ["recs", { k: "arr", len: 2, el: { k: "obj", fields: [["a", { k: "bool" }]] } }],
      ["inner", { k: "obj", fields: [["ys", { k: "arr", len: 2, el: { k: "int", min: 0, max: 3 } }]] }],
    ],
  };
  const { view } = fresh(d);
  throwsSpecErrorNaming(() => (view.xs = [true]), "xs");
  throwsSpecErrorNaming(() => (view.recs = [{ a: true }]), "recs");
  throwsSpecErrorNaming(() => (view.inner = { ys: [1, 2, 3] }), "inner.ys");
  throwsSpecErrorNaming(() => (view.inner.ys = 7), "inner.ys");
});

test("codec: RefPin and kernel schemas pack into the expected number of words", () => {
  // RefPin: 7 globals (11-13 bits) then N records of 8 bits, no leaf straddling a word.
  const want = [1, 1, 2, 2, 2, 2, 3];
  for (let N = 1; N <= 7; N++) {
    const codec = compileCodec(refpin.state({ N, variant: "active" }));
    const vmRefBits = Math.ceil(Math.log2(2 * N + 2));
    assert.equal(codec.bits, 1 + vmRefBits + 2 + 2 + 1 + 1 + 2 + 8 * N, `bits for N=${N}`);
    assert.equal(codec.words, want[N - 1], `words for N=${N}`);
  }
  assert.equal(compileCodec(z.object({ f: fileSchema({ maxCount: 3, maxReuse: 1 }) })).bits, 2 + 2 + 1);
  assert.equal(compileCodec(z.object({ m: moduleSchema(2), r: refcountSchema(4), l: lockSchema(2) })).bits, 2 + 2 + 3 + 2);
});

test("codec: unsupported schema types give a SpecError naming the path", () => {
  const cases: [z.ZodType, string, RegExp][] = [
    [z.object({ name: z.string() }), "state.name", /not supported/],
    [z.object({ n: z.number().int() }), "state.n", /bounds/],
    [z.object({ n: z.number().int().min(0) }), "state.n", /bounds/],
    [z.object({ n: z.number().min(0).max(3) }), "state.n", /integers/],
    [z.object({ n: z.number().int().min(0).max(2 ** 30) }), "state.n", /wider than 2\^30/],
    [z.object({ xs: z.array(z.boolean()) }), "state.xs", /fixed length/],
    [z.object({ b: z.boolean().optional() }), "state.b", /not supported/],
    [z.object({ a: z.object({ b: z.object({ c: z.string() }) }) }), "state.a.b.c", /not supported/],
    [z.object({ recs: z.array(z.object({ s: z.boolean().nullable() })).length(2) }), "state.recs[].s", /not supported/],
    [z.object({ e: z.enum({ A: 1, B: 2 }) }), "state.e", /strings/],
  ];
  for (const [schema, path, re] of cases) {
    assert.throws(
      () => compileCodec(schema),
      (e: unknown) => e instanceof SpecError && e.message.includes(path) && re.test(e.message),
      `expected a SpecError naming ${path}`,
    );
  }
  assert.throws(() => compileCodec(z.boolean()), SpecError);
  assert.throws(() => schemaToNode(z.object({ a: z.string() })), SpecError);
  // Field names are checked when the view classes are generated (the first view).
  const viewOf = (schema: z.ZodType) => {
    const c = compileCodec(schema);
    c.view(new Uint32Array(c.words), { ro: false });
  };
  for (const name of ["not-an-id", "$$b", "constructor"]) {
    assert.throws(() => viewOf(z.object({ [name]: z.boolean() })), (e: unknown) => e instanceof SpecError && e.message.includes(name));
  }
  // Names close to the views' internals are ordinary fields.
  const c = compileCodec(z.object({ b: z.boolean(), c: z.number().int().min(0).max(3), p: z.object({ sl: z.boolean(), w0: z.boolean() }) }));
  const v = c.view(new Uint32Array(c.words), { ro: false });
  c.assign(v, { b: true, c: 2, p: { sl: true, w0: false } });
  assert.deepEqual(c.read(v), { b: true, c: 2, p: { sl: true, w0: false } });
});

test("accessors on packed words with the top bit set do not deoptimize for lost precision", () => {
  // Uint32Array elements of 2^31 and more are no small integers: accessors reading them
  // straight deoptimized ("lost precision") and compiled again, once per accessor and per
  // spec function they were inlined into (RefPin N = 6 on one thread: 36 deopts, 17 without).
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
  const r = spawnSync(process.execPath, ["--trace-deopt", "--import", "tsx", "test/support/codec-words-probe.ts"], { cwd: root, encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^sum 14999994$/m);
  const lost = r.stdout.split("\n").filter((l) => l.includes("reason: lost precision"));
  assert.deepEqual(lost, []);
});
