// iommufd devices and vdevices (drivers/iommu/iommufd/{device,viommu,main}.c after
// 850f14f5b919, with tsm_unbind in iommufd_vdevice_abort as in the TSM v5 series) and the
// PCI device's TSM binding (drivers/pci/tsm.c). Locks are the caller's: a spec that
// interleaves inside these calls takes idev->igroup->lock in its own steps.
//
// Objects:
//   idev  struct iommufd_device: none / live / freed; `gen` numbers the VFIO binds so a
//         pointer to an older idev is told apart; `vdev` is idev->vdev (vdevice slot + 1,
//         0 for NULL); `destroying`; `wait` the wait_cnt references beyond the bias (the
//         vdevice's pin, an ioctl's short-term reference)
//   vdev  struct iommufd_vdevice: none / live / removed (out of the object table, destroy
//         under way) / freed; `id` its allocation number; `idev` the gen of the idev it
//         points to (0 for NULL); `tsmBound` seed 004's own vdev->tsm_bound; `kernelRef` a
//         kernel-internal users reference (pre_destroy's), `shortRef` an ioctl's
//   tdi   pdev->tsm->tdi: the id of the vdevice whose bind made it, 0 when unbound;
//         `staleUnbind` records an unbind issued for one vdevice that tore down a later one's
//
// The end of the file gives the calls as threads (tsmThreads), for the iommufd-tsm specs.
import { z } from "zod";
import { Fault, range } from "../../checker/spec.ts";
import type { StepDef, ThreadDef } from "../../checker/threads.ts";
import { lockSchema, unlocked } from "./lock.ts";
import { threadSchema } from "./thread.ts";

export const idevStates = ["none", "live", "freed"] as const;
export const vdevStates = ["none", "live", "removed", "freed"] as const;

export interface Idev {
  state: (typeof idevStates)[number];
  gen: number;
  vdev: number;
  destroying: boolean;
  wait: number;
}

export interface Vdev {
  state: (typeof vdevStates)[number];
  id: number;
  idev: number;
  tsmBound: boolean;
  kernelRef: boolean;
  shortRef: boolean;
}

export interface Tdi {
  tdi: number;
  staleUnbind: boolean;
}

/** `binds`: how many VFIO binds (idev generations); `vdevs`: vdevice slots; `wait` the largest wait_cnt. */
export function idevSchema(binds: number, vdevs: number, wait = 2) {
  return z.object({
    state: z.enum(idevStates),
    gen: z.number().int().min(0).max(binds),
    vdev: z.number().int().min(0).max(vdevs),
    destroying: z.boolean(),
    wait: z.number().int().min(0).max(wait),
  });
}

/** `allocs`: how many vdevice allocations; `binds`: idev generations. */
export function vdevSchema(allocs: number, binds: number) {
  return z.object({
    state: z.enum(vdevStates),
    id: z.number().int().min(0).max(allocs),
    idev: z.number().int().min(0).max(binds),
    tsmBound: z.boolean(),
    kernelRef: z.boolean(),
    shortRef: z.boolean(),
  });
}

export function tdiSchema(allocs: number) {
  return z.object({ tdi: z.number().int().min(0).max(allocs), staleUnbind: z.boolean() });
}

export function noIdev(): Idev {
  return { state: "none", gen: 0, vdev: 0, destroying: false, wait: 0 };
}

export function noVdev(): Vdev {
  return { state: "none", id: 0, idev: 0, tsmBound: false, kernelRef: false, shortRef: false };
}

export function unboundTdi(): Tdi {
  return { tdi: 0, staleUnbind: false };
}

/** `fn` dereferences the vdevice: after its kfree that is KASAN's report. */
export function vdevUse(v: Vdev, fn: string): void {
  if (v.state === "freed") throw new Fault(`BUG: KASAN: slab-use-after-free in ${fn}: struct iommufd_vdevice freed`, v);
}

/** `fn` dereferences an idev pointer of generation `gen`: an older generation, or a freed idev, is KASAN's report. */
export function idevUse(idev: Idev, gen: number, fn: string): void {
  if (gen !== idev.gen || idev.state === "freed") {
    throw new Fault(`BUG: KASAN: slab-use-after-free in ${fn}: struct iommufd_device freed`, idev);
  }
}

