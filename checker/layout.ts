// The word layouts the search's pieces pass each other: a candidate successor (Expander to
// Inserter, or a chunk's buffer to the search's thread) and a queued state (a BFS level's
// block, read by every thread that expands). One place names every offset.
import type { Model } from "./compile.ts";

/**
 * Guard reuse carries a bitset over the action instances with each queued state. Beyond this
 * many instances the carry would cost more memory than the guards cost time: no reuse.
 */
const MAX_REUSE_INSTANCES = 256;

/**
 * Offsets are from the start of a candidate or a queued state; strides are in words.
 *
 * A candidate: the packed state (`words`), its parent's id, the action instance that made it,
 * its key (2 words), its parent's enabled set (`enabledWords`), then the bits where it
 * differs from its parent, which tell the Inserter which properties could have changed (an
 * initial state has no parent, NO_PARENT, and they are not read).
 *
 * A queued state: the packed state, then its guard carry: its parent's enabled set and the
 * instance that made it, plus one (0: an initial state), kept in the spare top bits of the
 * last enabled word when they are enough (`viaShift`), else in a word of its own. Which of
 * the parent's guard results still hold is worked out from that instance when the state is
 * expanded (see Expander.carryIn), so the carry holds no "known" set; a queued state holds
 * no id either (its level's first id plus its place, see Level.first): 16 bytes a queued
 * state at RefPin N = 7 instead of 28.
 */
export interface Layout {
  /** Words of a packed state. */
  words: number;
  /** Words of the enabled set (0: no guard reuse, and no carry). */
  enabledWords: number;
  /** Words of a queued state's carry. */
  carryWords: number;
  /** The instance's bit shift in the carry's last enabled word, or -1 when it has a word of its own. */
  viaShift: number;
  parent: number;
  instance: number;
  key: number;
  enabled: number;
  diff: number;
  candidateStride: number;
  /** A queued state's carry. */
  carry: number;
  frontierStride: number;
}

export function layoutOf(model: Model): Layout {
  const W = model.words, n = model.instances.length;
  let gw = 0, carryWords = 0, viaShift = -1;
  if (n <= MAX_REUSE_INSTANCES) {
    gw = carryWords = Math.ceil(n / 32);
    // Values 0..n: 0 for no instance, i + 1 for instance i.
    const viaBits = 32 - Math.clz32(n);
    if (n - 32 * (gw - 1) + viaBits <= 32) viaShift = 32 - viaBits;
    else carryWords++;
  }
  return {
    words: W, enabledWords: gw, carryWords, viaShift,
    parent: W, instance: W + 1, key: W + 2, enabled: W + 4, diff: W + 4 + gw, candidateStride: 2 * W + 4 + gw,
    carry: W, frontierStride: W + carryWords,
  };
}

/**
 * Writes a queued state's carry at q[at..]: its parent's enabled set, from e[from..], and
 * `via`, the instance that made it plus one (0: an initial state).
 */
export function writeCarry(L: Layout, q: Uint32Array, at: number, e: Uint32Array, from: number, via: number): void {
  const gw = L.enabledWords;
  for (let k = 0; k < gw; k++) q[at + k] = e[from + k];
  if (L.viaShift >= 0) q[at + gw - 1] |= via << L.viaShift;
  else q[at + gw] = via;
}

/** Reads the carry at q[at..]: the parent's enabled set into `enabled`; gives `via` (see writeCarry). */
export function readCarry(L: Layout, q: Uint32Array, at: number, enabled: Uint32Array): number {
  const gw = L.enabledWords;
  for (let g = 0; g < gw; g++) enabled[g] = q[at + g];
  if (L.viaShift < 0) return q[at + gw];
  const via = enabled[gw - 1] >>> L.viaShift;
  enabled[gw - 1] &= (1 << L.viaShift) - 1;
  return via;
}
