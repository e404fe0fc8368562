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
// User actions: Bind (VFIO_DEVICE_BIND_IOMMUFD), VdevAlloc (IOMMU_VDEVICE_ALLOC), TsmBind /
// TsmUnbind (TSM op), DestroyVdev (IOMMU_DESTROY), CloseVfio (VFIO device fd release); each
// starts a thread where the call has a window. Threads (pc + locals): "vfio unbind" (tid 1: vfio_df_unbind_iommufd ->
// iommufd_device_unbind), "vdev destroy" (tid 2: IOMMU_DESTROY -> iommufd_object_remove ->
// iommufd_vdevice_destroy), "tsm op" (tid 3: IOMMU_VDEVICE_TSM_OP bind or unbind). Each
// user operation happens at most once, so every run is finite and "idev destruction
// terminates" is exactly the built-in deadlock check (a thread blocked with nothing
// enabled).
//
// The kernel functions (and seed 004's sketch) are specs/kernel/iommufd.ts's, shared with
// iommufd-tsm/tsm-cycles; each design family supplies its VdevAlloc, CloseVfio and later steps,
// and seed-004-both-locks adds its second locks. Every action names its thread ("vmm" for
// Bind and VdevAlloc, "vfio", "destroy", "tsm").
//
// Abstractions: one device, one idev, one vdev, one viommu. The viommu and its VM file
// (viommu->kvm_file) are not modelled: the vdev holds a viommu users reference until
// abort, after abort's tsm_unbind, so "TSM-bound => the VM is pinned" follows from
// "TSM-bound => vdev alive", which is checked. Object IDs, the xarray and users/wait_cnt
// are reduced to what decides these races: in-table / removed / freed, the vdev's pin on
// the idev and short-term references held by ioctls. Critical sections under one lock that
// do not block inside are single steps guarded on the lock being free. tsm_unbind of an
// unbound TDI is a no-op, as in drivers/pci/tsm.c:__pci_tsm_unbind (returns 0 when
// pdev->tsm->tdi is NULL); with each operation at most once there is no rebind, so a
// stale unbind of a newer binding is out of scope.
import { z } from "zod";
import { defineSpec, type Witness } from "../../checker/spec.ts";
import {
  idevSchema, idevUse, iommufdDeviceBind, iommufdDeviceDestroy, iommufdDeviceRemoveVdev, iommufdObjectTombstoneUser,
  iommufdVdeviceAllocIoctl, iommufdVdeviceDestroy, iommufdVdeviceTsmOp, noIdev, noVdev, pciTsmUnbind, seed004DestroyUnbind,
  seed004TsmOp, seed004VfioUnbind, tdiSchema, unboundTdi, vdevAlloc, vdevSchema, vdevUse,
} from "../kernel/iommufd.ts";
import { acquire, isFree, lockSchema, release, unlocked } from "../kernel/lock.ts";
import { firstBusy, threadSchema } from "../kernel/thread.ts";

export const designs = ["seed-004", "seed-004-both-locks", "upstream-v5", "upstream-no-abort-unbind"] as const;
export type Design = (typeof designs)[number];

const params = z.object({ design: z.enum(designs).default("upstream-v5") });

const VFIO = 1, DESTROY = 2, TSM = 3;

const stateSchema = z.object({
  /** One bind, one vdevice: idev->vdev and vdev->idev are 0 or 1. */
  idev: idevSchema(1, 1),
  vdev: vdevSchema(1, 1),
  /** The device's TDI: bound (to the VM) through the vdevice, or not. */
  tdi: tdiSchema(1),
  igroupLock: lockSchema(3),
  vdevMutex: lockSchema(3),
  vfio: threadSchema(["lockVdev", "unbind", "tombstone", "tombstoneLock", "wait"], { sawVdev: z.boolean() }),
  destroy: threadSchema(["lock", "lockIgroup"], { sawIdev: z.boolean() }),
  tsm: threadSchema(["lockIgroup", "op"], { unbind: z.boolean() }),
  /** User operations already issued (each at most once). */
  did: z.object({
    bind: z.boolean(), alloc: z.boolean(), close: z.boolean(), destroy: z.boolean(),
    tsmBind: z.boolean(), tsmUnbind: z.boolean(),
  }),
});
type S = z.infer<typeof stateSchema>;
type Step = { kernel: string; thread: string; when: (s: S) => boolean; then: (s: S) => void };

