// The visited store's pieces on their own: compact trace links against plain arrays, BFS
// levels in pooled blocks.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { BlockPool, Level, LEVEL_BLOCK_STATES, NO_PARENT, TraceLinks } from "../checker/store.ts";

test("trace links: parents and instances read back as pushed, roots anywhere", () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ root: fc.boolean(), gap: fc.nat({ max: 70 }), via: fc.nat({ max: 300 }) }), { maxLength: 400 }),
      fc.boolean(),
      (steps, narrow) => {
        const parent: number[] = [], via: number[] = [];
        let p = 0;
        for (const s of steps) {
          if (s.root) parent.push(NO_PARENT);
          else {
            p += s.gap;
            parent.push(p);
          }
          via.push(narrow ? s.via & 255 : s.via);
        }
        const t = new TraceLinks(narrow ? 256 : 301);
        parent.forEach((x, i) => t.push(x, via[i]));
        assert.equal(t.n, parent.length);
        for (let i = 0; i < parent.length; i++) {
          assert.equal(t.parentOf(i), parent[i], `parent of ${i}`);
          assert.equal(t.viaOf(i), via[i], `via of ${i}`);
        }
      },
    ),
    { numRuns: 200 },
  );
});

test("trace links: a BFS-sized run costs under 2 bytes per state, and parents may not go back", () => {
  const t = new TraceLinks(40);
  const n = 1 << 20;
  for (let s = 0, p = 0; s < n; s++) {
    if (s === 0) t.push(NO_PARENT, 0);
    else {
      if (s % 3 === 0) p += 2;
      t.push(p, s % 40);
    }
  }
  assert.ok(t.bytes / n < 2, `${t.bytes / n} bytes per state`);
  assert.equal(t.parentOf(n - 1), Math.floor((n - 1) / 3) * 2);
  assert.throws(() => t.push(0, 0), /out of order/);
});

test("levels: states read back in order across blocks, and a level being filled reuses the blocks the expanded one gave back", () => {
  fc.assert(
    fc.property(fc.nat({ max: 3 * LEVEL_BLOCK_STATES }), fc.nat({ max: 3 * LEVEL_BLOCK_STATES }), (n1, n2) => {
      const pool = new BlockPool(3);
      const fill = (l: Level, n: number, tag: number) => {
        for (let i = 0; i < n; i++) {
          const at = l.reserve();
          l.a[at] = tag;
          l.a[at + 1] = i;
          l.a[at + 2] = i ^ tag;
        }
      };
      const read = (l: Level) => {
        const out: number[] = [];
        l.blocks.forEach((b, k) => {
          for (let j = 0; j < l.count(k); j++) out.push(b[3 * j + 1]);
        });
        return out;
      };
      const a = new Level(pool), b = new Level(pool);
      fill(a, n1, 1);
      assert.equal(a.size, n1);
      assert.deepEqual(read(a), Array.from({ length: n1 }, (_, i) => i));
      const blocksOfA = new Set(a.blocks);
      // Expanding a block by block while b fills, as a search does.
      for (let k = 0; k < a.blocks.length; k++) a.release(k);
      fill(b, n2, 2);
      assert.deepEqual(read(b), Array.from({ length: n2 }, (_, i) => i));
      const fresh = b.blocks.filter((x) => !blocksOfA.has(x)).length;
      assert.equal(fresh, Math.max(0, b.blocks.length - blocksOfA.size), "a released block is taken before a new one is made");
      a.clear();
      assert.equal(a.size, 0);
    }),
    { numRuns: 20 },
  );
});

