// Lock-order tracking as lockdep does it (Documentation/locking/lockdep-design.rst): every
// "a thread holding A took B" seen on any transition of the reachable graph adds the
// dependency A -> B between lock classes; a cycle among them is a possible deadlock even
// when the model itself never deadlocks (the interleaving that would close the cycle may
// need more threads, or other instances of the same classes, than the model has).
//
// The spec names its lock classes and where each is held: `locks: (s) => ({ slots_lock:
// s.slotsLock, ... })`, each value a lock with `holder` (0 free, else the thread id), or an
// array of them: the instances of one class (every vdevice's mutex), which lockdep keys
// alike. Holding one instance while taking another of the same class is lockdep's
// "possible recursive locking" (kernel/locking/lockdep.c:check_deadlock), a cycle of one.
// This is a fact gathered over all reachable transitions: the explorer reports each
// transition to `observe`, and the verdict is decided when the search is complete.

/** A dependency A -> B and the first transition that showed it. */
export interface OrderEdge {
  from: string;
  to: string;
  /** The state the transition starts from, and the action instance taken. */
  state: number;
  instance: number;
  thread: number;
}

/** A lock's holder (0: free); `sub`, where the schema keeps one, the subclass it was taken with. */
export type Lock = { holder: number; sub?: number };
/** Lock classes: one lock, or the instances of a class as an array. */
export type LockSet = Record<string, Lock | readonly Lock[]>;
export type LocksOf = (s: any) => LockSet;

/** One lock: its class, the instance (-1 for a class with one lock) and the name it is shown by. */
export interface LockRef {
  cls: string;
  idx: number;
  name: string;
  /** The subclass it is taken with (mutex_lock_nested), 0 for a plain lock. */
  sub: number;
  /** lockdep's class: `cls`, or "cls/sub" for a nested subclass. */
  key: string;
}

/** What the spec's `locks` gives for a class: its instances (-1: one lock) and whether it keeps subclasses. */
export interface LockClassShape {
  instances: number;
  subclasses: boolean;
}

/** lockdep's class of a lock of class `cls` taken with subclass `sub`: "cls/k" for k > 0. */
export const lockClassKey = (cls: string, sub: number | undefined): string => (sub ? `${cls}/${sub}` : cls);

/** The class lock `l` of class `cls` is held as. */
// `in`, not a read: a state view traps a field its schema does not have.
const classKey = (cls: string, l: Lock): string => lockClassKey(cls, "sub" in l ? l.sub : 0);

/**
 * The locks a thread's step takes, in order, from state `before` (see checker/threads.ts);
 * undefined for an action that declares none (a hand-written acquire), judged from the states.
 * Declared acquisitions see a lock taken and released within one step, which states do not.
 */
export type TakesOf = (instance: number, before: any) => { thread: number; locks: readonly LockRef[] } | undefined;

export interface Dependency {
  from: string;
  to: string;
  thread: number;
}

export function lockAt(locks: LockSet, r: LockRef): Lock {
  const l = locks[r.cls]!;
  return r.idx < 0 ? (l as Lock) : (l as readonly Lock[])[r.idx]!;
}

/** Every lock of the set with its holder and lockdep class. */
function held(locks: LockSet): [key: string, idx: number, holder: number][] {
  const out: [string, number, number][] = [];
  for (const cls in locks) {
    const l = locks[cls]!;
    if (Array.isArray(l)) l.forEach((x: Lock, i: number) => out.push([classKey(cls, x), i, x.holder]));
    else out.push([classKey(cls, l as Lock), -1, (l as Lock).holder]);
  }
  return out;
}

/** The locks thread `t` holds, with the lockdep class each was taken as. */
function heldBy(locks: LockSet, t: number): { cls: string; idx: number; key: string }[] {
  const out: { cls: string; idx: number; key: string }[] = [];
  for (const cls in locks) {
    const l = locks[cls]!;
    if (!Array.isArray(l)) {
      if ((l as Lock).holder === t) out.push({ cls, idx: -1, key: classKey(cls, l as Lock) });
    } else {
      for (let i = 0; i < l.length; i++) {
        const x = (l as readonly Lock[])[i]!;
        if (x.holder === t) out.push({ cls, idx: i, key: classKey(cls, x) });
      }
    }
  }
  return out;
}

