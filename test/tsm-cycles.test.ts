// Verdicts of iommufd-tsm/tsm-cycles: TSM bind/unbind with rebinds, second vdevices and
// retries (review U8). Each design's result, trace length, last step and fault text.
import { test } from "node:test";
import assert from "node:assert/strict";
import { check } from "../checker/index.ts";
import { actionLabels, prop, type PropertyResult } from "./support/expect.ts";
import tsmCycles, { designs } from "../specs/iommufd-tsm/tsm-cycles.ts";
import vdevice from "../specs/iommufd-tsm/vdevice.ts";

interface Shape {
  status: PropertyResult["status"];
  length?: number;
  exact?: string[];
  includes?: string[];
  last?: string;
  message?: RegExp;
}

const witnesses = (w: Record<string, number>): Record<string, Shape> =>
  Object.fromEntries(Object.entries(w).map(([k, length]) => [k, { status: "reachable" as const, length }]));

// cycles = 2, the default.
const expected: Record<(typeof designs)[number], Record<string, Shape>> = {
  // The one-shot faults of iommufd-tsm/vdevice, plus the stale unbind: VFIO's unbind and a
  // later unbind for vdevice 1 (vdevice destroy's or a TSM op's: a harmless double unbind), but
  // a TSM bind through vdevice 2 lands between them and the second unbind tears it down.
  "seed-004": {
    noFault: {
      status: "violated",
      length: 8,
      // The least-interleaved of the 8-step traces: each thread runs its call through.
      exact: ["vmm.bind", "vmm.alloc", "tsm.bind.lockVdev(0)", "tsm.bind.lockIgroup", "destroy.remove(0)", "destroy.lock", "vfio.lockIgroup", "vfio.unbind"],
      message: /^BUG: KASAN: slab-use-after-free in vfio_df_unbind_iommufd .*struct iommufd_vdevice freed$/,
    },
    noDeadlock: { status: "holds" },
    lockOrder: { status: "holds" },
    tsmBoundImpliesAlive: { status: "violated", length: 7, includes: ["vfio.lockIgroup", "tsm.bind.lockVdev(0)", "vfio.unbind"], last: "vfio.wait" },
    unboundAfterVfioUnbind: { status: "violated", length: 7, last: "vfio.wait" },
    noStaleUnbind: {
      status: "violated",
      length: 11,
      // The least-interleaved of the 11-step traces: VFIO's unbind leaves vdev->tsm_bound set, a TSM
      // bind through vdevice 2 lands, and a TSM unbind issued for vdevice 1 tears it down
      // (iommufd_vdevice_destroy's unbind for vdevice 1 does the same in another 11-step trace).
      exact: [
        "vmm.bind", "vmm.alloc", "vmm.alloc", "tsm.bind.lockVdev(0)", "tsm.bind.lockIgroup", "vfio.lockIgroup", "vfio.unbind",
        "tsm.bind.lockVdev(1)", "tsm.bind.lockIgroup", "tsm.unbind.lockVdev(0)", "tsm.unbind.lockIgroup",
      ],
    },
    ...witnesses({ destroyBusy: 3, rebound: 5, secondVdevice: 3, boundAgain: 5 }),
  },
  // One lock, the vdev pins the idev, abort unbinds: every cycle holds.
  "upstream-v5": {
    noFault: { status: "holds" },
    noDeadlock: { status: "holds" },
    lockOrder: { status: "holds" },
    tsmBoundImpliesAlive: { status: "holds" },
    unboundAfterVfioUnbind: { status: "holds" },
    noStaleUnbind: { status: "holds" },
    ...witnesses({ destroyBusy: 3, rebound: 4, secondVdevice: 5, boundAgain: 7 }),
  },
  // The binding outlives its vdevice; a later vdevice's unbind only cleans it up.
  "upstream-no-abort-unbind": {
    noFault: { status: "holds" },
    noDeadlock: { status: "holds" },
    lockOrder: { status: "holds" },
    tsmBoundImpliesAlive: { status: "violated", length: 6, exact: ["vmm.bind", "vmm.alloc", "tsm.bind.get(0)", "tsm.bind.op", "destroy.remove(0)", "destroy.abort"] },
    unboundAfterVfioUnbind: { status: "violated", length: 8, includes: ["vfio.tombstone", "vfio.tombstoneDestroy"], last: "vfio.wait" },
    noStaleUnbind: { status: "holds" },
    ...witnesses({ destroyBusy: 3, rebound: 4, secondVdevice: 5, boundAgain: 7 }),
  },
};

for (const design of designs) {
  test(`iommufd-tsm/tsm-cycles [${design}]`, () => {
    const v = check(tsmCycles, { design }, { validate: true });
    const where = `[${design}]`;
    assert.equal(v.complete, true);
    assert.deepEqual(v.properties.map((p) => p.name).sort(), Object.keys(expected[design]).sort(), `${where}: property set`);
    for (const [name, e] of Object.entries(expected[design])) {
      const p = prop(v, name);
      assert.equal(p.status, e.status, `${where} ${name}`);
      if (e.length === undefined) continue;
      const got = actionLabels(p);
      assert.equal(p.trace!.length, e.length, `${where} ${name}: ${got.join(" · ")}`);
      if (e.exact) assert.deepEqual(got, e.exact, `${where} ${name}`);
      for (const a of e.includes ?? []) assert.ok(got.includes(a), `${where} ${name}: lacks ${a} in ${got.join(" · ")}`);
      if (e.last) assert.equal(got.at(-1), e.last, `${where} ${name}`);
      if (e.message) assert.match(p.message ?? "", e.message);
    }
    assert.equal(v.outcome, design === "upstream-v5" ? "pass" : "fail");
    assert.deepEqual(v.warnings, [], `${where}: warnings`);
  });
}

test("tsm-cycles: the stale unbind needs a cycle; with cycles=1 the verdicts are iommufd-tsm/vdevice's", () => {
  for (const design of designs) {
    const one = check(tsmCycles, { design, cycles: 1 });
    const old = check(vdevice, { design });
    assert.equal(prop(one, "noStaleUnbind").status, "holds", design);
    for (const name of ["noFault", "noDeadlock", "lockOrder", "tsmBoundImpliesAlive", "unboundAfterVfioUnbind"]) {
      const a = prop(one, name), b = prop(old, name);
      assert.equal(a.status, b.status, `${design} ${name}`);
      assert.equal(a.trace?.length, b.trace?.length, `${design} ${name}: trace length`);
    }
    assert.deepEqual(one.warnings, [], `${design}: warnings`);
  }
});

test("tsm-cycles: more cycles change no verdict and stay small", () => {
  for (const design of designs) {
    const two = check(tsmCycles, { design, cycles: 2 });
    const three = check(tsmCycles, { design, cycles: 3 });
    const summary = (v: typeof two) => v.properties.map((p) => `${p.name}:${p.status}:${p.trace?.length ?? "-"}`);
    assert.deepEqual(summary(three), summary(two), design);
    assert.ok(three.stats.distinctStates < 400_000, `${design}: ${three.stats.distinctStates} states`);
  }
});
