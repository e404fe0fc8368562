// Verdicts of kvm-vfio/destroy-era: kvm-vfio's .destroy (before 51cdc8bc120e) against .release.
import { test } from "node:test";
import assert from "node:assert/strict";
import { check, type Verdict } from "../checker/index.ts";
import destroyEra, { designs } from "../specs/kvm-vfio/destroy-era.ts";
import { actionNames, expectVerdict, prop, type Violation } from "./support/expect.ts";

type Design = (typeof designs)[number];

const recursive = /possible recursive locking detected: thread 2 takes group->group_lock again/;
const incFromZero = /refcount_t: addition on 0; use-after-free\. \(kvm->users_count\)/;

// The association outlives the kvm-vfio fd and sits there while users_count is 0.
const assocPinsVm: Violation = { property: "assocPinsVm", actions: ["FileAdd", "CloseKvmVfioDev", "CloseVm"] };
// VFIO's close holds the last reference and group_lock; kvm_vfio_destroy takes group_lock again.
// (With each action's thread declared, the least-interleaved traces run the ioctls first.)
const selfDeadlockRun = ["FileAdd", "OpenDevice", "CloseKvmVfioDev", "CloseVm", "CloseDevice"];
const incFromZeroRun = ["FileAdd", "CloseKvmVfioDev", "CloseVm", "OpenDevice"];

// 51cdc8bc120e's .release: kvm_device_release holds kvm->lock and waits for group_lock;
// vfio-ap's open_device holds group_lock and waits for kvm->lock (fixed by 2b48f52f2bff).
const abbaRun = ["FileAdd", "OpenDevice", "CloseKvmVfioDev", "CloseVm"];

// Every fd closed, the VM is never freed: the run stops where kvm_destroy_vm faults (lockdep)
// or blocks on group_lock, or at the ABBA deadlock. Neither is a quiescent state, so noLeak holds.
const stopsAt = (how: RegExp, length: number, last: string): Violation => ({ property: "freedOnceClosed", length, last, message: how });
const destroyFaults = stopsAt(/the run stops at step 5 \(no action can run: every step enabled there faults \(DestroyDevices\)\)/, 5, "CloseDevice");
const destroyBlocks = stopsAt(/the run stops at step 5 \(no action can run: deadlock, kvm_destroy_vm at destroyDevices is blocked\)/, 5, "CloseDevice");
const abbaStops = stopsAt(/the run stops at step 4 \(no action can run: deadlock, vfio open at driver is blocked\)/, 4, "OpenDevice");

const expected: Record<"lockdep" | "noLockdep", Record<Design, Violation[]>> = {
  lockdep: {
    // The shorter IncFromZero hides the recursive locking from noFault; see noLockdep.
    "destroy-get_kvm": [{ property: "noFault", actions: incFromZeroRun, message: incFromZero }, assocPinsVm, destroyFaults],
    "release-51cdc8bc120e": [{ property: "noDeadlock", actions: abbaRun }, abbaStops],
    release: [],
    "destroy-get_kvm_safe": [
      { property: "noFault", actions: [...selfDeadlockRun, "DestroyDevices"], message: recursive },
      assocPinsVm,
      destroyFaults,
    ],
  },
  noLockdep: {
    "destroy-get_kvm": [
      { property: "noFault", actions: incFromZeroRun, message: incFromZero },
      { property: "noDeadlock", actions: selfDeadlockRun },
      assocPinsVm,
      destroyBlocks,
    ],
    "release-51cdc8bc120e": [{ property: "noDeadlock", actions: abbaRun }, abbaStops],
    release: [],
    "destroy-get_kvm_safe": [{ property: "noDeadlock", actions: selfDeadlockRun }, assocPinsVm, destroyBlocks],
  },
};

for (const lockdep of [true, false]) {
  for (const design of designs) {
    test(`destroy-era: ${design}, lockdep=${lockdep}`, () => {
      const v = check(destroyEra, { design, lockdep }, { validate: true });
      expectVerdict(v, expected[lockdep ? "lockdep" : "noLockdep"][design]);
      assert.ok(v.stats.distinctStates < 100, `${v.stats.distinctStates} states`);
      // Every design reaches the deadlock's precondition; only .destroy turns it into one.
      assert.equal(prop(v, "destroyUnderGroupLock").status, "reachable");
      assert.equal(prop(v, "vfioHoldsLastVmRef").status, "reachable");
    });
  }
}

test("destroy-era: kvm_get_kvm_safe can fail only with .destroy", () => {
  assert.equal(prop(check(destroyEra, { design: "release" }), "getKvmSafeRefused").status, "unreachable");
  const v = check(destroyEra, { design: "destroy-get_kvm_safe" });
  assert.equal(prop(v, "getKvmSafeRefused").status, "reachable");
  assert.deepEqual(actionNames(prop(v, "getKvmSafeRefused")), incFromZeroRun);
});

test("destroy-era: the .release design deadlocks before 2b48f52f2bff and holds from it on", () => {
  const before = check(destroyEra, { design: "release-51cdc8bc120e" });
  assert.equal(prop(before, "noDeadlock").status, "violated");
  assert.match(prop(before, "noDeadlock").message ?? "", /vfio open at driver is blocked/);
  assert.equal(before.outcome, "fail");
  assert.equal(check(destroyEra, { design: "release" }).outcome, "pass");
});