/** The dependencies the transition `before` -> `after` by action instance `instance` adds. */
export function dependencies(locksOf: LocksOf, takesOf: TakesOf | undefined, before: any, after: any, instance: number): Dependency[] {
  const out: Dependency[] = [];
  const decl = takesOf?.(instance, before);
  if (decl) {
    if (decl.locks.length === 0) return out;
    const t = decl.thread;
    const mine = heldBy(locksOf(before), t);
    for (const l of decl.locks) {
      for (const h of mine) if (h.cls !== l.cls || h.idx !== l.idx) out.push({ from: h.key, to: l.key, thread: t });
      mine.push(l);
    }
    return out;
  }
  const b = held(locksOf(before)), a = held(locksOf(after));
  for (let j = 0; j < a.length; j++) {
    const t = a[j]![2];
    if (t === 0 || b[j]![2] === t) continue;
    for (let i = 0; i < b.length; i++) {
      if (i !== j && b[i]![2] === t && a[i]![2] === t) out.push({ from: b[i]![0], to: a[j]![0], thread: t });
    }
  }
  return out;
}

export class LockOrder {
  /** "A\0B" -> the first transition seen taking B while holding A. */
  readonly edges = new Map<string, OrderEdge>();

  constructor(
    private readonly locksOf: LocksOf,
    private readonly takesOf?: TakesOf,
  ) {}

  /** A transition `before` -> `after` by action instance `instance` from state `state`. */
  observe(before: any, after: any, state: number, instance: number): void {
    for (const d of dependencies(this.locksOf, this.takesOf, before, after, instance)) {
      const key = `${d.from}\0${d.to}`;
      if (!this.edges.has(key)) this.edges.set(key, { from: d.from, to: d.to, state, instance, thread: d.thread });
    }
  }

  /** Adds edges found elsewhere (a worker), keeping the one first in search order. */
  merge(edges: Iterable<OrderEdge>): void {
    for (const e of edges) {
      const key = `${e.from}\0${e.to}`;
      const old = this.edges.get(key);
      if (!old || e.state < old.state || (e.state === old.state && e.instance < old.instance)) this.edges.set(key, e);
    }
  }

  /**
   * A cycle of dependencies, as the edges that make it, or null. The shortest cycle through
   * the edge closed last in search order is returned, so the report is deterministic.
   */
  cycle(): OrderEdge[] | null {
    const out = new Map<string, OrderEdge[]>();
    for (const e of this.edges.values()) {
      if (!out.has(e.from)) out.set(e.from, []);
      out.get(e.from)!.push(e);
    }
    let best: OrderEdge[] | null = null;
    const ordered = [...this.edges.values()].sort((x, y) => x.state - y.state || x.instance - y.instance);
    for (const e of ordered) {
      // Shortest path e.to -> ... -> e.from (BFS), closing the cycle with e.
      const prev = new Map<string, OrderEdge | null>([[e.to, null]]);
      const queue = [e.to];
      while (queue.length && !prev.has(e.from)) {
        const n = queue.shift()!;
        for (const x of out.get(n) ?? []) {
          if (prev.has(x.to)) continue;
          prev.set(x.to, x);
          queue.push(x.to);
        }
      }
      if (!prev.has(e.from)) continue;
      const path: OrderEdge[] = [];
      for (let n = e.from; prev.get(n); n = prev.get(n)!.from) path.unshift(prev.get(n)!);
      const c = [...path, e];
      if (!best || c.length < best.length) best = c;
    }
    return best;
  }
}

/** lockdep's words for a cycle: each dependency as "thread T took B while holding A". */
export function describeCycle(cycle: OrderEdge[], label: (instance: number) => string): string {
  if (cycle.length === 1) {
    const e = cycle[0]!;
    return `possible recursive locking detected: ${e.to} taken while holding another ${e.from} (thread ${e.thread}, ${label(e.instance)})`;
  }
  const chains = cycle.map((e) => `${e.to} taken while holding ${e.from} (thread ${e.thread}, ${label(e.instance)})`);
  return `possible circular locking dependency detected: ${chains.join("; and ")}`;
}
