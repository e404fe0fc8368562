// Visited-state store and growable typed arrays.
//
// The visited set is an open-addressing table of 64-bit keys held as two Uint32Array
// lanes. When a packed state fits in 63 bits the key IS the state (exact, no collision
// possible); otherwise the key is a 64-bit fingerprint of the packed words.

/** murmur3-style 32-bit hash of `W` words starting at `off`. */
export function hashWords(buf: Uint32Array, off: number, W: number, seed: number): number {
  let h = seed | 0;
  for (let i = 0; i < W; i++) {
    let k = Math.imul(buf[off + i], 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  return fmix(h ^ (W << 2));
}

export function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class GrowU32 {
  a: Uint32Array;
  n = 0;
  constructor(cap = 1024) {
    this.a = new Uint32Array(cap);
  }
  push(v: number): void {
    if (this.n === this.a.length) this.grow(this.n + 1);
    this.a[this.n++] = v;
  }
  /** Makes room for `extra` more entries and returns the write offset. */
  reserve(extra: number): number {
    if (this.n + extra > this.a.length) this.grow(this.n + extra);
    const at = this.n;
    this.n += extra;
    return at;
  }
  grow(min: number): void {
    let cap = this.a.length * 2;
    while (cap < min) cap *= 2;
    const b = new Uint32Array(cap);
    b.set(this.a.subarray(0, this.n));
    this.a = b;
  }
  get bytes(): number {
    return this.a.byteLength;
  }
}

export class GrowU16 {
  a: Uint16Array;
  n = 0;
  constructor(cap = 1024) {
    this.a = new Uint16Array(cap);
  }
  push(v: number): void {
    if (this.n === this.a.length) {
      const b = new Uint16Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = v;
  }
  get bytes(): number {
    return this.a.byteLength;
  }
}

const MAX_LOAD = 0.75;

/**
 * The keys of the last states looked up in a visited set, direct-mapped in a table small
 * enough for the L2 cache. A key found here is in the visited set for sure, so a successor
 * that hits is a duplicate without a trip to main memory. Breadth-first search meets most of
 * its duplicates soon after the first copy (two orders of the same two steps, from siblings
 * expanded one after the other): on RefPin N = 6, 2^14 entries catch over half of them.
 */
export class RecentKeys {
  private readonly t: Uint32Array;
  private readonly mask: number;
  constructor(bits = 14) {
    this.t = new Uint32Array(2 << bits);
    this.mask = (1 << bits) - 1;
  }
  private slot(k0: number, k1: number): number {
    return 2 * (fmix(k0 ^ Math.imul(k1, 0x85ebca6b)) & this.mask);
  }
  has(k0: number, k1: number): boolean {
    const i = this.slot(k0, k1);
    return this.t[i] === k0 && this.t[i + 1] === k1;
  }
  /** Remembers a key known to be in the visited set (keys are never (0, 0)). */
  add(k0: number, k1: number): void {
    const i = this.slot(k0, k1);
    this.t[i] = k0;
    this.t[i + 1] = k1;
  }
}

/** What a worker needs to read a visited set owned by another thread. */
export interface VisitedShare {
  buffer: SharedArrayBuffer;
  W: number;
  exact: boolean;
}

export class VisitedSet {
  /** Key pairs, slot i at [2i, 2i+1]: one cache line per probe. (0, 0) marks a free slot. */
  private t: Uint32Array;
  private mask: number;
  size = 0;
  /** True when keys are the packed states themselves (no fingerprinting). */
  readonly exact: boolean;
  private readonly W: number;
  private readonly shared: boolean;
  private readonly k = new Uint32Array(2);

  constructor(W: number, stateBitsInLastWord: number, initialCapacity = 1 << 10, shared = false) {
    this.W = W;
    this.shared = shared;
    this.exact = W === 1 || (W === 2 && stateBitsInLastWord < 32);
    let cap = 1;
    while (cap < initialCapacity) cap *= 2;
    this.t = this.alloc(2 * cap);
    this.mask = cap - 1;
  }

  /** A read-only view of a set owned by another thread (its table as of `share`). */
  static attach(share: VisitedShare): VisitedSet {
    const v = Object.create(VisitedSet.prototype) as VisitedSet;
    const t = new Uint32Array(share.buffer);
    Object.assign(v, { t, mask: t.length / 2 - 1, size: 0, exact: share.exact, W: share.W, shared: true, k: new Uint32Array(2) });
    return v;
  }

  share(): VisitedShare {
    if (!this.shared) throw new Error("visited set is not shared");
    return { buffer: this.t.buffer as SharedArrayBuffer, W: this.W, exact: this.exact };
  }

  private alloc(n: number): Uint32Array {
    return this.shared ? new Uint32Array(new SharedArrayBuffer(4 * n)) : new Uint32Array(n);
  }

  get fingerprintBits(): number {
    return this.exact ? 0 : 64;
  }

  get bytes(): number {
    return this.t.byteLength;
  }

  /** Writes the key of the state at src[off..off+W) to dst[at], dst[at+1]. */
  keyInto(src: Uint32Array, off: number, dst: Uint32Array, at: number): void {
    if (this.exact) {
      dst[at] = src[off];
      dst[at + 1] = (this.W === 2 ? src[off + 1] : 0) | 0x80000000;
    } else {
      const k0 = hashWords(src, off, this.W, 0x9747b28c);
      const k1 = hashWords(src, off, this.W, 0x1b873593);
      dst[at] = k0;
      dst[at + 1] = k0 === 0 && k1 === 0 ? 1 : k1;
    }
  }

  /** Is the state at buf[off..off+W) in the set? */
  has(buf: Uint32Array, off: number): boolean {
    this.keyInto(buf, off, this.k, 0);
    return this.hasKey(this.k[0], this.k[1]);
  }

  /**
   * Touches the home slots of `n` keys (at c[j*stride + keyOff]) with plain loads, so that
   * the cache misses of a batch overlap instead of being paid one insert at a time.
   */
  touch(c: Uint32Array, n: number, stride: number, keyOff: number, skip?: Uint8Array): number {
    const t = this.t;
    let x = 0;
    for (let j = 0, o = keyOff; j < n; j++, o += stride) if (skip === undefined || skip[j] === 0) x ^= t[2 * this.slotOf(c[o], c[o + 1])];
    return x;
  }

  private slotOf(k0: number, k1: number): number {
    return this.exact ? fmix(k0 ^ Math.imul(k1, 0x9e3779b1)) & this.mask : k0 & this.mask;
  }

  /** Adding one more key makes the table double. */
  get growsOnNextAdd(): boolean {
    return this.size + 1 > MAX_LOAD * (this.mask + 1);
  }

  /** Inserts the key; returns true if it was not there before. */
  addKey(k0: number, k1: number): boolean {
    let i = this.slotOf(k0, k1);
    const t = this.t, mask = this.mask;
    for (;;) {
      const a = t[2 * i], b = t[2 * i + 1];
      if (a === 0 && b === 0) break;
      if (a === k0 && b === k1) return false;
      i = (i + 1) & mask;
    }
    t[2 * i] = k0;
    t[2 * i + 1] = k1;
    if (++this.size > MAX_LOAD * (mask + 1)) this.grow();
    return true;
  }

  hasKey(k0: number, k1: number): boolean {
    let i = this.slotOf(k0, k1);
    const t = this.t, mask = this.mask;
    for (;;) {
      const a = t[2 * i], b = t[2 * i + 1];
      if (a === 0 && b === 0) return false;
      if (a === k0 && b === k1) return true;
      i = (i + 1) & mask;
    }
  }

  private grow(): void {
    const old = this.t;
    const cap = old.length; // slots double: old.length / 2 * 2
    this.t = this.alloc(2 * cap);
    this.mask = cap - 1;
    const t = this.t, mask = this.mask;
    for (let j = 0; j < old.length; j += 2) {
      const a = old[j], b = old[j + 1];
      if (a === 0 && b === 0) continue;
      let i = this.slotOf(a, b);
      while (t[2 * i] !== 0 || t[2 * i + 1] !== 0) i = (i + 1) & mask;
      t[2 * i] = a;
      t[2 * i + 1] = b;
    }
  }
}

/** The parent link of an initial state. */
export const NO_PARENT = 0xffffffff;

/**
 * Parent links and the action instance of each state, in about 1.4 bytes per state.
 *
 * A breadth-first search expands states in id order and numbers new states in the order it
 * finds them, so the parent ids of the states, taken in id order, never decrease (initial
 * states, which have none, aside). They are kept as gaps in unary: for each state, as many
 * 0 bits as its parent is past the previous state's parent, then a 1 bit; about 2 bits per
 * state. Every 64th state's parent and bit position are sampled, so a lookup scans at most
 * 64 states' bits. Initial states are listed apart. The instance (or, for an initial state,
 * the initial state's index) takes one byte while there are at most 256 of them.
 */
export class TraceLinks {
  private bits = new Int32Array(1 << 10);
  /** Bits written. */
  private pos = 0;
  private last = 0;
  /** States with a parent so far, and every 64th one's parent and bit position. */
  private linked = 0;
  private readonly sampleParent = new GrowU32(1 << 6);
  private readonly samplePos = new GrowU32(1 << 6);
  /** Ids of the states without a parent, ascending. */
  private readonly roots = new GrowU32(16);
  private via: Uint8Array | Uint16Array;
  n = 0;

  constructor(instances: number) {
    this.via = instances <= 256 ? new Uint8Array(1 << 10) : new Uint16Array(1 << 10);
  }

  /** Links given as arrays (parents nondecreasing apart from NO_PARENT). */
  static of(parent: readonly number[], via: readonly number[], instances: number): TraceLinks {
    const t = new TraceLinks(Math.max(instances, ...via.map((v) => v + 1)));
    parent.forEach((p, s) => t.push(p, via[s]));
    return t;
  }

  /** Appends the links of state `n` (the next id). */
  push(parent: number, via: number): void {
    const s = this.n++;
    if (s === this.via.length) {
      const v = new (this.via.constructor as Uint8ArrayConstructor)(2 * s);
      v.set(this.via);
      this.via = v;
    }
    this.via[s] = via;
    if (parent === NO_PARENT) {
      this.roots.push(s);
      return;
    }
    if (parent < this.last) throw new Error(`internal: parent links out of order (${parent} after ${this.last})`);
    // Zeros are free: the array starts zeroed; only the 1 bit is written.
    this.pos += parent - this.last;
    this.last = parent;
    if (this.pos >>> 5 >= this.bits.length) {
      let len = this.bits.length * 2;
      while (this.pos >>> 5 >= len) len *= 2;
      const b = new Int32Array(len);
      b.set(this.bits);
      this.bits = b;
    }
    this.bits[this.pos >>> 5] |= 1 << (this.pos & 31);
    if ((this.linked++ & 63) === 0) {
      this.sampleParent.push(parent);
      this.samplePos.push(this.pos);
    }
    this.pos++;
  }

  /** How many roots have an id below s (and whether s is one). */
  private rootsBelow(s: number): { below: number; isRoot: boolean } {
    const r = this.roots.a;
    let lo = 0, hi = this.roots.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (r[mid] < s) lo = mid + 1;
      else hi = mid;
    }
    return { below: lo, isRoot: lo < this.roots.n && r[lo] === s };
  }

  parentOf(s: number): number {
    if (s < 0 || s >= this.n) throw new RangeError(`no state ${s}`);
    const { below, isRoot } = this.rootsBelow(s);
    if (isRoot) return NO_PARENT;
    const k = s - below;
    const j = k >>> 6;
    let parent = this.sampleParent.a[j];
    let p = this.samplePos.a[j];
    // Walk from the sample's 1 bit to the (k - 64j)-th 1 bit after it, counting zeros.
    for (let left = k & 63; ; p++) {
      if ((this.bits[p >>> 5] >>> (p & 31)) & 1) {
        if (left === 0) return parent;
        left--;
      } else parent++;
    }
  }

  viaOf(s: number): number {
    if (s < 0 || s >= this.n) throw new RangeError(`no state ${s}`);
    return this.via[s];
  }

  get bytes(): number {
    return Math.ceil(this.pos / 8) + this.n * this.via.BYTES_PER_ELEMENT + 8 * this.sampleParent.n + 4 * this.roots.n;
  }
}
