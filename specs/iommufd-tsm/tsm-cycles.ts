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
//
// Bounds: `cycles` caps VFIO binds, vdevice allocations, TSM binds and TSM unbinds (each at
// most `cycles` times), so every run is finite and the deadlock check still means "teardown
// terminates". seed-004 has two vdevice slots: a freed slot is reused by the next allocation (its number
// tells the two apart); upstream needs one, since a vdevice never outlives its idev and
// VDEVICE_ALLOC refuses a second while idev->vdev is set. One device, one VM (pci_tsm_bind's -EBUSY for another kvm cannot
// happen), one user thread per kind of call, as in iommufd-tsm/vdevice.
import { z } from "zod";
import { action, defineSpec, Fault, range, type Witness } from "../../checker/spec.ts";
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
  const vdev = z.object({
    state: z.enum(["none", "live", "removed", "freed"]),
    /** Allocation number (1-based); tells a reused slot's vdevices apart. */
    id: n,
    /** vdev->idev: the generation of the idev it points to, 0 for NULL. */
    idev: n,
    /** vdev->tsm_bound (seed-004's own bookkeeping). */
    tsmBound: z.boolean(),
    kernelRef: z.boolean(),
    shortRef: z.boolean(),
    /** vdev->mutex (seed-004). */
    mutex: lockSchema(3),
  });
  return z.object({
    idev: z.object({
      state: z.enum(["none", "live", "freed"]),
      /** Generation: the number of VFIO binds so far. */
      gen: n,
      /** idev->vdev: slot + 1, 0 for NULL. */
      vdev: z.number().int().min(0).max(slots(p)),
      destroying: z.boolean(),
      wait: z.number().int().min(0).max(2),
    }),
    vdev: z.array(vdev).length(slots(p)),
    /** pdev->tsm->tdi: the allocation number of the vdevice whose bind made it, 0 if unbound. */
    tdi: n,
    /** History: an unbind on behalf of one vdevice tore down another's binding. */
    staleUnbind: z.boolean(),
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

const noVdev = () => ({ state: "none" as const, id: 0, idev: 0, tsmBound: false, kernelRef: false, shortRef: false, mutex: unlocked() });

export default defineSpec({
  name: "iommufd-tsm/tsm-cycles",
  summary: "TSM bind/unbind, vdevice and idev teardown with rebinds, second vdevices and retries",
  source: "seed 004_ccbc08094855a909.txt; upstream 850f14f5b919; Aneesh v5; drivers/pci/tsm.c; review U8",
  params,
  state: stateSchema,
  init: (p: Params) => ({
    idev: { state: "none" as const, gen: 0, vdev: 0, destroying: false, wait: 0 },
    vdev: range(slots(p)).map(noVdev),
    tdi: 0,
    staleUnbind: false,
    igroupLock: unlocked(),
    vfio: { pc: "idle" as const, saw: 0 },
    destroy: { pc: "idle" as const, slot: 0 },
    tsm: { pc: "idle" as const, unbind: false, slot: 0 },
    did: { bind: 0, alloc: 0, tsmBind: 0, tsmUnbind: 0 },
  }),
  actions: (p: Params) => {
    const seed = p.design === "seed-004";
    const abortUnbinds = p.design === "upstream-v5";
    const c = p.cycles;

    const useVdev = (v: Vdev, who: string) => {
      if (v.state === "freed") throw new Fault(`BUG: KASAN: slab-use-after-free in ${who}: struct iommufd_vdevice freed`);
    };
    /** Dereference an idev pointer of generation `gen`: older generations are freed. */
    const useIdev = (s: S, gen: number, who: string) => {
      if (gen !== s.idev.gen || s.idev.state === "freed") {
        throw new Fault(`BUG: KASAN: slab-use-after-free in ${who}: struct iommufd_device freed`);
      }
    };
    /**
     * tsm_unbind(dev) on behalf of vdevice `v`: __pci_tsm_unbind unbinds whatever TDI the
     * device has. Tearing down a binding made through a later vdevice is the stale unbind.
     * (A later vdevice's unbind of an earlier one's leftover binding is cleanup, not stale.)
     */
    const tsmUnbind = (s: S, v: Vdev) => {
      if (s.tdi > v.id) s.staleUnbind = true;
      s.tdi = 0;
    };
    /** pci_tsm_bind: binds if no TDI is bound; with one VM an existing binding returns 0. */
    const tsmBind = (s: S, v: Vdev) => {
      if (s.tdi === 0) s.tdi = v.id;
    };
    const abort = (s: S, v: Vdev) => {
      if (abortUnbinds) tsmUnbind(s, v); // tsm_unbind(idev->dev)
      s.idev.vdev = 0;
    };
    const putIdevFreeVdev = (s: S, v: Vdev) => {
      s.idev.wait -= 1;
      v.state = "freed";
      v.idev = 0;
    };
    const freeSlot = (s: S) => s.vdev.findIndex((v) => v.state === "none" || v.state === "freed");
    const slotFree = (s: S) => s.vdev.some((v) => v.state === "none" || v.state === "freed");
    const each = { v: range(slots(p)) };

    const user = {
      Bind: {
        kernel: "VFIO_DEVICE_BIND_IOMMUFD -> iommufd_device_bind",
        when: (s: S) => s.did.bind < c && s.idev.state !== "live" && s.vfio.pc === "idle",
        then: (s: S) => {
          s.did.bind += 1;
          s.idev.state = "live";
          s.idev.gen = s.did.bind;
          s.idev.vdev = 0;
          s.idev.destroying = false;
          s.idev.wait = 0;
        },
      },
      VdevAlloc: {
        kernel: "IOMMU_VDEVICE_ALLOC -> iommufd_vdevice_alloc_ioctl",
        when: (s: S) => s.did.alloc < c && s.idev.state === "live" && isFree(s.igroupLock) && slotFree(s),
        then: (s: S) => {
          s.did.alloc += 1;
          const k = freeSlot(s);
          const v = s.vdev[k]!;
          if (!seed && (s.idev.destroying || s.idev.vdev !== 0)) return; // -ENOENT / -EEXIST
          Object.assign(v, noVdev());
          v.state = "live";
          v.id = s.did.alloc;
          if (seed) return; // pointers are set by TSM bind
          v.idev = s.idev.gen;
          s.idev.vdev = k + 1;
          s.idev.wait += 1; // the vdev keeps iommufd_get_device's reference
        },
      },
      CloseVfio: {
        kernel: seed
          ? "vfio_df_unbind_iommufd: mutex_lock(igroup->lock), vdev = idev->vdev"
          : "iommufd_device_unbind -> iommufd_device_remove_vdev (pre_destroy) under igroup->lock",
        when: (s: S) => s.idev.state === "live" && s.vfio.pc === "idle" && isFree(s.igroupLock),
        then: (s: S) => {
          if (seed) {
            acquire(s.igroupLock, VFIO, "igroup->lock");
            s.vfio.saw = s.idev.vdev;
            s.vfio.pc = "unbind";
            return;
          }
          s.idev.destroying = true;
          const k = s.idev.vdev - 1;
          if (k < 0) s.vfio.pc = "wait"; // case 1: no vdev
          else if (s.vdev[k]!.state === "live") {
            s.vdev[k]!.kernelRef = true; // case 2: hold a users ref, unlock, tombstone it
            s.vfio.saw = k + 1;
            s.vfio.pc = "tombstone";
          } else s.vfio.pc = "wait"; // case 3: a racing destroy removed it
        },
      },
      DestroyVdev: action({
        kernel: "IOMMU_DESTROY -> iommufd_object_remove (refcount_dec_if_one(users), else EBUSY)",
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
        kernel: seed ? "TSM bind: mutex_lock(vdev->mutex)" : "IOMMU_VDEVICE_TSM_OP(BIND): iommufd_get_vdevice",
        each,
        when: (s: S, { v }) => s.did.tsmBind < c && tsmOpEnabled(s, s.vdev[v]!),
        then: (s: S, { v }) => {
          s.did.tsmBind += 1;
          startTsmOp(s, v, false);
        },
      }),
      TsmUnbind: action({
        kernel: seed ? "TSM unbind: mutex_lock(vdev->mutex)" : "IOMMU_VDEVICE_TSM_OP(UNBIND): iommufd_get_vdevice",
        each,
        when: (s: S, { v }) => s.did.tsmUnbind < c && tsmOpEnabled(s, s.vdev[v]!),
        then: (s: S, { v }) => {
          s.did.tsmUnbind += 1;
          startTsmOp(s, v, true);
        },
      }),
    };
    function tsmOpEnabled(s: S, v: Vdev): boolean {
      return s.tsm.pc === "idle" && v.state === "live" && !v.shortRef &&
        (!seed || (s.idev.state === "live" && isFree(v.mutex)));
    }
    function startTsmOp(s: S, k: number, unbind: boolean): void {
      const v = s.vdev[k]!;
      s.tsm.unbind = unbind;
      s.tsm.slot = k;
      v.shortRef = true;
      if (seed) {
        s.idev.wait += 1; // the op's lookup of the device's idev
        acquire(v.mutex, TSM, "vdev->mutex");
        s.tsm.pc = "lockIgroup";
      } else s.tsm.pc = "op";
    }

    const seedSteps = {
      VfioUnbind: {
        kernel: "vfio_df_unbind_iommufd: tsm_unbind through idev->vdev, idev->vdev = NULL, unlock",
        when: (s: S) => s.vfio.pc === "unbind",
        then: (s: S) => {
          if (s.vfio.saw) {
            const v = s.vdev[s.vfio.saw - 1]!;
            useVdev(v, "vfio_df_unbind_iommufd (tsm_unbind via idev->vdev)");
            tsmUnbind(s, v); // cannot clear vdev->tsm_bound: no vdev->mutex
            s.idev.vdev = 0;
          }
          release(s.igroupLock, VFIO, "igroup->lock");
          s.vfio.pc = "wait";
        },
      },
      DestroyLock: {
        kernel: "iommufd_vdevice_destroy: mutex_lock(vdev->mutex), tsm_unbind(vdev->idev->dev), free",
        when: (s: S) => s.destroy.pc === "lock" && isFree(s.vdev[s.destroy.slot]!.mutex),
        then: (s: S) => {
          const v = s.vdev[s.destroy.slot]!;
          acquire(v.mutex, DESTROY, "vdev->mutex");
          if (v.tsmBound) {
            if (v.idev) useIdev(s, v.idev, "iommufd_vdevice_destroy (tsm_unbind(vdev->idev->dev))");
            tsmUnbind(s, v);
            v.tsmBound = false;
          }
          v.idev = 0;
          release(v.mutex, DESTROY, "vdev->mutex");
          v.state = "freed"; // idev->vdev would need igroup->lock: left as it is
          s.destroy.pc = "idle";
        },
      },
      TsmLockIgroup: {
        kernel: "TSM bind/unbind: mutex_lock(igroup->lock), tsm_bind/tsm_unbind, set/clear both pointers",
        when: (s: S) => s.tsm.pc === "lockIgroup" && isFree(s.igroupLock),
        then: (s: S) => {
          const k = s.tsm.slot;
          const v = s.vdev[k]!;
          acquire(s.igroupLock, TSM, "igroup->lock");
          useIdev(s, s.idev.gen, "TSM op");
          // The model's assumption: bind refuses while idev->vdev names another vdevice.
          const mine = s.idev.vdev === 0 || s.idev.vdev === k + 1;
          if (!s.tsm.unbind && !v.tsmBound && !s.idev.destroying && mine) {
            tsmBind(s, v);
            v.tsmBound = true;
            v.idev = s.idev.gen;
            s.idev.vdev = k + 1;
          } else if (s.tsm.unbind && v.tsmBound) {
            tsmUnbind(s, v);
            v.tsmBound = false;
            v.idev = 0;
            s.idev.vdev = 0;
          }
          release(s.igroupLock, TSM, "igroup->lock");
          release(v.mutex, TSM, "vdev->mutex");
          v.shortRef = false;
          s.idev.wait -= 1;
          s.tsm.pc = "idle";
        },
      },
    };

    const upstreamSteps = {
      VfioTombstone: {
        kernel: "iommufd_object_tombstone_user: wait for the vdev's short-term users, remove (tombstone)",
        when: (s: S) => s.vfio.pc === "tombstone" && !s.vdev[s.vfio.saw - 1]!.shortRef,
        then: (s: S) => {
          const v = s.vdev[s.vfio.saw - 1]!;
          useVdev(v, "iommufd_object_tombstone_user");
          v.state = "removed";
          v.kernelRef = false;
          s.vfio.pc = "tombstoneLock";
        },
      },
      VfioTombstoneDestroy: {
        kernel: "iommufd_vdevice_destroy (from the tombstone): igroup->lock, iommufd_vdevice_abort, put idev",
        when: (s: S) => s.vfio.pc === "tombstoneLock" && isFree(s.igroupLock),
        then: (s: S) => {
          const v = s.vdev[s.vfio.saw - 1]!;
          useVdev(v, "iommufd_vdevice_destroy");
          abort(s, v);
          putIdevFreeVdev(s, v);
          s.vfio.pc = "wait";
        },
      },
      DestroyAbort: {
        kernel: "iommufd_vdevice_destroy: igroup->lock, iommufd_vdevice_abort, unlock, put idev",
        when: (s: S) => s.destroy.pc === "lock" && isFree(s.igroupLock),
        then: (s: S) => {
          const v = s.vdev[s.destroy.slot]!;
          useVdev(v, "iommufd_vdevice_destroy");
          useIdev(s, v.idev, "iommufd_vdevice_destroy (vdev->idev)");
          abort(s, v);
          putIdevFreeVdev(s, v);
          s.destroy.pc = "idle";
        },
      },
      TsmOp: {
        kernel: "iommufd_vdevice_tsm_op_ioctl: tsm_bind/tsm_unbind(vdev->idev->dev), put vdev",
        when: (s: S) => s.tsm.pc === "op",
        then: (s: S) => {
          const v = s.vdev[s.tsm.slot]!;
          useVdev(v, "iommufd_vdevice_tsm_op_ioctl");
          useIdev(s, v.idev, "iommufd_vdevice_tsm_op_ioctl (vdev->idev->dev)");
          if (s.tsm.unbind) tsmUnbind(s, v);
          else tsmBind(s, v);
          v.shortRef = false;
          s.tsm.pc = "idle";
        },
      },
    };

    return {
      ...user,
      ...(seed ? seedSteps : upstreamSteps),
      VfioFree: {
        kernel: "iommufd_object_remove(idev): wait for wait_cnt, iommufd_device_destroy, free",
        when: (s: S) => s.vfio.pc === "wait" && s.idev.wait === 0,
        then: (s: S) => {
          s.idev.state = "freed";
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
        s.tdi === 0 ||
        (s.idev.state === "live" && s.vdev.some((v) => v.id === s.tdi && (v.state === "live" || v.state === "removed"))),
    },
    unboundAfterVfioUnbind: {
      doc: "once VFIO's unbind has returned (idev freed) the device is not TSM-bound",
      holds: (s: S) => s.idev.state !== "freed" || s.tdi === 0,
    },
    noStaleUnbind: {
      doc: "a tsm_unbind issued for one vdevice never tears down a binding made through a later one",
      holds: (s: S) => !s.staleUnbind,
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
      when: (s: S) => s.tdi >= 2,
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
