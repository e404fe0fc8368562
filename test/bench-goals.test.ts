// The bench's reading of issue 14's goals (test/bench/goals.ts): from one run's rows and
// SPIN's times, met or not, and "not measured" (never met) when the rows did not run.
import { test } from "node:test";
import assert from "node:assert/strict";
import { goals, type GoalRow, type GoalSpin } from "./bench/goals.ts";

// The rows of the --full run in the README (2026-12-03, SPIN 8.51 s at N = 6, 127.0 s at
// N = 7), rounded as the README prints them.
const run: GoalRow[] = [
  { label: "refpin N=4 --workers 1", status: "ok", seconds: 0.3, statesPerSecond: 83_221 },
  { label: "refpin N=5 --workers 1", status: "ok", seconds: 0.91, statesPerSecond: 258_532 },
  { label: "refpin N=6 --workers 1", status: "ok", seconds: 7.14, statesPerSecond: 314_321 },
  { label: "refpin N=7", status: "ok", seconds: 56.39, rssMB: 517, rssBytesPerState: 25.0, storeBytesPerState: 9.3, traceBytesPerState: 1.4, fingerprintBits: 64, collisionProbability: 1.3e-5 },
  { label: "refpin N=7 --workers 1", status: "ok", seconds: 91.0, statesPerSecond: 238_229, rssBytesPerState: 21.7 },
  { label: "refpin N=7 --workers 2", status: "ok", seconds: 54.52, rssBytesPerState: 24.9 },
  { label: "kvm-vfio/file-pinning devices=3", status: "ok", seed: true },
];
const spin = new Map<number, GoalSpin>([
  [6, { ok: true, seconds: 8.51 }],
  [7, { ok: true, seconds: 127.0 }],
]);

test("bench goals: the README's run meets goals 3 and 5 and the memory part of 2, no other", () => {
  const g = goals(run, spin);
  assert.deepEqual(g.map((x) => [x.goal.slice(0, 2), x.met]), [
    ["1.", false], ["2.", false], ["2.", true], ["2.", false], ["2.", false], ["3.", true], ["4.", false], ["5.", true],
  ]);
  assert.match(g[0].value, /7\.14 s against SPIN's 8\.51 s: 0\.84x/);
  assert.match(g[2].value, /517 MB/);
  assert.match(g[3].value, /91\.00 s \/ 54\.52 s: 1\.67x/);
  assert.match(g[5].value, /9\.3 \+ 1\.4 = 10\.7 B\/state/);
  assert.match(g[6].value, /lowest 26% of highest/);
});

test("bench goals: a run that meets them all says so", () => {
  const fast: GoalRow[] = [
    ...[4, 5, 6, 7].map((n) => ({ label: `refpin N=${n} --workers 1`, status: "ok", seconds: n === 6 ? 1.9 : 30, statesPerSecond: 500_000 + n * 10_000, rssBytesPerState: 20 })),
    { label: "refpin N=7", status: "ok", seconds: 19, rssMB: 590, storeBytesPerState: 9.3, traceBytesPerState: 1.4, fingerprintBits: 64, collisionProbability: 1e-5 },
    { label: "refpin N=7 --workers 2", status: "ok", seconds: 17, rssBytesPerState: 20 },
    { label: "a seed", status: "ok", seed: true },
  ];
  assert.ok(goals(fast, spin).every((x) => x.met === true), JSON.stringify(goals(fast, spin), null, 1));
});

test("bench goals: without --full or without SPIN a goal is not measured, never met", () => {
  const short = run.filter((r) => !r.label.startsWith("refpin N=7"));
  const g = goals(short, spin);
  assert.deepEqual(g.filter((x) => x.met === null).map((x) => x.goal.slice(0, 2)), ["2.", "2.", "2.", "2.", "3.", "4."]);
  assert.match(g.find((x) => x.goal.startsWith("4."))!.value, /no one-thread row at N = 7 \(add --full\)/);
  assert.equal(goals(run, new Map()).find((x) => x.goal.startsWith("1."))!.met, null);
  // A fingerprinted store without its missed-state estimate does not meet goal 3.
  const noEstimate = run.map((r) => (r.label === "refpin N=7" ? { ...r, collisionProbability: undefined } : r));
  assert.equal(goals(noEstimate, spin).find((x) => x.goal.startsWith("3."))!.met, false);
});

test("bench goals: goal 1 is read off the median of the alternating pairs when the bench ran them", () => {
  // The single row says 0.92x; three pairs of which one was slow say 0.44x.
  const pairs = { n: 6, refcheck: [2.0, 2.2, 4.0], spin: [5.0, 5.0, 5.0] };
  const g = goals(run, spin, pairs);
  assert.equal(g[0].met, true);
  assert.equal(g[0].value, "median of 3 alternating pairs with SPIN: 0.44x (0.40x, 0.44x, 0.80x)");
  // Two slow pairs out of three: the median is slow, and the goal is not met.
  const slow = goals(run, spin, { n: 6, refcheck: [2.0, 4.2, 4.0], spin: [5.0, 5.0, 5.0] });
  assert.equal(slow[0].met, false);
  // No pair finished: the single row decides, as without pairs.
  assert.deepEqual(goals(run, spin, { n: 6, refcheck: [], spin: [] })[0], goals(run, spin)[0]);
});
