// Verdicts of iommufd-tsm/kvm-file: idev->kvm_file (borrowed) and viommu->kvm_file (counted).
import { test } from "node:test";
import assert from "node:assert/strict";
import { check } from "../checker/index.ts";
import kvmFile, { designs } from "../specs/iommufd-tsm/kvm-file.ts";
import { expectVerdict, prop, type Violation } from "./support/expect.ts";

const expected: Record<(typeof designs)[number], Violation[]> = {
  v5: [],
  // The idev's borrowed pointer outlives the reference it borrows; a VIOMMU_ALLOC in the gap
  // get_files a dying VM file.
  "put-before-unbind": [
    { property: "idevBorrowCovered", length: 5, last: "ReleaseVfio" },
    {
      property: "noFault",
      actions: ["FileAdd", "CloseVm", "Bind", "CloseKvmVfioDev", "CloseVfio", "ReleaseVfio", "ViommuAlloc"],
      message: /file_ref_inc\(\) on a released file reference/,
    },
  ],
  // Without its own reference the viommu outlives the VM file.
  "viommu-borrows": [{ property: "noFault", length: 9, includes: ["ViommuAlloc", "ReleaseVfio"], last: "TsmOp", message: /^model: / }],
};

for (const design of designs) {
  test(`iommufd-tsm/kvm-file: ${design}`, () => {
    const v = check(kvmFile, { design }, { validate: true });
    expectVerdict(v, expected[design]);
    const w = prop(v, "viommuOutlivesVfio");
    assert.equal(w.status, design === "viommu-borrows" ? "unreachable" : "reachable");
    if (design === "v5") assert.equal(w.trace?.length, 7);
  });
}
