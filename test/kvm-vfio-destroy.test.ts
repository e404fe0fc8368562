// Verdicts of kvm-vfio/destroy-era: kvm-vfio's .destroy (before 51cdc8bc120e) against .release.
import { test } from "node:test";
import assert from "node:assert/strict";
import { check, type Verdict } from "../checker/index.ts";
import destroyEra, { designs } from "../specs/kvm-vfio/destroy-era.ts";
import { actionNames, expectVerdict, prop, type Violation } from "./support/expect.ts";

type Design = (typeof designs)[number];

const recursive = /possible recursive locking detected: vfioClose \(thread 2\) is trying to acquire lock group->group_lock but already holds it/;
const incFromZero = /refcount_t: addition on 0; use-after-free\. \(kvm->users_count\)/;

// The association outlives the kvm-vfio fd and sits there while users_count is 0.
const assocPinsVm: Violation = { property: "assocPinsVm", actions: ["ioctl.FileAdd", "kvmVfioClose.close", "vmClose.close"] };
// VFIO's close holds the last reference and group_lock; kvm_vfio_destroy takes group_lock again.
// (With each action's thread declared, the least-interleaved traces run the ioctls first.)
const selfDeadlockRun = ["ioctl.FileAdd", "kvmVfioClose.close", "vfioOpen.open", "vmClose.close", "vfioClose.close"];
const incFromZeroRun = ["ioctl.FileAdd", "kvmVfioClose.close", "vmClose.close", "vfioOpen.open"];

// 51cdc8bc120e's .release: kvm_device_release holds kvm->lock and waits for group_lock;
// vfio-ap's open_device holds group_lock and waits for kvm->lock (fixed by 2b48f52f2bff).
const abbaRun = ["ioctl.FileAdd", "kvmVfioClose.close", "vmClose.close", "vfioOpen.open"];
const abba = /kvmVfioClose at release, waiting for group->group_lock held by vfioOpen \(and vfioOpen at driver, waiting for kvm->lock held by kvmVfioClose\)/;
// lockdep's order check sees the cycle before any deadlock: kvm_device_release alone shows
// kvm->lock -> group_lock; vfio-ap's open (group_lock -> kvm->lock) is known from another run.
const abbaOrder: Violation = {
  property: "lockOrder",
  actions: ["ioctl.FileAdd", "kvmVfioClose.close", "kvmVfioClose.release"],
  message: /possible circular locking dependency detected: kvm->lock taken while holding group->group_lock \(thread 4, in vfioOpen\.driver\); and group->group_lock taken while holding kvm->lock \(thread 5, in kvmVfioClose\.release\)/,
};

// Every fd closed, the VM is never freed: the run stops where kvm_destroy_vm faults (lockdep)
// or blocks on group_lock, or at the ABBA deadlock. Neither is a quiescent state, so noLeak holds.
const stopsAt = (how: RegExp, length: number, last: string): Violation => ({ property: "freedOnceClosed", length, last, message: how });
const destroyFaults = stopsAt(/the run stops at step 5 \(no action can run: every step enabled there faults \(vfioClose\.destroy\)\)/, 5, "vfioClose.close");
const destroyBlocks = stopsAt(/the run stops at step 5 \(no action can run: deadlock, vfioClose at destroy, waiting for group->group_lock held by itself is blocked\)/, 5, "vfioClose.close");
const abbaStops = stopsAt(/the run stops at step 4 \(no action can run: deadlock, kvmVfioClose at release, waiting for group->group_lock held by vfioOpen/, 4, "vfioOpen.open");

const expected: Record<"lockdep" | "noLockdep", Record<Design, Violation[]>> = {
  lockdep: {
    // The shorter IncFromZero hides the recursive locking from noFault; see noLockdep.
    "destroy-get_kvm": [{ property: "noFault", actions: incFromZeroRun, message: incFromZero }, assocPinsVm, destroyFaults],
    "release-51cdc8bc120e": [{ property: "noDeadlock", actions: abbaRun, message: abba }, abbaOrder, abbaStops],
    release: [],
    "destroy-get_kvm_safe": [
      { property: "noFault", actions: [...selfDeadlockRun, "vfioClose.destroy"], message: recursive },
      assocPinsVm,
      destroyFaults,
    ],
  },
  noLockdep: {
    "destroy-get_kvm": [
      { property: "noFault", actions: incFromZeroRun, message: incFromZero },
      { property: "noDeadlock", actions: selfDeadlockRun, message: /vfioClose at destroy, waiting for group->group_lock held by itself/ },
      assocPinsVm,
      destroyBlocks,
    ],
    "release-51cdc8bc120e": [{ property: "noDeadlock", actions: abbaRun, message: abba }, abbaOrder, abbaStops],
    release: [],
    "destroy-get_kvm_safe": [{ property: "noDeadlock", actions: selfDeadlockRun }, assocPinsVm, destroyBlocks],
  },
};

for (const lockdep of [true, false]) {
  for (const design of designs) {
    test(`destroy-era: ${design}, lockdep=${lockdep}`, () => {
      const v = check(destroyEra, { design, lockdep }, { validate: true });
      expectVerdict(v, expected[lockdep ? "lockdep" : "noLockdep"][design]);
      // The spec's own `expected` knows both modes: a run with lockdep=false is not "CHANGED".
      assert.equal(v.expectation?.status, "as-expected", JSON.stringify(v.expectation));
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
  assert.match(prop(before, "noDeadlock").message ?? "", abba);
  assert.equal(before.outcome, "fail");
  assert.equal(check(destroyEra, { design: "release" }).outcome, "pass");
});
