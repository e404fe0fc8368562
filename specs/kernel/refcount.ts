// refcount_t (include/linux/refcount.h, lib/refcount.c): a counter whose misuse WARNs.
import { z } from "zod";
import { Fault } from "../../checker/spec.ts";

export interface Refcount {
  count: number;
}

/** A refcount_t that can count up to `max` (the model's bound, not REFCOUNT_SATURATED). */
export function refcountSchema(max: number) {
  return z.object({ count: z.number().int().min(0).max(max) });
}

/** refcount_inc: unconditional +1; on 0 the kernel WARNs and saturates (the object leaks). */
export function refcountInc(r: Refcount, what: string): void {
  if (r.count === 0) throw new Fault(`refcount_t: addition on 0; use-after-free. (${what})`, r);
  r.count += 1;
}

/** refcount_inc_not_zero: +1 unless 0; false on 0. */
export function refcountIncNotZero(r: Refcount): boolean {
  if (r.count === 0) return false;
  r.count += 1;
  return true;
}

/** refcount_dec_and_test: -1, true when it reaches 0 (the caller then destroys the object). */
export function refcountDecAndTest(r: Refcount, what: string): boolean {
  if (r.count === 0) throw new Fault(`refcount_t: underflow; use-after-free. (${what})`, r);
  r.count -= 1;
  return r.count === 0;
}
