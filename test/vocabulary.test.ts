// The kernel vocabulary (specs/kernel/): each object's operations and faults on plain
// objects, then one small spec per family run through the checker, where a buggy pattern
// yields the kernel's report and its fix holds.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { z } from "zod";
import { check } from "../checker/index.ts";
import { Fault, SpecError, defineSpec } from "../checker/spec.ts";
import {
  anonInodeGetfile, closeFd, createFile, deferredFput, fdget, fdInstall, fdput, fdSchema, fget, fileSchema, filpClose,
  fput, freeFile, getFile, getFileActive, getFileRcu, getUnusedFd, installedFd, isDying, newFile, noFd, noFile, putUnusedFd, reuseFile,
} from "../specs/kernel/file.ts";
import { krefGet, krefGetUnlessZero, krefInit, krefPut, krefRead, krefSchema } from "../specs/kernel/kref.ts";
import {
  kvmCreateVm, kvmDestroyStep, kvmDestroySteps, kvmDestroyVm, kvmGet, kvmGetSafe, kvmIsDestroying, kvmIsFreed, kvmNextDestroyStep,
  kvmPut, kvmPutKvmNoDestroy, kvmPutNoDestroy, kvmSchema, kvmUse, kvmVmFileRelease, newKvm, noKvm,
} from "../specs/kernel/kvm.ts";
import { kvmCreateDevice, kvmDestroyDevices, kvmDeviceFileRelease, kvmDeviceRelease, kvmDeviceSchema, noKvmDevice, type KvmDeviceOps } from "../specs/kernel/kvm-device.ts";
import {
  deleteModule, EBUSY, enterModule, EWOULDBLOCK, freeModule, leaveModule, loadedModule, moduleGet, modulePut, moduleSchemaWith, moduleTextBusy,
  newModule, symbolGet, symbolPut, tryModuleGet,
} from "../specs/kernel/module.ts";
import { isSaturated, newRefcount, refcountDec, refcountDecAndTest, refcountInc, refcountIncNotZero, refcountSchema } from "../specs/kernel/refcount.ts";
import { isRcuPending, kfree, kfreeRcu, kmalloc, kzalloc, liveObject, noObject, rcuGracePeriod, slabSchema, slabUse } from "../specs/kernel/slab.ts";
import { kernelWarn, noneWarned, recordsWarns } from "../specs/kernel/warn.ts";

function faults(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof Fault && re.test(e.message), `expected a Fault matching ${re}`);
}

// ---------------------------------------------------------------- warn mode

test("warn: an object without `warned` faults; with it the WARN is recorded and the call returns", () => {
  faults(() => kernelWarn({}, "WARNING: x"), /^WARNING: x$/);
  const o = { warned: false };
  assert.equal(recordsWarns(o), true);
  assert.equal(recordsWarns({}), false);
  assert.ok(noneWarned(o, {}));
  kernelWarn(o, "WARNING: x");
  assert.equal(o.warned, true);
  assert.ok(!noneWarned(o, {}));
});

// ---------------------------------------------------------------- refcount_t

test("refcount_t: the schema adds `warned` only on request; newRefcount matches it", () => {
  assert.deepEqual(Object.keys(refcountSchema(3).shape), ["count"]);
  assert.deepEqual(Object.keys(refcountSchema(3, { warn: true }).shape), ["count", "warned"]);
  assert.deepEqual(newRefcount(), { count: 1 });
  assert.deepEqual(newRefcount(2, { warn: true }), { count: 2, warned: false });
  assert.ok(refcountSchema(3, { warn: true }).safeParse(newRefcount(2, { warn: true })).success);
  assert.ok(!refcountSchema(3).safeParse({ count: 4 }).success, "bounded");
});

test("refcount_t: record mode saturates like lib/refcount.c and then leaks", () => {
  const r = newRefcount(0, { warn: true });
  refcountInc(r, "obj"); // addition on 0: WARN, saturate
  assert.ok(isSaturated(r));
  assert.equal(r.count, 0, "the saturated counter does not move");
  refcountInc(r, "obj");
  assert.equal(refcountIncNotZero(r), true, "a saturated counter is not 0");
  assert.equal(refcountDecAndTest(r, "obj"), false, "never reaches 0 again: the object leaks");
  const u = newRefcount(0, { warn: true });
  assert.equal(refcountDecAndTest(u, "obj"), false);
  assert.ok(isSaturated(u), "underflow saturates too");
});

test("refcount_t: refcount_dec WARNs 'decrement hit 0; leaking memory' when it reaches 0", () => {
  const r = newRefcount(2);
  refcountDec(r, "obj");
  assert.equal(r.count, 1);
  faults(() => refcountDec(r, "obj"), /^refcount_t: decrement hit 0; leaking memory\. \(obj\)$/);
  faults(() => refcountDec({ count: 0 }, "obj"), /decrement hit 0/);
  const w = newRefcount(1, { warn: true });
  refcountDec(w, "obj");
  assert.ok(isSaturated(w));
});

// ---------------------------------------------------------------- kref

