// Threads and locks on hand-known specs: two threads each taking two mutexes. In opposite
// orders they can deadlock (the classic ABBA); in the same order they cannot.
import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { check, defineSpec, type Verdict } from "../checker/index.ts";
import { acquire, isFree, lockSchema, release, unlocked } from "../specs/kernel/lock.ts";
import { firstBusy, threadSchema } from "../specs/kernel/thread.ts";

const stateSchema = z.object({
  a: lockSchema(2),
  b: lockSchema(2),
  /** Critical sections completed, to see that both threads can finish. */
  done: z.number().int().min(0).max(2),
  t1: threadSchema(["second", "unlock"], {}),
  t2: threadSchema(["second", "unlock"], {}),
});
type S = z.infer<typeof stateSchema>;

/** Thread 1 takes a then b; thread 2 takes b then a ("inverted") or a then b ("ordered"). */
const twoLocks = defineSpec({
  name: "test/two-locks",
  params: z.object({ design: z.enum(["inverted", "ordered"]).default("inverted") }),
  state: () => stateSchema,
  init: () => ({ a: unlocked(), b: unlocked(), done: 0, t1: { pc: "idle" as const }, t2: { pc: "idle" as const } }),
  actions: (p) => {
    const order = (tid: number): ["a" | "b", "a" | "b"] => (tid === 2 && p.design === "inverted" ? ["b", "a"] : ["a", "b"]);
    const thread = (tid: 1 | 2) => {
      const t = (s: S) => (tid === 1 ? s.t1 : s.t2);
      const [first, second] = order(tid);
      return {
        [`T${tid}First`]: {
          when: (s: S) => t(s).pc === "idle" && s.done < 2 && isFree(s[first]),
          then: (s: S) => {
            acquire(s[first], tid, first);
            t(s).pc = "second";
          },
        },
        [`T${tid}Second`]: {
          when: (s: S) => t(s).pc === "second" && isFree(s[second]),
          then: (s: S) => {
            acquire(s[second], tid, second);
            t(s).pc = "unlock";
          },
        },
        [`T${tid}Unlock`]: {
          when: (s: S) => t(s).pc === "unlock",
          then: (s: S) => {
            release(s[second], tid, second);
            release(s[first], tid, first);
            s.done += 1;
            t(s).pc = "idle";
          },
        },
      };
    };
    return { ...thread(1), ...thread(2) };
  },
  reachable: { bothFinished: (s) => s.done === 2 },
  busy: (s) => firstBusy({ t1: s.t1, t2: s.t2 }),
});

function prop(v: Verdict, name: string) {
  const p = v.properties.find((x) => x.name === name);
  assert.ok(p, `no property ${name}`);
  return p;
}

test("lock-order inversion deadlocks (ABBA), shortest trace: each thread takes its first lock", () => {
  const v = check(twoLocks, { design: "inverted" });
  const d = prop(v, "noDeadlock");
  assert.equal(d.kind, "deadlock");
  assert.equal(d.status, "violated");
  assert.equal(d.trace?.length, 2);
  assert.deepEqual(d.trace!.steps.slice(1).map((s) => s.action).sort(), ["T1First", "T2First"]);
  assert.equal(prop(v, "noFault").status, "holds");
  assert.equal(prop(v, "bothFinished").status, "reachable");
  assert.equal(v.outcome, "fail");
});

test("the same two locks taken in one order never deadlock", () => {
  const v = check(twoLocks, { design: "ordered" });
  assert.equal(prop(v, "noDeadlock").status, "holds");
  assert.equal(prop(v, "noFault").status, "holds");
  assert.equal(prop(v, "bothFinished").status, "reachable");
  assert.equal(prop(v, "bothFinished").trace?.length, 6);
  assert.equal(v.complete, true);
  assert.equal(v.outcome, "pass");
});

test("a state with nothing enabled and no thread inside a call is quiescent, not a deadlock", () => {
  const v = check(twoLocks, { design: "ordered" });
  // Both threads finish (done = 2) and then nothing is enabled: that end state is not reported.
  assert.equal(prop(v, "noDeadlock").failed, false);
});
