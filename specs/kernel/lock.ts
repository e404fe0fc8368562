// Spinlocks and mutexes held across the steps of a thread. `holder` is 0 when the lock is
// free, else the 1-based id of the thread that holds it. A step that needs a held lock is
// simply not enabled (the thread is blocked); a state where nothing can run but some
// thread is mid-call is a deadlock (see `busy` in the spec).
import { z } from "zod";
import { Fault, SpecError } from "../../checker/spec.ts";

export interface Lock {
  holder: number;
}

export function lockSchema(threads: number) {
  return z.object({ holder: z.number().int().min(0).max(threads) });
}

export function unlocked(): Lock {
  return { holder: 0 };
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
