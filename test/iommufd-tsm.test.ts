// Verdicts of the iommufd vdevice/TSM model (brief design 7): each design's expected result
// and the length and actions of its shortest counterexamples.
import { test } from "node:test";
import assert from "node:assert/strict";
import { check, type Verdict } from "../checker/index.ts";
import { actionNames as actions, prop, type PropertyResult } from "./support/expect.ts";
import vdevice, { designs } from "../specs/iommufd-tsm/vdevice.ts";


interface Shape {
  status: PropertyResult["status"];
  length?: number;
  /** Actions the trace must contain, and the one it ends with. */
  includes?: string[];
  last?: string;
  /** The trace's actions, in order. */
  exact?: string[];
  message?: RegExp;
}

const expected: Record<(typeof designs)[number], Record<string, Shape>> = {
  // VFIO's unbind cannot clear vdev->tsm_bound / vdev->idev without the vdevice mutex, and
  // nothing stops a TSM bind after VFIO sampled idev->vdev. A second tsm_unbind is a no-op
  // (drivers/pci/tsm.c:__pci_tsm_unbind); the fault is VFIO's unbind reaching the vdevice
  // that iommufd_vdevice_destroy freed without clearing idev->vdev.
  "seed-004": {
    noFault: {
      status: "violated",
      length: 8,
      // The least-interleaved of the 8-step traces (every action names its thread).
      exact: ["Bind", "VdevAlloc", "TsmBind", "TsmLockIgroup", "DestroyVdev", "DestroyLock", "CloseVfio", "VfioUnbind"],
      message: /^BUG: KASAN: slab-use-after-free in vfio_df_unbind_iommufd .*struct iommufd_vdevice freed$/,
    },
    noDeadlock: { status: "holds" },
    tsmBoundImpliesAlive: { status: "violated", length: 7, includes: ["CloseVfio", "TsmBind", "TsmLockIgroup"], last: "VfioFree" },
    unboundAfterVfioUnbind: { status: "violated", length: 7, last: "VfioFree" },
  },
  // Taking the other side's lock too: igroup -> mutex against mutex -> igroup.
  "seed-004-both-locks": {
    noFault: { status: "violated", length: 9, last: "DestroyLock", message: /use-after-free.*iommufd_device/ },
    noDeadlock: { status: "violated", length: 6, includes: ["TsmBind", "TsmLockIgroup", "CloseVfio", "TsmUnbind"], last: "CloseVfio" },
    tsmBoundImpliesAlive: { status: "violated", length: 7, last: "VfioFree" },
    unboundAfterVfioUnbind: { status: "violated", length: 7, last: "VfioFree" },
  },
  // One lock, the vdev pins the idev, pre_destroy's three cases, tsm_unbind in abort.
  "upstream-v5": {
    noFault: { status: "holds" },
    noDeadlock: { status: "holds" },
    tsmBoundImpliesAlive: { status: "holds" },
    unboundAfterVfioUnbind: { status: "holds" },
    preDestroyNoVdev: { status: "reachable", length: 2 },
    preDestroyTombstone: { status: "reachable", length: 3, last: "CloseVfio" },
    preDestroyRacingDestroy: { status: "reachable", length: 4, includes: ["DestroyVdev"], last: "CloseVfio" },
  },
  // 850f14f5b919 without the unbind in abort: the binding outlives its vdevice.
  "upstream-no-abort-unbind": {
    noFault: { status: "holds" },
    noDeadlock: { status: "holds" },
    tsmBoundImpliesAlive: { status: "violated", length: 6, includes: ["TsmBind", "TsmOp", "DestroyVdev"], last: "DestroyAbort" },
    unboundAfterVfioUnbind: { status: "violated", length: 8, includes: ["VfioTombstone", "VfioTombstoneDestroy"], last: "VfioFree" },
    preDestroyNoVdev: { status: "reachable" },
    preDestroyTombstone: { status: "reachable" },
    preDestroyRacingDestroy: { status: "reachable" },
  },
};

for (const design of designs) {
  test(`iommufd-tsm/vdevice [${design}]`, () => {
    const v = check(vdevice, { design });
    const where = `[${design}]`;
    assert.equal(v.complete, true);
    assert.deepEqual(v.properties.map((p) => p.name).sort(), Object.keys(expected[design]).sort(), `${where}: property set`);
    for (const [name, e] of Object.entries(expected[design])) {
      const p = prop(v, name);
      assert.equal(p.status, e.status, `${where} ${name}`);
      if (e.length === undefined) continue;
      const got = actions(p);
      assert.equal(got.length, e.length, `${where} ${name}: ${got.join(" · ")}`);
      assert.equal(p.trace!.length, e.length);
      for (const a of e.includes ?? []) assert.ok(got.includes(a), `${where} ${name}: lacks ${a} in ${got.join(" · ")}`);
      if (e.last) assert.equal(got.at(-1), e.last, `${where} ${name}: ${got.join(" · ")}`);
      if (e.exact) assert.deepEqual(got, e.exact, `${where} ${name}`);
      if (e.message) assert.match(p.message ?? "", e.message);
    }
    assert.equal(v.outcome, design === "upstream-v5" ? "pass" : "fail");
    assert.deepEqual(v.warnings, [], `${where}: warnings`);
  });
}
