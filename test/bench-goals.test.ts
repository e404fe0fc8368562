// The bench's reading of issue 14's goals (test/bench/goals.ts): from one run's rows and
// SPIN's times, met or not, and "not measured" (never met) when the rows did not run.
import { test } from "node:test";
import assert from "node:assert/strict";
import { goals, type GoalRow, type GoalSpin } from "./bench/goals.ts";

// The rows of the --full run of 2026-12-02 in the README (SPIN 3.98 s at N = 6, 67.9 s at N = 7).
const run: GoalRow[] = [
  { label: "refpin N=4 --workers 1", status: "ok", seconds: 0.15, statesPerSecond: 163_536 },
  { label: "refpin N=5 --workers 1", status: "ok", seconds: 0.39, statesPerSecond: 607_430 },
  { label: "refpin N=6 --workers 1", status: "ok", seconds: 3.28, statesPerSecond: 684_960 },
  { label: "refpin N=7", status: "ok", seconds: 32.33, rssMB: 646, rssBytesPerState: 31.2, storeBytesPerState: 9.3, traceBytesPerState: 1.4, fingerprintBits: 64, collisionProbability: 1.3e-5 },
  { label: "refpin N=7 --workers 1", status: "ok", seconds: 40.62, statesPerSecond: 533_740, rssBytesPerState: 26.7 },
  { label: "refpin N=7 --workers 2", status: "ok", seconds: 29.02, rssBytesPerState: 31.3 },
  { label: "kvm-vfio/file-pinning devices=3", status: "ok", seed: true },
];
const spin = new Map<number, GoalSpin>([
  [6, { ok: true, seconds: 3.98 }],
  [7, { ok: true, seconds: 67.9 }],
]);

test("bench goals: the README's run meets goals 3 and 5 and no other", () => {
  const g = goals(run, spin);
  assert.deepEqual(g.map((x) => [x.goal.slice(0, 2), x.met]), [
    ["1.", false], ["2.", false], ["2.", false], ["2.", false], ["2.", false], ["3.", true], ["4.", false], ["5.", true],
  ]);
  assert.match(g[0].value, /3\.28 s against SPIN's 3\.98 s: 0\.82x/);
  assert.match(g[3].value, /40\.62 s \/ 29\.02 s: 1\.40x/);
  assert.match(g[5].value, /9\.3 \+ 1\.4 = 10\.7 B\/state/);
  assert.match(g[6].value, /lowest 24% of highest/);
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
