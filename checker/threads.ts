// Threads as labelled steps (like PlusCal labels): a kernel function that is not atomic as
// a whole is a sequence of steps, each one action, with locks held across steps. From the
// declaration come the guards a spec author would otherwise write by hand (the thread is at
// this label; the locks it takes are free or its own), the lock bookkeeping in lockdep's
// words, the thread of each trace step, and `busy` for deadlock detection.
import { SpecError, Fault, type ActionDef } from "./spec.ts";

export interface StepDef<S> {
  /** Lock classes (names from the spec's `locks`) the step takes first: it waits while another thread holds one. */
  lock?: string | readonly string[];
  /** Lock classes the step releases after its effect. */
  unlock?: string | readonly string[];
  /** Await: the step runs only once this holds (on top of its locks being free). */
  when?: (s: S) => boolean;
  then?: (s: S) => void;
  /** The step to go to next; default the next one in order. "idle" (or "done" with `once`) ends the call. */
  next?: string | ((s: S) => string);
  /** The kernel code the step stands for, shown in traces. */
  kernel?: string;
}

export interface ThreadDef<S> {
  /** The thread's id as a lock holder: 1-based, one per thread. */
  id: number;
  /** Where its program counter lives: a field made with threadSchema (specs/kernel/thread.ts). */
  pc: (s: S) => { pc: string };
  /** The kernel function the thread runs, shown when a step names none. */
  kernel?: string;
  /** Runs its steps once, ending at "done", instead of returning to "idle" to run again. */
  once?: boolean;
  /** The steps in program order; the first runs from "idle". */
  steps: Record<string, StepDef<S>>;
}

type Lock = { holder: number };
const list = (x: string | readonly string[] | undefined): readonly string[] => (x === undefined ? [] : typeof x === "string" ? [x] : x);
const stepKeys = new Set(["lock", "unlock", "when", "then", "next", "kernel"]);
const threadKeys = new Set(["id", "pc", "kernel", "once", "steps"]);

export interface CompiledThreads {
  actions: Record<string, ActionDef<any, any>>;
  /** The first thread inside a call, and what it waits for: the spec's `busy`. */
  busy: (s: any) => string | undefined;
}

/**
 * The actions of every thread's steps, named "thread.label". `locksOf` is the spec's
 * `locks`; `lockNames` the classes it gives (checked against what the steps name).
 */
