// Threads as labelled steps: generated guards (a lock another thread holds blocks), lockdep's
// reports (recursive locking, bad unlock balance, order cycles), deadlock with the lock each
// thread waits for, and the thread of every trace step.
import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { check, defineSpec, SpecError } from "../checker/index.ts";
import { lockSchema, unlocked } from "../specs/kernel/lock.ts";
import { threadSchema } from "../specs/kernel/thread.ts";

/** Two threads taking locks A and B (thread 2 in `order`), each once; `outer` serializes both with C. */
function twoThreads(order: "ab" | "ba", outer = false) {
  const first = order === "ab" ? "A" : "B", second = order === "ab" ? "B" : "A";
  return defineSpec({
    name: `tmp/threads-${order}${outer ? "-outer" : ""}`,
    params: z.object({}),
    state: () =>
      z.object({
        a: lockSchema(2),
        b: lockSchema(2),
        c: lockSchema(2),
        t1: threadSchema(["takeB", "unlock"], {}, { once: true }),
        t2: threadSchema(["second", "unlock"], {}, { once: true }),
        work: z.number().int().min(0).max(2),
      }),
    init: () => ({ a: unlocked(), b: unlocked(), c: unlocked(), t1: { pc: "idle" as const }, t2: { pc: "idle" as const }, work: 0 }),
    actions: () => ({}),
    locks: (s) => ({ A: s.a, B: s.b, C: s.c }),
    threads: {
      ioctl: {
        id: 1,
        pc: (s) => s.t1,
        once: true,
        steps: {
          takeA: { lock: outer ? ["C", "A"] : "A" },
          takeB: { lock: "B", then: (s) => { s.work += 1; } },
          unlock: { unlock: outer ? ["B", "A", "C"] : ["B", "A"] },
        },
      },
      release: {
        id: 2,
        pc: (s) => s.t2,
        once: true,
        steps: {
          first: { lock: outer ? ["C", first] : first },
          second: { lock: second, then: (s) => { s.work += 1; } },
          unlock: { unlock: outer ? ["A", "B", "C"] : ["A", "B"] },
        },
      },
    },
    reachable: { bothWorked: (s) => s.work === 2 },
  });
}

const prop = (v: ReturnType<typeof check>, name: string) => v.properties.find((p) => p.name === name)!;

test("threads: the same lock order never deadlocks and has no order cycle", () => {
  const v = check(twoThreads("ab"));
  assert.equal(prop(v, "noDeadlock").status, "holds");
  assert.equal(prop(v, "lockOrder").status, "holds");
  assert.equal(prop(v, "bothWorked").status, "reachable");
  // Every step of a thread's trace names the thread that ran it.
  const steps = prop(v, "bothWorked").trace!.steps.slice(1);
  assert.ok(steps.length > 0 && steps.every((s) => s.thread === (s.action!.startsWith("ioctl.") ? "ioctl" : "release")));
});

test("threads: ABBA deadlocks, the message names the lock each waits for and who holds it", () => {
  const v = check(twoThreads("ba"));
  const d = prop(v, "noDeadlock");
  assert.equal(d.status, "violated");
  assert.equal(d.trace!.length, 2);
  assert.match(d.message!, /waiting for B held by release|waiting for A held by ioctl/);
  assert.equal(prop(v, "lockOrder").status, "violated");
  assert.match(prop(v, "lockOrder").message!, /possible circular locking dependency detected/);
});

test("threads: an outer lock hides the deadlock, lockdep's order cycle is still reported", () => {
  const v = check(twoThreads("ba", true));
  assert.equal(prop(v, "noDeadlock").status, "holds", "C serializes the two threads");
  const o = prop(v, "lockOrder");
  assert.equal(o.status, "violated");
  assert.match(o.message!, /B taken while holding A.*A taken while holding B|A taken while holding B.*B taken while holding A/);
});

