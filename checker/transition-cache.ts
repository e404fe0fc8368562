// Transition cache: LTSmin's caching layer (pins2pins "cache"), with the read/write sets
// learnt instead of declared.
//
// An effect runs on a view that records every packed bit it reads or writes. Each action
// instance keeps the union of those bits over its runs (its mask K). An effect is a pure
// function of what it reads, so on a state that agrees with an earlier one on K it reads the
// same values, takes the same branches, and writes the same values to the same fields (or
// throws the same fault): its successor is the state with the bits of K replaced by the
// earlier successor's. The cache keeps, per (instance, state projected on K), that
// projection of the successor, or the fault. A mask that grows starts a new generation of
// the instance's entries (an entry keyed under a smaller mask says nothing under the larger).
//
// The purity probe runs the effect on every cached transition of its window and compares;
// results never depend on the cache (only its hit rate does on its size).

// lookup() gives 0 (no entry), 1 (the successor, written into D) or 2 (a fault, its message
// in `fault`): plain numbers, because a constant imported from another module is a getter
// call per use once tsx has compiled the modules.

/**
 * An instance's hit rate is judged over each run of this many of its lookups; below
 * 1/MIN_HIT_RATE in any of them, it is not cached any more. Judged again and again, not once:
 * a mask still growing can make the first lookups hit (few bits, few distinct keys) where
 * the later ones never do, and the thread's first states decide that window (see judge).
 */
const JUDGE_AFTER = 4096;
const MIN_HIT_RATE = 4;
/** Distinct fault messages kept (a fault past them is run every time, never cached). */
const MAX_FAULTS = 1024;

/**
 * A hash of instance i, the generation of its mask and the state A projected on the mask
 * (masks[i*W .. i*W+W)): the slot key of the transition cache and of the guard memo.
 */
export function projectionHash(i: number, gen: number, A: Uint32Array, masks: Uint32Array, W: number): number {
  let h = Math.imul(i + 1, 0x9e3779b1) ^ gen;
  for (let w = 0, at = i * W; w < W; w++, at++) {
    h = Math.imul(h ^ (A[w] & masks[at]), 0x85ebca6b);
    h ^= h >>> 15;
  }
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

export class TransitionCache {
  /** The bits the effect running now has read or written (the recording draft view's mask). */
  readonly touched: Uint32Array;
  /** Per instance (W words each): the bits its effect has read or written so far. */
  private readonly masks: Uint32Array;
  /** Per instance: the generation of its mask (bumped when the mask grows). */
  private readonly gen: Uint32Array;
  /** Per instance: lookups and hits while it is judged, and whether it is cached at all. */
  private readonly lookups: Uint32Array;
  private readonly hitCount: Uint32Array;
  readonly off: Uint8Array;
  /** Direct-mapped slots: instance + 1, generation, key (W), successor bits (W), fault + 1. */
  private readonly t: Uint32Array;
  private readonly stride: number;
  private readonly slotMask: number;
  private readonly faults: string[] = [];
  private readonly faultIndex = new Map<string, number>();
  /** The message of the last lookup that gave 2 (a fault). */
  fault = "";

  constructor(
    instances: number,
    private readonly W: number,
    slotBits = 14,
  ) {
    this.touched = new Uint32Array(W);
    this.masks = new Uint32Array(instances * W);
    this.gen = new Uint32Array(instances);
    this.lookups = new Uint32Array(instances);
    this.hitCount = new Uint32Array(instances);
    this.off = new Uint8Array(instances);
    this.stride = 3 + 2 * W;
    this.slotMask = (1 << slotBits) - 1;
    this.t = new Uint32Array(this.stride << slotBits);
  }

  /** The slot of instance i's entry for A (A projected on its mask). */
  private slot(i: number, A: Uint32Array): number {
    return (projectionHash(i, this.gen[i], A, this.masks, this.W) & this.slotMask) * this.stride;
  }

  /** Instance i's cached transition from A: 0 (none), 1 (the successor, in D) or 2 (a fault). */
  lookup(i: number, A: Uint32Array, D: Uint32Array): number {
    const { W, t, masks } = this;
    const s = this.slot(i, A), base = i * W;
    let hit = t[s] === i + 1 && t[s + 1] === this.gen[i];
    // >>> 0: `&` gives a signed 32-bit number, the table holds unsigned ones (bit 31 set
    // would never compare equal).
    for (let w = 0; hit && w < W; w++) hit = t[s + 2 + w] === (A[w] & masks[base + w]) >>> 0;
    if (hit) this.hitCount[i]++;
    if (++this.lookups[i] === JUDGE_AFTER) this.judge(i);
    if (!hit) return 0;
    const f = t[s + 2 + 2 * W];
    if (f !== 0) {
      this.fault = this.faults[f - 1];
      return 2;
    }
    for (let w = 0; w < W; w++) D[w] = (A[w] & ~masks[base + w]) | t[s + 2 + W + w];
    return 1;
  }

  /**
   * Ends a window of JUDGE_AFTER lookups of instance i (lookup counts them and their hits, so
   * that the hot path stays two counts and a compare); too few hits in it and it is not
   * cached. Judged once, on its first window only, RefPin's CloseDev (which never hits once its
   * mask covers every device) stayed cached in a parallel search's chunk expanders whose first
   * states happened to share keys: each of its runs then paid a lookup, the recording view and
   * a store, and those threads expanded about 1.4x slower for the rest of the search.
   */
  private judge(i: number): void {
    if (this.hitCount[i] * MIN_HIT_RATE < JUDGE_AFTER) this.off[i] = 1;
    this.lookups[i] = this.hitCount[i] = 0;
  }

  /** Before running instance i's effect on the recording view. */
  begin(): void {
    this.touched.fill(0);
  }

  /** After it ran on A (successor in D, or `fault`): learns its bits and keeps the transition. */
  store(i: number, A: Uint32Array, D: Uint32Array, fault: string | null): void {
    const { W, masks, touched, t } = this;
    for (let w = 0, at = i * W; w < W; w++, at++) {
      if ((touched[w] & ~masks[at]) !== 0) {
        masks[at] |= touched[w];
        this.gen[i]++;
      }
    }
    let f = 0;
    if (fault !== null) {
      const known = this.faultIndex.get(fault);
      if (known !== undefined) f = known + 1;
      else if (this.faults.length < MAX_FAULTS) {
        this.faultIndex.set(fault, this.faults.length);
        this.faults.push(fault);
        f = this.faults.length;
      } else return;
    }
    const s = this.slot(i, A);
    t[s] = i + 1;
    t[s + 1] = this.gen[i];
    for (let w = 0, at = i * W; w < W; w++, at++) {
      t[s + 2 + w] = A[w] & masks[at];
      t[s + 2 + W + w] = D[w] & masks[at];
    }
    t[s + 2 + 2 * W] = f;
  }
}