test("visited set: a compact table doubles in place, keeping exactly the keys added, a cluster that wraps round the top included", async () => {
  const { VisitedSet, fmix } = await import("../checker/store.ts");
  // Fingerprint keys (W = 3) given directly: 12 keys whose home is one of the top 8 slots of
  // every table up to 2^24 slots (a cluster that wraps round to slot 0), then 1.7 M spread keys.
  const v = new VisitedSet(3, 5, 1 << 10, false, 17);
  const top = (t: number) => [((t << 24) | 0x00fffff8 | (t & 7)) >>> 0, (0x80000000 | t) >>> 0];
  const spread = (i: number) => [fmix(i), (fmix(i ^ 0x5bd1e995) & 0x7fffffff) | 1];
  const n = 1_700_000;
  for (let t = 0; t < 12; t++) assert.ok(v.addKey(top(t)[0], top(t)[1]));
  for (let i = 0; i < n; i++) {
    const [a, b] = spread(i);
    if (!v.addKey(a, b)) assert.fail(`key ${i} taken as added already`);
  }
  assert.ok(v.growths.inPlace >= 2, JSON.stringify(v.growths));
  assert.equal(v.size, n + 12);
  for (let t = 0; t < 12; t++) assert.ok(v.hasKey(top(t)[0], top(t)[1]), `top key ${t}`);
  for (let i = 0; i < n; i++) {
    const [a, b] = spread(i);
    if (!v.hasKey(a, b)) assert.fail(`key ${i} lost`);
  }
  for (let i = n; i < n + 100_000; i++) {
    const [a, b] = spread(i);
    if (v.hasKey(a, b)) assert.fail(`key ${i} found, never added`);
  }
});

test("visited set: a reader's lookups stop counting once the owner doubles the table in place", async () => {
  const { VisitedSet, fmix } = await import("../checker/store.ts");
  const owner = new VisitedSet(3, 5, 1 << 10, true, 17);
  let i = 0;
  const add = () => owner.addKey(fmix(i), (fmix(~i++) & 0x7fffffff) | 1);
  // Wide tables double into a new buffer, the first compact one (2^17 slots) too.
  assert.equal(owner.growthBytes, 2 * owner.bytes);
  while (owner.growths.copied < 6) add();
  assert.equal(owner.growthBytes, 6 * 2 ** 17);
  while (owner.growths.copied < 7) add();
  const reader = VisitedSet.attach(owner.share());
  assert.ok(reader.hasKey(fmix(0), (fmix(~0) & 0x7fffffff) | 1));
  assert.equal(reader.stable(), true);
  // What a doubling allocates (--max-memory looks at it first): the added half, in place.
  assert.equal(owner.growthBytes, owner.bytes);
  while (owner.growths.inPlace === 0) add();
  assert.equal(reader.stable(), false);
  // A share made after the doubling sees the doubled table.
  const again = VisitedSet.attach(owner.share());
  assert.equal(again.stable(), true);
  for (let j = 0; j < i; j += 97) assert.ok(again.hasKey(fmix(j), (fmix(~j) & 0x7fffffff) | 1), `key ${j}`);
});

test("visited set: the compact threshold a test may set is clamped to 2^17..2^24 slots", async () => {
  const { VisitedSet } = await import("../checker/store.ts");
  const bits = (x: number) => (new VisitedSet(3, 5, 1 << 10, false, x) as unknown as { compactBits: number }).compactBits;
  assert.deepEqual([bits(5), bits(17), bits(20), bits(24), bits(40)], [17, 17, 20, 24, 24]);
});

// The fingerprint's two halves are computed in one loop; each must stay the 32-bit murmur3
// hash its own pass gave (the two-pass definition below), so that every fingerprinted count,
// and the collision estimate printed with it, is what it was.
function murmurPass(buf: Uint32Array, W: number, seed: number): number {
  let h = seed | 0;
  for (let i = 0; i < W; i++) {
    let k = Math.imul(buf[i], 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= W << 2;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

test("fingerprint: each half is the murmur3 hash of a pass of its own, with its seed", async () => {
  const { fingerprint } = await import("../checker/store.ts");
  fc.assert(
    fc.property(fc.array(fc.nat({ max: 0xffffffff }), { minLength: 1, maxLength: 8 }), fc.nat({ max: 3 }), (words, pad) => {
      const buf = new Uint32Array([...Array(pad).fill(7), ...words]);
      const out = new Uint32Array(4);
      fingerprint(buf, pad, words.length, out, 1);
      const own = Uint32Array.from(words);
      assert.deepEqual([out[1], out[2]], [murmurPass(own, words.length, 0x9747b28c), murmurPass(own, words.length, 0x1b873593)]);
    }),
  );
});
