// Symmetry reduction must count exactly the orbits of the reachable states: checked
// against a reference that enumerates every reachable state with plain objects and
// takes, per state, the least of all its permutations.
import { test } from "node:test";
import assert from "node:assert/strict";
import { check } from "../checker/index.ts";
import { Fault } from "../checker/spec.ts";
import refpin from "../specs/conformance/refpin.ts";
import { naiveModel } from "./support/naive.ts";

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

/** Reachable states by plain BFS; then the number of distinct orbits under permuting `df`. */
function orbits(N: number, variant: string): { states: number; orbits: number } {
  const m = naiveModel(refpin, { N, variant });
  const seen = new Set<string>();
  let frontier = m.inits.map((s) => structuredClone(s));
  for (const s of frontier) seen.add(JSON.stringify(s));
  const all: any[] = [...frontier];
  while (frontier.length) {
    const next: any[] = [];
    for (const s of frontier) {
      for (const inst of m.instances) {
        if (inst.guard && !inst.guard(s, inst.params)) continue;
        const t = structuredClone(s);
        try {
          inst.effect(t, inst.params);
        } catch (e) {
          if (e instanceof Fault) continue;
          throw e;
        }
        const k = JSON.stringify(t);
        if (!seen.has(k)) {
          seen.add(k);
          next.push(t);
          all.push(t);
        }
      }
    }
    frontier = next;
  }
  const perms = permutations([...Array(N).keys()]);
  const reps = new Set<string>();
  for (const s of all) {
    let best: string | undefined;
    for (const p of perms) {
      const k = JSON.stringify({ ...s, df: p.map((i) => s.df[i]) });
      if (best === undefined || k < best) best = k;
    }
    reps.add(best!);
  }
  return { states: all.length, orbits: reps.size };
}

for (const variant of ["active", "plain"]) {
  for (const N of [2, 3, 4]) {
    test(`symmetry: RefPin N=${N} ${variant} counts exactly the orbits of the reachable states`, () => {
      const ref = orbits(N, variant);
      const plain = check(refpin, { N, variant });
      const reduced = check(refpin, { N, variant }, { symmetry: true });
      assert.equal(plain.stats.distinctStates, ref.states);
      assert.equal(reduced.stats.distinctStates, ref.orbits);
      assert.deepEqual(
        reduced.properties.map((p) => [p.name, p.status, p.trace?.length]),
        plain.properties.map((p) => [p.name, p.status, p.trace?.length]),
      );
    });
  }
}
