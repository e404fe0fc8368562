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
import { defineSpec, Fault, type Witness } from "../../checker/spec.ts";
import { acquire, isFree, lockSchema, release, unlocked } from "../kernel/lock.ts";
import { firstBusy, threadSchema } from "../kernel/thread.ts";

export const designs = ["seed-004", "seed-004-both-locks", "upstream-v5", "upstream-no-abort-unbind"] as const;
export type Design = (typeof designs)[number];

const params = z.object({ design: z.enum(designs).default("upstream-v5") });

const VFIO = 1, DESTROY = 2, TSM = 3;

const stateSchema = z.object({
  idev: z.object({
    state: z.enum(["none", "live", "freed"]),
    /** idev->vdev non-NULL. */
    vdev: z.boolean(),
    /** idev->destroying (upstream). */
    destroying: z.boolean(),
    /** wait_cnt references beyond the bias: the vdev's pin, an ioctl's short-term ref. */
    wait: z.number().int().min(0).max(2),
  }),
  vdev: z.object({
    /** removed: out of the object table (destroy or tombstone begun), not yet freed. */
    state: z.enum(["none", "live", "removed", "freed"]),
    /** vdev->idev non-NULL. */
    idev: z.boolean(),
    /** vdev->tsm_bound (seed-004's own bookkeeping). */
    tsmBound: z.boolean(),
    /** Kernel-internal users reference (idev pre_destroy case 2). */
    kernelRef: z.boolean(),
    /** An ioctl's short-term reference (TSM_OP). */
    shortRef: z.boolean(),
  }),
  /** The device's TDI is bound to a VM in the TSM. */
  tsmBound: z.boolean(),
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

export default defineSpec({
  name: "iommufd-tsm/vdevice",
  summary: "iommufd vdevice/idev back-pointers, TSM bind/unbind and teardown ordering",
  source: "seed 004_ccbc08094855a909.txt; upstream 850f14f5b919; Aneesh v5 (tsm_unbind in iommufd_vdevice_abort)",
  params,
  state: () => stateSchema,
  init: () => ({
    idev: { state: "none" as const, vdev: false, destroying: false, wait: 0 },
    vdev: { state: "none" as const, idev: false, tsmBound: false, kernelRef: false, shortRef: false },
    tsmBound: false,
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
    const abortUnbinds = p.design === "upstream-v5";

    const useVdev = (s: S, who: string) => {
      if (s.vdev.state === "freed") throw new Fault(`BUG: KASAN: slab-use-after-free in ${who}: struct iommufd_vdevice freed`);
    };
    const useIdev = (s: S, who: string) => {
      if (s.idev.state === "freed") throw new Fault(`BUG: KASAN: slab-use-after-free in ${who}: struct iommufd_device freed`);
    };
    /**
     * tsm_unbind(dev): drivers/pci/tsm.c:__pci_tsm_unbind returns 0 when no TDI is bound
     * (pdev->tsm->tdi NULL under tsm_pf0->lock), so a second unbind is a no-op. The model
     * has no rebind, so a stale unbind never hits someone else's binding.
     */
    const tsmUnbind = (s: S) => {
      s.tsmBound = false;
    };
    /** iommufd_vdevice_abort (upstream), under igroup->lock. */
    const abort = (s: S) => {
      if (abortUnbinds) tsmUnbind(s); // tsm_unbind(idev->dev)
      s.idev.vdev = false;
    };
    /** End of iommufd_vdevice_destroy (upstream): put the idev, free the vdev. */
    const putIdevFreeVdev = (s: S) => {
      s.idev.wait -= 1;
      s.vdev.state = "freed";
      s.vdev.idev = false;
    };

    const user = {
      Bind: {
        kernel: "VFIO_DEVICE_BIND_IOMMUFD -> iommufd_device_bind",
        when: (s: S) => !s.did.bind,
        then: (s: S) => {
          s.did.bind = true;
          s.idev.state = "live";
        },
      },
      VdevAlloc: {
        kernel: "IOMMU_VDEVICE_ALLOC -> iommufd_vdevice_alloc_ioctl",
        when: (s: S) => !s.did.alloc && s.idev.state === "live" && isFree(s.igroupLock),
        then: (s: S) => {
          s.did.alloc = true;
          if (seed) {
            s.vdev.state = "live"; // pointers are set by TSM bind
            return;
          }
          if (s.idev.destroying || s.idev.vdev) return; // -ENOENT / -EEXIST under igroup->lock
          s.vdev.state = "live";
          s.vdev.idev = true;
          s.idev.vdev = true;
          s.idev.wait += 1; // the vdev keeps iommufd_get_device's reference
        },
      },
      CloseVfio: {
        kernel: seed
          ? "vfio_df_unbind_iommufd: mutex_lock(igroup->lock), vdev = idev->vdev"
          : "iommufd_device_unbind -> iommufd_device_remove_vdev (pre_destroy) under igroup->lock",
        when: (s: S) => !s.did.close && s.idev.state === "live" && s.vfio.pc === "idle" && isFree(s.igroupLock),
        then: (s: S) => {
          s.did.close = true;
          if (seed) {
            acquire(s.igroupLock, VFIO, "igroup->lock");
            s.vfio.sawVdev = s.idev.vdev;
            s.vfio.pc = bothLocks && s.vfio.sawVdev ? "lockVdev" : "unbind";
            return;
          }
          s.idev.destroying = true;
          if (!s.idev.vdev) s.vfio.pc = "wait"; // case 1: no vdev
          else if (s.vdev.state === "live") {
            s.vdev.kernelRef = true; // case 2: hold a users ref, unlock, tombstone it
            s.vfio.pc = "tombstone";
          } else s.vfio.pc = "wait"; // case 3: a racing destroy removed it; wait for it
        },
      },
      DestroyVdev: {
        kernel: "IOMMU_DESTROY -> iommufd_object_remove (refcount_dec_if_one(users), xa removal)",
        when: (s: S) =>
          !s.did.destroy && s.destroy.pc === "idle" && s.vdev.state === "live" && !s.vdev.kernelRef && !s.vdev.shortRef,
        then: (s: S) => {
          s.did.destroy = true;
          s.vdev.state = "removed";
          s.destroy.pc = "lock";
        },
      },
      TsmBind: {
        kernel: seed ? "TSM bind: mutex_lock(vdev->mutex)" : "IOMMU_VDEVICE_TSM_OP(BIND): iommufd_get_vdevice",
        when: (s: S) =>
          !s.did.tsmBind && s.tsm.pc === "idle" && s.vdev.state === "live" && !s.vdev.shortRef &&
          (!seed || (s.idev.state === "live" && isFree(s.vdevMutex))),
        then: (s: S) => {
          s.did.tsmBind = true;
          s.tsm.unbind = false;
          s.vdev.shortRef = true;
          if (seed) {
            s.idev.wait += 1; // the ioctl's lookup of the idev
            acquire(s.vdevMutex, TSM, "vdev->mutex");
            s.tsm.pc = "lockIgroup";
          } else s.tsm.pc = "op";
        },
      },
      TsmUnbind: {
        kernel: seed ? "TSM unbind: mutex_lock(vdev->mutex)" : "IOMMU_VDEVICE_TSM_OP(UNBIND): iommufd_get_vdevice",
        when: (s: S) =>
          !s.did.tsmUnbind && s.tsm.pc === "idle" && s.vdev.state === "live" && !s.vdev.shortRef &&
          (!seed || (s.idev.state === "live" && isFree(s.vdevMutex))),
        then: (s: S) => {
          s.did.tsmUnbind = true;
          s.tsm.unbind = true;
          s.vdev.shortRef = true;
          if (seed) {
            s.idev.wait += 1;
            acquire(s.vdevMutex, TSM, "vdev->mutex");
            s.tsm.pc = "lockIgroup";
          } else s.tsm.pc = "op";
        },
      },
    };

    // seed-004: the steps after the first lock of each call. The second lock of VFIO's
    // unbind and of vdevice destroy exists only in the both-locks variant.
    const bothLocksSteps = {
      VfioLockVdev: {
        kernel: "vfio_df_unbind_iommufd: mutex_lock(vdev->mutex), tsm_unbind, clear both pointers",
        when: (s: S) => s.vfio.pc === "lockVdev" && isFree(s.vdevMutex),
        then: (s: S) => {
          useVdev(s, "vfio_df_unbind_iommufd (mutex_lock(&vdev->mutex))");
          acquire(s.vdevMutex, VFIO, "vdev->mutex");
          if (s.vdev.tsmBound) {
            tsmUnbind(s);
            s.vdev.tsmBound = false;
          }
          s.vdev.idev = false;
          s.idev.vdev = false;
          release(s.vdevMutex, VFIO, "vdev->mutex");
          release(s.igroupLock, VFIO, "igroup->lock");
          s.vfio.pc = "wait";
        },
      },
      DestroyLockIgroup: {
        kernel: "iommufd_vdevice_destroy: mutex_lock(igroup->lock), idev->vdev = NULL, unlock both, free",
        when: (s: S) => s.destroy.pc === "lockIgroup" && isFree(s.igroupLock),
        then: (s: S) => {
          acquire(s.igroupLock, DESTROY, "igroup->lock");
          useIdev(s, "iommufd_vdevice_destroy (idev->vdev = NULL)");
          s.idev.vdev = false;
          release(s.igroupLock, DESTROY, "igroup->lock");
          release(s.vdevMutex, DESTROY, "vdev->mutex");
          s.vdev.state = "freed";
          s.destroy.pc = "idle";
        },
      },
    };
    const seedSteps = {
      VfioUnbind: {
        // seed 004 sketch; tsm_unbind = drivers/pci/tsm.c:pci_tsm_unbind (no-op if unbound).
        kernel: "vfio_df_unbind_iommufd: tsm_unbind through idev->vdev, idev->vdev = NULL, unlock",
        when: (s: S) => s.vfio.pc === "unbind",
        then: (s: S) => {
          if (s.vfio.sawVdev) {
            useVdev(s, "vfio_df_unbind_iommufd (tsm_unbind via idev->vdev)");
            tsmUnbind(s); // cannot clear vdev->tsm_bound: no mutex
            s.idev.vdev = false;
          }
          release(s.igroupLock, VFIO, "igroup->lock");
          s.vfio.pc = "wait";
        },
      },
      DestroyLock: {
        // seed 004 sketch: idev->vdev is left set (needs igroup->lock); tsm_unbind as above.
        kernel: "iommufd_vdevice_destroy: mutex_lock(vdev->mutex), tsm_unbind(vdev->idev->dev)",
        when: (s: S) => s.destroy.pc === "lock" && isFree(s.vdevMutex),
        then: (s: S) => {
          acquire(s.vdevMutex, DESTROY, "vdev->mutex");
          if (s.vdev.tsmBound) {
            if (s.vdev.idev) useIdev(s, "iommufd_vdevice_destroy (tsm_unbind(vdev->idev->dev))");
            tsmUnbind(s);
            s.vdev.tsmBound = false;
          }
          s.destroy.sawIdev = s.vdev.idev;
          s.vdev.idev = false;
          if (bothLocks && s.destroy.sawIdev) {
            s.destroy.pc = "lockIgroup"; // clear idev->vdev too
            return;
          }
          release(s.vdevMutex, DESTROY, "vdev->mutex");
          s.vdev.state = "freed"; // seed-004: idev->vdev would need igroup->lock, left as it is
          s.destroy.pc = "idle";
        },
      },
      TsmLockIgroup: {
        kernel: "TSM bind/unbind: mutex_lock(igroup->lock), tsm_bind/tsm_unbind, set/clear both pointers",
        when: (s: S) => s.tsm.pc === "lockIgroup" && isFree(s.igroupLock),
        then: (s: S) => {
          acquire(s.igroupLock, TSM, "igroup->lock");
          useIdev(s, "TSM op");
          if (!s.tsm.unbind && !s.vdev.tsmBound && !s.idev.destroying) {
            s.tsmBound = true;
            s.vdev.tsmBound = true;
            s.vdev.idev = true;
            s.idev.vdev = true;
          } else if (s.tsm.unbind && s.vdev.tsmBound) {
            tsmUnbind(s);
            s.vdev.tsmBound = false;
            s.vdev.idev = false;
            s.idev.vdev = false;
          }
          release(s.igroupLock, TSM, "igroup->lock");
          release(s.vdevMutex, TSM, "vdev->mutex");
          s.vdev.shortRef = false;
          s.idev.wait -= 1;
          s.tsm.pc = "idle";
        },
      },
    };

    // upstream: one lock; the vdev pins the idev.
    const upstreamSteps = {
      VfioTombstone: {
        kernel: "iommufd_object_tombstone_user: wait for the vdev's short-term users, remove (tombstone)",
        when: (s: S) => s.vfio.pc === "tombstone" && !s.vdev.shortRef,
        then: (s: S) => {
          useVdev(s, "iommufd_object_tombstone_user");
          s.vdev.state = "removed";
          s.vdev.kernelRef = false;
          s.vfio.pc = "tombstoneLock";
        },
      },
      VfioTombstoneDestroy: {
        kernel: "iommufd_vdevice_destroy (from the tombstone): igroup->lock, iommufd_vdevice_abort, put idev",
        when: (s: S) => s.vfio.pc === "tombstoneLock" && isFree(s.igroupLock),
        then: (s: S) => {
          useVdev(s, "iommufd_vdevice_destroy");
          abort(s);
          putIdevFreeVdev(s);
          s.vfio.pc = "wait";
        },
      },
      DestroyAbort: {
        kernel: "iommufd_vdevice_destroy: igroup->lock, iommufd_vdevice_abort, unlock, put idev",
        when: (s: S) => s.destroy.pc === "lock" && isFree(s.igroupLock),
        then: (s: S) => {
          useVdev(s, "iommufd_vdevice_destroy");
          useIdev(s, "iommufd_vdevice_destroy (vdev->idev)");
          abort(s);
          putIdevFreeVdev(s);
          s.destroy.pc = "idle";
        },
      },
      TsmOp: {
        kernel: "iommufd_vdevice_tsm_op_ioctl: tsm_bind/tsm_unbind(vdev->idev->dev), put vdev",
        when: (s: S) => s.tsm.pc === "op",
        then: (s: S) => {
          useVdev(s, "iommufd_vdevice_tsm_op_ioctl");
          useIdev(s, "iommufd_vdevice_tsm_op_ioctl (vdev->idev->dev)");
          s.tsmBound = !s.tsm.unbind; // the TSM core serializes bind/unbind
          s.vdev.shortRef = false;
          s.tsm.pc = "idle";
        },
      },
    };

    return {
      ...user,
      ...(seed ? seedSteps : upstreamSteps),
      ...(bothLocks ? bothLocksSteps : {}),
      VfioFree: {
        kernel: "iommufd_object_remove(idev): wait for wait_cnt, iommufd_device_destroy, free",
        when: (s: S) => s.vfio.pc === "wait" && s.idev.wait === 0,
        then: (s: S) => {
          s.idev.state = "freed";
          s.vfio.pc = "idle";
        },
      },
    };
  },
  invariants: {
    tsmBoundImpliesAlive: {
      doc: "a TSM-bound device has a vdevice not yet freed and a live idev",
      holds: (s) => !s.tsmBound || ((s.vdev.state === "live" || s.vdev.state === "removed") && s.idev.state === "live"),
    },
    unboundAfterVfioUnbind: {
      doc: "once VFIO's unbind has returned (idev freed) the device is not TSM-bound",
      holds: (s) => s.idev.state !== "freed" || !s.tsmBound,
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
