// struct kvm (virt/kvm/kvm_main.c): users_count, its get/put helpers, kvm_destroy_vm's
// steps, kvm->lock, and the VM file whose ->release is kvm_vm_release.
import { z } from "zod";
import { Fault } from "../../checker/spec.ts";
import { anonInodeGetfile, deferredFput, fdInstall, getUnusedFd, putUnusedFd, type Fd, type File } from "./file.ts";
import { lockSchema, unlocked, type Lock } from "./lock.ts";
import { modulePut, moduleGet, type Module } from "./module.ts";
import { newRefcount, refcountDecAndTest, refcountInc, refcountIncNotZero, refcountSchema, type Refcount } from "./refcount.ts";
import { kernelWarn, warnedField, type MayWarn } from "./warn.ts";

const users = "kvm->users_count";

/** virt/kvm/kvm_main.c:kvm_get_kvm: refcount_inc on users_count. */
export function kvmGetKvm(users_count: Refcount): void {
  refcountInc(users_count, users);
}

/** virt/kvm/kvm_main.c:kvm_get_kvm_safe: refcount_inc_not_zero; false once the VM is being destroyed. */
export function kvmGetKvmSafe(users_count: Refcount): boolean {
  return refcountIncNotZero(users_count);
}

/**
 * virt/kvm/kvm_main.c:kvm_put_kvm: refcount_dec_and_test. Returns true when this put must run kvm_destroy_vm;
 * the caller does so in the same step, or starts a destroy sequence where phases matter.
 */
export function kvmPutKvm(users_count: Refcount): boolean {
  return refcountDecAndTest(users_count, users);
}

/**
 * virt/kvm/kvm_main.c:kvm_put_kvm_no_destroy: undoes a reference taken for an fd that was
 * never installed; WARN_ON if it hits 0 (the caller still uses kvm, and nothing will ever
 * destroy it). On plain counters this always faults; `kvmPutNoDestroy` on a Kvm object can
 * record the WARN instead.
 */
export function kvmPutKvmNoDestroy(users_count: Refcount): void {
  if (refcountDecAndTest(users_count, users)) {
    throw new Fault(noDestroyWarning, users_count);
  }
}

const noDestroyWarning =
  "WARNING: at virt/kvm/kvm_main.c kvm_put_kvm_no_destroy: kvm->users_count hit 0 (WARN_ON; kvm_destroy_vm will never run)";

// ---- struct kvm as an object ----

/**
 * kvm_destroy_vm's steps in the kernel's order (virt/kvm/kvm_main.c:kvm_destroy_vm, current
 * tree); each name stands for the group of calls that ends with it:
 *   kvm_arch_pre_destroy_vm   pm notifier, uevent, debugfs, vm_list removal, arch pre-destroy
 *   kvm_io_bus_destroy        IRQ routing, I/O buses, coalesced MMIO
 *   mmu_notifier_unregister   no MMU notifier runs after this
 *   kvm_arch_destroy_vm       vCPUs and arch state (on x86: calls into the vendor module)
 *   kvm_destroy_devices       ->destroy of every device still on kvm->devices
 *   kvm_free_memslots         memslots (unbinds guest_memfd)
 *   kvm_arch_free_vm          SRCU cleanup, struct kvm freed, kvm_disable_virtualization, mmdrop
 *   module_put                v5.18..v6.6 only (5f6de5cbebee, reverted by ea61294befd3 in
 *                             v6.7): module_put(kvm_chardev_ops.owner), from kvm.ko's own code
 */
export const kvmDestroySteps = [
  "kvm_arch_pre_destroy_vm",
  "kvm_io_bus_destroy",
  "mmu_notifier_unregister",
  "kvm_arch_destroy_vm",
  "kvm_destroy_devices",
  "kvm_free_memslots",
  "kvm_arch_free_vm",
  "module_put",
] as const;
export type KvmDestroyStep = (typeof kvmDestroySteps)[number];

/** none: not created; live; destroying: users_count hit 0, no step run yet; then the last step done. */
export const kvmPhases = ["none", "live", "destroying", ...kvmDestroySteps] as const;
export type KvmPhase = (typeof kvmPhases)[number];

export interface Kvm extends MayWarn {
  users: Refcount;
  phase: KvmPhase;
  /** kvm->lock (mutex): kvm_ioctl_create_device's ->create, kvm_device_release's ->release. */
  lock: Lock;
}

export interface KvmSchemaOptions {
  /** Largest users_count the model reaches. */
  maxUsers: number;
  /** Threads that may hold kvm->lock (their ids are 1..threads). Default 1. */
  threads?: number;
  /** Record WARNs (refcount_t's, kvm_put_kvm_no_destroy's) and go on, instead of faulting. */
  warn?: boolean;
}

