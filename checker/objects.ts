// What the views of a trace need from the spec's declarations: the ownership declaration's
// objects (the state paths they read, and per step their count and holders) and the lock
// classes with the path of each lock. Evaluated on the trace's plain states, after the search.
import type { Model } from "./compile.ts";
import type { LockClass, OwnedObject, OwnedState, Trace } from "./verdict.ts";

/** A read-only view of a plain state that records the leaf paths read through it. */
function recorder(state: unknown, seen: Set<string>): unknown {
  const wrap = (v: unknown, path: string): unknown => {
    if (typeof v !== "object" || v === null) {
      seen.add(path);
      return v;
    }
    return new Proxy(v as object, {
      get(t, k, r) {
        const x = Reflect.get(t, k, r);
        if (typeof k === "symbol" || typeof x === "function" || !Object.prototype.hasOwnProperty.call(t, k)) return x;
        return wrap(x, Array.isArray(t) ? `${path}[${k}]` : path ? `${path}.${k}` : k);
      },
      set: () => false,
    });
  };
  return wrap(state, "");
}

/** The leaf paths `fn` reads from `state` (empty when it throws on a plain state). */
export function pathsRead(fn: (s: any) => unknown, state: unknown): string[] {
  const seen = new Set<string>();
  try {
    fn(recorder(state, seen));
  } catch {
    return [];
  }
  return [...seen];
}

const amount = (v: unknown): number => (typeof v === "boolean" ? (v ? 1 : 0) : typeof v === "number" ? v : 0);

/** Runs spec code on a plain state for a view: a failure only leaves the view out. */
function attempt<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

/**
 * The ownership declaration as Verdict.objects, and each step's `owned` added to the traces
 * (in place). Nothing when the spec declares no ownership or its functions fail on plain states.
 */
export function ownershipOf(model: Model, traces: Trace[], init: Record<string, unknown>): OwnedObject[] | undefined {
  const decl = model.ownership;
  if (!decl) return undefined;
  const objects: OwnedObject[] = Object.entries(decl).map(([name, o]) => ({
    name,
    ...(o.doc ? { doc: o.doc } : {}),
    count: pathsRead(o.count, init),
    live: o.live ? pathsRead(o.live, init) : [],
    holders: Object.keys(o.holders),
    ...(o.weak ? { weak: Object.keys(o.weak) } : {}),
  }));
  for (const t of traces) {
    for (const step of t.steps) {
      const s = step.state;
      const owned: Record<string, OwnedState> = {};
      for (const [name, o] of Object.entries(decl)) {
        const st = attempt((): OwnedState => ({
          count: amount(o.count(s)),
          live: o.live ? !!o.live(s) : true,
          holders: Object.fromEntries(Object.entries(o.holders).map(([h, f]) => [h, amount(f(s))])),
          ...(o.weak ? { weak: Object.fromEntries(Object.entries(o.weak).map(([h, f]) => [h, !!f(s)])) } : {}),
        }));
        if (st) owned[name] = st;
      }
      step.owned = owned;
    }
  }
  return objects;
}

/**
 * The locks and the state path of each ("slotsLock" for s.slotsLock); a class of several
 * instances gives one per instance ("vdev->mutex[1]" at "vdev[1].mutex").
 */
export function lockClassesOf(model: Model, init: Record<string, unknown>): LockClass[] | undefined {
  if (!model.locks) return undefined;
  const locks = attempt(() => model.locks!(init));
  if (!locks) return undefined;
  const out: LockClass[] = [];
  const add = (name: string, holderOf: (s: any) => unknown) => {
    const holder = pathsRead(holderOf, init).find((p) => p.endsWith(".holder"));
    if (holder) out.push({ name, path: holder.slice(0, -".holder".length) });
  };
  for (const [name, l] of Object.entries(locks)) {
    if (Array.isArray(l)) l.forEach((_, i) => add(`${name}[${i}]`, (s) => (model.locks!(s)[name] as readonly { holder: number }[])[i]!.holder));
    else add(name, (s) => (model.locks!(s)[name] as { holder: number }).holder);
  }
  return out.length ? out : undefined;
}
