// Threads as labelled steps: generated guards (a lock another thread holds blocks), lockdep's
// reports (recursive locking, bad unlock balance, order cycles), deadlock with the lock each
// thread waits for, and the thread of every trace step.
import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { check, defineSpec, SpecError } from "../checker/index.ts";
import { lockSchema, unlocked, unlockedNestable } from "../specs/kernel/lock.ts";
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

function oneThread(steps: Record<string, object>, extra: object = {}, spec: object = {}) {
  return defineSpec({
    ...spec,
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

test("threads: without lockdep (the spec's lockdep: false) the thread waits for itself: a deadlock, not a fault", () => {
  const v = check(oneThread({ s1: { lock: "kvm->lock" }, s2: { lock: "kvm->lock" }, s3: { unlock: "kvm->lock" } }, {}, { lockdep: false }));
  assert.equal(prop(v, "noFault").status, "holds");
  const d = prop(v, "noDeadlock");
  assert.equal(d.status, "violated");
  assert.match(d.message!, /ioctl at s2, waiting for kvm->lock held by itself is blocked/);
  assert.equal(d.trace!.length, 1);
  assert.throws(() => check(oneThread({ s1: {} }, {}, { lockdep: "no" })), /"lockdep" must be true or false/);
  assert.throws(() => check({ ...oneThread({ s1: {} }), threads: undefined, actions: () => ({ A: { then: () => {} } }), lockdep: false } as any), /"lockdep" applies to the steps of "threads", and the spec has none/);
});

test("threads: a deadlock names every thread inside a call, so an ABBA shows both sides", () => {
  const d = prop(check(twoThreads("ba")), "noDeadlock");
  assert.match(d.message!, /ioctl at takeB, waiting for B held by release \(and release at second, waiting for A held by ioctl\) is blocked/);
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

// ---- Several calls, call parameters, lock classes with instances ----

const slot = z.number().int().min(0).max(1);

/** Thread "tsm" binds or unbinds slot v under that slot's mutex m[v]; a one-step call resets. */
function callsSpec(slip?: (a: any) => unknown) {
  const under = (set: boolean) => ({
    each: { v: [0, 1] },
    kernel: set ? "bind" : "unbind",
    steps: {
      lock: { lock: (_s: any, a: { v: number }) => `m[${a.v}]`, when: (s: any, { v }: { v: number }) => s.bound[v] !== set },
      write: { then: (s: any, a: { v: number }) => { slip?.(a); s.bound[a.v] = set; }, unlock: (_s: any, { v }: { v: number }) => `m[${v}]` },
    },
  });
  return defineSpec({
    name: "tmp/calls",
    params: z.object({}),
    state: () => z.object({
      m: z.array(lockSchema(1)).length(2),
      bound: z.array(z.boolean()).length(2),
      resets: z.number().int().min(0).max(1),
      t: threadSchema(["bind.write", "unbind.write"], { v: slot }),
    }),
    init: () => ({ m: [unlocked(), unlocked()], bound: [false, false], resets: 0, t: { pc: "idle" as const, v: 0 } }),
    actions: () => ({}),
    locks: (s) => ({ m: s.m }),
    threads: {
      tsm: {
        id: 1,
        pc: (s) => s.t,
        calls: {
          bind: under(true),
          unbind: under(false),
          reset: { kernel: "reset", when: (s) => s.resets === 0 && s.bound.every((b) => !b), then: (s) => { s.resets = 1; } },
        },
      },
    },
    reachable: { both: (s) => s.bound[0]! && s.bound[1]!, unboundOne: (s) => s.bound[0]! && !s.bound[1]! && s.t.v === 1 && s.t.pc === "idle" },
  });
}

test("threads: a thread runs one of several calls, each from idle, its pc naming the call and the label", () => {
  const v = check(callsSpec());
  assert.deepEqual(
    v.coverage.map((c) => c.action).filter((a) => a.startsWith("tsm.")).sort(),
    ["tsm.bind.lock", "tsm.bind.write", "tsm.reset", "tsm.unbind.lock", "tsm.unbind.write"],
  );
  const both = prop(v, "both").trace!;
  assert.deepEqual(both.steps.slice(1).map((s) => s.action), ["tsm.bind.lock", "tsm.bind.write", "tsm.bind.lock", "tsm.bind.write"]);
  assert.deepEqual(both.steps[1]!.state.t, { pc: "bind.write", v: 0 }, "the first step records the call's parameter");
  assert.equal(both.steps[1]!.kernel, "bind");
  const one = prop(v, "unboundOne").trace!;
  assert.deepEqual(one.steps.slice(1).map((s) => s.action), ["tsm.bind.lock", "tsm.bind.write", "tsm.bind.lock", "tsm.bind.write", "tsm.unbind.lock", "tsm.unbind.write"]);
  assert.equal(prop(v, "noDeadlock").status, "holds");
  assert.equal(prop(v, "lockOrder").status, "holds");
});

test("threads: a parameter a step reads but its call does not declare is a spec error, in later steps too", () => {
  assert.throws(() => check(callsSpec((a) => a.w)), (e: unknown) => {
    assert.ok(e instanceof SpecError);
    assert.match(e.message, /reads parameter "w", which is not in the `each` of thread "tsm", call "(bind|unbind)" \(its parameters: v\)/);
    return true;
  });
  assert.throws(() => check(callsSpec((a) => a.V)), /did you mean v\?/);
  assert.doesNotThrow(() => check(callsSpec((a) => a.v)));
});

test("threads: a call's parameters: one first-step instance per value, later steps read them back", () => {
  const v = check(callsSpec());
  const steps = prop(v, "unboundOne").trace!.steps.slice(1);
  assert.deepEqual(steps.map((s) => s.params), [{ v: 0 }, {}, { v: 1 }, {}, { v: 1 }, {}]);
  // The later step unlocked m[v] of the recorded v: every mutex is free again.
  assert.deepEqual(steps.at(-1)!.state.m, [{ holder: 0 }, { holder: 0 }]);
});

/** Threads a and b, each a call on slot v (a's from `av`, b's from `bv`) taking its locks in order ("[V]": instance v, "[W]": the other). */
function instances(av: number[], bv: number[], a: string[], b: string[], nestable = false) {
  const prog = (locks: string[], each: number[]) => ({
    each: { v: each },
    steps: {
      ...Object.fromEntries(locks.map((l, i) => [`take${i}`, { lock: (_s: any, { v }: { v: number }) => l.replace("[V]", `[${v}]`).replace("[W]", `[${1 - v}]`) }])),
      unlock: { unlock: (_s: any, { v }: { v: number }) => locks.map((l) => l.replace("[V]", `[${v}]`).replace("[W]", `[${1 - v}]`)).reverse() },
    },
  });
  return defineSpec({
    name: "tmp/instances",
    params: z.object({}),
    state: () => z.object({
      g: lockSchema(2),
      m: z.array(nestable ? lockSchema(2, { subclasses: 2 }) : lockSchema(2)).length(2),
      ta: threadSchema(["op.take1", "op.unlock"], { v: slot }, { once: true }),
      tb: threadSchema(["op.take1", "op.unlock"], { v: slot }, { once: true }),
    }),
    init: () => ({ g: unlocked(), m: nestable ? [unlockedNestable(), unlockedNestable()] : [unlocked(), unlocked()], ta: { pc: "idle" as const, v: 0 }, tb: { pc: "idle" as const, v: 0 } }),
    actions: () => ({}),
    locks: (s) => ({ g: s.g, "vdev->mutex": s.m }),
    threads: {
      a: { id: 1, pc: (s) => s.ta, once: true, calls: { op: prog(a, av) } },
      b: { id: 2, pc: (s) => s.tb, once: true, calls: { op: prog(b, bv) } },
    },
  });
}

test("threads: instances of one class are separate locks; the deadlock names the instance waited for", () => {
  // a locks mutex v then mutex 1-v, b likewise: with v = 0 and v = 1 that is ABBA on two instances.
  const v = check(instances([0], [1], ["vdev->mutex[V]", "vdev->mutex[W]"], ["vdev->mutex[V]", "vdev->mutex[W]"]));
  const d = prop(v, "noDeadlock");
  assert.equal(d.status, "violated");
  assert.equal(d.trace!.length, 2);
  assert.match(d.message!, /a at op\.take1, waiting for vdev->mutex\[1\] held by b/);
  // Nesting two instances of one class is lockdep's recursive locking (no nesting annotation).
  assert.match(prop(v, "lockOrder").message!, /^possible recursive locking detected: vdev->mutex taken while holding another vdev->mutex/);
});

test("threads: mutex_lock_nested: a second instance taken as subclass 1 is a class of its own for lockdep", () => {
  // Both threads lock mutex v, then the other one nested ("/1"): lockdep sees vdev->mutex ->
  // vdev->mutex/1 only, no recursion and no cycle; the ABBA on the instances is still a deadlock.
  const nested = ["vdev->mutex[V]", "vdev->mutex[W]/1"];
  const v = check(instances([0], [1], nested, nested, true));
  assert.equal(prop(v, "lockOrder").status, "holds", "the annotation tells lockdep the nesting is intended");
  const d = prop(v, "noDeadlock");
  assert.equal(d.status, "violated", "an annotation hides the inversion from lockdep, not from the model");
  assert.match(d.message!, /waiting for vdev->mutex\[1\]\/1 held by b/);
  // The state keeps the subclass while the lock is held, and clears it on unlock.
  assert.equal(prop(check(instances([0], [0], nested, ["g"], true)), "noDeadlock").status, "holds");
  // Subclass 1 taken first, then plain: class/1 -> class, and the reverse order elsewhere closes a cycle.
  const cycle = check(instances([0], [1], ["vdev->mutex[V]", "vdev->mutex[W]/1"], ["vdev->mutex[V]/1", "vdev->mutex[W]"], true));
  const m = prop(cycle, "lockOrder").message!;
  assert.match(m, /^possible circular locking dependency detected: /);
  assert.match(m, /vdev->mutex\/1 taken while holding vdev->mutex \(thread 1/);
  assert.match(m, /vdev->mutex taken while holding vdev->mutex\/1 \(thread 2/);
  // A subclass on a lock whose schema keeps none is a spec error that says what to change.
  assert.throws(() => check(instances([0], [1], nested, nested)), /takes lock class "vdev->mutex" with subclass 1 \(mutex_lock_nested\), but its locks keep no subclass: make them with lockSchema\(threads, \{ subclasses: 2 \}\) and unlockedNestable\(\)/);
});

test("threads: lockdep's order is by class: a cycle across instances is reported though they never meet", () => {
  // a: mutex 0 then g; b: g then mutex 1. No deadlock (different mutexes), but lockdep keys
  // every vdevice mutex alike: vdev->mutex -> g -> vdev->mutex.
  const v = check(instances([0], [1], ["vdev->mutex[V]", "g"], ["g", "vdev->mutex[V]"]));
  assert.equal(prop(v, "noDeadlock").status, "holds");
  const o = prop(v, "lockOrder");
  assert.equal(o.status, "violated");
  assert.match(o.message!, /possible circular locking dependency detected: /);
  assert.match(o.message!, /g taken while holding vdev->mutex \(thread 1/);
  assert.match(o.message!, /vdev->mutex taken while holding g \(thread 2/);
  // The same slot for both: the same cycle, and now a real deadlock.
  assert.equal(prop(check(instances([0], [0], ["vdev->mutex[V]", "g"], ["g", "vdev->mutex[V]"])), "noDeadlock").status, "violated");
});

test("threads: a lock taken and released within one step while holding another is a dependency", () => {
  // b's take1 takes mutex v and releases it (and g) in the same step: no state shows it held.
  const spec = instances([0], [0], ["vdev->mutex[V]", "g"], ["g"]);
  const threads = (spec as any).threads;
  threads.b.calls.op.steps.take0 = { lock: "g" };
  threads.b.calls.op.steps.unlock = { lock: "vdev->mutex[0]", unlock: ["vdev->mutex[0]", "g"] };
  const o = prop(check(spec), "lockOrder");
  assert.equal(o.status, "violated");
  assert.match(o.message!, /vdev->mutex taken while holding g \(thread 2, in b\.op\.unlock\)/);
});

test("threads: slips in calls, parameters and lock instances are spec errors naming the thread, call and step", () => {
  const withSteps = (steps: object, extra: object = {}) => () => {
    const spec = instances([0], [1], ["g"], ["g"]);
    Object.assign((spec as any).threads.a.calls.op, { steps }, extra);
    return check(spec);
  };
  const err = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof SpecError && re.test(e.message), String(re));
  err(withSteps({ x: { lock: "vdev->mutex" } }), /thread "a", call "op", step "x": lock class "vdev->mutex" has 2 instances; name one, e\.g\. "vdev->mutex\[0\]"/);
  err(withSteps({ x: { lock: "vdev->mutex[2]" } }), /call "op", step "x": "vdev->mutex\[2\]": lock class "vdev->mutex" has instances 0\.\.1/);
  err(withSteps({ x: { lock: "g[0]" } }), /step "x": lock class "g" is one lock/);
  err(withSteps({ done: {} }), /step "done": "idle" and "done" are where a thread rests, not labels/);
  err(withSteps({ x: { lokc: "g" } }), /thread "a", call "op", step "x": unknown key "lokc"/);
  err(withSteps({ x: {} }, { each: { w: [0] } }), /thread "a", call "op": parameter "w" needs a field "w" in the thread's record/);
  err(withSteps({ x: {} }, { stpes: {} }), /call "op": unknown key "stpes"/);
  // A lock name computed at run time is checked when the step first runs.
  err(withSteps({ x: { lock: (_s: any, { v }: { v: number }) => `vdev->mutex[${v + 5}]` } }), /thread "a", call "op", step "x": "vdev->mutex\[5\]"/);
  const both = instances([0], [1], ["g"], ["g"]);
  (both as any).threads.a.steps = { x: {} };
  err(() => check(both), /thread "a": give "steps" \(one kernel function\) or "calls" \(several\), not both/);
});
