// Ownership declared once: per counted object, its count, whether it exists, and who holds
// its counted references. The properties every refcount design must satisfy follow from
// that declaration, with no escape clause for a spec author to get wrong:
//   <object>CountExact         while the object exists, its count equals what its holders hold;
//   <object>NoHolderAfterFree  once it is freed, nobody holds a reference to it;
//   <object>NoLeak             where no action is enabled, an object nobody holds is freed.
// A hand-written exact-count invariant usually reads `freed || count === holders`; that
// clause covers exactly the state where the object was freed while still held.
import { SpecError } from "./spec.ts";
import type { NamedPredicate } from "./compile.ts";

export interface Owned<S> {
  /** The object's reference count (refcount_t, kref, f_count, users_count...). */
  count: (s: S) => number;
  /** The object exists: allocated and not yet freed. Default: always. */
  live?: (s: S) => boolean;
  /** Who holds a counted reference, each giving how many it holds (true counts as one). */
  holders: Record<string, (s: S) => number | boolean>;
  /**
   * Uncounted (borrowed, weak) pointers to the object, each true while it points there.
   * Not checked: drawn dashed in the ownership graph of traces.
   */
  weak?: Record<string, (s: S) => boolean>;
  doc?: string;
}

const held = (v: number | boolean): number => (typeof v === "boolean" ? (v ? 1 : 0) : v);

/** The invariants and quiescent properties an ownership declaration stands for. */
export function ownershipProperties(
  where: string,
  decl: Record<string, Owned<any>>,
): { invariants: NamedPredicate[]; quiescent: NamedPredicate[] } {
  const invariants: NamedPredicate[] = [];
  const quiescent: NamedPredicate[] = [];
  for (const [obj, o] of Object.entries(decl)) {
    const at = `${where}, ownership "${obj}"`;
    if (!o || typeof o.count !== "function" || typeof o.holders !== "object" || o.holders === null) {
      throw new SpecError(`${at}: expected { count: (s) => number, live?: (s) => boolean, holders: { name: (s) => number | boolean } }`);
    }
    for (const k of Object.keys(o)) {
      if (!["count", "live", "holders", "weak", "doc"].includes(k)) throw new SpecError(`${at}: unknown key "${k}"; expected count, live, holders, weak, doc`);
    }
    const holders = Object.entries(o.holders);
    if (holders.length === 0) throw new SpecError(`${at}: "holders" names no holder`);
    for (const [h, f] of holders) if (typeof f !== "function") throw new SpecError(`${at}: holder "${h}" must be a function of the state`);
    if (o.weak !== undefined && (typeof o.weak !== "object" || o.weak === null || Object.values(o.weak).some((f) => typeof f !== "function"))) {
      throw new SpecError(`${at}: "weak" must name pointers, each a function of the state (true while it points at ${obj})`);
    }
    const live = o.live ?? (() => true);
    const total = (s: unknown) => holders.reduce((n, [, f]) => n + held(f(s)), 0);
    const what = o.doc ? ` (${o.doc})` : "";
    invariants.push({
      name: `${obj}CountExact`,
      doc: `while ${obj}${what} exists, its count equals the references its holders hold: ${holders.map(([h]) => h).join(" + ")}`,
      fn: (s) => !live(s) || o.count(s) === total(s),
    });
    invariants.push({
      name: `${obj}NoHolderAfterFree`,
      doc: `once ${obj} is freed, none of ${holders.map(([h]) => h).join(", ")} holds a reference to it`,
      fn: (s) => live(s) || total(s) === 0,
    });
    quiescent.push({
      name: `${obj}NoLeak`,
      doc: `where no action is enabled, ${obj} is freed unless someone holds it`,
      fn: (s) => !live(s) || total(s) > 0,
    });
  }
  return { invariants, quiescent };
}