function oneThread(steps: Record<string, object>, extra: object = {}) {
  return defineSpec({
    name: "tmp/one-thread",
    params: z.object({}),
    state: () => z.object({ l: lockSchema(1), t: threadSchema(["s2", "s3"], {}, { once: true }) }),
    init: () => ({ l: unlocked(), t: { pc: "idle" as const } }),
    actions: () => ({}),
    locks: (s) => ({ "kvm->lock": s.l }),
    threads: { ioctl: { id: 1, pc: (s) => s.t, once: true, steps: steps as any, ...extra } },
  });
}

test("threads: taking a lock the thread holds is lockdep's recursive locking, not a wait", () => {
  const v = check(oneThread({ s1: { lock: "kvm->lock" }, s2: { lock: "kvm->lock" }, s3: { unlock: "kvm->lock" } }));
  const f = prop(v, "noFault");
  assert.equal(f.status, "violated");
  assert.match(f.message!, /possible recursive locking detected: ioctl .* kvm->lock/);
  assert.equal(f.trace!.length, 2);
  assert.equal(f.trace!.steps[2].thread, "ioctl");
});

test("threads: releasing a lock not held is lockdep's bad unlock balance", () => {
  const v = check(oneThread({ s1: {}, s2: { unlock: "kvm->lock" }, s3: {} }));
  assert.match(prop(v, "noFault").message!, /bad unlock balance detected! ioctl/);
});

test("threads: a thread still inside its call when nothing can run is a deadlock", () => {
  // s2 waits for something that never becomes true.
  const v = check(oneThread({ s1: {}, s2: { when: () => false }, s3: {} }));
  const d = prop(v, "noDeadlock");
  assert.equal(d.status, "violated");
  assert.match(d.message!, /ioctl at s2/);
});

test("threads: `next` loops back and ends the call", () => {
  let spins = 0;
  const spec = defineSpec({
    name: "tmp/retry",
    params: z.object({}),
    state: () => z.object({ n: z.number().int().min(0).max(3), t: threadSchema(["retry"], {}) }),
    init: () => ({ n: 0, t: { pc: "idle" as const } }),
    actions: () => ({}),
    threads: {
      lookup: {
        id: 1,
        pc: (s) => s.t,
        steps: {
          start: {},
          retry: { then: (s) => { spins++; s.n = Math.min(3, s.n + 1); }, next: (s) => (s.n < 3 ? "retry" : "idle") },
        },
      },
    },
    reachable: { three: (s) => s.n === 3 && s.t.pc === "idle" },
  });
  const v = check(spec);
  assert.ok(spins > 0);
  assert.equal(prop(v, "three").status, "reachable");
  assert.equal(prop(v, "three").trace!.length, 4);
});

test("threads: slips in the declaration are spec errors naming the thread and step", () => {
  const bad = (steps: Record<string, object>, extra: object = {}) => () => check(oneThread(steps, extra));
  assert.throws(bad({ s1: { lock: "kvm-lock" } }), (e: unknown) => e instanceof SpecError && /thread "ioctl", step "s1": no lock class "kvm-lock"/.test(e.message));
  assert.throws(bad({ s1: { lokc: "kvm->lock" } }), (e: unknown) => e instanceof SpecError && /step "s1": unknown key "lokc"/.test(e.message));
  assert.throws(bad({ s1: { next: "s9" } }), (e: unknown) => e instanceof SpecError && /"next" is "s9"/.test(e.message));
  assert.throws(bad({ s1: {} }, { id: 0 }), (e: unknown) => e instanceof SpecError && /"id" must be an integer >= 1/.test(e.message));
  assert.throws(bad({}), (e: unknown) => e instanceof SpecError && /"steps" must name at least one step/.test(e.message));
});

test("threads: a step named like a declared action is a spec error", () => {
  const spec = oneThread({ s1: {} });
  assert.throws(() => check({ ...spec, actions: () => ({ "ioctl.s1": { then: () => {} } }) } as any), (e: unknown) => e instanceof SpecError && /both declared and a thread's step/.test(e.message));
});
