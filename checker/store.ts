// Visited-state store and growable typed arrays.
//
// The visited set is an open-addressing table of 64-bit keys held as two Uint32Array
// lanes. When a packed state fits in 63 bits the key IS the state (exact, no collision
// possible); otherwise the key is a 64-bit fingerprint of the packed words.

/**
 * A 64-bit fingerprint of the `W` words at buf[off..): two murmur3-style 32-bit hashes with
 * their own seeds, written to dst[at] and dst[at + 1]. One loop computes both: each word is
 * mixed once and loaded once (about 10 ns against 24 for two passes, W = 3); each half is the
 * hash a pass of its own would give.
 */
export function fingerprint(buf: Uint32Array, off: number, W: number, dst: Uint32Array, at: number): void {
  let h = 0x9747b28c | 0, g = 0x1b873593 | 0;
  for (let i = 0; i < W; i++) {
    let k = Math.imul(buf[off + i], 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
    g ^= k;
    g = (g << 13) | (g >>> 19);
    g = (Math.imul(g, 5) + 0xe6546b64) | 0;
  }
  dst[at] = fmix(h ^ (W << 2));
  dst[at + 1] = fmix(g ^ (W << 2));
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
  /** `shared`: in a SharedArrayBuffer, for worker threads to read. */
  constructor(cap = 1024, private readonly shared = false) {
    this.a = this.alloc(cap);
  }
  private alloc(n: number): Uint32Array {
    return this.shared ? new Uint32Array(new SharedArrayBuffer(4 * n)) : new Uint32Array(n);
  }
  /** Starts empty over `a` (a buffer given back for reuse). */
  adopt(a: Uint32Array): void {
    this.a = a;
    this.n = 0;
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
    const b = this.alloc(cap);
    b.set(this.a.subarray(0, this.n));
    this.a = b;
  }
  get bytes(): number {
    return this.a.byteLength;
  }
}

/** States per block of a BFS level (see Level). */
export const LEVEL_BLOCK_STATES = 1 << 14;

/**
 * Blocks for BFS levels. The level being expanded gives each block back once its states are
 * expanded, and the level being filled takes from here first, so the two levels together
 * hold about what the larger of them needs; a growable array would copy itself as it
 * doubles and keep up to twice its states' room, in each of the two levels (RefPin N = 7:
 * 268 MB of buffers for a largest level of 102 MB).
 */
export class BlockPool {
  private readonly free: Uint32Array[] = [];
  readonly blockWords: number;
  /** `shared`: blocks in SharedArrayBuffers, for worker threads to read. */
  constructor(
    readonly stride: number,
    private readonly shared = false,
  ) {
    this.blockWords = stride * LEVEL_BLOCK_STATES;
  }
  take(): Uint32Array {
    return this.free.pop() ?? (this.shared ? new Uint32Array(new SharedArrayBuffer(4 * this.blockWords)) : new Uint32Array(this.blockWords));
  }
  give(b: Uint32Array): void {
    this.free.push(b);
  }
}

const NO_BLOCK = new Uint32Array(0);

/** A BFS level: queued states of `pool.stride` words each, LEVEL_BLOCK_STATES to a block. */
export class Level {
  readonly blocks: Uint32Array[] = [];
  /** States queued. */
  size = 0;
  /** The id of its first state: the others follow in order (a queued state holds no id). */
  first = 0;
  /** The block being filled: reserve() gives an offset in it. */
  a: Uint32Array = NO_BLOCK;
  private used = 0;
  constructor(readonly pool: BlockPool) {}

  /** Room for one more state: its offset in `a`. */
  reserve(): number {
    const stride = this.pool.stride;
    if (this.used + stride > this.a.length) {
      this.a = this.pool.take();
      this.blocks.push(this.a);
      this.used = 0;
    }
    const at = this.used;
    this.used += stride;
    this.size++;
    return at;
  }

  /** The id of state k of block b. */
  idOf(b: number, k: number): number {
    return this.first + b * LEVEL_BLOCK_STATES + k;
  }

  /** States in block k. */
  count(k: number): number {
    return k < this.blocks.length - 1 ? LEVEL_BLOCK_STATES : this.size - (this.blocks.length - 1) * LEVEL_BLOCK_STATES;
  }

  /** Gives block k back to the pool: its states have been expanded. */
  release(k: number): void {
    if (this.blocks[k] === NO_BLOCK) return;
    this.pool.give(this.blocks[k]);
    this.blocks[k] = NO_BLOCK;
  }

  /** Gives every block back and empties the level. */
  clear(): void {
    for (let k = 0; k < this.blocks.length; k++) this.release(k);
    this.blocks.length = 0;
    this.size = 0;
    this.a = NO_BLOCK;
    this.used = 0;
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
  /** Keys are hashes already (an exact key's h0 is a bijective mix of the state): no rehash. */
  private slot(k0: number): number {
    return 2 * (k0 & this.mask);
  }
  /**
   * False for a recent key (a duplicate); otherwise remembers it, as a key that is in the
   * visited set or about to be (keys are never (0, 0)), and gives true.
   */
  take(k0: number, k1: number): boolean {
    const i = this.slot(k0);
    if (this.t[i] === k0 && this.t[i + 1] === k1) return false;
    this.t[i] = k0;
    this.t[i + 1] = k1;
    return true;
  }

  /** `take` for the state in D, whose key (as `set` keys it) is written into key[0..1]. */
  takeState(set: StateStore, D: Uint32Array, key: Uint32Array): boolean {
    set.keyInto(D, 0, key, 0);
    return this.take(key[0], key[1]);
  }
}

/**
 * What the search asks of its visited set. `VisitedSet` is the implementation, in several
 * configurations (wide or compact slots, doubling in place or copied, in shared memory, a
 * reader's view of another thread's table); `test/store-contract.test.ts` holds each of
 * them to this contract, so another store is one class and one entry in that test.
 */
export interface StateStore {
  /** Keys are the packed states themselves (no two states share a key), not fingerprints. */
  readonly exact: boolean;
  /** 0 for exact keys, else the fingerprint's width (for the missed-state estimate). */
  readonly fingerprintBits: number;
  /** Keys added (0 for a reader's view). */
  readonly size: number;
  /** Bytes the table takes now. */
  readonly bytes: number;
  /** Writes the key of the state at src[off..off+W) to dst[at], dst[at + 1]; never (0, 0). */
  keyInto(src: Uint32Array, off: number, dst: Uint32Array, at: number): void;
  /** Is the state at buf[off..off+W) in the set? */
  has(buf: Uint32Array, off: number): boolean;
  hasKey(h0: number, h1: number): boolean;
  /** Adds the key; true if it was not there before. */
  addKey(h0: number, h1: number): boolean;
  /** Loads the home slots of n keys (at c[j * stride + keyOff], skipping j where skip[j] is 1) so their cache misses overlap; changes nothing. */
  touch(c: Uint32Array, n: number, stride: number, keyOff: number, skip?: Uint8Array): number;
  /** Adding one more key makes the table grow. */
  readonly growsOnNextAdd: boolean;
  /** Bytes that growth allocates (what --max-memory checks before it happens). */
  readonly growthBytes: number;
}

/** What a worker needs to read a visited set owned by another thread. */
export interface VisitedShare {
  buffer: SharedArrayBuffer;
  W: number;
  exact: boolean;
  /** log2 of the slot count. */
  k: number;
  compact: boolean;
  /** The owner's rebuild count (element 0) and its value when the share was made (see VisitedSet.stable). */
  epoch: Int32Array;
  at: number;
}

/**
 * The largest compact table that grows in place: 2^29 slots (3 GiB), as a growable buffer
 * reserves at most 4 GiB on Node 20. Reserving takes address space only; a page costs memory
 * once written.
 */
const MAX_COMPACT_K = 29;

/** ES2024's growable SharedArrayBuffer (in Node 20; not in the ES2023 library types). */
interface GrowableBuffer extends SharedArrayBuffer {
  readonly growable: boolean;
  readonly maxByteLength: number;
  grow(bytes: number): void;
}
const GrowableBuffer = SharedArrayBuffer as unknown as new (bytes: number, options?: { maxByteLength: number }) => GrowableBuffer;

/** From this many slots (2^COMPACT_BITS) on, slots are 6 bytes instead of 8. */
const COMPACT_BITS = 24;

/**
 * The visited set: an open-addressing table (linear probing) of 64-bit keys (h0, h1).
 *
 * Keys: when a packed state fits in 63 bits the key IS the state (exact, no collision
 * possible), stored as h1 = the high word with bit 31 set, h0 = a bijective mix of both
 * words (so h0 spreads the states over the table, and distinct states keep distinct keys);
 * otherwise the key is a 64-bit fingerprint of the packed words. A key's home slot is the
 * low k bits of h0, for a table of 2^k slots.
 *
 * Slots: up to 2^23 slots, 8 bytes each, the key itself ((0, 0) free). From 2^24 on a slot
 * is 6 bytes (three 16-bit lanes, side by side in one array): h1, then the 32 - k high bits
 * of h0 that the home slot does not already say, and the slot's distance from its home
 * (plus one, so that 0 marks a free slot) in the k - 16 bits left. A key and its home slot
 * give back the whole key, so the compact table is exactly as exact as the wide one: this
 * is quotienting (Cleary's compact hash table) with linear probing. A key that would sit
 * further than the distance field can say from home makes the table grow.
 *
 * Growth: a compact table doubles in place, in a growable buffer (see growInPlace), so a
 * search never holds the old table and the new one at once (RefPin N = 7 held 100 + 201 MB
 * at its last doubling). Wide tables (up to 64 MB), the change from wide to compact slots,
 * and a table past what one buffer reserves are copied into a new buffer.
 */
export class VisitedSet implements StateStore {
  /** Wide slots: key pairs, slot i at [2i, 2i+1]. */
  private t: Uint32Array;
  /** Compact slots: slot i at [3i, 3i+2]; null while the table is wide. */
  private c: Uint16Array | null = null;
  private k: number;
  private mask: number;
  size = 0;
  /** True when keys are the packed states themselves (no fingerprinting). */
  readonly exact: boolean;
  private readonly W: number;
  private readonly shared: boolean;
  /** Compact tables grow in place (see compact); off for small short-lived sets. */
  private readonly inPlace: boolean;
  /**
   * Bumped (Atomics) before the table is changed in place. A reader's hit only counts if the
   * count is still what its share says after the lookup (see stable).
   */
  private readonly epoch: Int32Array;
  /** A reader's: the epoch its share was made at. */
  private readonly epochAt: number = 0;
  /**
   * A view of another thread's set (attach). The owner writes a slot's last word (h1, or a
   * compact slot's distance field) with Atomics.store; the view confirms a match by reading
   * that word again with Atomics.load before the others, so a hit is never a half-written
   * slot. A miss may be one, which only costs the owner a lookup of its own. (Atomics.load
   * costs ~10x a plain load here, so it is kept to the one slot that matches.)
   */
  private readonly reader: boolean = false;
  private readonly kk = new Uint32Array(2);

  /**
   * How the table grew: doublings in place, copies into a new buffer, and growths past the
   * size `growthBytes` announced (a key too far from home in the new table; tests look at these).
   */
  readonly growths = { inPlace: 0, copied: 0, further: 0 };

  /** Bytes a compact table's buffer reserves (a test sets more than can be reserved). */
  static reserve = 6 * 2 ** MAX_COMPACT_K;

  /** Tables of 2^compactBits slots and more are compact (a parameter for tests only). */
  private readonly compactBits: number;

  constructor(W: number, stateBitsInLastWord: number, initialCapacity = 1 << 10, shared = false, compactBits = COMPACT_BITS, inPlace = true) {
    this.W = W;
    this.shared = shared;
    this.inPlace = inPlace;
    this.epoch = new Int32Array(shared ? new SharedArrayBuffer(4) : new ArrayBuffer(4));
    // 17 to 24: a compact slot's distance field needs k - 16 >= 1 bits, and wide slots are
    // sized for tables of up to 2^23 slots (8 << k bytes).
    this.compactBits = Math.min(COMPACT_BITS, Math.max(17, compactBits));
    this.exact = W === 1 || (W === 2 && stateBitsInLastWord < 32);
    let k = 1;
    while (1 << k < initialCapacity) k++;
    this.k = Math.min(k, this.compactBits - 1);
    this.mask = (1 << this.k) - 1;
    this.t = this.wide(this.k);
  }

  /** A read-only view of a set owned by another thread (its table as of `share`). */
  static attach(share: VisitedShare): VisitedSet {
    const v = Object.create(VisitedSet.prototype) as VisitedSet;
    const compact = share.compact;
    // Views of the table's length when shared: the owner may have grown the buffer since.
    Object.assign(v, {
      t: compact ? new Uint32Array(0) : new Uint32Array(share.buffer, 0, 2 << share.k),
      c: compact ? new Uint16Array(share.buffer, 0, 3 * 2 ** share.k) : null,
      k: share.k,
      mask: (1 << share.k) - 1,
      size: 0,
      exact: share.exact,
      W: share.W,
      shared: true,
      inPlace: false,
      reader: true,
      epoch: share.epoch,
      epochAt: share.at,
      kk: new Uint32Array(2),
    });
    return v;
  }

  share(): VisitedShare {
    if (!this.shared) throw new Error("visited set is not shared");
    return {
      buffer: (this.c ?? this.t).buffer as SharedArrayBuffer, W: this.W, exact: this.exact, k: this.k, compact: this.c !== null,
      epoch: this.epoch, at: Atomics.load(this.epoch, 0),
    };
  }

  /**
   * A reader: true while the owner has not changed the table in place since the share was
   * made. A hit counts only if this is still true after it: an in-place rebuild moves keys
   * and changes the slot format under the reader.
   */
  stable(): boolean {
    return !this.reader || Atomics.load(this.epoch, 0) === this.epochAt;
  }

  /** A buffer of `bytes` that cannot grow: shared when the set is. */
  private fixed(bytes: number): ArrayBuffer | SharedArrayBuffer {
    return this.shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
  }

  /** A wide table of 2^k slots (never over 2^23: bigger tables are compact). */
  private wide(k: number): Uint32Array {
    return new Uint32Array(this.fixed(8 << k));
  }

  /**
   * A compact table of 2^k slots, in a buffer that can grow in place up to 2^MAX_COMPACT_K
   * slots. Only compact tables grow in place: V8 does not count a growable buffer as
   * external memory, so a dropped one (a wide table) would wait for an unrelated full GC
   * to be freed (measured: RefPin N = 7 ended 55 MB higher).
   */
  private compact(k: number): Uint16Array {
    const n = 3 * 2 ** k;
    // A view of fixed length: one that tracks a growable buffer's length is slower to index.
    if (this.inPlace && 2 * n < VisitedSet.reserve) {
      try {
        return new Uint16Array(new GrowableBuffer(2 * n, { maxByteLength: VisitedSet.reserve }), 0, n);
      } catch (e) {
        // No room to reserve (a `ulimit -v` below about 4 GB): a table that is copied as it grows.
        if (!(e instanceof RangeError)) throw e;
      }
    }
    return new Uint16Array(this.fixed(2 * n));
  }

  get fingerprintBits(): number {
    return this.exact ? 0 : 64;
  }

  get bytes(): number {
    return this.c ? this.c.byteLength : this.t.byteLength;
  }

  /** Writes the key of the state at src[off..off+W) to dst[at], dst[at+1]. */
  keyInto(src: Uint32Array, off: number, dst: Uint32Array, at: number): void {
    if (this.exact) {
      const hi = (this.W === 2 ? src[off + 1] : 0) | 0x80000000;
      // For a given hi, fmix(lo ^ c) is a bijection of lo: distinct states, distinct keys.
      dst[at] = fmix(src[off] ^ Math.imul(hi, 0x9e3779b1));
      dst[at + 1] = hi;
    } else {
      fingerprint(src, off, this.W, dst, at);
      // h1 is never 0, as for exact keys: a slot whose h1 reads 0 is free or half-written.
      if (dst[at + 1] === 0) dst[at + 1] = 1;
    }
  }

  /** Is the state at buf[off..off+W) in the set? */
  has(buf: Uint32Array, off: number): boolean {
    this.keyInto(buf, off, this.kk, 0);
    return this.hasKey(this.kk[0], this.kk[1]);
  }

  /**
   * Touches the home slots of `n` keys (at c[j*stride + keyOff]) with plain loads, so that
   * the cache misses of a batch overlap instead of being paid one insert at a time.
   */
  touch(c: Uint32Array, n: number, stride: number, keyOff: number, skip?: Uint8Array): number {
    const mask = this.mask;
    let x = 0;
    if (this.c !== null) {
      const t = this.c;
      for (let j = 0, o = keyOff; j < n; j++, o += stride) if (skip === undefined || skip[j] === 0) x ^= t[3 * (c[o] & mask) + 2];
    } else {
      const t = this.t;
      for (let j = 0, o = keyOff; j < n; j++, o += stride) if (skip === undefined || skip[j] === 0) x ^= t[2 * (c[o] & mask)];
    }
    return x;
  }

  /** The next doubling can be done in place (the wide-to-compact change cannot). */
  private canGrowInPlace(): boolean {
    const buf = (this.c ?? this.t).buffer as GrowableBuffer;
    return this.c !== null && buf.growable && 6 * 2 ** (this.k + 1) <= buf.maxByteLength;
  }

  /** Bytes the next doubling allocates: the added half in place, else the whole new table. */
  get growthBytes(): number {
    const k = this.k + 1;
    const bytes = (k >= this.compactBits ? 6 : 8) * 2 ** k;
    return this.canGrowInPlace() ? bytes - this.bytes : bytes;
  }

  /** Adding one more key makes the table double. */
  get growsOnNextAdd(): boolean {
    return this.size + 1 > MAX_LOAD * (this.mask + 1);
  }

  /** Inserts the key; returns true if it was not there before. */
  addKey(h0: number, h1: number): boolean {
    const at = this.find(h0, h1);
    if (at === -1) return false;
    if (at === -2) {
      // Too far from home for a compact slot: grow (the key is not in the set) and retry.
      this.grow();
      return this.addKey(h0, h1);
    }
    this.put(at, h0, h1);
    if (++this.size > MAX_LOAD * (this.mask + 1)) this.grow();
    return true;
  }

  hasKey(h0: number, h1: number): boolean {
    return this.find(h0, h1) === -1;
  }

  /** -1 when the key is in the set; else the free slot it would take, or -2 when none is near enough. */
  private find(h0: number, h1: number): number {
    const mask = this.mask;
    let i = h0 & mask;
    if (this.c === null) {
      const t = this.t, reader = this.reader;
      for (;;) {
        const a = t[2 * i], b = t[2 * i + 1];
        if (a === 0 && b === 0) return i;
        if (a === h0 && b === h1 && (!reader || (Atomics.load(t, 2 * i + 1) === h1 && t[2 * i] === h0))) return -1;
        i = (i + 1) & mask;
      }
    }
    const c = this.c, db = this.k - 16, dmax = (1 << db) - 1, reader = this.reader;
    const hi = (h0 >>> this.k) << db, lo0 = h1 & 0xffff, lo1 = h1 >>> 16;
    for (let d = 1; d <= dmax; d++) {
      const f = c[3 * i + 2];
      if (f === 0) return i;
      if (f === (hi | d) && (!reader || Atomics.load(c, 3 * i + 2) === f) && c[3 * i] === lo0 && c[3 * i + 1] === lo1) return -1;
      i = (i + 1) & mask;
    }
    return -2;
  }

  /** Writes the key into free slot i. */
  private put(i: number, h0: number, h1: number): void {
    if (this.c === null) {
      this.t[2 * i] = h0;
      if (this.shared) Atomics.store(this.t, 2 * i + 1, h1);
      else this.t[2 * i + 1] = h1;
      return;
    }
    const db = this.k - 16;
    this.c[3 * i] = h1 & 0xffff;
    this.c[3 * i + 1] = h1 >>> 16;
    const f = ((h0 >>> this.k) << db) | (((i - (h0 & this.mask)) & this.mask) + 1);
    if (this.shared) Atomics.store(this.c, 3 * i + 2, f);
    else this.c[3 * i + 2] = f;
  }

  private grow(): void {
    if (this.growInPlace()) return;
    this.growths.copied++;
    const oldT = this.t, oldC = this.c, oldK = this.k, oldMask = this.mask;
    // A key too far from home in the new table too (rare): try the next size up.
    for (let k = oldK + 1; !this.rebuild(oldT, oldC, oldK, oldMask, k); k++) this.growths.further++;
  }

  /** The key in slot j of a table of 2^k slots (wide `t` or compact `c`) into out[0..1]; false for a free slot. */
  private static slotKey(t: Uint32Array, c: Uint16Array | null, k: number, j: number, out: Uint32Array): boolean {
    if (c === null) {
      out[0] = t[2 * j];
      out[1] = t[2 * j + 1];
      return out[0] !== 0 || out[1] !== 0;
    }
    const f = c[3 * j + 2];
    if (f === 0) return false;
    const db = k - 16;
    const home = (j - ((f & ((1 << db) - 1)) - 1)) & ((1 << k) - 1);
    out[0] = ((f >>> db) << k) | home;
    out[1] = c[3 * j] | (c[3 * j + 1] << 16);
    return true;
  }

  /**
   * Doubles a compact table in its own buffer (2^k to 2^(k+1) slots); false when it cannot
   * (a wide table, or past what the buffer reserves). The old slots are taken in
   * order from just after a free one (so each cluster from its start), cleared, and their key
   * put where the doubled table wants it. One rule keeps it sound: a key is never placed
   * past a slot that still holds an old key, since clearing that slot later would cut the
   * key off from its home; a probe that reaches one defers the key to the end. No test has
   * seen a key deferred: the keys of one old cluster that go to the same half are fewer than
   * the cluster's, with the same homes (plus 2^k), so each lands no further than its old slot
   * (plus 2^k), which is taken already. The rule is kept all the same: it costs one compare.
   */
  private growInPlace(): boolean {
    if (!this.canGrowInPlace()) return false;
    const oldK = this.k, k = oldK + 1, oldC = this.c!, oldMask = this.mask, m = oldMask + 1;
    const buf = oldC.buffer as GrowableBuffer;
    // Readers' hits from here on do not count (see stable).
    Atomics.add(this.epoch, 0, 1);
    buf.grow(6 * 2 ** k);
    this.k = k;
    this.mask = (1 << k) - 1;
    const c = (this.c = new Uint16Array(buf, 0, 3 * 2 ** k)), mask = this.mask, key = this.kk;
    const dmax = (1 << (k - 16)) - 1;
    let start = 0;
    while (oldC[3 * start + 2] !== 0) start++;
    start = (start + 1) & oldMask;
    const deferred: number[] = [];
    for (let p = 0; p < m; p++) {
      const j = (start + p) & oldMask;
      if (!VisitedSet.slotKey(this.t, oldC, oldK, j, key)) continue;
      const h0 = key[0], h1 = key[1];
      c[3 * j] = c[3 * j + 1] = c[3 * j + 2] = 0;
      // Old slots (start + q) & oldMask for q <= p are taken; the upper half holds new keys only.
      for (let i = h0 & mask, d = 1; ; i = (i + 1) & mask, d++) {
        if (i < m && ((i - start) & oldMask) > p) {
          deferred.push(h0, h1);
          break;
        }
        if (c[3 * i + 2] === 0) {
          if (d > dmax) deferred.push(h0, h1);
          else this.put(i, h0, h1);
          break;
        }
      }
    }
    const homeless: number[] = [];
    for (let x = 0; x < deferred.length; x += 2) {
      const at = this.find(deferred[x], deferred[x + 1]);
      if (at === -1) throw new Error("internal: a key twice in the visited set");
      if (at === -2) homeless.push(deferred[x], deferred[x + 1]);
      else this.put(at, deferred[x], deferred[x + 1]);
    }
    this.growths.inPlace++;
    // A key too far from home for a compact slot (rare): a larger table, in a new buffer.
    if (homeless.length > 0) {
      this.growths.further++;
      for (let kk = k + 1; !this.rebuild(this.t, this.c, k, mask, kk, homeless); kk++) this.growths.further++;
    }
    return true;
  }

  /** Moves every key of the old table, and `extra` keys (pairs), into a new one of 2^k slots; false if one does not fit. */
  private rebuild(oldT: Uint32Array, oldC: Uint16Array | null, oldK: number, oldMask: number, k: number, extra: readonly number[] = []): boolean {
    this.k = k;
    this.mask = (1 << this.k) - 1;
    if (this.k >= this.compactBits) {
      this.c = this.compact(k);
      this.t = new Uint32Array(0);
    } else this.t = this.wide(k);
    const key = this.kk;
    const slots = oldMask + 1;
    for (let j = 0; j < slots + extra.length / 2; j++) {
      if (j < slots) {
        if (!VisitedSet.slotKey(oldT, oldC, oldK, j, key)) continue;
      } else {
        key[0] = extra[2 * (j - slots)];
        key[1] = extra[2 * (j - slots) + 1];
      }
      const h0 = key[0], h1 = key[1];
      const at = this.find(h0, h1);
      if (at === -2) return false;
      if (at === -1) throw new Error("internal: a key twice in the visited set");
      this.put(at, h0, h1);
    }
    return true;
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
