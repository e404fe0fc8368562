// Verdicts of kvm-vfio/destroy-era: kvm-vfio's .destroy (before 51cdc8bc120e) against .release.
import { test } from "node:test";
import assert from "node:assert/strict";
import { check, type Verdict } from "../checker/index.ts";
import destroyEra, { designs } from "../specs/kvm-vfio/destroy-era.ts";

type Design = (typeof designs)[number];

function prop(v: Verdict, name: string) {
  const p = v.properties.find((x) => x.name === name);
  assert.ok(p, `${v.spec} [${v.design}]: no property ${name}`);
  return p;
}

const actionsOf = (v: Verdict, name: string) => prop(v, name).trace!.steps.slice(1).map((s) => s.action);

interface Violation {
  property: string;
  actions: string[];
  message?: RegExp;
}

/** The exact set of failed properties, each with its whole shortest trace. */
function expectVerdict(v: Verdict, violations: Violation[]): void {
  const where = `${v.spec} [${JSON.stringify(v.params)}]`;
  assert.equal(v.complete, true, `${where}: search incomplete`);
  const failed = v.properties.filter((p) => p.failed).map((p) => p.name).sort();
  assert.deepEqual(failed, violations.map((x) => x.property).sort(), `${where}: failed properties`);
  assert.equal(v.outcome, violations.length ? "fail" : "pass", `${where}: outcome`);
  for (const x of violations) {
    const p = prop(v, x.property);
    assert.equal(p.status, "violated", `${where}: ${x.property}`);
    assert.equal(p.trace?.length, x.actions.length, `${where}: ${x.property} length`);
    assert.deepEqual(actionsOf(v, x.property), x.actions, `${where}: ${x.property} trace`);
    if (x.message) assert.match(p.message ?? "", x.message, `${where}: ${x.property} message`);
  }
}

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
  assert.deepEqual(actionsOf(v, "getKvmSafeRefused"), incFromZeroRun);
});
