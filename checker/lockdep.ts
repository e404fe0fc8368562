// Lock-order tracking as lockdep does it (Documentation/locking/lockdep-design.rst): every
// "a thread holding A took B" seen on any transition of the reachable graph adds the
// dependency A -> B between lock classes; a cycle among them is a possible deadlock even
// when the model itself never deadlocks (the interleaving that would close the cycle may
// need more threads, or other instances of the same classes, than the model has).
//
// The spec names its lock classes and where each is held: `locks: (s) => ({ slots_lock:
// s.slotsLock, ... })`, each value a lock with `holder` (0 free, else the thread id).
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

export type LocksOf = (s: any) => Record<string, { holder: number }>;

export class LockOrder {
  /** "A\0B" -> the first transition seen taking B while holding A. */
  readonly edges = new Map<string, OrderEdge>();
  private names?: string[];

  constructor(private readonly locksOf: LocksOf) {}

  /** A transition `before` -> `after` by action instance `instance` from state `state`. */
  observe(before: any, after: any, state: number, instance: number): void {
    const b = this.locksOf(before), a = this.locksOf(after);
    const names = (this.names ??= Object.keys(b));
    for (const to of names) {
      const t = a[to].holder;
      if (t === 0 || b[to].holder === t) continue;
      for (const from of names) {
        if (from === to || b[from].holder !== t || a[from].holder !== t) continue;
        const key = `${from}\0${to}`;
        if (!this.edges.has(key)) this.edges.set(key, { from, to, state, instance, thread: t });
      }
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
  const chains = cycle.map((e) => `${e.to} taken while holding ${e.from} (thread ${e.thread}, ${label(e.instance)})`);
  return `possible circular locking dependency detected: ${chains.join("; and ")}`;
}
