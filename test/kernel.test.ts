// The kernel vocabulary on plain objects: each primitive's effect and its faults.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Fault, SpecError } from "../checker/spec.ts";
import { refcountDecAndTest, refcountInc, refcountIncNotZero } from "../specs/kernel/refcount.ts";
import { createFile, fput, freeFile, getFile, getFileActive, isDying, isLive, newFile, noFile, reuseFile, type File } from "../specs/kernel/file.ts";
import { canUnload, loadedModule, moduleGet, modulePut, runModuleCode, tryModuleGet, unloadModule, type Module } from "../specs/kernel/module.ts";
import { acquire, isFree, release, unlocked } from "../specs/kernel/lock.ts";
import { kvmGetKvm, kvmGetKvmSafe, kvmPutKvm } from "../specs/kernel/kvm.ts";
import { firstBusy } from "../specs/kernel/thread.ts";

function faults(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof Fault && re.test(e.message));
}

test("refcount_t: inc, inc_not_zero, dec_and_test", () => {
  const r = { count: 1 };
  refcountInc(r, "obj");
  assert.equal(r.count, 2);
  assert.equal(refcountDecAndTest(r, "obj"), false);
  assert.equal(refcountDecAndTest(r, "obj"), true);
  assert.equal(r.count, 0);
  faults(() => refcountInc(r, "obj"), /addition on 0/);
  assert.equal(r.count, 0);
  faults(() => refcountDecAndTest(r, "obj"), /underflow/);
  assert.equal(refcountIncNotZero(r), false);
  assert.equal(r.count, 0);
  r.count = 3;
  assert.equal(refcountIncNotZero(r), true);
  assert.equal(r.count, 4);
});

test("kvm users_count wrappers", () => {
  const u = { count: 1 };
  kvmGetKvm(u);
  assert.equal(kvmPutKvm(u), false);
  assert.equal(kvmPutKvm(u), true);
  assert.equal(kvmGetKvmSafe(u), false);
  faults(() => kvmGetKvm(u), /addition on 0.*users_count/);
  faults(() => kvmPutKvm(u), /underflow/);
});

test("struct file: get_file, get_file_active, fput, __fput, slab reuse", () => {
  const f: File = newFile();
  assert.deepEqual(f, { count: 1, state: "live", gen: 0 });
  getFile(f, "vm file");
  assert.equal(f.count, 2);
  assert.equal(getFileActive(f), true);
  assert.equal(f.count, 3);
  assert.equal(fput(f, "vm file"), false);
  assert.equal(fput(f, "vm file"), false);
  // The final put does not free: the file is dying until its deferred __fput.
  assert.equal(fput(f, "vm file"), true);
  assert.deepEqual(f, { count: 0, state: "dying", gen: 0 });
  assert.ok(isDying(f) && !isLive(f));
  assert.equal(getFileActive(f), false);
  assert.equal(f.count, 0);
  // The kernel's own words (file_ref_inc's WARN_ONCE, __file_ref_put's), not invented ones.
  faults(() => getFile(f, "vm file"), /^file_ref_inc\(\) on a released file reference: get_file on dying vm file .*WARN_ONCE.*goes on/);
  faults(() => fput(f, "vm file"), /^imbalanced put on file reference count: fput of vm file/);
  freeFile(f, "vm file");
  assert.equal(f.state, "freed");
  // SLAB_TYPESAFE_BY_RCU: no KASAN report on a freed struct file; the text says it is the model's.
  faults(() => getFile(f, "vm file"), /^model: get_file on vm file after it was freed .*CONFIG_SLUB_RCU_DEBUG/);
  faults(() => fput(f, "vm file"), /^model: fput of vm file after it was freed .*CONFIG_SLUB_RCU_DEBUG/);
  assert.equal(getFileActive(f), false);
  faults(() => freeFile(f, "vm file"), /__fput on vm file while it is freed/);
  reuseFile(f, "vm file");
  assert.deepEqual(f, { count: 1, state: "live", gen: 1 });
  faults(() => reuseFile(f, "vm file"), /slab reuse of vm file while it is live/);
  faults(() => freeFile(newFile(), "x"), /while it is live/);
});

test("struct file: slots that do not exist yet", () => {
  const f = noFile();
  faults(() => getFile(f, "dev file"), /^model: get_file on dev file after it was freed/);
  faults(() => fput(f, "dev file"), /^model: fput of dev file after it was freed/);
  assert.equal(getFileActive(f), false);
  createFile(f, "dev file");
  assert.deepEqual(f, { count: 1, state: "live", gen: 0 });
  faults(() => createFile(f, "dev file"), /created twice/);
});

test("modules: try_module_get, __module_get, module_put, unload", () => {
  const m: Module = loadedModule();
  const dep: Module = loadedModule();
  assert.equal(tryModuleGet(m), true);
  moduleGet(m, "vfio");
  assert.equal(m.refs, 2);
  assert.equal(canUnload(m), false);
  modulePut(m, "vfio");
  modulePut(m, "vfio");
  faults(() => modulePut(m, "vfio"), /^model: module_put underflow on vfio \(the kernel: a bare WARN_ON in module_put\)$/);
  assert.equal(m.refs, 0);
  assert.equal(canUnload(m, [dep]), false, "a live dependent pins the module");
  unloadModule(dep);
  assert.equal(canUnload(m, [dep]), true);
  runModuleCode(m, "vfio", "release");
  unloadModule(m);
  assert.equal(canUnload(m), false);
  assert.equal(tryModuleGet(m), false);
  assert.equal(m.refs, 0);
  faults(() => moduleGet(m, "vfio"), /^model: __module_get on unloaded module vfio \(the kernel does not check\)$/);
  faults(() => modulePut(m, "vfio"), /module_put on unloaded module vfio/);
  faults(() => runModuleCode(m, "vfio", "kvm_vfio_release"), /kvm_vfio_release calls into unloaded module vfio/);
  const going: Module = { refs: 0, state: "going" };
  assert.equal(tryModuleGet(going), false);
  assert.equal(canUnload(going), false);
});

test("locks: acquire, release and their misuse", () => {
  const l = unlocked();
  assert.ok(isFree(l));
  acquire(l, 1, "kvm->lock");
  assert.equal(l.holder, 1);
  assert.ok(!isFree(l));
  faults(() => acquire(l, 1, "kvm->lock"), /recursive locking.*thread 1/);
  // A step that takes a lock another thread holds lacks its guard: the spec is wrong, not the kernel.
  assert.throws(() => acquire(l, 2, "kvm->lock"), (e: unknown) => e instanceof SpecError && /guard must require isFree\(kvm->lock\)/.test(e.message));
  faults(() => release(l, 2, "kvm->lock"), /bad unlock balance detected! thread 2 is trying to release lock \(kvm->lock\)/);
  release(l, 1, "kvm->lock");
  assert.ok(isFree(l));
  faults(() => release(l, 1, "kvm->lock"), /bad unlock balance/);
});

test("threads: firstBusy names the first thread inside a call", () => {
  assert.equal(firstBusy({ a: { pc: "idle" }, b: { pc: "idle" } }), undefined);
  assert.equal(firstBusy({ a: { pc: "idle" }, b: { pc: "put" }, c: { pc: "get" } }), "b at put");
});
