// A KVM device (struct kvm_device, include/linux/kvm_host.h; virt/kvm/kvm_main.c):
// KVM_CREATE_DEVICE, its fd, and which of its ops frees it.
//
// include/linux/kvm_host.h:struct kvm_device_ops: ->destroy frees the device and is called by
// kvm_destroy_devices when the VM is destroyed, for every device still on kvm->devices;
// ->release is "an alternative method to free the device": kvm_device_release calls it when
// the device's fd is released (under kvm->lock, after list_del_rcu + synchronize_rcu), and the
// device is then off the list, so ->destroy never runs for it. A device with ->release is
// therefore gone when its fd goes; one without lives until the VM is destroyed.
//
// A device is:
//   none       not created
//   listed     created, on kvm->devices
//   released   ->release freed it (fd release)
//   destroyed  ->destroy freed it (VM destroy, or the create error path)
import { z } from "zod";
import { Fault } from "../../checker/spec.ts";
import { anonInodeGetfile, deferredFput, fdInstall, getUnusedFd, putUnusedFd, type Fd, type File } from "./file.ts";
import { kvmGet, kvmPut, kvmPutNoDestroy, kvmDestroyVm, type Kvm, type KvmDestroyHooks } from "./kvm.ts";
import { acquire, release as unlock } from "./lock.ts";
import { runModuleCode, type Module } from "./module.ts";

export const kvmDeviceStates = ["none", "listed", "released", "destroyed"] as const;
export type KvmDeviceState = (typeof kvmDeviceStates)[number];

export interface KvmDevice {
  state: KvmDeviceState;
}

/** The device type's ops: which callbacks it has (fixed per type, not state). */
export interface KvmDeviceOps {
  /** ops->name, e.g. "kvm-vfio"; used in messages. */
  name: string;
  release: boolean;
  destroy: boolean;
  /** The module whose code the ops are (its text must be present when they run). */
  module?: Module;
  moduleName?: string;
}

export function kvmDeviceSchema() {
  return z.object({ state: z.enum(kvmDeviceStates) });
}

export function noKvmDevice(): KvmDevice {
  return { state: "none" };
}

/** The device is allocated (not yet freed by ->release or ->destroy). */
export function kvmDeviceExists(d: KvmDevice): boolean {
  return d.state === "listed";
}

function runOps(ops: KvmDeviceOps, cb: "create" | "release" | "destroy"): void {
  if (ops.module) runModuleCode(ops.module, ops.moduleName ?? ops.name, `${ops.name} ops->${cb}`);
}

/** ops->destroy: frees the device (`body`: the type's own work before the free). */
function callDestroy(d: KvmDevice, ops: KvmDeviceOps, fn: string, body?: () => void): void {
  if (!ops.destroy) {
    // kvm_destroy_devices calls dev->ops->destroy unconditionally.
    throw new Fault(`BUG: kernel NULL pointer dereference, address: 0000000000000000 (${fn} calls the NULL ops->destroy of ${ops.name}, a device with ->release that is still listed)`, d);
  }
  if (d.state !== "listed") throw new Fault(`BUG: KASAN: double-free in ${fn}: ${ops.name} ops->destroy after the device was ${d.state}`, d);
  runOps(ops, "destroy");
  body?.();
  d.state = "destroyed";
}

/**
 * virt/kvm/kvm_main.c:kvm_ioctl_create_device: kzalloc the device, ops->create under
 * kvm->lock, list_add_rcu to kvm->devices, ops->init, kvm_get_kvm BEFORE anon_inode_getfd
 * (the fd owns that reference from the moment it is installed), then the fd. If the fd
 * cannot be made (kvm_device_fops.owner is going: `fileOwner`), the error path runs
 * kvm_put_kvm_no_destroy, list_del_rcu, ops->release if any, then ops->destroy if any (both,
 * if a type had both, would free the device twice). Returns whether the fd was installed.
 */