export function kvmSchema(o: KvmSchemaOptions) {
  return z.object({
    users: refcountSchema(o.maxUsers, { warn: o.warn ?? false }),
    phase: z.enum(kvmPhases),
    lock: lockSchema(o.threads ?? 1),
    ...(o.warn ? { warned: warnedField } : {}),
  }) as unknown as z.ZodObject<{
    users: z.ZodObject<{ count: z.ZodNumber; warned: z.ZodOptional<z.ZodBoolean> }>;
    phase: z.ZodEnum<{ [K in KvmPhase]: K }>;
    lock: ReturnType<typeof lockSchema>;
    warned: z.ZodOptional<z.ZodBoolean>;
  }>;
}

/**
 * virt/kvm/kvm_main.c:kvm_create_vm: users_count = 1 (owned by the VM file made next); `users`
 * for a VM whose other holders (a KVM device, a vCPU) exist when the model starts.
 */
export function newKvm(o: { warn?: boolean; users?: number } = {}): Kvm {
  const k: Kvm = { users: newRefcount(o.users ?? 1, o), phase: "live", lock: unlocked() };
  if (o.warn) k.warned = false;
  return k;
}

/** A VM not created yet (kvmCreateVm makes it). */
export function noKvm(o: { warn?: boolean } = {}): Kvm {
  const k = newKvm(o);
  k.users.count = 0;
  k.phase = "none";
  return k;
}

export function kvmIsLive(k: Kvm): boolean {
  return k.phase === "live";
}

/** struct kvm itself is freed (kvm_arch_free_vm ran). */
export function kvmIsFreed(k: Kvm): boolean {
  return k.phase === "kvm_arch_free_vm" || k.phase === "module_put";
}

/** kvm_destroy_vm has started and has steps left (which depend on the era: see KvmDestroyHooks). */
export function kvmIsDestroying(k: Kvm, hooks: KvmDestroyHooks = {}): boolean {
  return kvmNextDestroyStep(k, hooks) !== undefined;
}

/** virt/kvm/kvm_main.c:kvm_get_kvm on the object. */
export function kvmGet(k: Kvm): void {
  kvmGetKvm(k.users);
}

/** virt/kvm/kvm_main.c:kvm_get_kvm_safe on the object. */
export function kvmGetSafe(k: Kvm): boolean {
  return kvmGetKvmSafe(k.users);
}

/**
 * virt/kvm/kvm_main.c:kvm_put_kvm on the object: the last put starts kvm_destroy_vm (phase
 * "destroying"); run its steps with kvmDestroyStep, or all at once with kvmDestroyVm.
 * Returns true on the last put.
 */
export function kvmPut(k: Kvm): boolean {
  if (!kvmPutKvm(k.users)) return false;
  k.phase = "destroying";
  return true;
}

/**
 * virt/kvm/kvm_main.c:kvm_put_kvm_no_destroy on the object: hitting 0 is a WARN_ON; in
 * record mode (`warned` on the Kvm) the kernel goes on and struct kvm is never destroyed.
 */
export function kvmPutNoDestroy(k: Kvm): void {
  if (kvmPutKvm(k.users)) kernelWarn(k, noDestroyWarning);
}

/** What the spec's objects do at each kvm_destroy_vm step. */
export interface KvmDestroyHooks {
  /** kvm_arch_destroy_vm: on x86 this calls the vendor module (kvm_x86_call(vm_destroy)). */
  archDestroy?: () => void;
  /** kvm_destroy_devices: ->destroy of the devices still listed (see kvm-device.ts). */
  destroyDevices?: () => void;
  /** kvm_free_memslots. */
  freeMemslots?: () => void;
  /**
   * v5.18..v6.6: the module kvm_create_vm pinned with __module_get(kvm_chardev_ops.owner),
   * put at the very end of kvm_destroy_vm. Leave undefined for v6.7+ (no per-VM pin).
   */
  vendorPin?: { module: Module; name: string };
}

/** The step kvm_destroy_vm runs next, or undefined when it has finished. */
export function kvmNextDestroyStep(k: Kvm, hooks: KvmDestroyHooks = {}): KvmDestroyStep | undefined {
  if (k.phase === "none" || k.phase === "live") return undefined;
  const i = k.phase === "destroying" ? 0 : kvmDestroySteps.indexOf(k.phase) + 1;
  const last = hooks.vendorPin ? kvmDestroySteps.length : kvmDestroySteps.length - 1;
  return i < last ? kvmDestroySteps[i] : undefined;
}

