// iommufd-tsm/tsm-cycles: TSM bind/unbind and vdevice/idev teardown when operations repeat.
// The cycle version of iommufd-tsm/vdevice (review U8): VFIO rebinds the device to iommufd
// after an unbind (a new idev), a second vdevice is allocated after a destroy, TSM bind and
// unbind are issued again, IOMMU_DESTROY is retried after EBUSY. Seed
// 004_ccbc08094855a909.txt (Aneesh Kumar K.V, Jun 2025); upstream 850f14f5b919 plus
// tsm_unbind in iommufd_vdevice_abort (Aneesh v5).
//
// Why cycles matter: the TSM binding belongs to the PCI device, not to a vdevice.
// drivers/pci/tsm.c (torvalds/linux f7ae6d4ec652): __pci_tsm_unbind unbinds whatever
// pdev->tsm->tdi holds (returns 0 if none), and pci_tsm_bind returns 0 when a TDI for the
// same kvm is already bound ("Resolve races to bind a TDI"), -EBUSY for another kvm. A second unbind is a
// no-op only until someone binds again: after a rebind, a late unbind issued on behalf of an
// old vdevice tears down the new one's binding. The model records which vdevice made the
// binding (tdi = its allocation number) and flags an unbind on behalf of an earlier one.
//
// Designs (`design`), each as in iommufd-tsm/vdevice (its header has the details):
//   seed-004                 two locks, vdev->idev / vdev->tsm_bound under the vdevice mutex,
//                            idev->vdev under igroup->lock, both pointers set by TSM bind; VFIO's
//                            unbind tsm_unbinds through idev->vdev under igroup->lock alone and
//                            leaves vdev->tsm_bound and vdev->idev set; no pin between them.
//                            As in vdevice, the TSM op looks up the device's current idev, and
//                            TSM bind refuses while idev->vdev names another vdevice (the
//                            model's assumptions: the seed gives no bind code). VDEVICE_ALLOC
//                            does not look at idev->vdev (pre-850f14f5b919), so a vdevice can
//                            outlive its idev and meet the next one.
//   upstream-v5              one lock (igroup->lock), pointers set at VDEVICE_ALLOC (-EEXIST
//                            while idev->vdev is set, -ENOENT once idev->destroying), the vdev
//                            pins the idev, pre_destroy (iommufd_device_remove_vdev) tombstones
//                            the vdev, iommufd_vdevice_abort calls tsm_unbind.
//   upstream-no-abort-unbind 850f14f5b919 alone: abort does not unbind.
// seed-004-both-locks is left out: its deadlock needs no cycle (iommufd-tsm/vdevice, 6 steps).
//
// Calls (user operation -> kernel function), each a thread of specs/kernel/iommufd.ts's
// tsmThreads (each step names the kernel code it stands for):
//   vmm.bind             (re)open of the VFIO cdev, VFIO_DEVICE_BIND_IOMMUFD -> iommufd_device_bind:
//                        a new idev, only once the previous one is freed
//   vmm.alloc            IOMMU_VDEVICE_ALLOC -> iommufd_vdevice_alloc_ioctl (viommu.c)
//   destroy (v)          IOMMU_DESTROY -> iommufd_object_remove: refcount_dec_if_one(users),
//                        else EBUSY. EBUSY changes nothing, so it is the guard being false; the
//                        retry is the same call starting later
//   tsm.bind / tsm.unbind (v)  the TSM op on vdevice v (seed: vdev->mutex first; upstream v5
//                        iommufd_vdevice_tsm_op_ioctl: iommufd_get_vdevice, no lock)
//   vfio                 vfio_df_unbind_iommufd -> iommufd_device_unbind (seed: the sketch)
// Thread ids as lock holders: vfio 1, destroy 2, tsm 3, vmm 4.
//
// Bounds: `cycles` caps VFIO binds, vdevice allocations, TSM binds and TSM unbinds (each at
// most `cycles` times), so every run is finite and the deadlock check still means "teardown
// terminates". seed-004 has two vdevice slots: a freed slot is reused by the next allocation (its number
// tells the two apart); upstream needs one, since a vdevice never outlives its idev and
// VDEVICE_ALLOC refuses a second while idev->vdev is set. One device, one VM (pci_tsm_bind's -EBUSY for another kvm cannot
// happen), one user thread per kind of call, as in iommufd-tsm/vdevice.
import { z } from "zod";
import { defineSpec, type Witness } from "../../checker/spec.ts";
import { tsmInit, tsmLocks, tsmStateSchema, tsmThreads, type TsmState as S } from "../kernel/iommufd.ts";

