// The least-interleaved shortest counterexample, against a brute-force enumeration of every
// shortest trace on random specs.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { z } from "zod";
import { check, defineSpec, Fault } from "../checker/index.ts";

const K = 8;

/** A random graph on states 0..K-1: action i moves s to table[i][s] (-1: disabled), run by thread threads[i]. */
function graphSpec(table: number[][], threads: number[], target: number, fault: boolean) {
  return defineSpec({
    name: "tmp/random-graph",
    params: z.object({}),
    state: () => z.object({ n: z.number().int().min(0).max(K - 1) }),
    init: () => ({ n: 0 }),
    actions: () =>
      Object.fromEntries(
        table.map((row, i) => [
          `A${i}`,
          {
            thread: `t${threads[i]}`,
            when: (s: { n: number }) => row[s.n] >= 0,
            then: (s: { n: number }) => {
              if (fault && row[s.n] === target) throw new Fault("boom");
              s.n = row[s.n];
            },
          },
        ]),
      ),
    invariants: fault ? {} : { notTarget: (s) => s.n !== target },
  });
}

/** Every shortest path 0 -> target by brute force: its length and fewest switches. */
function bruteForce(table: number[][], threads: number[], target: number): { length: number; switches: number } | null {
  let best: { length: number; switches: number } | null = null;
  for (let len = 1; len <= K && !best; len++) {
    const walk = (s: number, depth: number, last: number, sw: number): void => {
      if (depth === len) {
        if (s === target && (!best || sw < best.switches)) best = { length: len, switches: sw };
        return;
      }
      if (s === target) return; // the search stops at a violation
      table.forEach((row, i) => {
        if (row[s] >= 0) walk(row[s], depth + 1, threads[i], sw + (last >= 0 && last !== threads[i] ? 1 : 0));
      });
    };
    walk(0, 0, -1, 0);
  }
  return best;
}

const switches = (steps: { thread?: string; action: string | null }[]) => {
  let n = 0;
  for (let i = 2; i < steps.length; i++) if (steps[i].thread !== steps[i - 1].thread) n++;
  return n;
};

const arbGraph = fc.record({
  table: fc.array(fc.array(fc.integer({ min: -1, max: K - 1 }), { minLength: K, maxLength: K }), { minLength: 2, maxLength: 5 }),
  threads: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 5, maxLength: 5 }),
  target: fc.integer({ min: 1, max: K - 1 }),
  fault: fc.boolean(),
});

test("least-interleaved: the trace is a shortest one with the fewest context switches (random graphs)", () => {
  fc.assert(
    fc.property(arbGraph, ({ table, threads, target, fault }) => {
      const want = bruteForce(table, threads, target);
      const v = check(graphSpec(table, threads, target, fault));
      const p = v.properties.find((x) => x.name === (fault ? "noFault" : "notTarget"))!;
      if (!want) {
        assert.equal(p.status, "holds");
        return;
      }
      assert.equal(p.status, "violated");
      assert.equal(p.trace!.length, want.length, "still a shortest trace");
      assert.equal(switches(p.trace!.steps), want.switches, "the fewest context switches");
    }),
    { numRuns: 300 },
  );
});

test("least-interleaved: ties go to the first trace in search order (deterministic)", () => {
  // A0 and A1 (threads t0, t1) both reach 1 then 2; the search order prefers A0.
  const table = [[1, 2, -1, -1, -1, -1, -1, -1], [1, 2, -1, -1, -1, -1, -1, -1]];
  const v = check(graphSpec(table, [0, 1], 2, false));
  const t = v.properties.find((x) => x.name === "notTarget")!.trace!;
  assert.deepEqual(t.steps.slice(1).map((s) => s.action), ["A0", "A0"]);
});
