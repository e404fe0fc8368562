// iommufd vdevice/idev back-pointers and TSM bind/unbind. Brief design 7; seed
// 004_ccbc08094855a909.txt (Aneesh Kumar K.V, Jun 2025, with Xu Yilun's and Jason
// Gunthorpe's replies); upstream 850f14f5b919 ("iommufd: Destroy vdevice on idevice
// destroy", drivers/iommu/iommufd/{device,viommu,main}.c) plus tsm_unbind in
// iommufd_vdevice_abort (Aneesh v5; iommufd_vdevice_tsm_op_ioctl in iommufd/tsm.c).
//
// Designs (`design`):
//   seed-004                 two locks: vdev->idev and vdev->tsm_bound under the vdevice
//                            mutex, idev->vdev under idev->igroup->lock; both pointers set
//                            by TSM bind. VFIO's unbind (idev teardown) holds only the igroup
//                            lock: it tsm_unbinds through idev->vdev but cannot clear
//                            vdev->idev. iommufd_vdevice_destroy holds only the vdevice mutex
//                            ("the idev is already gone" ordering assumption). No pin.
//   seed-004-both-locks      the same, but each teardown takes the other lock too to clear
//                            the other side's pointer: igroup -> mutex in VFIO's unbind,
//                            mutex -> igroup in TSM bind and vdevice destroy.
//   upstream-v5              one lock (igroup->lock) for both pointers, set at VDEVICE_ALLOC
//                            (refused once idev->destroying); the vdev pins the idev (the
//                            wait_cnt reference from iommufd_get_device is kept); idev
//                            pre_destroy (iommufd_device_remove_vdev) has three cases: no
//                            vdev / vdev alive (take a users ref, unlock, tombstone-destroy
//                            it) / vdev already removed by a racing destroy (unlock; the wait
//                            on wait_cnt covers it); iommufd_vdevice_abort calls tsm_unbind
//                            under igroup->lock. TSM_OP holds a vdev reference, no lock.
//   upstream-no-abort-unbind 850f14f5b919 alone: as upstream-v5 but abort does not unbind.
//
// Calls (specs/kernel/iommufd.ts's tsmThreads, shared with iommufd-tsm/tsm-cycles): vmm.bind
// (VFIO_DEVICE_BIND_IOMMUFD), vmm.alloc (IOMMU_VDEVICE_ALLOC), tsm.bind / tsm.unbind (TSM op),
// destroy (IOMMU_DESTROY), vfio (VFIO device fd release: vfio_df_unbind_iommufd ->
// iommufd_device_unbind); each a thread of labelled steps where the call has a window, its
// locks taken by class as lockdep keys them (igroup->lock, vdev->mutex). Each user operation
// happens at most once, so every run is finite and "idev destruction terminates" is exactly
// the built-in deadlock check (a thread blocked with nothing enabled).
//
// Abstractions: one device, one idev, one vdev, one viommu. The viommu and its VM file
// (viommu->kvm_file) are not modelled: the vdev holds a viommu users reference until
// abort, after abort's tsm_unbind, so "TSM-bound => the VM is pinned" follows from
// "TSM-bound => vdev alive", which is checked. Object IDs, the xarray and users/wait_cnt
// are reduced to what decides these races: in-table / removed / freed, the vdev's pin on
// the idev and short-term references held by ioctls. Critical sections under one lock that
// do not block inside are single steps taking and releasing it. tsm_unbind of an
// unbound TDI is a no-op, as in drivers/pci/tsm.c:__pci_tsm_unbind (returns 0 when
// pdev->tsm->tdi is NULL); with each operation at most once there is no rebind, so a
// stale unbind of a newer binding is out of scope.
import { z } from "zod";
import { defineSpec, type Witness } from "../../checker/spec.ts";
import { tsmInit, tsmLocks, tsmStateSchema, tsmThreads, type TsmState as S } from "../kernel/iommufd.ts";

export const designs = ["seed-004", "seed-004-both-locks", "upstream-v5", "upstream-no-abort-unbind"] as const;
export type Design = (typeof designs)[number];