export const designs = ["seed-004", "upstream-v5", "upstream-no-abort-unbind"] as const;
export type Design = (typeof designs)[number];

const params = z.object({
  design: z.enum(designs).default("upstream-v5"),
  /** How often each user operation may repeat. */
  cycles: z.number().int().min(1).max(3).default(2),
});
type Params = z.infer<typeof params>;

/** seed-004: a vdevice outlives its idev, so two can coexist; upstream: one at a time. */
const slots = (p: Params) => (p.design === "seed-004" && p.cycles >= 2 ? 2 : 1);

export default defineSpec({
  name: "iommufd-tsm/tsm-cycles",
  summary: "TSM bind/unbind, vdevice and idev teardown with rebinds, second vdevices and retries",
  source: "seed 004_ccbc08094855a909.txt; upstream 850f14f5b919; Aneesh v5; drivers/pci/tsm.c; review U8",
  params,
  state: (p: Params) => tsmStateSchema(slots(p), p.cycles),
  init: (p: Params) => tsmInit(slots(p)),
  actions: () => ({}),
  threads: (p) => tsmThreads(p.design, slots(p), p.cycles),
  locks: tsmLocks,
  invariants: {
    tsmBoundImpliesAlive: {
      doc: "a TSM-bound device's binding was made through a vdevice not yet freed, and the idev is live",
      holds: (s: S) =>
        s.tdi.tdi === 0 ||
        (s.idev.state === "live" && s.vdev.some((v) => v.id === s.tdi.tdi && (v.state === "live" || v.state === "removed"))),
    },
    unboundAfterVfioUnbind: {
      doc: "once VFIO's unbind has returned (idev freed) the device is not TSM-bound",
      holds: (s: S) => s.idev.state !== "freed" || s.tdi.tdi === 0,
    },
    noStaleUnbind: {
      doc: "a tsm_unbind issued for one vdevice never tears down a binding made through a later one",
      holds: (s: S) => !s.tdi.staleUnbind,
    },
  },
  // Shown only where operations repeat.
  reachable: (p: Params): Record<string, Witness<S>> => p.cycles < 2 ? {} : ({
    rebound: {
      doc: "VFIO bound the device to iommufd again after an unbind (a second idev)",
      when: (s: S) => s.idev.gen >= 2 && s.idev.state === "live",
    },
    destroyBusy: {
      doc: "IOMMU_DESTROY of a live vdevice would return EBUSY now (a TSM op or pre_destroy holds it)",
      when: (s: S) => s.vdev.some((v) => v.state === "live" && (v.shortRef || v.kernelRef)),
    },
    secondVdevice: {
      doc: "a vdevice other than the first is live",
      when: (s: S) => s.vdev.some((v) => v.id >= 2 && v.state === "live"),
    },
    boundAgain: {
      doc: "the device is TSM-bound through a vdevice other than the first",
      when: (s: S) => s.tdi.tdi >= 2,
    },
  }),
  expected: [
    {
      when: { design: "seed-004" },
      violated: {
        noFault: { steps: 8, message: "slab-use-after-free in vfio_df_unbind_iommufd" },
        tsmBoundImpliesAlive: { steps: 7 },
        unboundAfterVfioUnbind: { steps: 7 },
        noStaleUnbind: { steps: 11 },
      },
      doc: "seed 004: the vdevice is freed without clearing idev->vdev, and a double unbind tears down a later binding",
    },
    {
      when: { design: "upstream-no-abort-unbind" },
      violated: { tsmBoundImpliesAlive: { steps: 6 }, unboundAfterVfioUnbind: { steps: 8 } },
      doc: "without the unbind in abort, a TDI stays bound after its vdevice and VFIO binding are gone",
    },
  ],
});
