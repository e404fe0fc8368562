// struct kref (include/linux/kref.h): a refcount_t with a release callback. Every operation
// is the refcount_t one underneath, so the faults and the record-and-saturate mode are
// refcount.ts's (a kref schema built with { warn: true } saturates and leaks like the kernel).
import { refcountDecAndTest, refcountInc, refcountIncNotZero, refcountSchema, newRefcount, type Refcount, type RefcountSchemaOptions } from "./refcount.ts";

export type Kref = Refcount;

/** A kref counting up to `max`; `{ warn: true }` records refcount_t WARNs and goes on. */
export function krefSchema(max: number, o: RefcountSchemaOptions = {}) {
  return refcountSchema(max, o);
}

/** include/linux/kref.h:kref_init: refcount_set(&kref->refcount, 1). */
export function krefInit(o: RefcountSchemaOptions = {}): Kref {
  return newRefcount(1, o);
}

/** include/linux/kref.h:kref_read. */
export function krefRead(k: Kref): number {
  return k.count;
}

/** include/linux/kref.h:kref_get: refcount_inc ("addition on 0; use-after-free." on 0). */
export function krefGet(k: Kref, what: string): void {
  refcountInc(k, what);
}

/** include/linux/kref.h:kref_get_unless_zero: refcount_inc_not_zero; false on 0. */
export function krefGetUnlessZero(k: Kref): boolean {
  return refcountIncNotZero(k);
}

/**
 * include/linux/kref.h:kref_put: refcount_dec_and_test, and on the last put `release` runs
 * in the same step. Returns whether release ran (the kernel's 1/0).
 */
export function krefPut(k: Kref, what: string, release: () => void): boolean {
  if (!refcountDecAndTest(k, what)) return false;
  release();
  return true;
}
