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
// Actions (user operation -> kernel function):
//   Bind                 (re)open of the VFIO cdev, VFIO_DEVICE_BIND_IOMMUFD -> iommufd_device_bind:
//                        a new idev. Only once the previous idev is freed: device_cdev.c
//                        vfio_df_ioctl_bind_iommufd and the release's unbind (vfio_df_cdev_close)
//                        both hold device->dev_set->lock
//   VdevAlloc            IOMMU_VDEVICE_ALLOC -> iommufd_vdevice_alloc_ioctl (viommu.c)
//   DestroyVdev(v)       IOMMU_DESTROY -> iommufd_object_remove: refcount_dec_if_one(users),
//                        else EBUSY. EBUSY changes nothing, so it is the guard being false; the
//                        retry is the same action firing later
//   TsmBind(v)/TsmUnbind(v)  the TSM op on vdevice v (seed: vdev->mutex first; upstream v5
//                        iommufd_vdevice_tsm_op_ioctl: iommufd_get_vdevice, no lock)
//   CloseVfio            vfio_df_unbind_iommufd -> iommufd_device_unbind (seed: the sketch)
//   and the later steps of those calls, as in iommufd-tsm/vdevice.
// The kernel functions (and seed 004's sketch) are specs/kernel/iommufd.ts's; each design
// family (seed-004, upstream) supplies its VdevAlloc, CloseVfio, the start of a TSM op and
// the later steps. Threads: "vfio" (tid 1), "destroy" (tid 2), "tsm" (tid 3), "vmm" for the
// calls that finish in one step (Bind, VdevAlloc).
//
// Bounds: `cycles` caps VFIO binds, vdevice allocations, TSM binds and TSM unbinds (each at
// most `cycles` times), so every run is finite and the deadlock check still means "teardown
// terminates". seed-004 has two vdevice slots: a freed slot is reused by the next allocation (its number
// tells the two apart); upstream needs one, since a vdevice never outlives its idev and
// VDEVICE_ALLOC refuses a second while idev->vdev is set. One device, one VM (pci_tsm_bind's -EBUSY for another kvm cannot
// happen), one user thread per kind of call, as in iommufd-tsm/vdevice.
import { z } from "zod";
import { action, defineSpec, range, type Witness } from "../../checker/spec.ts";
import {
  idevSchema, idevUse, iommufdDeviceBind, iommufdDeviceDestroy, iommufdDeviceRemoveVdev, iommufdObjectTombstoneUser,
  iommufdVdeviceAllocIoctl, iommufdVdeviceDestroy, iommufdVdeviceTsmOp, noIdev, noVdev, seed004DestroyUnbind, seed004TsmOp,
  seed004VfioUnbind, tdiSchema, unboundTdi, vdevAlloc, vdevSchema, vdevUse,
} from "../kernel/iommufd.ts";
import { acquire, isFree, lockSchema, release, unlocked } from "../kernel/lock.ts";
import { firstBusy, threadSchema } from "../kernel/thread.ts";

export const designs = ["seed-004", "upstream-v5", "upstream-no-abort-unbind"] as const;
export type Design = (typeof designs)[number];

const params = z.object({
  design: z.enum(designs).default("upstream-v5"),
  /** How often each user operation may repeat. */
  cycles: z.number().int().min(1).max(3).default(2),
});
type Params = z.infer<typeof params>;

const VFIO = 1, DESTROY = 2, TSM = 3;
/** seed-004: a vdevice outlives its idev, so two can coexist; upstream: one at a time. */
const slots = (p: Params) => (p.design === "seed-004" && p.cycles >= 2 ? 2 : 1);