export default defineSpec({
  name: "iommufd-tsm/vdevice",
  summary: "iommufd vdevice/idev back-pointers, TSM bind/unbind and teardown ordering",
  source: "seed 004_ccbc08094855a909.txt; upstream 850f14f5b919; Aneesh v5 (tsm_unbind in iommufd_vdevice_abort)",
  params,
  state: () => stateSchema,
  init: () => ({
    idev: noIdev(),
    vdev: noVdev(),
    tdi: unboundTdi(),
    igroupLock: unlocked(),
    vdevMutex: unlocked(),
    vfio: { pc: "idle" as const, sawVdev: false },
    destroy: { pc: "idle" as const, sawIdev: false },
    tsm: { pc: "idle" as const, unbind: false },
    did: { bind: false, alloc: false, close: false, destroy: false, tsmBind: false, tsmUnbind: false },
  }),
  actions: (p) => {
    const seed = p.design === "seed-004" || p.design === "seed-004-both-locks";
    const bothLocks = p.design === "seed-004-both-locks";

    /** A design family's own calls. */
    interface Family {
      VdevAlloc: (s: S) => void;
      CloseVfio: { kernel: string; then: (s: S) => void };
      tsmOk: (s: S) => boolean;
      startTsm: (s: S) => void;
      tsmKernel: (op: string) => string;
      steps: Record<string, Step>;
    }

    const seed004: Family = {
      VdevAlloc: (s) => vdevAlloc(s.vdev, 1), // pointers are set by TSM bind
      CloseVfio: {
        kernel: "vfio_df_unbind_iommufd: mutex_lock(igroup->lock), vdev = idev->vdev",
        then: (s) => {
          acquire(s.igroupLock, VFIO, "igroup->lock");
          s.vfio.sawVdev = s.idev.vdev !== 0;
          s.vfio.pc = bothLocks && s.vfio.sawVdev ? "lockVdev" : "unbind";
        },
      },
      tsmOk: (s) => s.idev.state === "live" && isFree(s.vdevMutex),
      startTsm: (s) => {
        s.idev.wait += 1; // the ioctl's lookup of the idev
        acquire(s.vdevMutex, TSM, "vdev->mutex");
        s.tsm.pc = "lockIgroup";
      },
      tsmKernel: (op) => `TSM ${op}: mutex_lock(vdev->mutex)`,
      steps: {
        VfioUnbind: {
          // seed 004 sketch; tsm_unbind = drivers/pci/tsm.c:pci_tsm_unbind (no-op if unbound).
          kernel: "vfio_df_unbind_iommufd: tsm_unbind through idev->vdev, idev->vdev = NULL, unlock",
          thread: "vfio",
          when: (s) => s.vfio.pc === "unbind",
          then: (s) => {
            seed004VfioUnbind(s.idev, s.vfio.sawVdev ? s.vdev : undefined, s.tdi);
            release(s.igroupLock, VFIO, "igroup->lock");
            s.vfio.pc = "wait";
          },
        },
        DestroyLock: {
          // seed 004 sketch: idev->vdev is left set (needs igroup->lock).
          kernel: "iommufd_vdevice_destroy: mutex_lock(vdev->mutex), tsm_unbind(vdev->idev->dev)",
          thread: "destroy",
          when: (s) => s.destroy.pc === "lock" && isFree(s.vdevMutex),
          then: (s) => {
            acquire(s.vdevMutex, DESTROY, "vdev->mutex");
            s.destroy.sawIdev = s.vdev.idev !== 0;
            seed004DestroyUnbind(s.idev, s.vdev, s.tdi);
            if (bothLocks && s.destroy.sawIdev) {
              s.destroy.pc = "lockIgroup"; // clear idev->vdev too
              return;
            }
            release(s.vdevMutex, DESTROY, "vdev->mutex");
            s.vdev.state = "freed";
            s.destroy.pc = "idle";
          },
        },
        TsmLockIgroup: {
          kernel: "TSM bind/unbind: mutex_lock(igroup->lock), tsm_bind/tsm_unbind, set/clear both pointers",
          thread: "tsm",
          when: (s) => s.tsm.pc === "lockIgroup" && isFree(s.igroupLock),
          then: (s) => {
            acquire(s.igroupLock, TSM, "igroup->lock");
            seed004TsmOp(s.idev, s.vdev, 0, s.tdi, s.tsm.unbind);
            release(s.igroupLock, TSM, "igroup->lock");
            release(s.vdevMutex, TSM, "vdev->mutex");
            s.tsm.pc = "idle";
          },
        },
      },
    };

    // seed-004-both-locks: the second lock of VFIO's unbind and of vdevice destroy.
    const bothLocksSteps: Record<string, Step> = {
      VfioLockVdev: {
        kernel: "vfio_df_unbind_iommufd: mutex_lock(vdev->mutex), tsm_unbind, clear both pointers",
        thread: "vfio",
        when: (s) => s.vfio.pc === "lockVdev" && isFree(s.vdevMutex),
        then: (s) => {
          vdevUse(s.vdev, "vfio_df_unbind_iommufd (mutex_lock(&vdev->mutex))");
          acquire(s.vdevMutex, VFIO, "vdev->mutex");
          if (s.vdev.tsmBound) {
            pciTsmUnbind(s.tdi, s.vdev);
            s.vdev.tsmBound = false;
          }
          s.vdev.idev = 0;
          s.idev.vdev = 0;
          release(s.vdevMutex, VFIO, "vdev->mutex");
          release(s.igroupLock, VFIO, "igroup->lock");
          s.vfio.pc = "wait";
        },
      },
      DestroyLockIgroup: {
        kernel: "iommufd_vdevice_destroy: mutex_lock(igroup->lock), idev->vdev = NULL, unlock both, free",
        thread: "destroy",
        when: (s) => s.destroy.pc === "lockIgroup" && isFree(s.igroupLock),
        then: (s) => {
          acquire(s.igroupLock, DESTROY, "igroup->lock");
          idevUse(s.idev, s.idev.gen, "iommufd_vdevice_destroy (idev->vdev = NULL)");
          s.idev.vdev = 0;
          release(s.igroupLock, DESTROY, "igroup->lock");
          release(s.vdevMutex, DESTROY, "vdev->mutex");
          s.vdev.state = "freed";
          s.destroy.pc = "idle";
        },
      },
    };

    // upstream: one lock; the vdev pins the idev.
    const abortUnbinds = p.design === "upstream-v5";
    const upstream: Family = {
      VdevAlloc: (s) => void iommufdVdeviceAllocIoctl(s.idev, s.vdev, 0, 1), // -ENOENT / -EEXIST: nothing
      CloseVfio: {
        kernel: "iommufd_device_unbind -> iommufd_device_remove_vdev (pre_destroy) under igroup->lock",
        then: (s) => void (s.vfio.pc = iommufdDeviceRemoveVdev(s.idev, [s.vdev]) >= 0 ? "tombstone" : "wait"),
      },
      tsmOk: () => true,
      startTsm: (s) => void (s.tsm.pc = "op"),
      tsmKernel: (op) => `IOMMU_VDEVICE_TSM_OP(${op.toUpperCase()}): iommufd_get_vdevice`,
      steps: {
        VfioTombstone: {
          kernel: "iommufd_object_tombstone_user: wait for the vdev's short-term users, remove (tombstone)",
          thread: "vfio",
          when: (s) => s.vfio.pc === "tombstone" && !s.vdev.shortRef,
          then: (s) => {
            iommufdObjectTombstoneUser(s.vdev);
            s.vfio.pc = "tombstoneLock";
          },
        },
        VfioTombstoneDestroy: {
          kernel: "iommufd_vdevice_destroy (from the tombstone): igroup->lock, iommufd_vdevice_abort, put idev",
          thread: "vfio",
          when: (s) => s.vfio.pc === "tombstoneLock" && isFree(s.igroupLock),
          then: (s) => {
            iommufdVdeviceDestroy(s.idev, s.vdev, s.tdi, abortUnbinds);
            s.vfio.pc = "wait";
          },
        },
        DestroyAbort: {
          kernel: "iommufd_vdevice_destroy: igroup->lock, iommufd_vdevice_abort, unlock, put idev",
          thread: "destroy",
          when: (s) => s.destroy.pc === "lock" && isFree(s.igroupLock),
          then: (s) => {
            vdevUse(s.vdev, "iommufd_vdevice_destroy");
            idevUse(s.idev, s.vdev.idev, "iommufd_vdevice_destroy (vdev->idev)");
            iommufdVdeviceDestroy(s.idev, s.vdev, s.tdi, abortUnbinds);
            s.destroy.pc = "idle";
          },
        },
        TsmOp: {
          kernel: "iommufd_vdevice_tsm_op_ioctl: tsm_bind/tsm_unbind(vdev->idev->dev), put vdev",
          thread: "tsm",
          when: (s) => s.tsm.pc === "op",
          then: (s) => {
            iommufdVdeviceTsmOp(s.idev, s.vdev, s.tdi, s.tsm.unbind);
            s.tsm.pc = "idle";
          },
        },
      },
    };

    const f = seed ? seed004 : upstream;
    const tsmEnabled = (s: S) => s.tsm.pc === "idle" && s.vdev.state === "live" && !s.vdev.shortRef && f.tsmOk(s);
    const startTsm = (s: S, unbind: boolean) => {
      s.tsm.unbind = unbind;
      s.vdev.shortRef = true;
      f.startTsm(s);
    };
    return {
      Bind: {
        kernel: "VFIO_DEVICE_BIND_IOMMUFD -> iommufd_device_bind",
        thread: "vmm",
        when: (s: S) => !s.did.bind,
        then: (s: S) => {
          s.did.bind = true;
          iommufdDeviceBind(s.idev, 1);
        },
      },
      VdevAlloc: {
        kernel: "IOMMU_VDEVICE_ALLOC -> iommufd_vdevice_alloc_ioctl",
        thread: "vmm",
        when: (s: S) => !s.did.alloc && s.idev.state === "live" && isFree(s.igroupLock),
        then: (s: S) => {
          s.did.alloc = true;
          f.VdevAlloc(s);
        },
      },
      CloseVfio: {
        kernel: f.CloseVfio.kernel,
        thread: "vfio",
        when: (s: S) => !s.did.close && s.idev.state === "live" && s.vfio.pc === "idle" && isFree(s.igroupLock),
        then: (s: S) => {
          s.did.close = true;
          f.CloseVfio.then(s);
        },
      },
      DestroyVdev: {
        kernel: "IOMMU_DESTROY -> iommufd_object_remove (refcount_dec_if_one(users), xa removal)",
        thread: "destroy",
        when: (s: S) =>
          !s.did.destroy && s.destroy.pc === "idle" && s.vdev.state === "live" && !s.vdev.kernelRef && !s.vdev.shortRef,
        then: (s: S) => {
          s.did.destroy = true;
          s.vdev.state = "removed";
          s.destroy.pc = "lock";
        },
      },
      TsmBind: {
        kernel: f.tsmKernel("bind"),
        thread: "tsm",
        when: (s: S) => !s.did.tsmBind && tsmEnabled(s),
        then: (s: S) => {
          s.did.tsmBind = true;
          startTsm(s, false);
        },
      },
      TsmUnbind: {
        kernel: f.tsmKernel("unbind"),
        thread: "tsm",
        when: (s: S) => !s.did.tsmUnbind && tsmEnabled(s),
        then: (s: S) => {
          s.did.tsmUnbind = true;
          startTsm(s, true);
        },
      },
      ...f.steps,
      ...(bothLocks ? bothLocksSteps : {}),
      VfioFree: {
        kernel: "iommufd_object_remove(idev): wait for wait_cnt, iommufd_device_destroy, free",
        thread: "vfio",
        when: (s: S) => s.vfio.pc === "wait" && s.idev.wait === 0,
        then: (s: S) => {
          iommufdDeviceDestroy(s.idev);
          s.vfio.pc = "idle";
        },
      },
    };
  },
  invariants: {
    tsmBoundImpliesAlive: {
      doc: "a TSM-bound device has a vdevice not yet freed and a live idev",
      holds: (s) => s.tdi.tdi === 0 || ((s.vdev.state === "live" || s.vdev.state === "removed") && s.idev.state === "live"),
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
            when: (s: S) => s.vfio.pc === "wait" && s.idev.destroying && s.vdev.state === "none",
          },
          preDestroyTombstone: {
            doc: "case 2: the vdevice is alive; pre_destroy holds it and tombstones it",
            when: (s: S) => s.vfio.pc === "tombstone",
          },
          preDestroyRacingDestroy: {
            doc: "case 3: a user IOMMU_DESTROY removed the vdevice but has not aborted it; the idev waits",
            when: (s: S) => s.vfio.pc === "wait" && s.destroy.pc === "lock" && s.idev.wait > 0,
          },
        }
      : {},
  busy: (s) => firstBusy({ "vfio unbind": s.vfio, "vdev destroy": s.destroy, "tsm op": s.tsm }),
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
        noDeadlock: { steps: 6, message: "vfio unbind at lockVdev is blocked" },
        tsmBoundImpliesAlive: { steps: 7 },
        unboundAfterVfioUnbind: { steps: 7 },
      },
      doc: "each teardown takes the other lock too: ABBA between igroup->lock and the vdevice mutex, and still no pin",
    },
    {
      when: { design: "upstream-no-abort-unbind" },
      violated: { tsmBoundImpliesAlive: { steps: 6 }, unboundAfterVfioUnbind: { steps: 8 } },
      doc: "850f14f5b919 alone: iommufd_vdevice_abort does not tsm_unbind, so a bound TSM outlives its device",
    },
  ],
});
