// The visited store's pieces on their own: compact trace links against plain arrays.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { NO_PARENT, TraceLinks } from "../checker/store.ts";

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
