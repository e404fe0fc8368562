// Spinlocks and mutexes held across the steps of a thread. `holder` is 0 when the lock is
// free, else the 1-based id of the thread that holds it. A step that needs a held lock is
// simply not enabled (the thread is blocked); a state where nothing can run but some
// thread is mid-call is a deadlock (see `busy` in the spec).
import { z } from "zod";
import { Fault } from "../../checker/spec.ts";

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

/** mutex_lock / spin_lock by thread `tid`: only call when `isFree` (the guard of the step). */
export function acquire(l: Lock, tid: number, name: string): void {
  if (l.holder === tid) throw new Fault(`possible recursive locking detected: thread ${tid} takes ${name} again`, l);
  if (l.holder !== 0) throw new Fault(`BUG: ${name} taken by thread ${tid} while thread ${l.holder} holds it`, l);
  l.holder = tid;
}

export function release(l: Lock, tid: number, name: string): void {
  if (l.holder !== tid) throw new Fault(`BUG: thread ${tid} unlocks ${name}, which it does not hold`, l);
  l.holder = 0;
}
