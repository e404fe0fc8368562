// The visited set's contract (StateStore in checker/store.ts), held against every store the
// search uses. A new store is one more entry in `stores`: it must pass the same property.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { VisitedSet, type StateStore } from "../checker/store.ts";

interface Store {
  name: string;
  /** A fresh store for states of W words whose last word uses lastBits bits. */
  make(W: number, lastBits: number): StateStore;
  /** Around the whole run (a store that needs a global setting). */
  around?<T>(f: () => T): T;
  /** After 150,000 states: the store went the way it is named for. */
  went(v: VisitedSet): boolean;
}

// Tables of 2^17 slots and more are compact here (the search's default is 2^24, too large
// for a test): with up to 150,000 keys a store goes through wide doublings, the change to
// compact slots, and compact doublings.
const COMPACT = 17;
const stores: Store[] = [
  { name: "wide slots only", make: (W, b) => new VisitedSet(W, b), went: (v) => v.growths.copied > 0 && Math.log2(v.bytes / 8) % 1 === 0 },
  { name: "compact, doubling in place", make: (W, b) => new VisitedSet(W, b, 1 << 10, false, COMPACT), went: (v) => v.growths.inPlace > 0 },
  {
    name: "compact, copied as it grows (no address space to reserve)",
    make: (W, b) => new VisitedSet(W, b, 1 << 10, false, COMPACT),
    went: (v) => v.growths.inPlace === 0 && Math.log2(v.bytes / 6) % 1 === 0,
    around: (f) => {
      const reserve = VisitedSet.reserve;
      VisitedSet.reserve = 2 ** 40;
      try {
        return f();
      } finally {
        VisitedSet.reserve = reserve;
      }
    },
  },
  { name: "in shared memory (the parallel search's)", make: (W, b) => new VisitedSet(W, b, 1 << 10, true, COMPACT), went: (v) => v.growths.inPlace > 0 },
  {
    name: "a chunk's short-lived filter (never grows in place)",
    make: (W, b) => new VisitedSet(W, b, 1 << 10, false, COMPACT, false),
    went: (v) => v.growths.inPlace === 0 && Math.log2(v.bytes / 6) % 1 === 0,
  },
];

/** State shapes: exact keys (one word; two with a short last word) and fingerprints. */
const shapes = [
  [1, 32],
  [2, 20],
  [2, 32],
  [3, 7],
] as const;

/** A deterministic stream of states from a seed: new ones, repeats, and one-bit neighbours. */
function* states(seed: number, n: number, W: number, lastBits: number): Generator<Uint32Array> {
  let x = seed | 1;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
  const last = lastBits === 32 ? 0xffffffff : 2 ** lastBits - 1;
  const kept: Uint32Array[] = [];
  for (let i = 0; i < n; i++) {
    const s = new Uint32Array(W);
    if (i % 5 === 0 && kept.length > 0) s.set(kept[rnd() % kept.length]);
    else for (let w = 0; w < W; w++) s[w] = rnd();
    if (i % 13 === 0) s[0] ^= 1 << (rnd() & 31);
    s[W - 1] &= last;
    if (i % 3 === 0) kept.push(s);
    yield s;
  }
}

/** Checks one store against a plain set of keys (and of states, for exact keys). */
function holdsContract(store: StateStore, seed: number, n: number, W: number, lastBits: number): void {
  const keys = new Set<string>();
  const stateOfKey = new Map<string, string>();
  const key = new Uint32Array(2);
  const g = (store as VisitedSet).growths ?? { inPlace: 0, copied: 0, further: 0 };
  const batch = new Uint32Array(64 * 2);
  let j = 0;
  for (const s of states(seed, n, W, lastBits)) {
    store.keyInto(s, 0, key, 0);
    assert.ok(key[0] !== 0 || key[1] !== 0, "a key is never (0, 0)");
    const k = `${key[0]},${key[1]}`;
    if (store.exact) {
      const was = stateOfKey.get(k), str = s.join(",");
      assert.ok(was === undefined || was === str, `exact keys: states ${was} and ${str} share a key`);
      stateOfKey.set(k, str);
    }
    const had = keys.has(k);
    assert.equal(store.has(s, 0), had, `has() on state ${j}`);
    assert.equal(store.hasKey(key[0], key[1]), had, `hasKey() on state ${j}`);
    const grows = store.growsOnNextAdd, growth = store.growthBytes, before = store.bytes;
    const [inPlace0, copied0, further0] = [g.inPlace, g.copied, g.further];
    assert.equal(store.addKey(key[0], key[1]), !had, `addKey() on state ${j}`);
    keys.add(k);
    assert.equal(store.size, keys.size);
    const grew = g.inPlace + g.copied - inPlace0 - copied0;
    if (!had && grows) assert.ok(grew > 0, "growsOnNextAdd said the table would grow");
    // What --max-memory is told a growth allocates is what it allocates, unless a key too far
    // from home in the new table made it larger still (counted apart).
    if (grew === 1 && g.further === further0) {
      const allocated = g.inPlace > inPlace0 ? store.bytes - before : store.bytes;
      assert.equal(allocated, growth, `grew from ${before} to ${store.bytes} bytes, announced ${growth}`);
    }
    // touch() on a batch of keys changes nothing.
    batch[2 * (j % 64)] = key[0];
    batch[2 * (j % 64) + 1] = key[1];
    if (j % 64 === 63) {
      const size = store.size;
      assert.equal(typeof store.touch(batch, 64, 2, 0), "number");
      assert.equal(store.size, size);
    }
    j++;
  }
  for (const k of keys) {
    const [a, b] = k.split(",").map(Number);
    if (!store.hasKey(a, b)) assert.fail(`key ${k} lost through the growths`);
  }
  assert.equal(store.fingerprintBits, store.exact ? 0 : 64);
}

for (const s of stores) {
  test(`store contract: ${s.name}`, () => {
    const run = () => {
      const v = s.make(3, 7) as VisitedSet;
      holdsContract(v, 7, 150_000, 3, 7);
      assert.ok(s.went(v), `not the path the store is named for: ${JSON.stringify(v.growths)}, ${v.bytes} bytes`);
      fc.assert(
        fc.property(fc.integer(), fc.integer({ min: 1, max: 150_000 }), fc.constantFrom(...shapes), (seed, n, [W, lastBits]) => {
          holdsContract(s.make(W, lastBits), seed, n, W, lastBits);
        }),
        { numRuns: 8, examples: [[11, 150_000, [2, 20]]] },
      );
    };
    if (s.around) s.around(run);
    else run();
  });
}

test("store contract: a reader's view of a shared store answers as its owner does", () => {
  for (const [W, lastBits] of shapes) {
    const owner = new VisitedSet(W, lastBits, 1 << 10, true, COMPACT);
    const key = new Uint32Array(2);
    const added: Uint32Array[] = [];
    let i = 0;
    for (const s of states(99, 120_000, W, lastBits)) {
      owner.keyInto(s, 0, key, 0);
      if (i++ % 2 === 0) {
        owner.addKey(key[0], key[1]);
        added.push(s);
      }
    }
    const reader: StateStore = VisitedSet.attach(owner.share());
    for (const s of states(99, 120_000, W, lastBits)) assert.equal(reader.has(s, 0), owner.has(s, 0));
    for (const s of added) assert.ok(reader.has(s, 0));
    assert.equal(reader.exact, owner.exact);
  }
});