export function kvmCreateDevice(d: KvmDevice, k: Kvm, devFile: File, fd: Fd, ops: KvmDeviceOps, fileOwner?: Module): boolean {
  if (d.state !== "none") throw new Fault(`model: KVM_CREATE_DEVICE into a device slot that is ${d.state}`, d);
  if (k.phase !== "live") throw new Fault(`model: KVM_CREATE_DEVICE on a VM that is ${k.phase}`, k);
  runOps(ops, "create");
  d.state = "listed";
  kvmGet(k);
  getUnusedFd(fd, `the ${ops.name} fd`);
  if (!anonInodeGetfile(devFile, `the ${ops.name} file`, fileOwner)) {
    putUnusedFd(fd, `the ${ops.name} fd`);
    kvmPutNoDestroy(k);
    if (ops.release) {
      runOps(ops, "release");
      d.state = "released";
    }
    if (ops.destroy) {
      if (d.state !== "listed") throw new Fault(`BUG: KASAN: double-free in kvm_ioctl_create_device: ${ops.name} ops->destroy after ops->release freed the device`, d);
      callDestroy(d, ops, "kvm_ioctl_create_device");
    }
    return false;
  }
  fdInstall(fd, devFile, `the ${ops.name} file`);
  return true;
}

/**
 * virt/kvm/kvm_main.c:kvm_device_release (the device file's ->release): for ops with
 * ->release, under kvm->lock: list_del_rcu, synchronize_rcu, ops->release (frees the
 * device); then kvm_put_kvm. Devices without ->release stay listed for kvm_destroy_devices.
 * `tid` takes and drops kvm->lock as thread `tid` (a spec error if another thread holds it:
 * the step's guard must wait). `body` is what the type's ->release does before it frees the
 * device (e.g. virt/kvm/vfio.c:kvm_vfio_release). Returns true when its kvm_put_kvm was the
 * last put.
 */
export function kvmDeviceRelease(d: KvmDevice, k: Kvm, ops: KvmDeviceOps, tid?: number, body?: () => void): boolean {
  if (ops.release) {
    if (d.state !== "listed") throw new Fault(`BUG: KASAN: slab-use-after-free in kvm_device_release: ${ops.name} device, already ${d.state}`, d);
    if (tid !== undefined) acquire(k.lock, tid, "kvm->lock");
    runOps(ops, "release");
    body?.();
    d.state = "released";
    if (tid !== undefined) unlock(k.lock, tid, "kvm->lock");
  }
  return kvmPut(k);
}

/**
 * The device file's deferred __fput: kvm_device_release, fops_put(kvm_device_fops.owner),
 * file_free. With `destroy`, a last kvm_put_kvm runs kvm_destroy_vm right there. `body`: the
 * ->release callback's own work (see kvmDeviceRelease).
 */
export function kvmDeviceFileRelease(
  d: KvmDevice,
  k: Kvm,
  devFile: File,
  ops: KvmDeviceOps,
  o: { fileOwner?: Module; fileOwnerName?: string; tid?: number; destroy?: KvmDestroyHooks; body?: () => void } = {},
): boolean {
  let last = false;
  deferredFput(devFile, `the ${ops.name} file`, {
    owner: o.fileOwner,
    ownerName: o.fileOwnerName,
    release: () => {
      last = kvmDeviceRelease(d, k, ops, o.tid, o.body);
      if (last && o.destroy) kvmDestroyVm(k, o.destroy);
    },
  });
  return last;
}

/**
 * virt/kvm/kvm_main.c:kvm_destroy_devices (a kvm_destroy_vm step): list_del and
 * ops->destroy for every device still on kvm->devices. No kvm->lock: nobody else holds the VM.
 * `body`: what the type's ->destroy does before it frees the device (e.g. kvm_vfio_destroy).
 */
export function kvmDestroyDevices(devices: readonly { dev: KvmDevice; ops: KvmDeviceOps; body?: () => void }[]): void {
  for (const { dev, ops, body } of devices) if (dev.state === "listed") callDestroy(dev, ops, "kvm_destroy_devices", body);
}