/** drivers/iommu/iommufd/device.c:iommufd_device_bind (from VFIO_DEVICE_BIND_IOMMUFD): a new idev, generation `gen`. */
export function iommufdDeviceBind(idev: Idev, gen: number): void {
  idev.state = "live";
  idev.gen = gen;
  idev.vdev = 0;
  idev.destroying = false;
  idev.wait = 0;
}

/** A new vdevice object in slot `v` (iommufd_object_alloc), allocation number `id`. */
export function vdevAlloc(v: Vdev, id: number): void {
  Object.assign(v, noVdev());
  v.state = "live";
  v.id = id;
}

/**
 * drivers/iommu/iommufd/viommu.c:iommufd_vdevice_alloc_ioctl (850f14f5b919) under
 * igroup->lock: -ENOENT once idev->destroying, -EEXIST while idev->vdev is set (false, nothing
 * made); else both pointers are set and the vdevice keeps the idev reference
 * iommufd_get_device took (wait_cnt).
 */
export function iommufdVdeviceAllocIoctl(idev: Idev, v: Vdev, slot: number, id: number): boolean {
  if (idev.destroying || idev.vdev !== 0) return false;
  vdevAlloc(v, id);
  v.idev = idev.gen;
  idev.vdev = slot + 1;
  idev.wait += 1;
  return true;
}

/**
 * drivers/iommu/iommufd/device.c:iommufd_device_remove_vdev (the idev's pre_destroy) under
 * igroup->lock: set idev->destroying; (1) no vdevice: nothing; (2) a live vdevice: take a
 * users reference, to tombstone it after the unlock: returns its slot; (3) a vdevice a racing
 * IOMMU_DESTROY already removed: nothing, the wait on wait_cnt covers it. -1 for 1 and 3.
 */
export function iommufdDeviceRemoveVdev(idev: Idev, vdevs: Vdev[]): number {
  idev.destroying = true;
  const k = idev.vdev - 1;
  if (k < 0 || vdevs[k]!.state !== "live") return -1;
  vdevs[k]!.kernelRef = true;
  return k;
}

/** drivers/iommu/iommufd/main.c:iommufd_object_tombstone_user, once the vdevice's short-term users are gone: out of the table. */
export function iommufdObjectTombstoneUser(v: Vdev): void {
  vdevUse(v, "iommufd_object_tombstone_user");
  v.state = "removed";
  v.kernelRef = false;
}

/**
 * drivers/pci/tsm.c:pci_tsm_bind for vdevice `v`: binds when no TDI is bound; with one VM,
 * an existing binding returns 0 ("Resolve races to bind a TDI").
 */
export function pciTsmBind(t: Tdi, v: Vdev): void {
  if (t.tdi === 0) t.tdi = v.id;
}

/**
 * drivers/pci/tsm.c:pci_tsm_unbind (__pci_tsm_unbind) issued for vdevice `v`: unbinds
 * whatever TDI the device has, a no-op when none. Tearing down a binding made through a later
 * vdevice is the stale unbind.
 */
export function pciTsmUnbind(t: Tdi, v: Vdev): void {
  if (t.tdi > v.id) t.staleUnbind = true;
  t.tdi = 0;
}

/**
 * drivers/iommu/iommufd/viommu.c:iommufd_vdevice_destroy under igroup->lock:
 * iommufd_vdevice_abort (the TSM v5 series: tsm_unbind first, when `abortUnbinds`;
 * idev->vdev = NULL), unlock, then the put of the idev reference and the free.
 */
export function iommufdVdeviceDestroy(idev: Idev, v: Vdev, t: Tdi, abortUnbinds: boolean): void {
  vdevUse(v, "iommufd_vdevice_destroy");
  if (abortUnbinds) pciTsmUnbind(t, v); // tsm_unbind(idev->dev)
  idev.vdev = 0;
  idev.wait -= 1;
  v.state = "freed";
  v.idev = 0;
}

