// RCU as steps: a reader in a read-side section keeps an object alive across a grace period;
// freeing without one is a use-after-free the search finds; lockdep-RCU's reports.
import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { check, defineSpec, Fault, SpecError } from "../checker/index.ts";
import { threadSchema } from "../specs/kernel/thread.ts";
import {
  endGracePeriod, gracePeriodOver, rcuDereference, rcuIdle, rcuReadLock, rcuReadUnlock, rcuSchema, startGracePeriod,
} from "../specs/kernel/rcu.ts";

/** A reader dereferences `ptr` and uses the object; the updater unpublishes and frees it. */
function rcuSpec(free: "synchronize_rcu" | "call_rcu" | "kfree") {
  return defineSpec({
    name: `tmp/rcu-${free}`,
    params: z.object({}),
    state: () =>
      z.object({
        rcu: rcuSchema(1, 1),
        ptr: z.boolean(), // the object is published
        freed: z.boolean(),
        seen: z.boolean(), // the reader got the object from ptr
        reader: threadSchema(["deref", "use", "unlock"], {}, { once: true }),
        updater: threadSchema(["sync", "free"], {}, { once: true }),
        cb: threadSchema([], {}),
      }),
    init: () => ({ rcu: rcuIdle(1, 1), ptr: true, freed: false, seen: false, reader: { pc: "idle" as const }, updater: { pc: "idle" as const }, cb: { pc: "idle" as const } }),
    actions: () => ({}),
    threads: {
      reader: {
        id: 1, pc: (s) => s.reader, once: true,
        steps: {
          lock: { then: (s) => rcuReadLock(s.rcu, 0) },
          deref: { then: (s) => { rcuDereference(s.rcu, 0, "ptr"); s.seen = s.ptr; } },
          use: { then: (s) => { if (s.seen && s.freed) throw new Fault("BUG: KASAN: slab-use-after-free in reader"); } },
          unlock: { then: (s) => rcuReadUnlock(s.rcu, 0) },
        },
      },
      updater: {
        id: 2, pc: (s) => s.updater, once: true,
        steps: {
          unpublish: { then: (s) => { s.ptr = false; if (free === "call_rcu") startGracePeriod(s.rcu, 0); } },
          sync: { then: (s) => { if (free === "synchronize_rcu") startGracePeriod(s.rcu, 0); } },
          free: {
            when: (s) => free !== "synchronize_rcu" || gracePeriodOver(s.rcu, 0),
            then: (s) => { if (free === "synchronize_rcu") endGracePeriod(s.rcu, 0); if (free !== "call_rcu") s.freed = true; },
          },
        },
      },
      rcu: {
        id: 3, pc: (s) => s.cb,
        steps: { callback: { when: (s) => free === "call_rcu" && gracePeriodOver(s.rcu, 0), then: (s) => { endGracePeriod(s.rcu, 0); s.freed = true; } } },
      },
    },
    reachable: { freedAfterUse: (s) => s.freed && s.seen },
  });
}

const prop = (v: ReturnType<typeof check>, name: string) => v.properties.find((p) => p.name === name)!;

test("rcu: kfree without a grace period is a use-after-free of a reader's object", () => {
  const f = prop(check(rcuSpec("kfree")), "noFault");
  assert.equal(f.status, "violated");
  assert.match(f.message!, /slab-use-after-free/);
});

for (const free of ["synchronize_rcu", "call_rcu"] as const) {
  test(`rcu: freeing after ${free} waits for the reader`, () => {
    const v = check(rcuSpec(free));
    assert.equal(prop(v, "noFault").status, "holds");
    assert.equal(prop(v, "noDeadlock").status, "holds");
    assert.equal(prop(v, "freedAfterUse").status, "reachable");
    const cb = prop(v, "freedAfterUse").trace!.steps.find((s) => s.action === "rcu.callback");
    if (free === "call_rcu") assert.equal(cb?.thread, "rcu", "the callback runs on the rcu lane");
  });
}

test("rcu: a grace period waits only for readers inside a section when it started", () => {
  const r = rcuIdle(2, 1);
  rcuReadLock(r, 0);
  startGracePeriod(r, 0);
  rcuReadLock(r, 1); // a later reader is not waited for
  assert.equal(gracePeriodOver(r, 0), false);
  rcuReadUnlock(r, 0);
  assert.equal(gracePeriodOver(r, 0), true);
  endGracePeriod(r, 0);
  assert.equal(r.gp[0].active, false);
});

test("rcu: lockdep-RCU's reports and spec slips", () => {
  const r = rcuIdle(1, 1);
  assert.throws(() => rcuDereference(r, 0, "kvm->file"), (e: unknown) => e instanceof Fault && /suspicious rcu_dereference_check\(\) usage!.*kvm->file/.test(e.message));
  assert.throws(() => rcuReadUnlock(r, 0), (e: unknown) => e instanceof Fault && /bad unlock balance.*rcu_read_lock/.test(e.message));
  rcuReadLock(r, 0);
  assert.throws(() => startGracePeriod(r, 0, 0), (e: unknown) => e instanceof Fault && /Illegal synchronize_rcu\(\) in RCU read-side critical section/.test(e.message));
  assert.throws(() => rcuReadLock(r, 0), SpecError);
  assert.throws(() => endGracePeriod(r, 0), (e: unknown) => e instanceof SpecError && /guard the step with gracePeriodOver/.test(e.message));
  assert.throws(() => rcuReadLock(r, 3), (e: unknown) => e instanceof SpecError && /reader 3/.test(e.message));
});
