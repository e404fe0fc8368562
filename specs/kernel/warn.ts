// Where the kernel only WARNs and goes on.
//
// By default a WARN is a Fault: the run stops there, with the kernel's message. A spec that
// wants to see what the kernel does next (a saturated refcount leaks, a file_ref_inc on a
// dead file leaves a dangling pointer, a module_put at 0 changes nothing) gives the object a
// `warned` field in its schema (the schema factories take `{ warn: true }`). The helpers then
// set `warned`, apply the kernel's after-WARN behaviour, and return normally.
//
// Why a boolean in the object rather than a counter or an option argument: the state stays
// finite without a bound to choose (most of these are WARN_ONCE in the kernel anyway), the
// mode is decided once where the object is declared instead of at every call, and a property
// reads it directly (`!s.kvm.users.warned`, or `noneWarned(...)`).
import { z } from "zod";
import { Fault } from "../../checker/spec.ts";

export interface MayWarn {
  /** Present when the object records WARNs and goes on; true once one fired. */
  warned?: boolean;
}

/** The schema field of an object that records WARNs. */
export const warnedField = z.boolean();

/**
 * True when the object records WARNs (its schema has `warned`) instead of faulting. Asks with
 * `in`: the checker's state view refuses to read a field its schema does not have.
 */
export function recordsWarns(o: MayWarn): boolean {
  return "warned" in o;
}

/**
 * A kernel WARN on `o`: throws a Fault with `message` unless the object records WARNs, in
 * which case it marks `warned` and returns (the caller then does what the kernel does next).
 */
export function kernelWarn(o: MayWarn, message: string): void {
  if (!recordsWarns(o)) throw new Fault(message, o);
  o.warned = true;
}

/** No object has gone past a WARN (an invariant for specs in record mode). */
export function noneWarned(...objs: MayWarn[]): boolean {
  return objs.every((o) => !recordsWarns(o) || o.warned !== true);
}