/**
 * drivers/iommu/iommufd/tsm.c:iommufd_vdevice_tsm_op_ioctl (TSM v5), after iommufd_get_vdevice
 * took the short-term reference: tsm_bind/tsm_unbind(vdev->idev->dev), then the put.
 */
export function iommufdVdeviceTsmOp(idev: Idev, v: Vdev, t: Tdi, unbind: boolean): void {
  vdevUse(v, "iommufd_vdevice_tsm_op_ioctl");
  idevUse(idev, v.idev, "iommufd_vdevice_tsm_op_ioctl (vdev->idev->dev)");
  if (unbind) pciTsmUnbind(t, v);
  else pciTsmBind(t, v);
  v.shortRef = false;
}

/** drivers/iommu/iommufd/main.c:iommufd_object_remove of the idev, once wait_cnt is 0: iommufd_device_destroy and the free. */
export function iommufdDeviceDestroy(idev: Idev): void {
  if (idev.wait !== 0) throw new Fault(`model: iommufd_device_destroy with wait_cnt ${idev.wait}`, idev);
  idev.state = "freed";
}

// ---- Seed 004's sketch (posted June 2025, not merged): two locks, no pin ----
// vdev->idev and vdev->tsm_bound under the vdevice mutex, idev->vdev under igroup->lock;
// both pointers set by TSM bind. The bind code is not in the seed: the TSM op looks up the
// device's current idev and refuses to bind while idev->vdev names another vdevice (the
// model's assumptions).

/** VFIO's unbind under igroup->lock: tsm_unbind through idev->vdev (`v`, sampled), which it cannot clear on the vdevice side. */
export function seed004VfioUnbind(idev: Idev, v: Vdev | undefined, t: Tdi): void {
  if (v) {
    vdevUse(v, "vfio_df_unbind_iommufd (tsm_unbind via idev->vdev)");
    pciTsmUnbind(t, v); // cannot clear vdev->tsm_bound: no vdev->mutex
  }
  idev.vdev = 0;
}

/** iommufd_vdevice_destroy under the vdevice mutex: tsm_unbind(vdev->idev->dev) if bound; vdev->idev = NULL. */
export function seed004DestroyUnbind(idev: Idev, v: Vdev, t: Tdi): void {
  if (v.tsmBound) {
    if (v.idev) idevUse(idev, v.idev, "iommufd_vdevice_destroy (tsm_unbind(vdev->idev->dev))");
    pciTsmUnbind(t, v);
    v.tsmBound = false;
  }
  v.idev = 0;
}

/** The TSM op under the vdevice mutex and then igroup->lock: bind sets both pointers, unbind clears them. */
export function seed004TsmOp(idev: Idev, v: Vdev, slot: number, t: Tdi, unbind: boolean): void {
  idevUse(idev, idev.gen, "TSM op");
  const mine = idev.vdev === 0 || idev.vdev === slot + 1;
  if (!unbind && !v.tsmBound && !idev.destroying && mine) {
    pciTsmBind(t, v);
    v.tsmBound = true;
    v.idev = idev.gen;
    idev.vdev = slot + 1;
  } else if (unbind && v.tsmBound) {
    pciTsmUnbind(t, v);
    v.tsmBound = false;
    v.idev = 0;
    idev.vdev = 0;
  }
  v.shortRef = false;
  idev.wait -= 1;
}

// ---- The calls as threads: VFIO's unbind, IOMMU_DESTROY, the TSM op, and the VMM's ----
// calls that finish in one step (VFIO bind, VDEVICE_ALLOC). Seed 004's two locks
// (`seed-004`, and `seed-004-both-locks` where each teardown takes the other lock too) or
// upstream's one (`upstream-v5`, `upstream-no-abort-unbind`: abort does not tsm_unbind).

export type TsmDesign = "seed-004" | "seed-004-both-locks" | "upstream-v5" | "upstream-no-abort-unbind";

