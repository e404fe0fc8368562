// Spinlocks and mutexes held across the steps of a thread. `holder` is 0 when the lock is
// free, else the 1-based id of the thread that holds it. A step that needs a held lock is
// simply not enabled (the thread is blocked); a state where nothing can run but some
// thread is mid-call is a deadlock (see `busy` in the spec).
import { z } from "zod";
import { Fault, SpecError } from "../../checker/spec.ts";

export interface Lock {
  holder: number;
  /**
   * The lockdep subclass it was taken with (mutex_lock_nested(lock, subclass),
   * include/linux/mutex.h): only for a lock made with lockSchema(n, { subclasses }).
   */
  sub?: number;
}

/**
 * A lock that threads 1..`threads` may hold. With `subclasses` (2..8, lockdep's
 * MAX_LOCKDEP_SUBCLASSES), a thread's step may take it nested, "vdev->mutex[1]/1" as lockdep
 * prints it: the state keeps the subclass, and lockdep's checks see class/1 as a class of
 * its own (kernel/locking/lockdep.c:look_up_lock_class).
 */
export function lockSchema(threads: number, o: { subclasses: number }): z.ZodObject<{ holder: z.ZodNumber; sub: z.ZodNumber }>;
export function lockSchema(threads: number): z.ZodObject<{ holder: z.ZodNumber }>;
export function lockSchema(threads: number, o: { subclasses?: number } = {}) {
  const holder = z.number().int().min(0).max(threads);
  if (o.subclasses === undefined) return z.object({ holder });
  if (!Number.isInteger(o.subclasses) || o.subclasses < 2 || o.subclasses > 8) {
    throw new SpecError(`lockSchema: subclasses must be an integer from 2 to 8 (lockdep's MAX_LOCKDEP_SUBCLASSES), got ${o.subclasses}`);
  }
  return z.object({ holder, sub: z.number().int().min(0).max(o.subclasses - 1) });
}

export function unlocked(): Lock {
  return { holder: 0 };
}

/** A free lock made with lockSchema(n, { subclasses }). */
export function unlockedNestable(): Lock & { sub: number } {
  return { holder: 0, sub: 0 };
}

export function isFree(l: Lock): boolean {
  return l.holder === 0;
}

/**
 * mutex_lock / spin_lock (kernel/locking/mutex.c, include/linux/spinlock.h) by thread `tid`: only call when `isFree` (the guard of the step).
 * Taking it again in the same thread is lockdep's report (kernel/locking/lockdep.c,
 * print_deadlock_bug). Taking it while another thread holds it is a slip of the spec, not a
 * kernel bug: the kernel's mutex_lock would wait, so the step's guard must require isFree.
 */
export function acquire(l: Lock, tid: number, name: string): void {
  if (l.holder === tid) throw new Fault(`WARNING: possible recursive locking detected: thread ${tid} takes ${name} again (lockdep)`, l);
  if (l.holder !== 0) {
    throw new SpecError(
      `the step of thread ${tid} takes ${name} while thread ${l.holder} holds it; mutex_lock would wait there, so the step's guard must require isFree(${name}) (a spec error, not a kernel fault)`,
    );
  }
  l.holder = tid;
}

/** mutex_unlock / spin_unlock (kernel/locking/mutex.c, include/linux/spinlock.h): releasing a lock the thread does not hold is lockdep's imbalance report. */
export function release(l: Lock, tid: number, name: string): void {
  if (l.holder !== tid) {
    throw new Fault(`WARNING: bad unlock balance detected! thread ${tid} is trying to release lock (${name}) but there are no more locks to release (lockdep, print_unlock_imbalance_bug)`, l);
  }
  l.holder = 0;
}
