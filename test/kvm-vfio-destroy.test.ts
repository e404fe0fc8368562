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
const selfDeadlockRun = ["FileAdd", "CloseKvmVfioDev", "OpenDevice", "CloseVm", "CloseDevice"];
const incFromZeroRun = ["FileAdd", "CloseKvmVfioDev", "CloseVm", "OpenDevice"];

const expected: Record<"lockdep" | "noLockdep", Record<Design, Violation[]>> = {
  lockdep: {
    release: [],
    destroy: [
      { property: "noFault", actions: [...selfDeadlockRun, "DestroyDevices"], message: recursive },
      assocPinsVm,
    ],
    // The shorter IncFromZero hides the recursive locking from noFault; see noLockdep.
    "destroy-get_kvm": [{ property: "noFault", actions: incFromZeroRun, message: incFromZero }, assocPinsVm],
  },
  noLockdep: {
    release: [],
    destroy: [{ property: "noDeadlock", actions: selfDeadlockRun }, assocPinsVm],
    "destroy-get_kvm": [
      { property: "noFault", actions: incFromZeroRun, message: incFromZero },
      { property: "noDeadlock", actions: selfDeadlockRun },
      assocPinsVm,
    ],
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
  const v = check(destroyEra, { design: "destroy" });
  assert.equal(prop(v, "getKvmSafeRefused").status, "reachable");
  assert.deepEqual(actionNames(prop(v, "getKvmSafeRefused")), incFromZeroRun);
});