/** One device, `slots` vdevices (each with its mutex, seed 004's), each user call at most `cycles` times. */
export function tsmStateSchema(slots: number, cycles: number) {
  const n = z.number().int().min(0).max(cycles);
  const slot = z.number().int().min(0).max(slots - 1);
  return z.object({
    idev: idevSchema(cycles, slots),
    vdev: z.array(vdevSchema(cycles, cycles)).length(slots),
    vdevMutex: z.array(lockSchema(4)).length(slots),
    tdi: tdiSchema(cycles),
    igroupLock: lockSchema(4),
    /** saw: the vdevice (slot + 1) VFIO's unbind found through idev->vdev. */
    vfio: threadSchema(["lockVdev", "unbind", "tombstone", "tombstoneDestroy", "wait"], { saw: z.number().int().min(0).max(slots) }),
    /** clearIdev: seed-004-both-locks' destroy goes on to clear idev->vdev under igroup->lock. */
    destroy: threadSchema(["lock", "lockIgroup", "abort"], { v: slot, clearIdev: z.boolean() }),
    tsm: threadSchema(["bind.lockIgroup", "unbind.lockIgroup", "bind.op", "unbind.op"], { v: slot }),
    vmm: threadSchema([]),
    /** User calls issued so far. */
    did: z.object({ bind: n, alloc: n, tsmBind: n, tsmUnbind: n }),
  });
}
export type TsmState = z.infer<ReturnType<typeof tsmStateSchema>>;

export function tsmInit(slots: number): TsmState {
  return {
    idev: noIdev(),
    vdev: range(slots).map(noVdev),
    vdevMutex: range(slots).map(unlocked),
    tdi: unboundTdi(),
    igroupLock: unlocked(),
    vfio: { pc: "idle", saw: 0 },
    destroy: { pc: "idle", v: 0, clearIdev: false },
    tsm: { pc: "idle", v: 0 },
    vmm: { pc: "idle" },
    did: { bind: 0, alloc: 0, tsmBind: 0, tsmUnbind: 0 },
  };
}

/** lockdep's classes: idev->igroup->lock, and every vdevice's mutex as one class. */
export const tsmLocks = (s: TsmState) => ({ "igroup->lock": s.igroupLock, "vdev->mutex": s.vdevMutex });

type S = TsmState;
type V = { v: number };

