// Partial-order reduction with stubborn sets over declared footprints.
//
// Each action instance may declare the state paths it reads and writes. Two instances are
// dependent when one writes what the other reads or writes. At a state, a stubborn set
// grows from one enabled instance: for an enabled member, every instance dependent on it
// joins; for a disabled member, every instance that writes what it reads joins (one of
// them must run before it can become enabled). The enabled members of the set are
// expanded instead of all enabled instances when:
//   - they are invisible: none writes a path an invariant or a witness reads, so no
//     violation can hide behind the reordering;
//   - the explorer's cycle proviso holds: every successor they give is new (otherwise the
//     state is expanded fully), so no action is postponed around a cycle; and none of them
//     faults, since a faulting step has no successor to postpone the others to.
// Faults need no visibility: a postponed instance is independent of the ones taken, so it
// is still enabled afterwards and faults the same way. Terminal states (where quiescent
// properties and deadlocks are judged) are all kept, because every enabled member's
// dependents are in the set.
// Counterexamples stay real traces, not necessarily the shortest.
import { flatten } from "./codec.ts";
import type { Model } from "./compile.ts";
import { SpecError } from "./spec.ts";

export interface Por {
  /** The instances to expand at a state with these enabled instances; null: all of them. */
  ample(enabled: number[]): number[] | null;
  /**
   * Footprints are verified, not trusted: after a guard or an effect of instance i ran on
   * tracked views, throws a SpecError when it read or wrote a leaf outside its declaration.
   */
  checkAction(i: number, track: Track): void;
  /** Same for invariant p (p < invariants.length) or witness p - invariants.length. */
  checkProperty(p: number, track: Track): void;
}

/** Leaves read and written by one call (bit i: leaf i in flatten order). */
export interface Track {
  r: Uint32Array;
  w: Uint32Array;
}

type Bits = Uint32Array;

/** The reduction for this model, or why it cannot reduce anything. */
export function makePor(model: Model): Por | string {
  if (model.actionProperties.length > 0) return "action properties observe every transition";
  if (!model.instances.some((x) => x.reads !== undefined || x.writes !== undefined)) return "no action declares reads/writes";
  const view = model.codec.view(new Uint32Array(model.words), { ro: true });
  const paths = flatten(model.codec.read(view)).map(([p]) => p);
  const L = paths.length;
  const words = Math.ceil(L / 32);
  const all = (): Bits => {
    const b = new Uint32Array(words);
    for (let i = 0; i < L; i++) b[i >>> 5] |= 1 << (i & 31);
    return b;
  };
  const resolve = (declared: readonly string[] | undefined, where: string): Bits => {
    if (declared === undefined) return all();
    const b = new Uint32Array(words);
    for (const p of declared) {
      let hit = false;
      paths.forEach((q, i) => {
        if (q === p || q.startsWith(p + ".") || q.startsWith(p + "[")) {
          b[i >>> 5] |= 1 << (i & 31);
          hit = true;
        }
      });
      if (!hit) throw new SpecError(`spec "${model.spec.name}", ${where}: "${p}" is not a path of the state`);
    }
    return b;
  };
  const meets = (a: Bits, b: Bits) => {
    for (let i = 0; i < words; i++) if (a[i] & b[i]) return true;
    return false;
  };
  const union = (a: Bits, b: Bits) => a.map((x, i) => x | b[i]);

  const n = model.instances.length;
  const undeclared = (x: Model["instances"][number]) => x.reads === undefined && x.writes === undefined;
  const R = model.instances.map((x) => (undeclared(x) ? all() : resolve(x.reads ?? [], `action ${x.label} reads`)));
  const Wr = model.instances.map((x) => (undeclared(x) ? all() : resolve(x.writes ?? [], `action ${x.label} writes`)));
  let seen = new Uint32Array(words);
  const props = [...model.invariants, ...model.witnesses];
  const P = props.map((p) => resolve(p.reads, `property "${p.name}" reads`));
  for (const b of P) seen = union(seen, b);
  // The first leaf set in `got` and not in `allowed`, or -1.
  const outside = (got: Bits, allowed: Bits): number => {
    for (let k = 0; k < words; k++) {
      const x = got[k] & ~allowed[k];
      if (x) return k * 32 + (31 - Math.clz32(x & -x));
    }
    return -1;
  };
  const declared = (d: readonly string[] | undefined) => (d === undefined || d.length === 0 ? "none" : d.join(", "));
  const visible = Wr.map((w) => meets(w, seen));
  if (visible.every((v) => v)) return "every action writes a path that an invariant or witness reads";

  const dep: number[][] = [];
  const nes: number[][] = [];
  for (let a = 0; a < n; a++) {
    const d: number[] = [], e: number[] = [];
    for (let b = 0; b < n; b++) {
      if (b === a) continue;
      if (meets(Wr[a], R[b]) || meets(Wr[a], Wr[b]) || meets(Wr[b], R[a])) d.push(b);
      if (meets(Wr[b], R[a])) e.push(b);
    }
    dep.push(d);
    nes.push(e);
  }

  const checkAction = (i: number, t: Track): void => {
    const x = model.instances[i];
    if (undeclared(x)) return;
    const r = outside(t.r, R[i]);
    const w = outside(t.w, Wr[i]);
    if (r < 0 && w < 0) return;
    const [verb, leaf, what, d] = r >= 0 ? ["read", r, "reads", x.reads] : ["wrote", w, "writes", x.writes];
    throw new SpecError(
      `spec "${model.spec.name}", action ${x.label} ${verb} ${paths[leaf]}, which its declared ${what} do not cover (${what}: ${declared(d)}); ` +
        "with --por a footprint must cover every field the guard and the effect touch",
    );
  };
  const checkProperty = (p: number, t: Track): void => {
    const q = props[p];
    if (q.reads === undefined) return;
    const r = outside(t.r, P[p]);
    if (r < 0) return;
    const kind = p < model.invariants.length ? "invariant" : "witness";
    throw new SpecError(
      `spec "${model.spec.name}", ${kind} "${q.name}" read ${paths[r]}, which its declared reads do not cover (reads: ${declared(q.reads)}); ` +
        "with --por a footprint must cover every field the property looks at",
    );
  };

  const isEnabled = new Uint8Array(n);
  const inSet = new Uint8Array(n);
  const stack: number[] = [];
  const members: number[] = [];
  return {
    checkAction,
    checkProperty,
    ample(enabled) {
      if (enabled.length < 2) return null;
      for (const i of enabled) isEnabled[i] = 1;
      let best: number[] | null = null;
      for (const start of enabled) {
        if (visible[start]) continue;
        inSet.fill(0);
        members.length = 0;
        stack.length = 0;
        stack.push(start);
        inSet[start] = 1;
        let ok = true;
        while (stack.length && ok) {
          const b = stack.pop()!;
          if (isEnabled[b]) {
            if (visible[b]) ok = false;
            members.push(b);
          }
          for (const c of isEnabled[b] ? dep[b] : nes[b]) {
            if (!inSet[c]) {
              inSet[c] = 1;
              stack.push(c);
            }
          }
        }
        if (!ok || members.length >= enabled.length) continue;
        if (!best || members.length < best.length) best = members.slice().sort((x, y) => x - y);
        if (best.length === 1) break;
      }
      for (const i of enabled) isEnabled[i] = 0;
      return best;
    },
  };
}
