// Verdicts of kvm-vfio/group-path: the VFIO group path, one association per group.
import { test } from "node:test";
import assert from "node:assert/strict";
import { check, type Verdict } from "../checker/index.ts";
import groupPath, { designs } from "../specs/kvm-vfio/group-path.ts";
import { expectVerdict, prop, type Violation } from "./support/expect.ts";

const expectLabels = (v: Verdict, x: Violation[]) => expectVerdict(v, x, { labels: true });

const expected: Record<(typeof designs)[number], Violation[]> = {
  "raw-kvm": [],
  "get_file_active": [],
  // The seed's warning holds on the group path too: FILE_ADD after the VM fd's last fput.
  "get_file": [{ property: "noFault", actions: ["CloseVm", "FileAdd"], message: /file_ref_inc\(\) on a released file reference/ }],
  // Two fds of one device share one reference: the second close puts it again.
  "put-every-close": [
    { property: "kvmCountExact", actions: ["FileAdd", "Open(0)", "Open(0)", "Close(0)"] },
    // With threads declared, the least-interleaved traces do the closes in a row, then the
    // releases: ReleaseVm's put is the last, so kvm_destroy_vm runs while the kvm-vfio device
    // still holds its reference and the association; its release then underflows.
    { property: "kvmFreedUnreferenced", length: 7, last: "ReleaseVm" },
    { property: "kvmNoHolderAfterFree", length: 7, last: "ReleaseVm" },
    { property: "noFault", length: 9, last: "ReleaseKvmVfioDev", message: /refcount_t: underflow; use-after-free\./ },
    // The run stops where that release faults: kvm-vfio's file is never freed, which the
    // quiescent noLeak cannot see (the release is enabled there).
    { property: "freedOnceClosed", length: 9, last: "Close(0)", message: /the run stops at step 9 \(no action can run: every step enabled there faults \(ReleaseKvmVfioDev\)\)/ },
  ],
};

for (const design of designs) {
  test(`kvm-vfio/group-path: ${design}`, () => {
    const v = check(groupPath, { design }, { validate: true });
    expectLabels(v, expected[design]);
    // The group path's own shape (review U4), in every design.
    assert.equal(prop(v, "openWithoutKvm").trace?.length, 2);
    assert.equal(prop(v, "deviceClosedWhileKvmHoldsGroup").status, "reachable");
    assert.equal(prop(v, "groupOutlivesItsFd").status, "reachable");
    assert.ok(v.stats.distinctStates < 5_000, `${design}: ${v.stats.distinctStates} states`);
  });
}

test("kvm-vfio/group-path: one device with one fd gives the same verdicts for the shipped designs", () => {
  for (const design of ["raw-kvm", "get_file_active", "get_file"] as const) {
    expectLabels(check(groupPath, { design, devices: 1, fds: 1 }), expected[design]);
  }
});

test("kvm-vfio/group-path: symmetry over devices keeps every verdict", () => {
  for (const design of designs) {
    const summary = (v: Verdict) => v.properties.map((x) => `${x.name}:${x.status}:${x.trace?.length ?? "-"}`);
    assert.deepEqual(summary(check(groupPath, { design }, { symmetry: true })), summary(check(groupPath, { design })), design);
  }
});