export function compileThreads(
  where: string,
  threads: Record<string, ThreadDef<any>>,
  locksOf: ((s: any) => Record<string, Lock>) | undefined,
  lockNames: readonly string[],
): CompiledThreads {
  const actions: Record<string, ActionDef<any, any>> = {};
  const ids = new Map<number, string>();
  const all: [string, ThreadDef<any>, string[]][] = [];
  for (const [name, t] of Object.entries(threads)) {
    const at = `${where}, thread "${name}"`;
    if (!t || typeof t !== "object") throw new SpecError(`${at}: expected { id, pc, steps, kernel?, once? }`);
    for (const k of Object.keys(t)) if (!threadKeys.has(k)) throw new SpecError(`${at}: unknown key "${k}"; expected one of ${[...threadKeys].join(", ")}`);
    if (!Number.isInteger(t.id) || t.id < 1) throw new SpecError(`${at}: "id" must be an integer >= 1 (0 means a free lock)`);
    if (ids.has(t.id)) throw new SpecError(`${at}: id ${t.id} is also thread "${ids.get(t.id)}"'s; each thread needs its own`);
    ids.set(t.id, name);
    if (typeof t.pc !== "function") throw new SpecError(`${at}: "pc" must be a function of the state giving the thread's field, e.g. (s) => s.close`);
    const labels = t.steps && typeof t.steps === "object" ? Object.keys(t.steps) : [];
    if (labels.length === 0) throw new SpecError(`${at}: "steps" must name at least one step`);
    const end = t.once ? "done" : "idle";
    for (const label of labels) {
      const st = t.steps[label];
      const sat = `${at}, step "${label}"`;
      if (!st || typeof st !== "object") throw new SpecError(`${sat}: expected { lock?, unlock?, when?, then?, next?, kernel? }`);
      for (const k of Object.keys(st)) if (!stepKeys.has(k)) throw new SpecError(`${sat}: unknown key "${k}"; expected one of ${[...stepKeys].join(", ")}`);
      for (const l of [...list(st.lock), ...list(st.unlock)]) {
        if (!locksOf) throw new SpecError(`${sat}: takes or releases "${l}", but the spec declares no "locks"`);
        if (!lockNames.includes(l)) throw new SpecError(`${sat}: no lock class "${l}" in the spec's "locks" (${lockNames.join(", ")})`);
      }
      if (typeof st.next === "string" && st.next !== end && !labels.includes(st.next)) {
        throw new SpecError(`${sat}: "next" is "${st.next}", not a step of the thread nor "${end}"`);
      }
    }
    all.push([name, t, labels]);
    labels.forEach((label, i) => {
      const st = t.steps[label];
      const takes = list(st.lock), drops = list(st.unlock);
      const atStep = i === 0 ? (pc: string) => pc === "idle" || pc === label : (pc: string) => pc === label;
      const follow = i + 1 < labels.length ? labels[i + 1] : end;
      const sat = `${at}, step "${label}"`;
      actions[`${name}.${label}`] = {
        thread: name,
        kernel: st.kernel ?? t.kernel,
        when: (s: any) => {
          if (!atStep(t.pc(s).pc)) return false;
          if (takes.length) {
            const locks = locksOf!(s);
            // Held by another thread: this one waits. Held by itself: the step runs and lockdep reports it.
            for (const l of takes) if (locks[l].holder !== 0 && locks[l].holder !== t.id) return false;
          }
          return st.when ? st.when(s) : true;
        },
        then: (s: any) => {
          if (takes.length) {
            const locks = locksOf!(s);
            for (const l of takes) {
              if (locks[l].holder === t.id) {
                throw new Fault(`WARNING: possible recursive locking detected: ${name} (thread ${t.id}) is trying to acquire lock ${l} but already holds it (lockdep, kernel/locking/lockdep.c:print_deadlock_bug)`, locks[l]);
              }
              locks[l].holder = t.id;
            }
          }
          st.then?.(s);
          if (drops.length) {
            const locks = locksOf!(s);
            for (const l of drops) {
              if (locks[l].holder !== t.id) {
                throw new Fault(`WARNING: bad unlock balance detected! ${name} (thread ${t.id}) is trying to release lock ${l} but there are no more locks to release (lockdep, kernel/locking/lockdep.c:print_unlock_imbalance_bug)`, locks[l]);
              }
              locks[l].holder = 0;
            }
          }
          const next = typeof st.next === "function" ? st.next(s) : st.next ?? follow;
          if (next !== end && !labels.includes(next)) throw new SpecError(`${sat}: "next" gave "${next}", not a step of the thread nor "${end}"`);
          t.pc(s).pc = next;
        },
      };
    });
  }
  const busy = (s: any): string | undefined => {
    for (const [name, t, labels] of all) {
      const pc = t.pc(s).pc;
      if (pc === "idle" || pc === "done") continue;
      const st = t.steps[pc] ?? t.steps[labels[0]];
      const locks = locksOf && list(st.lock).length ? locksOf(s) : undefined;
      const held = locks ? list(st.lock).filter((l) => locks[l].holder !== 0 && locks[l].holder !== t.id) : [];
      const by = held.map((l) => `${l} held by ${ids.get(locks![l].holder) ?? `thread ${locks![l].holder}`}`);
      return `${name} at ${pc}${by.length ? `, waiting for ${by.join(" and ")}` : ""}`;
    }
    return undefined;
  };
  return { actions, busy };
}
