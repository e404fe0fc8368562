// The kvm-vfio device (virt/kvm/vfio.c) and the VFIO side of its association
// (drivers/vfio/vfio_main.c, drivers/vfio/group.c), with seed 000's VM-file variant
// (vfio_kvm_file_replace, kvm->_file): the pieces every kvm-vfio model shares.
//
// KVM keeps one kvm_vfio_file entry per VFIO file added (kvf->file holds a reference on the
// file) and tells VFIO which VM the file belongs to through kvm_vfio_file_set_kvm ->
// vfio_file_set_kvm. What VFIO stores there (a raw struct kvm pointer upstream, a counted
// VM-file reference in seed 000) is the design's: the callers pass it as `setKvm`/`clearKvm`.
import { fput, getFile, getFileActive, type File } from "./file.ts";
import { kvmGetSafe, kvmPutDestroy, type Kvm, type KvmDestroyHooks } from "./kvm.ts";
import type { KvmDeviceOps } from "./kvm-device.ts";
import { runModuleCode, symbolGet, symbolPut, type Module } from "./module.ts";

/**
 * virt/kvm/vfio.c:kvm_vfio_ops. Since 51cdc8bc120e (v6.2-rc5) it has ->release
 * (kvm_vfio_release, run when the device's fd is released) and no ->destroy; before it,
 * ->destroy (kvm_vfio_destroy, run by kvm_destroy_devices). The code is kvm.ko's.
 */
export function kvmVfioOps(o: { era?: "release" | "destroy"; module?: Module; moduleName?: string } = {}): KvmDeviceOps {
  const release = (o.era ?? "release") === "release";
  return { name: "kvm-vfio", release, destroy: !release, module: o.module, moduleName: o.moduleName };
}

/** KVM's struct kvm_vfio_file for one VFIO file: listed, and kvf->file holds a reference on it. */
export interface KvmVfioEntry {
  kvf: boolean;
}

/**
 * virt/kvm/vfio.c:kvm_vfio_file_add (KVM_DEV_VFIO_FILE_ADD), under kv->lock: kvf->file =
 * get_file(filp), list_add_tail, kvm_vfio_file_set_kvm(kvf->file, dev->kvm) (`setKvm`).
 * A file already on this device's list is -EEXIST: the caller's guard.
 */
export function kvmVfioFileAdd(e: KvmVfioEntry, file: File, what: string, setKvm: () => void): void {
  getFile(file, what);
  e.kvf = true;
  setKvm();
}

/**
 * virt/kvm/vfio.c:kvm_vfio_file_del (KVM_DEV_VFIO_FILE_DEL), under kv->lock: list_del,
 * kvm_vfio_file_set_kvm(kvf->file, NULL) (`clearKvm`), fput(kvf->file), kfree(kvf).
 */
export function kvmVfioFileDel(e: KvmVfioEntry, file: File, what: string, clearKvm: () => void): void {
  clearKvm();
  e.kvf = false;
  fput(file, what);
}

/**
 * virt/kvm/vfio.c:kvm_vfio_release (the device's ->release, from kvm_device_release; also
 * kvm_vfio_destroy's loop before 51cdc8bc120e): every entry as kvm_vfio_file_del does it.
 */
export function kvmVfioRelease(entries: readonly { e: KvmVfioEntry; file: File; what: string; clearKvm: () => void }[]): void {
  for (const x of entries) if (x.e.kvf) kvmVfioFileDel(x.e, x.file, x.what, x.clearKvm);
}

// ---- Seed 000: VFIO holds the VM's struct file, read from the weak kvm->_file ----

/** How a design reads kvm->_file: seed 000's get_file_active, or the plain get_file it warns against. */
export type KvmFileRead = "get_file_active" | "get_file";

/**
 * Seed 000's read of kvm->_file (set at KVM_CREATE_VM, `ptrSet` false once kvm_vm_release
 * cleared it): fs/file.c:get_file_active takes a reference only while the file is live;
 * include/linux/fs.h:get_file increments whatever is there (file_ref_inc's WARN on a dying
 * file). Returns whether the caller now holds a reference.
 */
export function kvmFileGet(how: KvmFileRead, ptrSet: boolean, vmFile: File, what: string): boolean {
  if (!ptrSet) return false;
  if (how === "get_file_active") return getFileActive(vmFile);
  getFile(vmFile, what);
  return true;
}

/**
 * Seed 000 (v5 1/5) vfio_kvm_file_replace(&slot, lock, kvm): take the new VM-file reference
 * (`get`, nothing for a NULL kvm), swap it in under the lock, then fput the file the slot
 * named before (`old`, null when empty). Returns whether the slot is now set.
 */
export function vfioKvmFileReplace(old: File | null, get: (() => boolean) | null, what: string): boolean {
  const got = get ? get() : false;
  if (old) fput(old, what);
  return got;
}

// ---- Upstream: VFIO's users_count reference on the raw struct kvm (2b48f52f2bff) ----

/**
 * drivers/vfio/vfio_main.c:vfio_device_get_kvm_safe: symbol_get(kvm_put_kvm), kept in
 * device->put_kvm for the put; symbol_get(kvm_get_kvm_safe) around the call;
 * kvm_get_kvm_safe. `kvmModule` is kvm.ko, which exports both (omit it where modules are not
 * modelled). A failed symbol_get is WARN_ON and no reference. Returns whether the device now
 * holds users_count (and then also its symbol_get of kvm_put_kvm).
 */
export function vfioDeviceGetKvmSafe(k: Kvm, kvmModule?: Module): boolean {
  if (!kvmModule) return kvmGetSafe(k);
  if (!symbolGet(kvmModule)) return false; // symbol_get(kvm_put_kvm)
  if (!symbolGet(kvmModule)) {
    symbolPut(kvmModule, "kvm");
    return false;
  }
  runModuleCode(kvmModule, "kvm", "kvm_get_kvm_safe");
  const ok = kvmGetSafe(k);
  symbolPut(kvmModule, "kvm"); // symbol_put(kvm_get_kvm_safe)
  if (!ok) symbolPut(kvmModule, "kvm"); // symbol_put(kvm_put_kvm)
  return ok;
}

/**
 * drivers/vfio/vfio_main.c:vfio_device_put_kvm up to the return of its call through
 * device->put_kvm (kvm_put_kvm, kvm.ko's text: `kvmModule`); the last put runs kvm_destroy_vm
 * there, with `destroy`. The symbol_put(kvm_put_kvm) that follows is the caller's (after the
 * call returned). Returns true when it destroyed the VM.
 */
export function vfioDeviceCallPutKvm(k: Kvm, destroy: KvmDestroyHooks, kvmModule?: Module): boolean {
  if (kvmModule) runModuleCode(kvmModule, "kvm", "device->put_kvm (kvm_put_kvm)");
  return kvmPutDestroy(k, destroy);
}