test("kref: init, get, get_unless_zero, put with release", () => {
  const k = krefInit();
  assert.deepEqual(k, { count: 1 });
  krefGet(k, "dev->kref");
  assert.equal(krefRead(k), 2);
  let released = 0;
  assert.equal(krefPut(k, "dev->kref", () => released++), false);
  assert.equal(released, 0);
  assert.equal(krefPut(k, "dev->kref", () => released++), true);
  assert.equal(released, 1);
  assert.equal(krefGetUnlessZero(k), false);
  assert.equal(krefRead(k), 0);
  faults(() => krefGet(k, "dev->kref"), /^refcount_t: addition on 0; use-after-free\. \(dev->kref\)$/);
  faults(() => krefPut(k, "dev->kref", () => released++), /^refcount_t: underflow; use-after-free\. \(dev->kref\)$/);
  assert.equal(released, 1, "a faulting put never releases");
  assert.deepEqual(Object.keys(krefSchema(2, { warn: true }).shape), ["count", "warned"]);
});

test("kref: property: release runs exactly once, on the put that takes the count to 0", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5 }), fc.array(fc.boolean(), { maxLength: 12 }), (gets, ops) => {
      const k = krefInit();
      for (let i = 1; i < gets; i++) krefGet(k, "k");
      let released = 0;
      let expected = gets;
      for (const get of ops) {
        if (expected === 0) break;
        if (get) {
          assert.equal(krefGetUnlessZero(k), true);
          expected++;
        } else {
          const ran = krefPut(k, "k", () => released++);
          expected--;
          assert.equal(ran, expected === 0);
        }
        assert.equal(krefRead(k), expected);
      }
      assert.equal(released, expected === 0 ? 1 : 0);
    }),
  );
});

// ---------------------------------------------------------------- slab objects and KASAN

test("slab: kmalloc, kfree, kfree(NULL), double free, use after free", () => {
  const o = noObject();
  kfree(o, "kvf", "kvm_vfio_file_del"); // kfree(NULL)
  assert.equal(o.state, "none");
  faults(() => slabUse(o, "kvf", "kvm_vfio_file_del"), /^BUG: kernel NULL pointer dereference, address: 0+ \(kvm_vfio_file_del: Read of kvf\)$/);
  kzalloc(o, "kvf");
  assert.equal(o.state, "live");
  slabUse(o, "kvf", "kvm_vfio_file_add", "Write");
  faults(() => kmalloc(o, "kvf"), /^model: kmalloc of kvf over an object that is still allocated/);
  kfree(o, "kvf", "kvm_vfio_file_del");
  assert.equal(o.state, "freed");
  faults(() => slabUse(o, "kvf", "kvm_vfio_release", "Write"), /^BUG: KASAN: slab-use-after-free in kvm_vfio_release: Write of kvf after kfree$/);
  faults(() => kfree(o, "kvf", "kvm_vfio_release"), /^BUG: KASAN: double-free in kvm_vfio_release: kfree of kvf, already freed$/);
  kmalloc(o, "kvf"); // the slot can hold a new object
  assert.equal(o.state, "live");
  assert.ok(slabSchema().safeParse(o).success);
});

