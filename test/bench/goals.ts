// Issue 14's performance goals, read off one bench run: its rows and SPIN's runs of the same
// run, never figures from different runs. A goal whose rows did not run (N = 7 needs --full;
// the ratios need SPIN) is "not measured", never met.

export interface GoalRow {
  label: string;
  status: string;
  seconds?: number;
  rssMB?: number;
  rssBytesPerState?: number;
  storeBytesPerState?: number;
  traceBytesPerState?: number;
  statesPerSecond?: number;
  fingerprintBits?: number;
  collisionProbability?: number;
  seed?: boolean;
}

export interface GoalSpin {
  ok: boolean;
  seconds?: number;
}

export interface Goal {
  goal: string;
  /** What this run measured, or why it measured nothing. */
  value: string;
  /** null: not measured in this run. */
  met: boolean | null;
}

/**
 * Goal 1 measured again in alternating pairs (refcheck, then SPIN, at N = `n`), so that one
 * slow moment of a noisy machine does not decide it: each pair's seconds.
 */
export interface GoalPairs {
  n: number;
  refcheck: number[];
  spin: number[];
}

const f2 = (x: number) => x.toFixed(2);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export function goals(rows: GoalRow[], spin: ReadonlyMap<number, GoalSpin>, pairs?: GoalPairs): Goal[] {
  const row = (label: string) => rows.find((r) => r.label === label && r.status === "ok");
  const spinSeconds = (n: number) => {
    const s = spin.get(n);
    return s?.ok && s.seconds !== undefined && s.seconds > 0 ? s.seconds : undefined;
  };
  const out: Goal[] = [];
  const missing = (goal: string, why: string) => out.push({ goal, value: why, met: null });
  const ratioToSpin = (goal: string, label: string, n: number, most: number) => {
    const r = row(label), s = spinSeconds(n);
    if (r?.seconds === undefined) return missing(goal, `no "${label}" row${n === 7 ? " (add --full)" : ""}`);
    if (s === undefined) return missing(goal, `no SPIN run at N = ${n}`);
    const x = r.seconds / s;
    out.push({ goal, value: `${f2(r.seconds)} s against SPIN's ${f2(s)} s: ${f2(x)}x`, met: x <= most });
  };

  const goal1 = "1. RefPin N = 6, one thread: at most 0.5x SPIN's time";
  const ratios = pairs && pairs.n === 6 ? pairs.refcheck.map((r, k) => r / pairs.spin[k]).filter((x) => Number.isFinite(x) && x > 0) : [];
  if (ratios.length > 0) {
    const x = median(ratios);
    out.push({ goal: goal1, value: `median of ${ratios.length} alternating pairs with SPIN: ${f2(x)}x (${ratios.map((r) => `${f2(r)}x`).join(", ")})`, met: x <= 0.5 });
  } else ratioToSpin(goal1, "refpin N=6 --workers 1", 6, 0.5);
  ratioToSpin("2. RefPin N = 7, default threads: at most 0.3x SPIN's time", "refpin N=7", 7, 0.3);

  const d7 = row("refpin N=7"), one7 = row("refpin N=7 --workers 1"), two7 = row("refpin N=7 --workers 2");
  const peak = "2. RefPin N = 7, default threads: peak RSS under 600 MB";
  if (d7?.rssMB === undefined) missing(peak, `no "refpin N=7" row (add --full)`);
  else out.push({ goal: peak, value: `${d7.rssMB.toFixed(0)} MB`, met: d7.rssMB < 600 });
  const scale = "2. RefPin N = 7: --workers 2 at least 1.7x faster than --workers 1";
  if (one7?.seconds === undefined || two7?.seconds === undefined) missing(scale, "no N = 7 rows with --workers 1 and 2 (add --full)");
  else {
    const x = one7.seconds / two7.seconds;
    out.push({ goal: scale, value: `${f2(one7.seconds)} s / ${f2(two7.seconds)} s: ${f2(x)}x`, met: x >= 1.7 });
  }
  const perState = "2. RefPin N = 7: RSS per state with --workers 2 no higher than with --workers 1";
  if (one7?.rssBytesPerState === undefined || two7?.rssBytesPerState === undefined) missing(perState, "no N = 7 rows with --workers 1 and 2 (add --full)");
  else {
    out.push({
      goal: perState,
      value: `${two7.rssBytesPerState.toFixed(1)} against ${one7.rssBytesPerState.toFixed(1)} B/state`,
      met: two7.rssBytesPerState <= one7.rssBytesPerState,
    });
  }

  const store = "3. RefPin N = 7: visited store plus trace links at most 12 B/state, missed-state estimate printed";
  if (d7?.storeBytesPerState === undefined || d7.traceBytesPerState === undefined) missing(store, `no "refpin N=7" row (add --full)`);
  else {
    const b = d7.storeBytesPerState + d7.traceBytesPerState;
    const estimate = !d7.fingerprintBits || d7.collisionProbability !== undefined;
    out.push({
      goal: store,
      value: `${d7.storeBytesPerState.toFixed(1)} + ${d7.traceBytesPerState.toFixed(1)} = ${b.toFixed(1)} B/state${estimate ? "" : ", no estimate"}`,
      met: b <= 12 && estimate,
    });
  }

  const flat = "4. States per second on one thread within 20% from N = 4 to N = 7";
  const rates = [4, 5, 6, 7].map((n) => ({ n, r: row(`refpin N=${n} --workers 1`)?.statesPerSecond }));
  const absent = rates.filter((x) => x.r === undefined).map((x) => x.n);
  if (absent.length) missing(flat, `no one-thread row at N = ${absent.join(", ")}${absent.includes(7) ? " (add --full)" : ""}`);
  else {
    const v = rates.map((x) => x.r!), lo = Math.min(...v), hi = Math.max(...v);
    out.push({ goal: flat, value: `${rates.map((x) => `N=${x.n} ${Math.round(x.r!).toLocaleString("en-US")}`).join(", ")}: lowest ${(100 * lo / hi).toFixed(0)}% of highest`, met: lo >= 0.8 * hi });
  }

  const seeds = rows.filter((r) => r.seed);
  const seedGoal = "5. The seed models at larger parameters, with symmetry and partial-order reduction figures";
  if (!seeds.length) missing(seedGoal, "no seed model rows");
  else {
    const failed = seeds.filter((r) => r.status !== "ok").map((r) => r.label);
    out.push({ goal: seedGoal, value: failed.length ? `rows that did not run: ${failed.join("; ")}` : `${seeds.length} rows`, met: failed.length === 0 });
  }
  return out;
}