/** The threads of `design` on `slots` vdevices, each user call at most `cycles` times. */
export function tsmThreads(design: TsmDesign, slots: number, cycles: number): Record<string, ThreadDef<S>> {
  const seed = design === "seed-004" || design === "seed-004-both-locks";
  const bothLocks = design === "seed-004-both-locks";
  const abortUnbinds = design === "upstream-v5";
  const each = { v: range(slots) };
  const mutexes = range(slots).map((v) => `vdev->mutex[${v}]`); // named once: guards ask for them in every state
  const mutex = (_s: S, { v }: V) => mutexes[v]!;
  const saw = (s: S) => s.vdev[s.vfio.saw - 1]!;
  const freeSlot = (s: S) => s.vdev.findIndex((x) => x.state === "none" || x.state === "freed");
  const wait: StepDef<S> = {
    kernel: "iommufd_object_remove(idev): wait for wait_cnt, iommufd_device_destroy, free",
    when: (s) => s.idev.wait === 0,
    then: (s) => {
      iommufdDeviceDestroy(s.idev);
      s.vfio.saw = 0;
    },
  };

  // vfio_df_unbind_iommufd -> iommufd_device_unbind.
  const vfio: ThreadDef<S> = {
    id: 1,
    pc: (s) => s.vfio,
    steps: seed
      ? {
          lockIgroup: {
            kernel: "vfio_df_unbind_iommufd: mutex_lock(igroup->lock), vdev = idev->vdev",
            lock: "igroup->lock",
            when: (s) => s.idev.state === "live",
            then: (s) => void (s.vfio.saw = s.idev.vdev),
            next: (s) => (bothLocks && s.vfio.saw ? "lockVdev" : "unbind"),
          },
          ...(bothLocks
            ? {
                lockVdev: {
                  kernel: "vfio_df_unbind_iommufd: mutex_lock(vdev->mutex), tsm_unbind, clear both pointers",
                  lock: (s: S) => mutex(s, { v: s.vfio.saw - 1 }),
                  then: (s: S) => {
                    const d = saw(s);
                    vdevUse(d, "vfio_df_unbind_iommufd (mutex_lock(&vdev->mutex))");
                    if (d.tsmBound) {
                      pciTsmUnbind(s.tdi, d);
                      d.tsmBound = false;
                    }
                    d.idev = 0;
                    s.idev.vdev = 0;
                  },
                  unlock: (s: S) => [mutex(s, { v: s.vfio.saw - 1 }), "igroup->lock"],
                  next: "wait",
                },
              }
            : {}),
          unbind: {
            // seed 004 sketch; tsm_unbind = drivers/pci/tsm.c:pci_tsm_unbind (no-op if unbound).
            kernel: "vfio_df_unbind_iommufd: tsm_unbind through idev->vdev, idev->vdev = NULL, unlock",
            then: (s) => seed004VfioUnbind(s.idev, s.vfio.saw ? saw(s) : undefined, s.tdi),
            unlock: "igroup->lock",
          },
          wait,
        }
      : {
          removeVdev: {
            kernel: "iommufd_device_unbind -> iommufd_device_remove_vdev (pre_destroy) under igroup->lock",
            lock: "igroup->lock",
            unlock: "igroup->lock",
            when: (s) => s.idev.state === "live",
            then: (s) => void (s.vfio.saw = iommufdDeviceRemoveVdev(s.idev, s.vdev) + 1),
            next: (s) => (s.vfio.saw ? "tombstone" : "wait"),
          },
          tombstone: {
            kernel: "iommufd_object_tombstone_user: wait for the vdev's short-term users, remove (tombstone)",
            when: (s) => !saw(s).shortRef,
            then: (s) => iommufdObjectTombstoneUser(saw(s)),
          },
          tombstoneDestroy: {
            kernel: "iommufd_vdevice_destroy (from the tombstone): igroup->lock, iommufd_vdevice_abort, put idev",
            lock: "igroup->lock",
            unlock: "igroup->lock",
            then: (s) => iommufdVdeviceDestroy(s.idev, saw(s), s.tdi, abortUnbinds),
          },
          wait,
        },
  };

  // IOMMU_DESTROY of vdevice v -> iommufd_object_remove -> iommufd_vdevice_destroy. EBUSY
  // changes nothing, so it is the guard being false; a retry is the call starting later.
  const remove: StepDef<S, V> = {
    kernel: "IOMMU_DESTROY -> iommufd_object_remove (refcount_dec_if_one(users), else EBUSY)",
    when: (s, { v }) => s.vdev[v]!.state === "live" && !s.vdev[v]!.kernelRef && !s.vdev[v]!.shortRef,
    then: (s, { v }) => void (s.vdev[v]!.state = "removed"),
  };
  const destroy: ThreadDef<S> = {
    id: 2,
    pc: (s) => s.destroy,
    each,
    steps: seed
      ? {
          remove,
          lock: {
            // seed 004 sketch: idev->vdev is left set (it needs igroup->lock), except where both locks are taken.
            kernel: "iommufd_vdevice_destroy: mutex_lock(vdev->mutex), tsm_unbind(vdev->idev->dev)",
            lock: mutex,
            then: (s, { v }: V) => {
              const d = s.vdev[v]!;
              s.destroy.clearIdev = bothLocks && d.idev !== 0;
              seed004DestroyUnbind(s.idev, d, s.tdi);
              if (!s.destroy.clearIdev) d.state = "freed";
            },
            unlock: (s, a: V) => (s.destroy.clearIdev ? [] : mutex(s, a)),
            next: (s) => (s.destroy.clearIdev ? "lockIgroup" : "idle"),
          },
          ...(bothLocks
            ? {
                lockIgroup: {
                  kernel: "iommufd_vdevice_destroy: mutex_lock(igroup->lock), idev->vdev = NULL, unlock both, free",
                  lock: "igroup->lock",
                  then: (s: S, { v }: V) => {
                    idevUse(s.idev, s.idev.gen, "iommufd_vdevice_destroy (idev->vdev = NULL)");
                    s.idev.vdev = 0;
                    s.vdev[v]!.state = "freed";
                  },
                  unlock: (s: S, a: V) => ["igroup->lock", mutex(s, a)],
                },
              }
            : {}),
        }
      : {
          remove,
          abort: {
            kernel: "iommufd_vdevice_destroy: igroup->lock, iommufd_vdevice_abort, unlock, put idev",
            lock: "igroup->lock",
            unlock: "igroup->lock",
            then: (s, { v }: V) => {
              const d = s.vdev[v]!;
              vdevUse(d, "iommufd_vdevice_destroy");
              idevUse(s.idev, d.idev, "iommufd_vdevice_destroy (vdev->idev)");
              iommufdVdeviceDestroy(s.idev, d, s.tdi, abortUnbinds);
            },
          },
        },
  };

  // The TSM op on vdevice v: seed 004 takes vdev->mutex first (the op looks up the device's
  // current idev); upstream v5's iommufd_vdevice_tsm_op_ioctl holds a vdev reference, no lock.
  const tsmOp = (unbind: boolean) => {
    const op = unbind ? "unbind" : "bind";
    const start = (s: S, { v }: V) => (unbind ? s.did.tsmUnbind : s.did.tsmBind) < cycles && s.vdev[v]!.state === "live" && !s.vdev[v]!.shortRef;
    const issue = (s: S, { v }: V) => {
      if (unbind) s.did.tsmUnbind += 1;
      else s.did.tsmBind += 1;
      s.vdev[v]!.shortRef = true;
    };
    return {
      each,
      steps: seed
        ? {
            lockVdev: {
              kernel: `TSM ${op}: mutex_lock(vdev->mutex)`,
              lock: mutex,
              when: (s: S, a: V) => start(s, a) && s.idev.state === "live",
              then: (s: S, a: V) => {
                issue(s, a);
                s.idev.wait += 1; // the op's lookup of the device's idev
              },
            },
            lockIgroup: {
              kernel: "TSM bind/unbind: mutex_lock(igroup->lock), tsm_bind/tsm_unbind, set/clear both pointers",
              lock: "igroup->lock",
              then: (s: S, { v }: V) => seed004TsmOp(s.idev, s.vdev[v]!, v, s.tdi, unbind),
              unlock: (s: S, a: V) => ["igroup->lock", mutex(s, a)],
            },
          }
        : {
            get: { kernel: `IOMMU_VDEVICE_TSM_OP(${op.toUpperCase()}): iommufd_get_vdevice`, when: start, then: issue },
            op: {
              kernel: "iommufd_vdevice_tsm_op_ioctl: tsm_bind/tsm_unbind(vdev->idev->dev), put vdev",
              then: (s: S, { v }: V) => iommufdVdeviceTsmOp(s.idev, s.vdev[v]!, s.tdi, unbind),
            },
          },
    };
  };
  const tsm: ThreadDef<S> = { id: 3, pc: (s) => s.tsm, calls: { bind: tsmOp(false), unbind: tsmOp(true) } };

  // VFIO binds again only once the previous idev is freed: device_cdev.c
  // vfio_df_ioctl_bind_iommufd and the release's unbind both hold device->dev_set->lock.
  const vmm: ThreadDef<S> = {
    id: 4,
    pc: (s) => s.vmm,
    calls: {
      bind: {
        kernel: "VFIO_DEVICE_BIND_IOMMUFD -> iommufd_device_bind",
        when: (s) => s.did.bind < cycles && s.idev.state !== "live" && s.vfio.pc === "idle",
        then: (s) => {
          s.did.bind += 1;
          iommufdDeviceBind(s.idev, s.did.bind);
        },
      },
      alloc: {
        kernel: "IOMMU_VDEVICE_ALLOC -> iommufd_vdevice_alloc_ioctl",
        lock: "igroup->lock",
        unlock: "igroup->lock",
        when: (s) => s.did.alloc < cycles && s.idev.state === "live" && freeSlot(s) >= 0,
        then: (s) => {
          s.did.alloc += 1;
          const k = freeSlot(s);
          // seed 004: the pointers are set by TSM bind; upstream: -ENOENT / -EEXIST make nothing.
          if (seed) vdevAlloc(s.vdev[k]!, s.did.alloc);
          else iommufdVdeviceAllocIoctl(s.idev, s.vdev[k]!, k, s.did.alloc);
        },
      },
    },
  };
  return { vfio, destroy, tsm, vmm };
}
