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
  touch(c: Uint32Array, n: number, stride: number, keyOff: number): number {
    const t = this.t;
    let x = 0;
    for (let j = 0, o = keyOff; j < n; j++, o += stride) x ^= t[2 * this.slotOf(c[o], c[o + 1])];
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
