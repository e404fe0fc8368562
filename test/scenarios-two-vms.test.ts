// Verdicts of kvm-vfio/two-vms: two VMs' kvm-vfio devices name the same VFIO file (review U5).
import { test } from "node:test";
import assert from "node:assert/strict";
import { check } from "../checker/index.ts";
import twoVms, { designs } from "../specs/kvm-vfio/two-vms.ts";
import { actionLabels, expectVerdict, prop, type Violation } from "./support/expect.ts";

const expected: Record<(typeof designs)[number], Violation[]> = {
  "raw-kvm": [],
  "get_file_active": [],
  // The second FILE_ADD overwrites VM 0's reference without putting it.
  "put-on-clear-only": [
    { property: "vm0FileCountExact", actions: ["FileAdd(0)", "FileAdd(1)"] },
    { property: "vm1FileCountExact", actions: ["FileAdd(1)", "FileAdd(0)"] },
    { property: "noLeak", length: 11, last: "ReleaseVfio" },
    { property: "vm0FileNoLeak", length: 11 },
    { property: "vm1FileNoLeak", length: 11 },
    // The same leak from the run's side: the run stops with a VM file held by nobody.
    { property: "freedOnceClosed", length: 11, message: /the run stops at step 11 \(no action can run\) and stays there forever/ },
  ],
};

for (const design of designs) {
  test(`kvm-vfio/two-vms: ${design}`, () => {
    const v = check(twoVms, { design }, { validate: true });
    expectVerdict(v, expected[design], { labels: true });
    // U5's two behaviours, in every design: overwrite, and the other VM's DEL clearing it.
    assert.deepEqual(actionLabels(prop(v, "secondAddOverwrites")), ["FileAdd(0)", "FileAdd(1)"]);
    assert.deepEqual(actionLabels(prop(v, "otherDelClears")), ["FileAdd(0)", "FileAdd(1)", "FileDel(0)"]);
    assert.ok(v.stats.distinctStates < 40_000, `${design}: ${v.stats.distinctStates} states`);
  });
}