function stateSchema(p: Params) {
  const c = p.cycles;
  const n = z.number().int().min(0).max(c);
  return z.object({
    idev: idevSchema(c, slots(p)),
    /** Each with vdev->mutex (seed-004). */
    vdev: z.array(vdevSchema(c, c).extend({ mutex: lockSchema(3) })).length(slots(p)),
    tdi: tdiSchema(c),
    igroupLock: lockSchema(3),
    vfio: threadSchema(["unbind", "tombstone", "tombstoneLock", "wait"], { saw: z.number().int().min(0).max(slots(p)) }),
    destroy: threadSchema(["lock"], { slot: z.number().int().min(0).max(slots(p) - 1) }),
    tsm: threadSchema(["lockIgroup", "op"], { unbind: z.boolean(), slot: z.number().int().min(0).max(slots(p) - 1) }),
    /** User operations issued so far. */
    did: z.object({ bind: n, alloc: n, tsmBind: n, tsmUnbind: n }),
  });
}
type S = z.infer<ReturnType<typeof stateSchema>>;
type Vdev = S["vdev"][number];

export default defineSpec({
  name: "iommufd-tsm/tsm-cycles",
  summary: "TSM bind/unbind, vdevice and idev teardown with rebinds, second vdevices and retries",
  source: "seed 004_ccbc08094855a909.txt; upstream 850f14f5b919; Aneesh v5; drivers/pci/tsm.c; review U8",
  params,
  state: stateSchema,
  init: (p: Params) => ({
    idev: noIdev(),
    vdev: range(slots(p)).map(() => ({ ...noVdev(), mutex: unlocked() })),
    tdi: unboundTdi(),
    igroupLock: unlocked(),
    vfio: { pc: "idle" as const, saw: 0 },
    destroy: { pc: "idle" as const, slot: 0 },
    tsm: { pc: "idle" as const, unbind: false, slot: 0 },
    did: { bind: 0, alloc: 0, tsmBind: 0, tsmUnbind: 0 },
  }),
  actions: (p: Params) => {
    const seed = p.design === "seed-004";
    const c = p.cycles;
    const freeSlot = (s: S) => s.vdev.findIndex((v) => v.state === "none" || v.state === "freed");
    const each = { v: range(slots(p)) };

    /** A design family's own calls: the ones whose code differs between seed 004 and upstream. */
    interface Family {
      VdevAlloc: (s: S, k: number) => void;
      CloseVfio: { kernel: string; then: (s: S) => void };
      /** The TSM op's first step on vdevice k: its guard's extra condition and its effect. */
      tsmOk: (s: S, v: Vdev) => boolean;
      startTsm: (s: S, k: number) => void;
      tsmKernel: (op: string) => string;
      steps: Record<string, { kernel: string; thread: string; when: (s: S) => boolean; then: (s: S) => void }>;
    }

    const seed004: Family = {
      VdevAlloc: (s, k) => vdevAlloc(s.vdev[k]!, s.did.alloc), // pointers are set by TSM bind
      CloseVfio: {
        kernel: "vfio_df_unbind_iommufd: mutex_lock(igroup->lock), vdev = idev->vdev",
        then: (s) => {
          acquire(s.igroupLock, VFIO, "igroup->lock");
          s.vfio.saw = s.idev.vdev;
          s.vfio.pc = "unbind";
        },
      },
      tsmOk: (s, v) => s.idev.state === "live" && isFree(v.mutex),
      startTsm: (s, k) => {
        s.idev.wait += 1; // the op's lookup of the device's idev
        acquire(s.vdev[k]!.mutex, TSM, "vdev->mutex");
        s.tsm.pc = "lockIgroup";
      },
      tsmKernel: (op) => `TSM ${op}: mutex_lock(vdev->mutex)`,
      steps: {
        VfioUnbind: {
          kernel: "vfio_df_unbind_iommufd: tsm_unbind through idev->vdev, idev->vdev = NULL, unlock",
          thread: "vfio",
          when: (s) => s.vfio.pc === "unbind",
          then: (s) => {
            seed004VfioUnbind(s.idev, s.vfio.saw ? s.vdev[s.vfio.saw - 1] : undefined, s.tdi);
            release(s.igroupLock, VFIO, "igroup->lock");
            s.vfio.pc = "wait";
          },
        },
        DestroyLock: {
          kernel: "iommufd_vdevice_destroy: mutex_lock(vdev->mutex), tsm_unbind(vdev->idev->dev), free",
          thread: "destroy",
          when: (s) => s.destroy.pc === "lock" && isFree(s.vdev[s.destroy.slot]!.mutex),
          then: (s) => {
            const v = s.vdev[s.destroy.slot]!;
            acquire(v.mutex, DESTROY, "vdev->mutex");
            seed004DestroyUnbind(s.idev, v, s.tdi);
            release(v.mutex, DESTROY, "vdev->mutex");
            v.state = "freed"; // idev->vdev would need igroup->lock: left as it is
            s.destroy.pc = "idle";
          },
        },
        TsmLockIgroup: {
          kernel: "TSM bind/unbind: mutex_lock(igroup->lock), tsm_bind/tsm_unbind, set/clear both pointers",
          thread: "tsm",
          when: (s) => s.tsm.pc === "lockIgroup" && isFree(s.igroupLock),
          then: (s) => {
            const v = s.vdev[s.tsm.slot]!;
            acquire(s.igroupLock, TSM, "igroup->lock");
            seed004TsmOp(s.idev, v, s.tsm.slot, s.tdi, s.tsm.unbind);
            release(s.igroupLock, TSM, "igroup->lock");
            release(v.mutex, TSM, "vdev->mutex");
            s.tsm.pc = "idle";
          },
        },
      },
    };

    const upstream: Family = {
      VdevAlloc: (s, k) => void iommufdVdeviceAllocIoctl(s.idev, s.vdev[k]!, k, s.did.alloc), // -ENOENT / -EEXIST: nothing
      CloseVfio: {
        kernel: "iommufd_device_unbind -> iommufd_device_remove_vdev (pre_destroy) under igroup->lock",
        then: (s) => {
          const k = iommufdDeviceRemoveVdev(s.idev, s.vdev);
          if (k >= 0) s.vfio.saw = k + 1;
          s.vfio.pc = k >= 0 ? "tombstone" : "wait";
        },
      },
      tsmOk: () => true,
      startTsm: (s) => void (s.tsm.pc = "op"),
      tsmKernel: (op) => `IOMMU_VDEVICE_TSM_OP(${op.toUpperCase()}): iommufd_get_vdevice`,
      steps: {
        VfioTombstone: {
          kernel: "iommufd_object_tombstone_user: wait for the vdev's short-term users, remove (tombstone)",
          thread: "vfio",
          when: (s) => s.vfio.pc === "tombstone" && !s.vdev[s.vfio.saw - 1]!.shortRef,
          then: (s) => {
            iommufdObjectTombstoneUser(s.vdev[s.vfio.saw - 1]!);
            s.vfio.pc = "tombstoneLock";
          },
        },
        VfioTombstoneDestroy: {
          kernel: "iommufd_vdevice_destroy (from the tombstone): igroup->lock, iommufd_vdevice_abort, put idev",
          thread: "vfio",
          when: (s) => s.vfio.pc === "tombstoneLock" && isFree(s.igroupLock),
          then: (s) => {
            iommufdVdeviceDestroy(s.idev, s.vdev[s.vfio.saw - 1]!, s.tdi, p.design === "upstream-v5");
            s.vfio.pc = "wait";
          },
        },
        DestroyAbort: {
          kernel: "iommufd_vdevice_destroy: igroup->lock, iommufd_vdevice_abort, unlock, put idev",
          thread: "destroy",
          when: (s) => s.destroy.pc === "lock" && isFree(s.igroupLock),
          then: (s) => {
            const v = s.vdev[s.destroy.slot]!;
            vdevUse(v, "iommufd_vdevice_destroy");
            idevUse(s.idev, v.idev, "iommufd_vdevice_destroy (vdev->idev)");
            iommufdVdeviceDestroy(s.idev, v, s.tdi, p.design === "upstream-v5");
            s.destroy.pc = "idle";
          },
        },
        TsmOp: {
          kernel: "iommufd_vdevice_tsm_op_ioctl: tsm_bind/tsm_unbind(vdev->idev->dev), put vdev",
          thread: "tsm",
          when: (s) => s.tsm.pc === "op",
          then: (s) => {
            iommufdVdeviceTsmOp(s.idev, s.vdev[s.tsm.slot]!, s.tdi, s.tsm.unbind);
            s.tsm.pc = "idle";
          },
        },
      },
    };

    const f = seed ? seed004 : upstream;
    const tsmEnabled = (s: S, v: Vdev) => s.tsm.pc === "idle" && v.state === "live" && !v.shortRef && f.tsmOk(s, v);
    const startTsm = (s: S, k: number, unbind: boolean) => {
      s.tsm.unbind = unbind;
      s.tsm.slot = k;
      s.vdev[k]!.shortRef = true;
      f.startTsm(s, k);
    };
    return {
      Bind: {
        kernel: "VFIO_DEVICE_BIND_IOMMUFD -> iommufd_device_bind",
        thread: "vmm",
        when: (s: S) => s.did.bind < c && s.idev.state !== "live" && s.vfio.pc === "idle",
        then: (s: S) => {
          s.did.bind += 1;
          iommufdDeviceBind(s.idev, s.did.bind);
        },
      },
      VdevAlloc: {
        kernel: "IOMMU_VDEVICE_ALLOC -> iommufd_vdevice_alloc_ioctl",
        thread: "vmm",
        when: (s: S) => s.did.alloc < c && s.idev.state === "live" && isFree(s.igroupLock) && freeSlot(s) >= 0,
        then: (s: S) => {
          s.did.alloc += 1;
          f.VdevAlloc(s, freeSlot(s));
        },
      },
      CloseVfio: {
        kernel: f.CloseVfio.kernel,
        thread: "vfio",
        when: (s: S) => s.idev.state === "live" && s.vfio.pc === "idle" && isFree(s.igroupLock),
        then: f.CloseVfio.then,
      },
      DestroyVdev: action({
        kernel: "IOMMU_DESTROY -> iommufd_object_remove (refcount_dec_if_one(users), else EBUSY)",
        thread: "destroy",
        each,
        when: (s: S, { v }) => {
          const d = s.vdev[v]!;
          return s.destroy.pc === "idle" && d.state === "live" && !d.kernelRef && !d.shortRef;
        },
        then: (s: S, { v }) => {
          s.vdev[v]!.state = "removed";
          s.destroy.slot = v;
          s.destroy.pc = "lock";
        },
      }),
      TsmBind: action({
        kernel: f.tsmKernel("bind"),
        thread: "tsm",
        each,
        when: (s: S, { v }) => s.did.tsmBind < c && tsmEnabled(s, s.vdev[v]!),
        then: (s: S, { v }) => {
          s.did.tsmBind += 1;
          startTsm(s, v, false);
        },
      }),
      TsmUnbind: action({
        kernel: f.tsmKernel("unbind"),
        thread: "tsm",
        each,
        when: (s: S, { v }) => s.did.tsmUnbind < c && tsmEnabled(s, s.vdev[v]!),
        then: (s: S, { v }) => {
          s.did.tsmUnbind += 1;
          startTsm(s, v, true);
        },
      }),
      ...f.steps,
      VfioFree: {
        kernel: "iommufd_object_remove(idev): wait for wait_cnt, iommufd_device_destroy, free",
        thread: "vfio",
        when: (s: S) => s.vfio.pc === "wait" && s.idev.wait === 0,
        then: (s: S) => {
          iommufdDeviceDestroy(s.idev);
          s.vfio.pc = "idle";
          s.vfio.saw = 0;
        },
      },
    };
  },
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
  busy: (s: S) => firstBusy({ "vfio unbind": s.vfio, "vdev destroy": s.destroy, "tsm op": s.tsm }),
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
