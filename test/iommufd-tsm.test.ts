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
      exact: ["vmm.bind", "vmm.alloc", "tsm.bind.lockVdev", "tsm.bind.lockIgroup", "destroy.remove", "destroy.lock", "vfio.lockIgroup", "vfio.unbind"],
      message: /^BUG: KASAN: slab-use-after-free in vfio_df_unbind_iommufd .*struct iommufd_vdevice freed$/,
    },
    noDeadlock: { status: "holds" },
    lockOrder: { status: "holds" },
    tsmBoundImpliesAlive: { status: "violated", length: 7, includes: ["vfio.lockIgroup", "tsm.bind.lockVdev", "tsm.bind.lockIgroup"], last: "vfio.wait" },
    unboundAfterVfioUnbind: { status: "violated", length: 7, last: "vfio.wait" },
  },
  // Taking the other side's lock too: igroup -> mutex against mutex -> igroup. lockdep
  // reports the order cycle from the first step that closes it (TSM bind taking igroup->lock
  // under vdev->mutex), without needing the deadlock.
  "seed-004-both-locks": {
    noFault: { status: "violated", length: 9, last: "destroy.lock", message: /use-after-free.*iommufd_device/ },
    noDeadlock: {
      status: "violated", length: 6, includes: ["tsm.bind.lockVdev", "tsm.bind.lockIgroup", "vfio.lockIgroup", "tsm.unbind.lockVdev"], last: "vfio.lockIgroup",
      message: /vfio at lockVdev, waiting for vdev->mutex\[0\] held by tsm/,
    },
    lockOrder: {
      status: "violated", length: 4, exact: ["vmm.bind", "vmm.alloc", "tsm.bind.lockVdev", "tsm.bind.lockIgroup"],
      message: /^possible circular locking dependency detected: vdev->mutex taken while holding igroup->lock \(thread 1, in vfio\.lockVdev\); and igroup->lock taken while holding vdev->mutex \(thread 3, in tsm\.bind\.lockIgroup\)$/,
    },
    tsmBoundImpliesAlive: { status: "violated", length: 7, last: "vfio.wait" },
    unboundAfterVfioUnbind: { status: "violated", length: 7, last: "vfio.wait" },
  },
  // One lock, the vdev pins the idev, pre_destroy's three cases, tsm_unbind in abort.
  "upstream-v5": {
    noFault: { status: "holds" },
    noDeadlock: { status: "holds" },
    lockOrder: { status: "holds" },
    tsmBoundImpliesAlive: { status: "holds" },
    unboundAfterVfioUnbind: { status: "holds" },
    preDestroyNoVdev: { status: "reachable", length: 2 },
    preDestroyTombstone: { status: "reachable", length: 3, last: "vfio.removeVdev" },
    preDestroyRacingDestroy: { status: "reachable", length: 4, includes: ["destroy.remove"], last: "vfio.removeVdev" },
  },
  // 850f14f5b919 without the unbind in abort: the binding outlives its vdevice.
  "upstream-no-abort-unbind": {
    noFault: { status: "holds" },
    noDeadlock: { status: "holds" },
    lockOrder: { status: "holds" },
    tsmBoundImpliesAlive: { status: "violated", length: 6, includes: ["tsm.bind.get", "tsm.bind.op", "destroy.remove"], last: "destroy.abort" },
    unboundAfterVfioUnbind: { status: "violated", length: 8, includes: ["vfio.tombstone", "vfio.tombstoneDestroy"], last: "vfio.wait" },
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