/** One step of kvm_destroy_vm, in the kernel's order (see kvmDestroySteps). Returns the step run. */
export function kvmDestroyStep(k: Kvm, hooks: KvmDestroyHooks = {}): KvmDestroyStep {
  const step = kvmNextDestroyStep(k, hooks);
  if (!step) throw new Fault(`model: kvm_destroy_vm step on a VM that is ${k.phase}`, k);
  if (step === "kvm_arch_destroy_vm") hooks.archDestroy?.();
  if (step === "kvm_destroy_devices") hooks.destroyDevices?.();
  if (step === "kvm_free_memslots") hooks.freeMemslots?.();
  if (step === "module_put" && hooks.vendorPin) modulePut(hooks.vendorPin.module, hooks.vendorPin.name);
  k.phase = step;
  return step;
}

/** virt/kvm/kvm_main.c:kvm_destroy_vm in one step: every remaining step in order. */
export function kvmDestroyVm(k: Kvm, hooks: KvmDestroyHooks = {}): void {
  while (kvmNextDestroyStep(k, hooks)) kvmDestroyStep(k, hooks);
}

/**
 * virt/kvm/kvm_main.c:kvm_put_kvm from a caller that runs kvm_destroy_vm in the same step
 * when its put is the last one (VFIO's vfio_device_put_kvm, a driver's close). Returns true
 * when it destroyed the VM.
 */
export function kvmPutDestroy(k: Kvm, hooks: KvmDestroyHooks = {}): boolean {
  if (!kvmPut(k)) return false;
  kvmDestroyVm(k, hooks);
  return true;
}

/**
 * `fn` uses struct kvm. After kvm_arch_free_vm that is a use-after-free; how KASAN words
 * it depends on how kvm_arch_alloc_vm allocated it (kvzalloc generically, __vmalloc on x86),
 * so the message is the model's.
 */
export function kvmUse(k: Kvm, fn: string): void {
  if (k.phase === "none") throw new Fault(`model: ${fn} uses a struct kvm that was never created`, k);
  if (kvmIsFreed(k)) throw new Fault(`model: use-after-free: ${fn} uses struct kvm after kvm_destroy_vm freed it (kvm_arch_free_vm)`, k);
}

// ---- The VM file ----

/**
 * virt/kvm/kvm_main.c:kvm_dev_ioctl_create_vm: get_unused_fd_flags, kvm_create_vm
 * (users_count = 1), anon_inode_getfile("kvm-vm", &kvm_vm_fops) which pins kvm_vm_fops.owner
 * (the vendor module on x86 since v6.7, 087e15206d6a), then fd_install. If the file cannot be
 * made (the owner is going), kvm_put_kvm destroys the new VM and put_unused_fd frees the
 * number; returns false. `vendorPin` (v5.18..v6.6) is __module_get'd by kvm_create_vm.
 */
export function kvmCreateVm(k: Kvm, vmFile: File, fd: Fd, o: { owner?: Module; vendorPin?: { module: Module; name: string } } = {}): boolean {
  if (k.phase !== "none") throw new Fault(`model: KVM_CREATE_VM into a VM slot that is ${k.phase}`, k);
  getUnusedFd(fd, "the VM fd");
  k.users.count = 1;
  k.phase = "live";
  if (o.vendorPin) moduleGet(o.vendorPin.module, o.vendorPin.name);
  if (!anonInodeGetfile(vmFile, "the VM file", o.owner)) {
    if (kvmPut(k)) kvmDestroyVm(k, { vendorPin: o.vendorPin });
    putUnusedFd(fd, "the VM fd");
    return false;
  }
  fdInstall(fd, vmFile, "the VM file");
  return true;
}

/**
 * The VM file's deferred __fput: ->release is virt/kvm/kvm_main.c:kvm_vm_release
 * (kvm_irqfd_release, then kvm_put_kvm), then fops_put of kvm_vm_fops.owner, then file_free.
 * Returns true when its put was the last one (kvm is now "destroying", or destroyed when
 * `destroy` is given: then kvm_destroy_vm runs inside ->release, with those hooks).
 */
export function kvmVmFileRelease(k: Kvm, vmFile: File, o: { owner?: Module; ownerName?: string; destroy?: KvmDestroyHooks } = {}): boolean {
  let last = false;
  deferredFput(vmFile, "the VM file", {
    owner: o.owner,
    ownerName: o.ownerName,
    release: () => {
      last = kvmPut(k);
      if (last && o.destroy) kvmDestroyVm(k, o.destroy);
    },
  });
  return last;
}