const params = z.object({ design: z.enum(designs).default("upstream-v5") });

/** One bind, one vdevice, each call once. */
const stateSchema = tsmStateSchema(1, 1);

export default defineSpec({
  name: "iommufd-tsm/vdevice",
  summary: "iommufd vdevice/idev back-pointers, TSM bind/unbind and teardown ordering",
  source: "seed 004_ccbc08094855a909.txt; upstream 850f14f5b919; Aneesh v5 (tsm_unbind in iommufd_vdevice_abort)",
  params,
  state: () => stateSchema,
  init: () => tsmInit(1),
  actions: () => ({}),
  threads: (p) => tsmThreads(p.design, 1, 1),
  locks: tsmLocks,
  invariants: {
    tsmBoundImpliesAlive: {
      doc: "a TSM-bound device has a vdevice not yet freed and a live idev",
      holds: (s) => s.tdi.tdi === 0 || ((s.vdev[0]!.state === "live" || s.vdev[0]!.state === "removed") && s.idev.state === "live"),
    },
    unboundAfterVfioUnbind: {
      doc: "once VFIO's unbind has returned (idev freed) the device is not TSM-bound",
      holds: (s) => s.idev.state !== "freed" || s.tdi.tdi === 0,
    },
  },
  // The three cases of iommufd_device_remove_vdev, each shown by an example (upstream only).
  reachable: (p): Record<string, Witness<S>> =>
    p.design.startsWith("upstream")
      ? {
          preDestroyNoVdev: {
            doc: "case 1: the idev is torn down with no vdevice attached",
            when: (s: S) => s.vfio.pc === "wait" && s.idev.destroying && s.vdev[0]!.state === "none",
          },
          preDestroyTombstone: {
            doc: "case 2: the vdevice is alive; pre_destroy holds it and tombstones it",
            when: (s: S) => s.vfio.pc === "tombstone",
          },
          preDestroyRacingDestroy: {
            doc: "case 3: a user IOMMU_DESTROY removed the vdevice but has not aborted it; the idev waits",
            when: (s: S) => s.vfio.pc === "wait" && s.destroy.pc === "abort" && s.idev.wait > 0,
          },
        }
      : {},
  expected: [
    {
      when: { design: "seed-004" },
      violated: {
        noFault: { steps: 8, message: "slab-use-after-free in vfio_df_unbind_iommufd" },
        tsmBoundImpliesAlive: { steps: 7 },
        unboundAfterVfioUnbind: { steps: 7 },
      },
      doc: "two locks and no pin: VFIO's unbind cannot clear vdev->idev, and tsm_unbind runs on a freed vdevice",
    },
    {
      when: { design: "seed-004-both-locks" },
      violated: {
        noFault: { steps: 9, message: "slab-use-after-free in iommufd_vdevice_destroy" },
        noDeadlock: { steps: 6, message: "vfio at lockVdev, waiting for vdev->mutex[0] held by tsm" },
        // lockdep reports the ABBA from the first step that closes the order cycle, before
        // any deadlock: VFIO's unbind takes vdev->mutex under igroup->lock, TSM bind and
        // vdevice destroy take igroup->lock under vdev->mutex.
        lockOrder: { steps: 4, message: "possible circular locking dependency detected: vdev->mutex taken while holding igroup->lock" },
        tsmBoundImpliesAlive: { steps: 7 },
        unboundAfterVfioUnbind: { steps: 7 },
      },
      doc: "each teardown takes the other lock too: ABBA between igroup->lock and the vdevice mutex (a deadlock, and lockdep's order cycle), and still no pin",
    },
    {
      when: { design: "upstream-no-abort-unbind" },
      violated: { tsmBoundImpliesAlive: { steps: 6 }, unboundAfterVfioUnbind: { steps: 8 } },
      doc: "850f14f5b919 alone: iommufd_vdevice_abort does not tsm_unbind, so a bound TSM outlives its device",
    },
  ],
});