test("slab: kfree_rcu keeps the object readable until the grace period ends", () => {
  const o = liveObject();
  kfreeRcu(o, "gmem", "kvm_gmem_release");
  assert.ok(isRcuPending(o));
  slabUse(o, "gmem", "kvm_gmem_get_pfn"); // a reader inside its RCU section still may
  faults(() => kfreeRcu(o, "gmem", "kvm_gmem_release"), /^model: kfree_rcu of gmem in kvm_gmem_release twice/);
  faults(() => kfree(o, "gmem", "x"), /^model: kfree of gmem in x while its kfree_rcu is pending/);
  faults(() => kmalloc(o, "gmem"), /waiting for its grace period/);
  rcuGracePeriod(o, "gmem");
  assert.equal(o.state, "freed");
  faults(() => rcuGracePeriod(o, "gmem"), /^model: grace period for gmem with no kfree_rcu pending/);
  faults(() => slabUse(o, "gmem", "kvm_gmem_get_pfn"), /^BUG: KASAN: slab-use-after-free in kvm_gmem_get_pfn: Read of gmem/);
  faults(() => kfreeRcu(o, "gmem", "f"), /^BUG: KASAN: slab-use-after-free in f: Write of gmem \(kfree_rcu's rcu_head\)/);
  const n = noObject();
  kfreeRcu(n, "x", "f");
  assert.equal(n.state, "none", "kfree_rcu(NULL) does nothing");
});

// ---------------------------------------------------------------- struct file and the fd table

test("file: fd reserve, fd_install, close_fd -> filp_close -> fput, EBADF", () => {
  const fd = noFd();
  const f = noFile();
  getUnusedFd(fd, "fd");
  assert.equal(fd.state, "reserved");
  faults(() => getUnusedFd(fd, "fd"), /already reserved/);
  faults(() => fdInstall(fd, f, "file"), /^model: fd_install of file while the file is none/);
  createFile(f, "file");
  fdInstall(fd, f, "file");
  assert.equal(fd.state, "installed");
  assert.equal(f.count, 1, "fd_install consumes the caller's reference");
  faults(() => fdInstall(fd, f, "file"), /^kernel BUG at fs\/file\.c: fd_install of file over an installed fd/);
  assert.equal(closeFd(fd, f, "file"), "last");
  assert.ok(isDying(f));
  assert.equal(fd.state, "none");
  assert.equal(closeFd(fd, f, "file"), "EBADF");
  faults(() => putUnusedFd(fd, "fd"), /put_unused_fd of fd, which is none/);
  const fd2 = noFd();
  faults(() => fdInstall(fd2, newFile(), "file"), /without get_unused_fd_flags/);
  getUnusedFd(fd2, "fd");
  putUnusedFd(fd2, "fd");
  assert.equal(fd2.state, "none");
  assert.ok(fdSchema().safeParse(installedFd()).success);
});

test("file: close leaves the file live while another reference exists", () => {
  const fd = installedFd();
  const f = newFile();
  getFile(f, "file");
  assert.equal(closeFd(fd, f, "file"), "closed");
  assert.equal(f.count, 1);
  faults(() => filpClose({ count: 0, state: "dying", gen: 0 }, "file"), /^VFS: Close: file count is 0 \(file; filp_close returns without fput\)$/);
});

test("file: fget, fdget borrowed vs cloned, fdput", () => {
  const fd = installedFd();
  const f = newFile();
  assert.equal(fget(fd, f), true);
  assert.equal(f.count, 2);
  fput(f, "file");
  assert.equal(fdget(fd, f, false), "borrowed");
  assert.equal(f.count, 1, "an unshared table is borrowed, not counted");
  assert.equal(fdput("borrowed", f, "file"), false);
  assert.equal(f.count, 1);
  const g = fdget(fd, f, true);
  assert.equal(g, "cloned");
  assert.equal(f.count, 2);
  assert.equal(fdput(g, f, "file"), false);
  assert.equal(f.count, 1);
  assert.equal(fdget(noFd(), f, true), "empty");
  assert.equal(fget(noFd(), f), false);
  fput(f, "file");
  assert.equal(fdget(fd, f, true), "empty", "a dying file is not handed out");
  assert.equal(fget(fd, f), false);
});

test("file: get_file_rcu reports null, retry and got", () => {
  const f = newFile();
  assert.equal(getFileRcu(false, f), "null");
  assert.equal(getFileRcu(true, f), "got");
  assert.equal(f.count, 2);
  fput(f, "f");
  fput(f, "f");
  assert.equal(getFileRcu(true, f), "retry", "dead file, pointer still set: the kernel loops");
  assert.equal(getFileActive(f), false);
  freeFile(f, "f");
  reuseFile(f, "f");
  assert.equal(getFileRcu(true, f), "got", "a recycled slot is pinned: the caller must compare gen");
  assert.equal(f.gen, 1);
  // A model where nobody compares generations may reuse without counting them.
  fput(f, "f");
  fput(f, "f");
  freeFile(f, "f");
  reuseFile(f, "f", { countGen: false });
  assert.deepEqual([f.state, f.count, f.gen], ["live", 1, 1]);
});

test("file: record mode: file_ref_inc and imbalanced put WARN and go on", () => {
  const schema = fileSchema({ maxCount: 2, warn: true });
  assert.deepEqual(Object.keys(schema.shape), ["count", "state", "gen", "warned"]);
  assert.deepEqual(Object.keys(fileSchema({ maxCount: 2 }).shape), ["count", "state", "gen"]);
  const f = { ...newFile(), warned: false };
  fput(f, "vm file");
  getFile(f, "vm file");
  assert.deepEqual(f, { count: 0, state: "dying", gen: 0, warned: true }, "nothing revived");
  assert.equal(fput(f, "vm file"), false);
  assert.equal(filpClose(f, "vm file"), false);
  freeFile(f, "vm file");
  assert.equal(f.state, "freed", "the pending __fput still frees it");
  assert.ok(schema.safeParse(f).success);
});

test("file: the deferred __fput runs ->release, then fops_put of f_op->owner, then file_free", () => {
  const owner = loadedModule();
  const f = noFile();
  assert.equal(anonInodeGetfile(f, "dev file", owner), true);
  assert.equal(owner.refs, 1, "the file pins f_op->owner");
  const order: string[] = [];
  fput(f, "dev file");
  deferredFput(f, "dev file", {
    owner,
    ownerName: "vfio",
    release: () => order.push(`release refs=${owner.refs} state=${f.state}`),
  });
  assert.deepEqual(order, ["release refs=1 state=dying"], "->release runs while the owner is still pinned");
  assert.equal(owner.refs, 0);
  assert.equal(f.state, "freed");
  faults(() => deferredFput(f, "dev file"), /^model: __fput on dev file while it is freed/);
  const going = { refs: 0, state: "going" as const };
  assert.equal(anonInodeGetfile(noFile(), "dev file", going), false, "-ENOENT when the owner is going");
  const g = newFile();
  fput(g, "g");
  faults(() => deferredFput(g, "g", { owner: { refs: 1, state: "gone" }, ownerName: "vfio", release: () => {} }), /BUG: unable to handle page fault: __fput -> g's f_op->release calls into unloaded module vfio/);
});

// ---------------------------------------------------------------- modules

test("module: delete_module's errors, GOING, free_module", () => {
  const m = newModule();
  const dep = newModule();
  tryModuleGet(m);
  assert.equal(deleteModule(m, [dep]), EWOULDBLOCK, "a loaded dependent: -EWOULDBLOCK");
  assert.equal(deleteModule(m), EWOULDBLOCK, "referenced: -EWOULDBLOCK, no waiting");
  assert.equal(m.state, "live");
  modulePut(m, "vfio");
  assert.equal(deleteModule(m), 0);
  assert.equal(m.state, "going");
  assert.equal(tryModuleGet(m), false, "GOING: try_module_get fails");
  assert.equal(symbolGet(m), false);
  assert.equal(deleteModule(m), EBUSY, "not LIVE: -EBUSY");
  freeModule(m, "vfio");
  assert.equal(m.state, "gone");
  faults(() => freeModule(m, "vfio"), /^model: free_module of vfio while it is gone/);
  assert.equal(EWOULDBLOCK, -11);
  assert.equal(EBUSY, -16);
});

test("module: symbol_get/symbol_put, __module_get, module_put record mode", () => {
  const m = newModule({ warn: true });
  assert.equal(symbolGet(m), true);
  moduleGet(m, "kvm");
  assert.equal(m.refs, 2);
  symbolPut(m, "kvm");
  modulePut(m, "kvm");
  modulePut(m, "kvm"); // WARN_ON, the count stays 0
  assert.deepEqual({ refs: m.refs, warned: m.warned }, { refs: 0, warned: true });
  faults(() => modulePut(newModule(), "kvm"), /^model: module_put underflow on kvm/);
  const schema = moduleSchemaWith(2, { warn: true, maxRunning: 2 });
  assert.deepEqual(Object.keys(schema.shape), ["refs", "state", "warned", "running"]);
  assert.ok(schema.safeParse(newModule({ warn: true, maxRunning: 2 })).success);
});

test("module: a thread returning into freed text is the oops; calling in is too", () => {
  const m = newModule({ maxRunning: 1 });
  enterModule(m, "kvm", "kvm_vm_release");
  assert.equal(m.running, 1);
  assert.ok(moduleTextBusy(m));
  assert.equal(deleteModule(m), 0, "delete_module does not look at running threads");
  freeModule(m, "kvm");
  faults(() => leaveModule(m, "kvm", "kvm_destroy_vm"), /^BUG: unable to handle page fault for address: kvm_destroy_vm returns into kvm's text, freed by delete_module$/);
  faults(() => enterModule(m, "kvm", "kvm_vfio_release"), /^BUG: unable to handle page fault: kvm_vfio_release calls into unloaded module kvm$/);
  const n = newModule({ maxRunning: 1 });
  faults(() => leaveModule(n, "kvm", "f"), /no thread inside it/);
  enterModule(n, "kvm", "f");
  leaveModule(n, "kvm", "f");
  assert.equal(n.running, 0);
});

// ---------------------------------------------------------------- struct kvm

test("kvm: get, get_safe, put starts kvm_destroy_vm, whose steps run in the kernel's order", () => {
  const k = newKvm();
  kvmGet(k);
  assert.equal(k.users.count, 2);
  assert.equal(kvmPut(k), false);
  assert.equal(kvmPut(k), true);
  assert.equal(k.phase, "destroying");
  assert.equal(kvmGetSafe(k), false);
  faults(() => kvmGet(k), /^refcount_t: addition on 0; use-after-free\. \(kvm->users_count\)$/);
  const seen: string[] = [];
  const hooks = {
    archDestroy: () => seen.push("arch"),
    destroyDevices: () => seen.push("devices"),
    freeMemslots: () => seen.push("memslots"),
  };
  const steps: string[] = [];
  while (kvmIsDestroying(k, hooks)) {
    kvmUse(k, "destroy");
    steps.push(kvmDestroyStep(k, hooks));
  }
  assert.deepEqual(steps, kvmDestroySteps.slice(0, -1), "v6.7+: no module_put at the end");
  assert.deepEqual(seen, ["arch", "devices", "memslots"], "kvm_arch_destroy_vm, then kvm_destroy_devices, then kvm_free_memslots");
  assert.ok(kvmIsFreed(k));
  faults(() => kvmUse(k, "vfio_device_put_kvm"), /^model: use-after-free: vfio_device_put_kvm uses struct kvm after kvm_destroy_vm freed it/);
  faults(() => kvmDestroyStep(k, hooks), /kvm_destroy_vm step on a VM that is kvm_arch_free_vm/);
  assert.ok(kvmSchema({ maxUsers: 2, threads: 2 }).safeParse(k).success);
});

test("kvm: v5.18..v6.6 ends kvm_destroy_vm with module_put of the vendor module", () => {
  const vendor = loadedModule();
  const k = newKvm();
  moduleGet(vendor, "kvm_intel"); // kvm_create_vm's __module_get
  kvmPut(k);
  const hooks = { vendorPin: { module: vendor, name: "kvm_intel" } };
  for (let i = 0; i < kvmDestroySteps.length - 1; i++) kvmDestroyStep(k, hooks);
  assert.ok(kvmIsFreed(k), "struct kvm is freed before the module_put");
  assert.equal(vendor.refs, 1);
  assert.equal(kvmNextDestroyStep(k, hooks), "module_put");
  kvmDestroyStep(k, hooks);
  assert.equal(vendor.refs, 0);
  assert.equal(kvmNextDestroyStep(k, hooks), undefined);
});

test("kvm: kvm_put_kvm_no_destroy WARNs at 0; record mode leaves the VM undestroyed", () => {
  const users = { count: 2 };
  kvmPutKvmNoDestroy(users);
  assert.equal(users.count, 1);
  faults(() => kvmPutKvmNoDestroy(users), /^WARNING: at virt\/kvm\/kvm_main\.c kvm_put_kvm_no_destroy: kvm->users_count hit 0/);
  const k = newKvm({ warn: true });
  kvmPutNoDestroy(k);
  assert.deepEqual({ count: k.users.count, phase: k.phase, warned: k.warned }, { count: 0, phase: "live", warned: true });
  faults(() => kvmPutNoDestroy(newKvm()), /kvm_put_kvm_no_destroy/);
  assert.ok(kvmSchema({ maxUsers: 2, warn: true }).safeParse(k).success);
});

test("kvm: KVM_CREATE_VM pins the VM file's owner; its release is kvm_vm_release -> kvm_put_kvm", () => {
  const vendor = loadedModule();
  const k = noKvm();
  const file = noFile();
  const fd = noFd();
  assert.equal(kvmCreateVm(k, file, fd, { owner: vendor }), true);
  assert.deepEqual({ users: k.users.count, phase: k.phase, fd: fd.state, file: file.state, owner: vendor.refs }, { users: 1, phase: "live", fd: "installed", file: "live", owner: 1 });
  faults(() => kvmCreateVm(k, file, fd), /KVM_CREATE_VM into a VM slot that is live/);
  assert.equal(closeFd(fd, file, "VM file"), "last");
  assert.equal(kvmVmFileRelease(k, file, { owner: vendor, ownerName: "kvm_intel", destroy: {} }), true);
  assert.ok(kvmIsFreed(k));
  assert.equal(vendor.refs, 0, "fops_put after ->release");
  assert.equal(file.state, "freed");
  // The vendor module is going: anon_inode_getfile fails and the new VM is put at once.
  const k2 = noKvm();
  const fd2 = noFd();
  assert.equal(kvmCreateVm(k2, noFile(), fd2, { owner: { refs: 0, state: "going" } }), false);
  assert.ok(kvmIsFreed(k2));
  assert.equal(fd2.state, "none");
});

// ---------------------------------------------------------------- KVM devices

const vfioOps: KvmDeviceOps = { name: "kvm-vfio", release: true, destroy: false };
const destroyOps: KvmDeviceOps = { name: "kvm-arm-vgic", release: false, destroy: true };

test("kvm device: create takes users_count before the fd; ->release runs at fd release", () => {
  const k = newKvm();
  const d = noKvmDevice();
  const file = noFile();
  const fd = noFd();
  assert.equal(kvmCreateDevice(d, k, file, fd, vfioOps), true);
  assert.deepEqual({ dev: d.state, users: k.users.count, fd: fd.state }, { dev: "listed", users: 2, fd: "installed" });
  closeFd(fd, file, "dev file");
  assert.equal(kvmDeviceFileRelease(d, k, file, vfioOps, { tid: 1 }), false);
  assert.deepEqual({ dev: d.state, users: k.users.count, lock: k.lock.holder, file: file.state }, { dev: "released", users: 1, lock: 0, file: "freed" });
  faults(() => kvmDeviceRelease(d, k, vfioOps), /^BUG: KASAN: slab-use-after-free in kvm_device_release: kvm-vfio device, already released/);
  assert.ok(kvmDeviceSchema().safeParse(d).success);
});

test("kvm device: without ->release the device lives until kvm_destroy_devices calls ->destroy", () => {
  const k = newKvm();
  const d = noKvmDevice();
  const file = noFile();
  const fd = noFd();
  kvmCreateDevice(d, k, file, fd, destroyOps);
  closeFd(fd, file, "dev file");
  assert.equal(kvmDeviceFileRelease(d, k, file, destroyOps), false);
  assert.equal(d.state, "listed", "closing the fd does not free it");
  assert.equal(kvmPut(k), true);
  kvmDestroyVm(k, { destroyDevices: () => kvmDestroyDevices([{ dev: d, ops: destroyOps }]) });
  assert.equal(d.state, "destroyed");
  // A ->release device still listed at VM destroy would meet a NULL ->destroy.
  const e = { state: "listed" as const };
  faults(() => kvmDestroyDevices([{ dev: { ...e }, ops: vfioOps }]), /^BUG: kernel NULL pointer dereference.*kvm_destroy_devices calls the NULL ops->destroy of kvm-vfio/);
});

test("kvm device: the create error path puts with kvm_put_kvm_no_destroy and frees the device", () => {
  const going = { refs: 0, state: "going" as const };
  const k = newKvm();
  const d = noKvmDevice();
  const fd = noFd();
  assert.equal(kvmCreateDevice(d, k, noFile(), fd, destroyOps, going), false);
  assert.deepEqual({ dev: d.state, users: k.users.count, fd: fd.state }, { dev: "destroyed", users: 1, fd: "none" });
  const both: KvmDeviceOps = { name: "both", release: true, destroy: true };
  faults(() => kvmCreateDevice(noKvmDevice(), newKvm(), noFile(), noFd(), both, going), /^BUG: KASAN: double-free in kvm_ioctl_create_device: both ops->destroy after ops->release freed the device/);
  const dying = newKvm();
  kvmPut(dying);
  faults(() => kvmCreateDevice(noKvmDevice(), dying, noFile(), noFd(), vfioOps), /KVM_CREATE_DEVICE on a VM that is destroying/);
});

test("kvm device: ->release takes kvm->lock; another holder is the step's missing guard", () => {
  const k = newKvm();
  const d = noKvmDevice();
  kvmCreateDevice(d, k, noFile(), noFd(), vfioOps);
  k.lock.holder = 2;
  assert.throws(() => kvmDeviceRelease(d, k, vfioOps, 1), SpecError);
});

// ---------------------------------------------------------------- specs through the checker

function verdictOf(spec: Parameters<typeof check>[0], design: string) {
  const v = check(spec, { design });
  const fault = v.properties.find((p) => p.name === "noFault")!;
  return { v, fault, failed: v.properties.filter((p) => p.failed).map((p) => p.name) };
}

// A creator publishes a file with fd_install and keeps using it; another thread closes the fd.
const fdSpec = defineSpec({
  name: "vocabulary/fd-install",
  params: z.object({ design: z.enum(["use-after-install", "get-before-install"]).default("get-before-install") }),
  state: () => z.object({ fd: fdSchema(), file: fileSchema({ maxCount: 2 }), pc: z.enum(["start", "installed", "done"]), own: z.boolean() }),
  init: () => ({ fd: noFd(), file: noFile(), pc: "start" as const, own: false }),
  actions: (p) => ({
    Create: {
      when: (s) => s.pc === "start",
      then: (s) => {
        getUnusedFd(s.fd, "fd");
        createFile(s.file, "file");
        if (p.design === "get-before-install") {
          getFile(s.file, "file");
          s.own = true;
        }
        fdInstall(s.fd, s.file, "file");
        s.pc = "installed";
      },
    },
    Use: {
      when: (s) => s.pc === "installed",
      then: (s) => {
        if (!s.own) getFile(s.file, "file after fd_install");
        fput(s.file, "file");
        s.own = false;
        s.pc = "done";
      },
    },
    Close: { when: (s) => s.fd.state === "installed", then: (s) => void closeFd(s.fd, s.file, "file") },
    Fput: { when: (s) => isDying(s.file), then: (s) => deferredFput(s.file, "file") },
  }),
  ownership: { file: { count: (s) => s.file.count, live: (s) => s.file.state === "live", holders: { fd: (s) => s.fd.state === "installed", creator: (s) => s.own } } },
});

test("spec fd-install: using the file after fd_install races close; a reference taken before holds", () => {
  const bad = verdictOf(fdSpec, "use-after-install");
  assert.equal(bad.fault.status, "violated");
  assert.deepEqual(bad.fault.trace!.steps.slice(1).map((s) => s.action), ["Create", "Close", "Use"]);
  assert.match(bad.fault.message!, /^file_ref_inc\(\) on a released file reference: get_file on dying file after fd_install/);
  const good = verdictOf(fdSpec, "get-before-install");
  assert.deepEqual(good.failed, []);
  assert.equal(good.v.properties.find((p) => p.name === "fileNoLeak")!.status, "holds");
});

// A reader finds an object through a pointer under RCU and reads it; the writer unpublishes
// the pointer and frees the object.
const slabSpec = defineSpec({
  name: "vocabulary/kfree-rcu",
  params: z.object({ design: z.enum(["kfree", "kfree_rcu"]).default("kfree_rcu") }),
  state: () => z.object({ obj: slabSchema(), published: z.boolean(), reader: z.enum(["idle", "inside", "done"]) }),
  init: () => ({ obj: liveObject(), published: true, reader: "idle" as const }),
  actions: (p) => ({
    ReaderLoad: { when: (s) => s.reader === "idle" && s.published, then: (s) => { s.reader = "inside"; } },
    ReaderUse: {
      when: (s) => s.reader === "inside",
      then: (s) => {
        slabUse(s.obj, "obj", "reader_fn");
        s.reader = "done";
      },
    },
    Unpublish: {
      when: (s) => s.published,
      then: (s) => {
        s.published = false;
        if (p.design === "kfree") kfree(s.obj, "obj", "writer_fn");
        else kfreeRcu(s.obj, "obj", "writer_fn");
      },
    },
    // synchronize_rcu's end: only once no reader is inside a read-side section.
    GracePeriod: { when: (s) => isRcuPending(s.obj) && s.reader !== "inside", then: (s) => rcuGracePeriod(s.obj, "obj") },
  }),
  quiescent: { freed: (s) => s.obj.state === "freed" },
});

test("spec kfree-rcu: kfree under a reader is KASAN's slab-use-after-free; kfree_rcu holds", () => {
  const bad = verdictOf(slabSpec, "kfree");
  assert.deepEqual(bad.fault.trace!.steps.slice(1).map((s) => s.action), ["ReaderLoad", "Unpublish", "ReaderUse"]);
  assert.equal(bad.fault.message, "BUG: KASAN: slab-use-after-free in reader_fn: Read of obj after kfree");
  assert.deepEqual(verdictOf(slabSpec, "kfree_rcu").failed, []);
});

// Lookup in a list while the last reference is put; release unlinks in the same step.
const krefSpec = defineSpec({
  name: "vocabulary/kref-lookup",
  params: z.object({ design: z.enum(["kref_get", "kref_get_unless_zero"]).default("kref_get_unless_zero") }),
  state: () => z.object({ ref: krefSchema(2), listed: z.boolean(), owner: z.boolean(), finder: z.enum(["idle", "found", "holding", "done"]) }),
  init: () => ({ ref: krefInit(), listed: true, owner: true, finder: "idle" as const }),
  actions: (p) => ({
    Find: { when: (s) => s.finder === "idle" && s.listed, then: (s) => { s.finder = "found"; } },
    Get: {
      when: (s) => s.finder === "found",
      then: (s) => {
        if (p.design === "kref_get") {
          krefGet(s.ref, "obj->kref");
          s.finder = "holding";
        } else s.finder = krefGetUnlessZero(s.ref) ? "holding" : "done";
      },
    },
    FinderPut: { when: (s) => s.finder === "holding", then: (s) => { krefPut(s.ref, "obj->kref", () => { s.listed = false; }); s.finder = "done"; } },
    OwnerPut: { when: (s) => s.owner, then: (s) => { s.owner = false; krefPut(s.ref, "obj->kref", () => { s.listed = false; }); } },
  }),
  ownership: { obj: { count: (s) => s.ref.count, live: (s) => s.listed, holders: { owner: (s) => s.owner, finder: (s) => s.finder === "holding" } } },
});

test("spec kref-lookup: kref_get on a found object can hit 0; kref_get_unless_zero holds", () => {
  const bad = verdictOf(krefSpec, "kref_get");
  assert.deepEqual(bad.fault.trace!.steps.slice(1).map((s) => s.action), ["Find", "OwnerPut", "Get"]);
  assert.equal(bad.fault.message, "refcount_t: addition on 0; use-after-free. (obj->kref)");
  assert.deepEqual(verdictOf(krefSpec, "kref_get_unless_zero").failed, []);
});

// KVM_CREATE_DEVICE split in two steps around the fd install, racing the device fd's close.
const kvmSpec = defineSpec({
  name: "vocabulary/kvm-create-device",
  params: z.object({ design: z.enum(["get-after-install", "kernel"]).default("kernel") }),
  state: () =>
    z.object({
      kvm: kvmSchema({ maxUsers: 3 }),
      vmFd: fdSchema(), vmFile: fileSchema({ maxCount: 1 }),
      dev: kvmDeviceSchema(), devFd: fdSchema(), devFile: fileSchema({ maxCount: 1 }),
      pc: z.enum(["start", "installed", "done"]),
    }),
  init: () => ({ kvm: newKvm(), vmFd: installedFd(), vmFile: newFile(), dev: noKvmDevice(), devFd: noFd(), devFile: noFile(), pc: "start" as const }),
  actions: (p) => ({
    CreateDevice: {
      when: (s) => s.pc === "start" && s.vmFd.state === "installed",
      then: (s) => {
        if (p.design === "kernel") {
          kvmCreateDevice(s.dev, s.kvm, s.devFile, s.devFd, destroyOps);
          s.pc = "done";
        } else {
          // The bug: the fd is published before the device's users_count reference exists.
          s.dev.state = "listed";
          getUnusedFd(s.devFd, "dev fd");
          anonInodeGetfile(s.devFile, "dev file");
          fdInstall(s.devFd, s.devFile, "dev file");
          s.pc = "installed";
        }
      },
    },
    GetKvm: { when: (s) => s.pc === "installed", then: (s) => { kvmGet(s.kvm); s.pc = "done"; } },
    CloseDev: { when: (s) => s.devFd.state === "installed", then: (s) => void closeFd(s.devFd, s.devFile, "dev file") },
    ReleaseDev: {
      when: (s) => isDying(s.devFile),
      then: (s) => void kvmDeviceFileRelease(s.dev, s.kvm, s.devFile, destroyOps, { destroy: { destroyDevices: () => kvmDestroyDevices([{ dev: s.dev, ops: destroyOps }]) } }),
    },
    CloseVm: { when: (s) => s.vmFd.state === "installed", then: (s) => void closeFd(s.vmFd, s.vmFile, "VM file") },
    ReleaseVm: {
      when: (s) => isDying(s.vmFile),
      then: (s) => void kvmVmFileRelease(s.kvm, s.vmFile, { destroy: { destroyDevices: () => kvmDestroyDevices([{ dev: s.dev, ops: destroyOps }]) } }),
    },
  }),
  ownership: {
    kvm: {
      count: (s) => s.kvm.users.count,
      live: (s) => s.kvm.phase === "live",
      holders: { vmFile: (s) => s.vmFile.state !== "freed", devFile: (s) => s.pc === "done" && s.devFile.state !== "none" && s.devFile.state !== "freed" },
    },
  },
  quiescent: { destroyed: (s) => kvmIsFreed(s.kvm) && (s.dev.state === "none" || s.dev.state === "destroyed") },
});

test("spec kvm-create-device: taking users_count after the fd install is 'addition on 0'; the kernel's order holds", () => {
  const bad = verdictOf(kvmSpec, "get-after-install");
  assert.deepEqual(bad.fault.trace!.steps.slice(1).map((s) => s.action), ["CreateDevice", "CloseDev", "ReleaseDev", "GetKvm"]);
  assert.equal(bad.fault.message, "refcount_t: addition on 0; use-after-free. (kvm->users_count)");
  assert.deepEqual(bad.failed, ["noFault", "kvmNoHolderAfterFree"], "the device fd's release destroyed the VM under the VM file");
  const good = verdictOf(kvmSpec, "kernel");
  assert.deepEqual(good.failed, []);
});

// A module's ->release drops the module's own last reference before returning (the bug), or
// the VFS drops it after ->release returned (fops_put in __fput); rmmod runs meanwhile.
const moduleSpec = defineSpec({
  name: "vocabulary/module-own-put",
  params: z.object({ design: z.enum(["put-in-own-code", "fops_put"]).default("fops_put") }),
  state: () => z.object({ mod: moduleSchemaWith(1, { maxRunning: 1 }), pc: z.enum(["idle", "inside", "put", "done"]), rmmod: z.enum(["idle", "going", "done", "refused"]) }),
  init: () => ({ mod: { ...newModule({ maxRunning: 1 }), refs: 1 }, pc: "idle" as const, rmmod: "idle" as const }),
  actions: (p) => ({
    Enter: { when: (s) => s.pc === "idle", then: (s) => { enterModule(s.mod, "drv", "__fput"); s.pc = "inside"; } },
    OwnPut: { when: (s) => s.pc === "inside" && p.design === "put-in-own-code", then: (s) => { modulePut(s.mod, "drv"); s.pc = "put"; } },
    Return: {
      when: (s) => (p.design === "put-in-own-code" ? s.pc === "put" : s.pc === "inside"),
      then: (s) => {
        leaveModule(s.mod, "drv", "drv_release");
        if (p.design === "fops_put") modulePut(s.mod, "drv");
        s.pc = "done";
      },
    },
    DeleteModule: { when: (s) => s.rmmod === "idle", then: (s) => { s.rmmod = deleteModule(s.mod) === 0 ? "going" : "refused"; } },
    FreeModule: { when: (s) => s.rmmod === "going", then: (s) => { freeModule(s.mod, "drv"); s.rmmod = "done"; } },
  }),
  reachable: { refused: (s) => s.rmmod === "refused", unloaded: (s) => s.rmmod === "done" },
});

test("spec module-own-put: module_put in the module's own code, then rmmod, faults on return; fops_put holds", () => {
  const bad = verdictOf(moduleSpec, "put-in-own-code");
  assert.deepEqual(bad.fault.trace!.steps.slice(1).map((s) => s.action), ["Enter", "OwnPut", "DeleteModule", "FreeModule", "Return"]);
  assert.equal(bad.fault.message, "BUG: unable to handle page fault for address: drv_release returns into drv's text, freed by delete_module");
  const good = verdictOf(moduleSpec, "fops_put");
  assert.deepEqual(good.failed, []);
  assert.equal(good.v.properties.find((p) => p.name === "refused")!.status, "reachable", "delete_module refuses while the file pins it");
  assert.equal(good.v.properties.find((p) => p.name === "unloaded")!.status, "reachable");
});

test("record mode through the checker: a WARN is state, and the spec's invariant sees it", () => {
  const spec = defineSpec({
    name: "vocabulary/warn-record",
    params: z.object({}),
    state: () => z.object({ r: refcountSchema(2, { warn: true }), put: z.boolean() }),
    init: () => ({ r: { count: 1, warned: false }, put: false }),
    actions: () => ({
      Put: { when: (s) => !s.put, then: (s) => { refcountDecAndTest(s.r, "obj"); s.put = true; } },
      Get: { when: (s) => s.put && !s.r.warned, then: (s) => refcountInc(s.r, "obj") },
    }),
    invariants: { noWarn: (s) => noneWarned(s.r) },
  });
  const v = check(spec);
  assert.equal(v.properties.find((p) => p.name === "noFault")!.status, "holds", "the WARN did not stop the run");
  const inv = v.properties.find((p) => p.name === "noWarn")!;
  assert.equal(inv.status, "violated");
  assert.deepEqual(inv.trace!.steps.slice(1).map((s) => s.action), ["Put", "Get"]);
});
