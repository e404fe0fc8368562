// refcount_t (include/linux/refcount.h, lib/refcount.c): a counter whose misuse WARNs.
//
// Every refcount_t WARN goes through lib/refcount.c:refcount_warn_saturate, which sets the
// counter to REFCOUNT_SATURATED and then WARN_ONCEs "refcount_t: <what>.": the kernel goes on
// and the object leaks (a saturated counter never reaches 0 again). A refcount whose schema
// has `warned` (refcountSchema(max, { warn: true })) models exactly that: `warned` means
// saturated, every later increment and decrement leaves it saturated, dec_and_test is false.
import { z } from "zod";
import { kernelWarn, recordsWarns, warnedField, type MayWarn } from "./warn.ts";

export interface Refcount extends MayWarn {
  count: number;
}

export interface RefcountSchemaOptions {
  /** Record the WARN and saturate (the kernel's behaviour) instead of faulting. */
  warn?: boolean;
}

/** A refcount_t that can count up to `max` (the model's bound, not REFCOUNT_SATURATED). */
export function refcountSchema(max: number): z.ZodObject<{ count: z.ZodNumber }>;
export function refcountSchema(max: number, o: { warn: true }): z.ZodObject<{ count: z.ZodNumber; warned: z.ZodBoolean }>;
export function refcountSchema(max: number, o?: RefcountSchemaOptions): z.ZodObject<{ count: z.ZodNumber; warned: z.ZodOptional<z.ZodBoolean> }>;
export function refcountSchema(max: number, o: RefcountSchemaOptions = {}) {
  const count = z.number().int().min(0).max(max);
  return o.warn ? z.object({ count, warned: warnedField }) : z.object({ count });
}

/** refcount_set(r, n) / REFCOUNT_INIT(n); `warn` adds the record-and-saturate field. */
export function newRefcount(n = 1, o: RefcountSchemaOptions = {}): Refcount {
  return o.warn ? { count: n, warned: false } : { count: n };
}

/** The counter is saturated: a WARN fired earlier and the kernel went on (record mode). */
export function isSaturated(r: Refcount): boolean {
  return recordsWarns(r) && r.warned === true;
}

/** refcount_inc: unconditional +1; on 0 the kernel WARNs and saturates (the object leaks). */
export function refcountInc(r: Refcount, what: string): void {
  if (isSaturated(r)) return;
  if (r.count === 0) {
    kernelWarn(r, `refcount_t: addition on 0; use-after-free. (${what})`);
    return;
  }
  r.count += 1;
}

/** refcount_inc_not_zero: +1 unless 0; false on 0. A saturated counter is not 0: true. */
export function refcountIncNotZero(r: Refcount): boolean {
  if (isSaturated(r)) return true;
  if (r.count === 0) return false;
  r.count += 1;
  return true;
}

/** refcount_dec_and_test: -1, true when it reaches 0 (the caller then destroys the object). */
export function refcountDecAndTest(r: Refcount, what: string): boolean {
  if (isSaturated(r)) return false;
  if (r.count === 0) {
    kernelWarn(r, `refcount_t: underflow; use-after-free. (${what})`);
    return false;
  }
  r.count -= 1;
  return r.count === 0;
}

/**
 * refcount_dec: -1 where the caller knows it is not the last reference. An old value <= 1
 * (this put reached 0, or the count was 0 already) WARNs "decrement hit 0; leaking memory"
 * and saturates (include/linux/refcount.h:__refcount_dec, REFCOUNT_DEC_LEAK).
 */
export function refcountDec(r: Refcount, what: string): void {
  if (isSaturated(r)) return;
  if (r.count <= 1) {
    kernelWarn(r, `refcount_t: decrement hit 0; leaking memory. (${what})`);
    return;
  }
  r.count -= 1;
}

/** refcount_read: the count (a saturated counter reads as its last modelled value). */
export function refcountRead(r: Refcount): number {
  return r.count;
}
