// Release after close, as a liveness property: once the user has closed every fd, every
// object of the scenario is eventually freed, given that the kernel's deferred releases run.
//
// The quiescent leak checks (a spec's noLeak, ownership's <object>NoLeak) look only at states
// where nothing can run. This property looks at whole runs: it also fails where a run never
// gets there with the object freed: a reference cycle, a deferred release that faults or
// deadlocks (the run stops there), a release that keeps being put off.
import type { Fairness, Liveness } from "../../checker/spec.ts";

/**
 * The threads that run what a last put defers: __fput's task_work or delayed_fput
 * (fs/file_table.c:fput -> __fput_deferred) and RCU callbacks (kernel/rcu/tree.c:call_rcu).
 */
export type DeferredThread = "task_work" | "rcu";

/**
 * Weak fairness of each deferred-release thread the spec has (one constraint per thread: a
 * pending __fput or RCU callback is not put off forever). User threads (close, ioctl, rmmod)
 * get none: a user may never close an fd or unload a module.
 */
export function deferredReleases(...threads: DeferredThread[]): Fairness {
  return { weak: [{ thread: threads.length ? threads : ["task_work"] }] };
}

/**
 * `closed` ~> `freed`: once every fd is closed, everything `freed` names is eventually freed
 * (for each object the ownership declaration counts, and what the spec's noLeak names).
 */
export function freedOnceClosed<S>(closed: (s: S) => boolean, freed: (s: S) => boolean, what: string): Liveness<S> {
  return { leadsTo: [closed, freed], doc: `once every fd is closed, ${what} are eventually freed (the deferred releases run)` };
}
