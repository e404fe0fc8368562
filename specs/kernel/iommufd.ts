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
import { z } from "zod";
import { Fault } from "../../checker/spec.ts";

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
