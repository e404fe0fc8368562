// RCU (include/linux/rcupdate.h, kernel/rcu/tree.c): read-side critical sections and grace
// periods, as steps of threads.
//
// A grace period waits for every reader that was inside a read-side section when it
// started; readers that enter later are not waited for. The model keeps, per grace-period
// slot (one per synchronize_rcu caller or call_rcu callback), the readers it still waits
// for: a reader leaving its section clears its bit in every active slot. So
//   synchronize_rcu  = startGracePeriod(rcu, g) in one step, then a step that waits for
//                      gracePeriodOver(rcu, g) and calls endGracePeriod(rcu, g);
//   call_rcu(cb)     = startGracePeriod(rcu, g) in the caller's step, and the callback as
//                      a step of an "rcu" thread guarded by gracePeriodOver(rcu, g).
// Read-side sections do not nest in the model (the kernel allows it; no seed needs it).
import { z } from "zod";
import { Fault, SpecError } from "../../checker/spec.ts";

export interface GracePeriod {
  active: boolean;
  /** wait[r]: reader r was inside its section when the grace period started and has not left it. */
  wait: boolean[];
}

export interface Rcu {
  /** reading[r]: reader r is inside rcu_read_lock() ... rcu_read_unlock(). */
  reading: boolean[];
  gp: GracePeriod[];
}

/** `readers` threads that may enter read-side sections; `gracePeriods` slots that may be pending at once. */
export function rcuSchema(readers: number, gracePeriods: number) {
  return z.object({
    reading: z.array(z.boolean()).length(readers),
    gp: z.array(z.object({ active: z.boolean(), wait: z.array(z.boolean()).length(readers) })).length(gracePeriods),
  });
}

export function rcuIdle(readers: number, gracePeriods: number): Rcu {
  return {
    reading: Array(readers).fill(false),
    gp: Array.from({ length: gracePeriods }, () => ({ active: false, wait: Array(readers).fill(false) })),
  };
}

function reader(r: Rcu, i: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= r.reading.length) throw new SpecError(`RCU reader ${i} is not one of the ${r.reading.length} the schema has (0..${r.reading.length - 1})`);
}

function slot(r: Rcu, g: number): GracePeriod {
  if (!Number.isInteger(g) || g < 0 || g >= r.gp.length) throw new SpecError(`RCU grace-period slot ${g} is not one of the ${r.gp.length} the schema has (0..${r.gp.length - 1})`);
  return r.gp[g];
}

/** rcu_read_lock (include/linux/rcupdate.h). */
export function rcuReadLock(r: Rcu, i: number): void {
  reader(r, i);
  if (r.reading[i]) throw new SpecError(`RCU reader ${i} enters a read-side section it is already in: nesting is not modelled`);
  r.reading[i] = true;
}

/** rcu_read_unlock: the reader's section ends, and no grace period waits for it any longer. */
export function rcuReadUnlock(r: Rcu, i: number): void {
  reader(r, i);
  if (!r.reading[i]) {
    // lockdep tracks rcu_read_lock as the lock "rcu_read_lock" (rcu_lock_map).
    throw new Fault(`WARNING: bad unlock balance detected! reader ${i} is trying to release lock (rcu_read_lock) but there are no more locks to release (lockdep)`, r);
  }
  r.reading[i] = false;
  for (const g of r.gp) if (g.active) g.wait[i] = false;
}

export function inReadSection(r: Rcu, i: number): boolean {
  reader(r, i);
  return r.reading[i];
}

/**
 * rcu_dereference by reader i: outside a read-side section it is lockdep-RCU's report
 * (include/linux/rcupdate.h:rcu_dereference_check, kernel/locking/lockdep.c:lockdep_rcu_suspicious).
 */
export function rcuDereference(r: Rcu, i: number, what: string): void {
  if (!inReadSection(r, i)) {
    throw new Fault(`WARNING: suspicious RCU usage: suspicious rcu_dereference_check() usage! (${what} read by reader ${i} outside rcu_read_lock)`, r);
  }
}

/**
 * The start of synchronize_rcu or call_rcu (kernel/rcu/tree.c) in slot g: the grace period
 * waits for the readers inside a section now. `caller`, a reader id, is the thread calling
 * synchronize_rcu: doing so inside its own read-side section is lockdep's report.
 */
export function startGracePeriod(r: Rcu, g: number, caller?: number): void {
  const gp = slot(r, g);
  if (gp.active) throw new SpecError(`RCU grace-period slot ${g} is started while it is still pending; give each pending synchronize_rcu or call_rcu its own slot`);
  if (caller !== undefined && inReadSection(r, caller)) {
    throw new Fault(`WARNING: suspicious RCU usage: Illegal synchronize_rcu() in RCU read-side critical section! (reader ${caller})`, r);
  }
  gp.active = true;
  for (let i = 0; i < r.reading.length; i++) gp.wait[i] = r.reading[i];
}

/** The grace period in slot g has ended: every reader it waited for has left its section. */
export function gracePeriodOver(r: Rcu, g: number): boolean {
  const gp = slot(r, g);
  return gp.active && gp.wait.every((w) => !w);
}

/** Frees slot g once its grace period is over (synchronize_rcu returns; the call_rcu callback runs). */
export function endGracePeriod(r: Rcu, g: number): void {
  if (!gracePeriodOver(r, g)) throw new SpecError(`RCU grace-period slot ${g} ends before its grace period is over; guard the step with gracePeriodOver`);
  slot(r, g).active = false;
}

/** A grace period is pending in slot g (started, not ended). */
export function gracePeriodPending(r: Rcu, g: number): boolean {
  return slot(r, g).active;
}
