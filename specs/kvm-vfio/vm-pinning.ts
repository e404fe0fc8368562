// kvm-vfio/vm-pinning: who keeps the VM and the KVM module(s) alive while VFIO holds them.
//
// One scenario, every design of brief part B as the `design` parameter:
//   1-symbol_get upstream: raw association (df->kvm); bind takes users_count through
//                symbol_get(kvm_get_kvm_safe) and keeps symbol_get(kvm_put_kvm), which pins kvm.ko
//                (vfio_device_get_kvm_safe / vfio_device_put_kvm, 2b48f52f2bff)
//   2-helpers    seed 001 (Sean Christopherson, 2023): KVM passes kvm_get_kvm_safe/kvm_put_kvm
//                pointers with the association; the device keeps put_kvm, no module reference
//   3-module_get seed 002 (Paolo Bonzini, 2026) patches 1-3: try_module_get(THIS_MODULE of
//                virt/kvm/vfio.c, i.e. kvm.ko) at bind; inline get; put = inline dec_and_test,
//                rc->destroy (kvm_destroy_vm), then module_put
//   3-no-patch1  patches 2-3 alone: inline get/put, rc->destroy, no module reference
//   3-vfio-module  as 3 with the module taken from the VFIO file's f_op->owner (Steffen
//                Eiden's v1): that is vfio.ko, so no KVM module is pinned
//   3-put-swapped  as 3 with module_put before the kvm put; the put is split in two steps
//                (design 3's own put is split the same way, kvm put first)
//   4-get_file_active  seed 000 v5 (Aneesh Kumar K.V): association and device hold the VM struct
//                file, read from the weak kvm->_file with get_file_active; kvm_vm_release
//                clears kvm->_file
//   4a-get_file  as 4 with plain get_file(kvm->_file)
//   4b-uncleared as 4 but kvm->_file is never cleared (the seed's v4 text); slab reuse of the
//                freed VM file (Reuse) is what makes this visible
//   4c-strong    as 4 with a strong kvm->_file (get_file at KVM_CREATE_VM, fput in kvm_destroy_vm)
//   4d-unlocked-read  as 4 but bind loads df->kvm_file under kvm_ref_lock and calls get_file after
//                dropping it: Bind is two steps
//   5-pass-file  pass a struct file (Jason Gunthorpe / Sean's NAK in seed 002, variant 5-i):
//                the kvm-vfio device pins the VM file and FILE_ADD hands VFIO get_file of it
// `modules`: "one" = a single kvm.ko (s390, or x86 folded into one); "two" = kvm.ko plus
// the vendor module kvm_intel, which depends on kvm.ko, is kvm_chardev_ops.owner (kvm_init's
// module argument) and runs the arch hooks kvm_destroy_vm calls (kvm_arch_destroy_vm).
// `era`: which kernel's module pinning the designs run on.
//   v6.7+       after 087e15206d6a (kvm_vm_fops and kvm_device_fops .owner = the vendor
//               module) and ea61294befd3 (Revert "KVM: Prevent module exit until all VMs are
//               freed"), both v6.7-rc4: only KVM's files pin the vendor module; struct kvm
//               pins no module. Nothing else pins kvm_intel while a VM lives only through
//               VFIO (kvm_x86_vendor_exit and kvm_exit do not look for live VMs).
//   v5.18-v6.6  from 5f6de5cbebee and 70375c2d8fa3 (v5.18): kvm_create_vm takes
//               __module_get(kvm_chardev_ops.owner) and kvm_destroy_vm ends with
//               module_put(kvm_chardev_ops.owner), so struct kvm pins the vendor module;
//               kvm_vm_fops and kvm_device_fops have no .owner, only /dev/kvm pins a module.
// Designs 1 (2b48f52f2bff, v6.3) and 2 (seed 001, Sep 2023) were written against v5.18-v6.6;
// designs 3-5 (2026) against v6.7+. Both eras are configurations, so every design shows both.
// v5.18-v6.6 also has the return into kvm.ko after kvm_destroy_vm's last statement,
// module_put(kvm_chardev_ops.owner) (Al Viro, 20231010003746.GN800259@ZenIV: the caller's
// frame still returns into module text; the reason for ea61294befd3). It is modelled where
// VFIO's release ran kvm_destroy_vm (ReleaseVfio's return step): kvm_destroy_vm's own tail
// and, in design 2, device->put_kvm (= kvm_put_kvm) are kvm.ko text, so kvm.ko must still be
// loaded when the thread returns. Design 1 keeps symbol_get(kvm_put_kvm) until after the
// return and design 3 its try_module_get; 2, 3-no-patch1, 3-vfio-module and 3-put-swapped
// pin nothing there. KVM's own releases (kvm_vm_release, kvm_device_release) have the same
// window on that kernel whatever VFIO does; kvm/vendor-module shows it, so here those
// returns stay folded into their step and a v5.18-v6.6 verdict judges what VFIO adds.
// The window assumes kvm.ko text runs after the module_put; a build that made every call on
// the way a tail call would return straight into vfio.ko (the model does not assume that).
// Verdicts by kernel: v5.18-v6.6: 1 and 3 hold; 2, 3-no-patch1, 3-vfio-module and
// 3-put-swapped fault on the return (kvm.ko unloaded). v6.7+: 1 and 3 fail with two modules
// (kvm_intel unloaded), 2/3-no-patch1/3-vfio-module/3-put-swapped fail with one or two.
//
// Actions (thread: user operation -> kernel functions; virt/kvm/kvm_main.c, virt/kvm/vfio.c,
// drivers/vfio/vfio_main.c, drivers/vfio/device_cdev.c, fs/file_table.c, kernel/module/main.c):
//   CloseDevKvm        close: close(/dev/kvm fd): __fput -> fops_put(kvm_chardev_ops.owner)
//   CloseVm            close: close_fd -> fput of the VM file
//   ReleaseVm          task_work: __fput of the VM file: kvm_vm_release (4: clears kvm->_file;
//                      kvm_put_kvm -> kvm_destroy_vm on the last put), fops_put, file_free
//   CloseKvmVfioDev    close: close_fd -> fput of the kvm-vfio device file
//   ReleaseKvmVfioDev  task_work: __fput -> kvm_device_release -> kvm_vfio_release (per entry
//                      kvm_vfio_file_set_kvm(NULL), fput(kvf->file); 5: fput of its VM-file pin),
//                      kvm_put_kvm, fops_put, file_free
//   FileAdd(i)         ioctl: KVM_DEV_VFIO_FILE_ADD: kvm_vfio_file_add -> get_file(vfio file),
//                      kvm_vfio_file_set_kvm -> vfio_file_set_kvm (4: vfio_kvm_file_replace)
//   FileDel(i)         ioctl: KVM_DEV_VFIO_FILE_DEL: kvm_vfio_file_del -> vfio_file_set_kvm(NULL), fput
//   Bind(i)            ioctl: VFIO_DEVICE_BIND_IOMMUFD: vfio_df_get_kvm_safe -> vfio_device_get_kvm_safe
//                      (4d: twice, load then get_file)
//   CloseVfio(i)       close: close_fd -> fput (the cdev has no unbind ioctl)
//   ReleaseVfio(i)     task_work: __fput: vfio_device_fops_release -> vfio_df_unbind_iommufd ->
//                      vfio_device_put_kvm (3, 3-put-swapped: twice, the two puts in order;
//                      v5.18-v6.6: once more after it ran kvm_destroy_vm, the return from
//                      kvm_destroy_vm into its caller)
//   Rmmod(m)           unload: delete_module: refused unless refs are 0 and no loaded module
//                      depends on m
//   Reuse              alloc: SLAB_TYPESAFE_BY_RCU: the freed VM file's memory becomes an
//                      unrelated live file (held by its new, unmodelled owner)
//
// A design is a patch (the `patches` table): what VFIO holds, kvm->_file's kind, the
// association's get at FILE_ADD, and Bind's and ReleaseVfio's pieces; every action is shared.
// Bind and ReleaseVfio run their pieces in order and stop at a yield (a label in the device's
// `pc`), so a design that splits a call into steps names where.
//
// Abstracted away, and why that is sound:
//   - Locks (kv->lock, kvm_ref_lock, dev_set->lock, kvm->lock): every ioctl and release does
//     its reference work inside one critical section, so each is one atomic action. The
//     windows that matter are fput -> deferred __fput (modelled everywhere) and the unlocked
//     gaps of 4d and of design 3's puts (modelled as two-step Bind / ReleaseVfio).
//   - A close of a VFIO fd while an ioctl on it is mid-way: the ioctl holds a file reference,
//     so the close only delays the release; CloseVfio waits for the ioctl instead.
//   - vfio.ko: KVM reaches it through symbol_get (pinned during the call) and every VFIO
//     code path runs while a VFIO file (which pins vfio.ko) exists, so it never unloads here.
//   - The /dev/kvm file has no ->release body: close and fops_put are one step.
//   - The transient fget/fput of an fd around an ioctl is the guard "the fd is open".
//   - VM creation, KVM_CREATE_DEVICE and opening the VFIO cdevs happened before the initial
//     state; reopening is not modelled (it only adds references of the kinds already here).
//   - __fput's ->release and fops_put are one step: until fops_put the file pins the owner,
//     so no Rmmod fits between them. In v6.7+ no KVM path drops its own module's last
//     reference and keeps running, so returns into module text are not separate steps; in
//     v5.18-v6.6 kvm_destroy_vm does, and VFIO's return is a step (see `era` above).
//   - Module references taken by symbol_get for a single call and dropped before the action
//     ends leave no trace; those held across actions are counted.
//   - KVM's own code (kvm_vfio_file_add/del, the releases) runs while a KVM file or struct kvm
//     pins its module; only VFIO's calls into KVM check module text.
import { z } from "zod";
import { action, defineSpec, range, type ExpectedEntry } from "../../checker/spec.ts";
import { closeFd, fdInstalled, fdSchema, fileSchema, fput, freeFile, getFile, installedFd, isDying, isLive, newFile, reuseFile } from "../kernel/file.ts";
import { kvmDestroyVm, kvmGetSafe, kvmIsFreed, kvmIsLive, kvmPut, kvmSchema, newKvm, kvmVmFileRelease, type KvmDestroyHooks } from "../kernel/kvm.ts";
import { kvmDeviceFileRelease, kvmDeviceSchema } from "../kernel/kvm-device.ts";
import {
  kvmFileGet, kvmVfioFileAdd, kvmVfioFileDel, kvmVfioOps, kvmVfioRelease, vfioDeviceCallPutKvm, vfioDeviceGetKvmSafe,
  vfioKvmFileReplace, type KvmFileRead,
} from "../kernel/kvm-vfio.ts";
import { canUnload, moduleSchema, modulePut, runModuleCode, symbolPut, tryModuleGet, unloadModule } from "../kernel/module.ts";
import { deferredReleases, freedOnceClosed } from "../kernel/lifetime.ts";

export const designs = [
  "1-symbol_get", "2-helpers", "3-module_get", "3-no-patch1", "3-vfio-module", "3-put-swapped",
  "4-get_file_active", "4a-get_file", "4b-uncleared", "4c-strong", "4d-unlocked-read", "5-pass-file",
] as const;
export type Design = (typeof designs)[number];

const params = z.object({
  design: z.enum(designs).default("1-symbol_get"),
  modules: z.enum(["one", "two"]).default("two"),
  devices: z.number().int().min(1).max(2).default(1),
  /** Kernel module-pinning rules (see the header). */
  era: z.enum(["v6.7+", "v5.18-v6.6"]).default("v6.7+"),
  /** How often the freed VM file's slab object may be reused for another file. */
  reuse: z.number().int().min(0).max(1).default(1),
});
type Params = z.infer<typeof params>;

function stateSchema(p: Params) {
  const nMods = p.modules === "two" ? 2 : 1;
  const vfio = z.object({
    fd: fdSchema(),
    /** The VFIO device file: counted by the fd and KVM's kvf->file. */
    file: fileSchema({ maxCount: 2 }),
    kvf: z.boolean(),
    /** The association: raw kvm (1-3) or a counted VM-file reference (4, 5). */
    assoc: z.boolean(),
    /** Which incarnation of the VM file's slot the association pinned (4b). */
    assocGen: z.number().int().min(0).max(p.reuse),
    bound: z.boolean(),
    /** The bound device's reference: users_count (1-3) or the VM file (4, 5). */
    devRef: z.boolean(),
    devGen: z.number().int().min(0).max(p.reuse),
    /**
     * Where this file's bind or release stopped, when the design splits it: releaseReturn is
     * v5.18-v6.6's return from kvm_destroy_vm, releasePut design 3's second put.
     */
    pc: z.enum(["idle", "bindGetFile", "releasePut", "releaseReturn"]),
  });
  return z.object({
    devKvmFd: z.boolean(),
    vmFd: fdSchema(),
    vmFile: fileSchema({ maxCount: 2 + 2 * p.devices, maxReuse: p.reuse }),
    /** kvm->_file is non-NULL (designs 4*). */
    vmFilePtr: z.boolean(),
    /** The slot was reused: its unrelated new owner holds one reference. */
    foreign: z.boolean(),
    kvm: kvmSchema({ maxUsers: 2 + p.devices }),
    kvmVfioFd: fdSchema(),
    kvmVfioFile: fileSchema({ maxCount: 1 }),
    kvmVfio: kvmDeviceSchema(),
    vfio: z.array(vfio).length(p.devices),
    /** mods[0] = kvm.ko, mods[1] = kvm_intel (two); room for design 1's transient symbol_get. */
    mods: z.array(moduleSchema(4 + p.devices)).length(nMods),
  });
}
type State = z.infer<ReturnType<typeof stateSchema>>;
type Vfio = State["vfio"][number];
type Pc = Vfio["pc"];

const modNames = ["kvm", "kvm_intel"];

// ---- Designs as patches ----

/** What a call's earlier pieces tell its later ones within one step. */
interface Ctx {
  /** This step's put ran kvm_destroy_vm. */
  destroyed: boolean;
}
type Piece = (s: State, v: Vfio, x: Ctx) => void;
/** The call stops here (when `when` holds) and goes on from `resume` in a later step. */
interface Yield {
  yield: Pc;
  when?: (x: Ctx) => boolean;
  resume?: Piece;
}
type Program = readonly (Piece | Yield)[];

/** Runs a device's call from where its pc left it; true when the call finished. */
function run(prog: Program, s: State, v: Vfio): boolean {
  const x: Ctx = { destroyed: false };
  let i = 0;
  if (v.pc !== "idle") {
    i = prog.findIndex((st) => typeof st !== "function" && st.yield === v.pc);
    (prog[i] as Yield).resume?.(s, v, x);
    i += 1;
  }
  for (; i < prog.length; i++) {
    const st = prog[i];
    if (typeof st === "function") st(s, v, x);
    else if (!st.when || st.when(x)) {
      v.pc = st.yield;
      return false;
    }
  }
  v.pc = "idle";
  return true;
}

interface Patch {
  /** VFIO holds the VM struct file (4, 5) rather than users_count (1-3). */
  pinsFile: boolean;
  /** kvm->_file: cleared by kvm_vm_release (v5), never cleared (v4), or counted by struct kvm. */
  kvmFile?: "weak" | "uncleared" | "strong";
  /** 5: the kvm-vfio device holds a VM-file reference until its release. */
  kvmVfioPin?: boolean;
  /** kvm_vfio_file_set_kvm -> vfio_file_set_kvm(file, kvm). */
  setKvm: (s: State, v: Vfio) => void;
  /** vfio_device_get_kvm_safe, with an association set. */
  bind: Program;
  /** vfio_device_put_kvm, with a device reference held. */
  put: Program;
  /** S5: function pointers VFIO keeps into kvm.ko (2: get/put_kvm; 3: rc->destroy). */
  keepsKvmPointers?: (v: Vfio) => boolean;
}

/** The objects and kernel calls every design shares, for parameters `p`. */
function kernel(p: Params) {
  const oldEra = p.era === "v5.18-v6.6";
  const kvmMod = (s: State) => s.mods[0];
  /** The module owning KVM's file_operations and the arch/vendor hooks. */
  const owner = (s: State) => s.mods[s.mods.length - 1];
  const ownerName = p.modules === "two" ? "kvm_intel" : "kvm";
  /**
   * virt/kvm/kvm_main.c:kvm_destroy_vm called from `via`: kvm.ko code and, through
   * kvm_arch_destroy_vm, the vendor hooks; v5.18-v6.6 (5f6de5cbebee) ends with
   * module_put(kvm_chardev_ops.owner).
   */
  const destroy = (s: State, via: string, strongFile: boolean): KvmDestroyHooks => ({
    archDestroy: () => {
      runModuleCode(kvmMod(s), "kvm", `${via} -> kvm_destroy_vm`);
      runModuleCode(owner(s), ownerName, `${via} -> kvm_destroy_vm -> kvm_arch_destroy_vm`);
    },
    // 4c: kvm_destroy_vm fputs kvm->_file; where in it does not matter to this model.
    freeMemslots: strongFile ? () => {
      s.vmFilePtr = false;
      fput(s.vmFile, "VM file (kvm->_file)");
    } : undefined,
    vendorPin: oldEra ? { module: owner(s), name: ownerName } : undefined,
  });
  return { oldEra, kvmMod, owner, ownerName, destroy };
}

/** Every design's patch, for parameters `p`. */
function patches(p: Params): Record<Design, Patch> {
  const { oldEra, kvmMod, destroy } = kernel(p);
  const raw = { pinsFile: false, setKvm: (_s: State, v: Vfio) => { v.assoc = true; } }; // df->kvm = kvm
  /** seed 000: vfio_kvm_file_replace(&df->kvm_file, kvm), the new reference from `get`. */
  const fileAssoc = (get: (s: State) => boolean) => (s: State, v: Vfio) => {
    if (!vfioKvmFileReplace(null, () => get(s), "VM file (df->kvm_file)")) return;
    v.assoc = true;
    v.assocGen = s.vmFile.gen;
  };
  const readKvmFile = (how: KvmFileRead) => fileAssoc((s) => kvmFileGet(how, s.vmFilePtr, s.vmFile, "VM file (kvm->_file)"));

  // Bind pieces.
  const getSafe: Piece = (s, v) => { v.devRef = kvmGetSafe(s.kvm); }; // inline in kvm_types.h: VFIO's own code
  const moduleThenGet: Piece = (s, v) => {
    if (!tryModuleGet(kvmMod(s))) return; // try_module_get(kvm_module): kvm.ko
    if (!kvmGetSafe(s.kvm)) return modulePut(kvmMod(s), "kvm");
    v.devRef = true;
  };
  const getDfFile: Piece = (s, v) => {
    getFile(s.vmFile, "VM file (df->kvm_file)");
    v.devRef = true;
    v.devGen = v.assocGen;
  };

  // Put pieces.
  /** device->put_kvm (kvm_put_kvm, kvm.ko) through the pointer VFIO kept (1: symbol_get, 2: KVM's helper). */
  const callPut: Piece = (s, v, x) => {
    v.devRef = false;
    x.destroyed = vfioDeviceCallPutKvm(s.kvm, destroy(s, "vfio_device_put_kvm -> kvm_put_kvm", false), kvmMod(s));
  };
  /** Patch 3's inline kvm_put_kvm: dec_and_test in VFIO, then rc->destroy into KVM. */
  const inlinePut: Piece = (s, v, x) => {
    v.devRef = false;
    if (!kvmPut(s.kvm)) return;
    runModuleCode(kvmMod(s), "kvm", "vfio_device_put_kvm -> rc->destroy");
    kvmDestroyVm(s.kvm, destroy(s, "rc->destroy", false));
    x.destroyed = true;
  };
  const modulePutKvm: Piece = (s) => modulePut(kvmMod(s), "kvm");
  const fputDevFile: Piece = (s, v) => {
    v.devRef = false;
    fput(s.vmFile, "VM file (device->kvm_file)");
    v.devGen = 0;
  };
  /**
   * v5.18-v6.6: a put that ran kvm_destroy_vm returns, after its module_put(kvm_chardev_ops.owner),
   * through kvm.ko text (kvm_destroy_vm's tail; 1/2's kvm_put_kvm), unless every call was a tail call.
   */
  const returnFromDestroy: Yield = {
    yield: "releaseReturn",
    when: (x) => oldEra && x.destroyed,
    resume: (s) => runModuleCode(kvmMod(s), "kvm", "return from module_put(kvm_chardev_ops.owner) into kvm_destroy_vm"),
  };
  const secondPut: Yield = { yield: "releasePut" };

  const design3 = { ...raw, bind: [moduleThenGet], keepsKvmPointers: (v: Vfio) => v.devRef };
  const inline3 = { ...raw, bind: [getSafe], put: [inlinePut, returnFromDestroy], keepsKvmPointers: (v: Vfio) => v.devRef };
  const file4 = { pinsFile: true, kvmFile: "weak" as const, setKvm: readKvmFile("get_file_active"), bind: [getDfFile], put: [fputDevFile] };
  return {
    "1-symbol_get": {
      ...raw,
      bind: [(s, v) => { v.devRef = vfioDeviceGetKvmSafe(s.kvm, kvmMod(s)); }],
      put: [callPut, returnFromDestroy, (s) => symbolPut(kvmMod(s), "kvm")], // symbol_put(kvm_put_kvm)
    },
    "2-helpers": {
      ...raw,
      bind: [(s, v) => {
        runModuleCode(kvmMod(s), "kvm", "ref->get_kvm (kvm_get_kvm_safe)");
        v.devRef = kvmGetSafe(s.kvm);
      }],
      put: [callPut, returnFromDestroy],
      keepsKvmPointers: (v) => v.assoc || v.devRef,
    },
    // kvm put (maybe destroy) first; module_put is a step of its own.
    "3-module_get": { ...design3, put: [inlinePut, returnFromDestroy, secondPut, modulePutKvm] },
    "3-no-patch1": inline3,
    "3-vfio-module": inline3, // try_module_get(vfio.ko) pins no KVM module
    "3-put-swapped": { ...design3, put: [modulePutKvm, secondPut, inlinePut, returnFromDestroy] },
    "4-get_file_active": file4,
    "4a-get_file": { ...file4, setKvm: readKvmFile("get_file") },
    "4b-uncleared": { ...file4, kvmFile: "uncleared" },
    "4c-strong": { ...file4, kvmFile: "strong" },
    // Bind loads df->kvm_file under kvm_ref_lock, drops the lock, then get_file on what it loaded.
    "4d-unlocked-read": {
      ...file4,
      bind: [{ yield: "bindGetFile" }, (s, v) => {
        getFile(s.vmFile, "VM file (df->kvm_file loaded before the lock was dropped)");
        v.devRef = true;
        v.devGen = s.vmFile.gen; // whatever now occupies the slot
      }],
    },
    "5-pass-file": {
      pinsFile: true,
      kvmVfioPin: true,
      setKvm: fileAssoc((s) => { getFile(s.vmFile, "VM file (kvm-vfio pin)"); return true; }),
      bind: [getDfFile],
      put: [fputDevFile],
    },
  };
}

/** The run stops where VFIO's release faults (a call into an unloaded module). */
const releaseFaults = "every step enabled there faults (ReleaseVfio(i=0))";

/** Every fd closed: /dev/kvm's, the VM's, the kvm-vfio device's, each VFIO device's. */
const allClosed = (s: State) =>
  !s.devKvmFd && !fdInstalled(s.vmFd) && !fdInstalled(s.kvmVfioFd) && s.vfio.every((v) => !fdInstalled(v.fd));
/** kvm, the VM file (or its reused slot) and every file freed, module counts back at base. */
const allFreed = (s: State) =>
  kvmIsFreed(s.kvm) && (s.foreign || s.vmFile.state === "freed") && s.kvmVfioFile.state === "freed" &&
  s.vfio.every((v) => v.file.state === "freed") && s.mods.every((m) => m.state === "gone" || m.refs === 0);

export default defineSpec({
  name: "kvm-vfio/vm-pinning",
  summary: "Who pins struct kvm and the KVM module(s) while VFIO holds them: designs 1-5",
  source: "seeds 000_c0bd9b432b2ea1fa.txt, 001_f9e3559a61d23ace.txt, 002_54dcae5862b1e7c4.txt",
  params,
  // Every design with one KVM module and with kvm.ko plus a vendor module, on both eras.
  // The older era comes first: a run's label is the first configuration it matches.
  configurations: [
    { modules: "one", era: "v5.18-v6.6" }, { modules: "two", era: "v5.18-v6.6" },
    { modules: "one" }, { modules: "two" },
  ],
  state: stateSchema,
  init: (p) => {
    const d = patches(p)[p.design];
    // kvm_chardev_ops.owner: held by /dev/kvm, plus the VM file and the kvm-vfio file
    // (v6.7+) or plus struct kvm (v5.18-v6.6).
    const ownerRefs = p.era === "v6.7+" ? 3 : 2;
    return {
      devKvmFd: true,
      vmFd: installedFd(),
      vmFile: { count: 1 + (d.kvmFile === "strong" ? 1 : 0) + (d.kvmVfioPin ? 1 : 0), state: "live" as const, gen: 0 },
      vmFilePtr: d.kvmFile !== undefined,
      foreign: false,
      kvm: newKvm({ users: 2 }),
      kvmVfioFd: installedFd(),
      kvmVfioFile: newFile(),
      kvmVfio: { state: "listed" as const },
      vfio: range(p.devices).map(() => ({
        fd: installedFd(), file: newFile(), kvf: false, assoc: false, assocGen: 0, bound: false, devRef: false, devGen: 0, pc: "idle" as const,
      })),
      mods: p.modules === "two" ? [{ refs: 0, state: "live" as const }, { refs: ownerRefs, state: "live" as const }]
        : [{ refs: ownerRefs, state: "live" as const }],
    };
  },
  actions: (p) => {
    const d = patches(p)[p.design];
    const { oldEra, kvmMod, owner, ownerName, destroy } = kernel(p);
    const two = p.modules === "two";
    const each = { i: range(p.devices) };
    const strong = d.kvmFile === "strong";
    /** The VM and kvm-vfio device fops have an owner only since 087e15206d6a (v6.7). */
    const fopsOwner = (s: State) => (oldEra ? undefined : owner(s));
    /** vfio_file_set_kvm(file, NULL): clear the association, dropping its reference in 4/5. */
    const clearAssoc = (s: State, v: Vfio) => {
      if (d.pinsFile) v.assoc = vfioKvmFileReplace(v.assoc ? s.vmFile : null, null, "VM file (df->kvm_file)");
      else v.assoc = false; // df->kvm = NULL
      v.assocGen = 0;
    };
    const kvf = (s: State, v: Vfio) => ({ e: v, file: v.file, what: "VFIO device file (kvf->file)", clearKvm: () => clearAssoc(s, v) });
    const bindSteps: Pc[] = d.bind.flatMap((st) => (typeof st === "function" ? [] : [st.yield]));

    return {
      CloseDevKvm: {
        kernel: "close(/dev/kvm fd) -> __fput -> fops_put",
        thread: "close",
        when: (s: State) => s.devKvmFd,
        then: (s: State) => {
          s.devKvmFd = false; // its f_op has no ->release: close and fops_put are one step
          modulePut(owner(s), ownerName);
        },
      },
      CloseVm: {
        kernel: "close(vm fd) -> fput",
        thread: "close",
        when: (s: State) => fdInstalled(s.vmFd),
        then: (s: State) => void closeFd(s.vmFd, s.vmFile, "VM file"),
      },
      ReleaseVm: {
        // kvm_main.c:kvm_vm_release; fops_put(kvm_vm_fops.owner) only since 087e15206d6a.
        kernel: "__fput -> kvm_vm_release -> kvm_put_kvm; fops_put",
        thread: "task_work",
        when: (s: State) => isDying(s.vmFile) && !s.foreign,
        then: (s: State) => {
          if (d.kvmFile !== "uncleared") s.vmFilePtr = false; // v5: RCU_INIT_POINTER(kvm->_file, NULL)
          kvmVmFileRelease(s.kvm, s.vmFile, { owner: fopsOwner(s), ownerName, destroy: destroy(s, "kvm_vm_release", strong) });
        },
      },
      CloseKvmVfioDev: {
        kernel: "close(kvm-vfio fd) -> fput",
        thread: "close",
        when: (s: State) => fdInstalled(s.kvmVfioFd),
        then: (s: State) => void closeFd(s.kvmVfioFd, s.kvmVfioFile, "kvm-vfio device file"),
      },
      ReleaseKvmVfioDev: {
        // kvm_main.c:kvm_device_release; fops_put(kvm_device_fops.owner) only since 087e15206d6a.
        kernel: "__fput -> kvm_device_release -> kvm_vfio_release; kvm_put_kvm; fops_put",
        thread: "task_work",
        when: (s: State) => isDying(s.kvmVfioFile),
        then: (s: State) =>
          void kvmDeviceFileRelease(s.kvmVfio, s.kvm, s.kvmVfioFile, kvmVfioOps({ module: kvmMod(s), moduleName: "kvm" }), {
            fileOwner: fopsOwner(s),
            fileOwnerName: ownerName,
            destroy: destroy(s, "kvm_device_release", strong),
            body: () => {
              kvmVfioRelease(s.vfio.map((v) => kvf(s, v)));
              if (d.kvmVfioPin) fput(s.vmFile, "VM file (kvm-vfio pin)");
            },
          }),
      },
      FileAdd: action({
        kernel: "KVM_DEV_VFIO_FILE_ADD: kvm_vfio_file_add -> kvm_vfio_file_set_kvm -> vfio_file_set_kvm",
        thread: "ioctl",
        each,
        when: (s: State, { i }) => fdInstalled(s.kvmVfioFd) && fdInstalled(s.vfio[i].fd) && !s.vfio[i].kvf,
        then: (s: State, { i }) => kvmVfioFileAdd(s.vfio[i], s.vfio[i].file, "VFIO device file (kvf->file)", () => d.setKvm(s, s.vfio[i])),
      }),
      FileDel: action({
        kernel: "KVM_DEV_VFIO_FILE_DEL: kvm_vfio_file_del -> vfio_file_set_kvm(NULL); fput(kvf->file)",
        thread: "ioctl",
        each,
        when: (s: State, { i }) => fdInstalled(s.kvmVfioFd) && fdInstalled(s.vfio[i].fd) && s.vfio[i].kvf,
        then: (s: State, { i }) => {
          const x = kvf(s, s.vfio[i]);
          kvmVfioFileDel(x.e, x.file, x.what, x.clearKvm);
        },
      }),
      Bind: action({
        kernel: "VFIO_DEVICE_BIND_IOMMUFD: vfio_df_get_kvm_safe -> vfio_device_get_kvm_safe",
        thread: "ioctl",
        each,
        when: (s: State, { i }) => {
          const v = s.vfio[i];
          return (fdInstalled(v.fd) && !v.bound && v.pc === "idle") || bindSteps.includes(v.pc);
        },
        then: (s: State, { i }) => {
          const v = s.vfio[i];
          if ((v.pc === "idle" && !v.assoc) || run(d.bind, s, v)) v.bound = true;
        },
      }),
      CloseVfio: action({
        kernel: "close(vfio fd) -> fput",
        thread: "close",
        each,
        // A close racing with an ioctl on the same file only delays the release past it.
        when: (s: State, { i }) => fdInstalled(s.vfio[i].fd) && s.vfio[i].pc === "idle",
        then: (s: State, { i }) => void closeFd(s.vfio[i].fd, s.vfio[i].file, "VFIO device file"),
      }),
      ReleaseVfio: action({
        kernel: "__fput -> vfio_device_fops_release -> vfio_df_unbind_iommufd -> vfio_device_put_kvm",
        thread: "task_work",
        each,
        when: (s: State, { i }) => isDying(s.vfio[i].file),
        then: (s: State, { i }) => {
          const v = s.vfio[i];
          if (!(v.pc === "idle" && !v.devRef) && !run(d.put, s, v)) return;
          v.bound = false;
          freeFile(v.file, "VFIO device file"); // __fput's file_free, after the last piece
        },
      }),
      Rmmod: action({
        kernel: "delete_module",
        thread: "unload",
        each: { m: modNames.slice(0, two ? 2 : 1) },
        when: (s: State, { m }) => {
          const i = modNames.indexOf(m);
          return canUnload(s.mods[i], i === 0 && two ? [s.mods[1]] : []); // kvm_intel depends on kvm
        },
        then: (s: State, { m }) => unloadModule(s.mods[modNames.indexOf(m)]),
      }),
      Reuse: {
        kernel: "kmem_cache_alloc(filp_cachep) returns the freed VM file's object",
        thread: "alloc",
        when: (s: State) => s.vmFile.state === "freed" && s.vmFile.gen < p.reuse,
        then: (s: State) => {
          reuseFile(s.vmFile, "VM file slot");
          s.foreign = true;
        },
      },
    };
  },
  ownership: (p) => {
    const d = patches(p)[p.design];
    const ofGen = (s: State, f: (v: Vfio) => boolean) => s.vfio.filter((v) => d.pinsFile && f(v)).length;
    return {
      kvm: {
        doc: "kvm->users_count",
        count: (s: State) => s.kvm.users.count,
        live: (s: State) => kvmIsLive(s.kvm),
        holders: {
          // Each KVM file's reference is put by its ->release: held until the file is freed.
          vmFile: (s: State) => !s.foreign && s.vmFile.state !== "freed",
          kvmVfioDevice: (s: State) => s.kvmVfioFile.state !== "freed",
          vfioDevices: (s: State) => (d.pinsFile ? 0 : s.vfio.filter((v) => v.devRef).length),
        },
      },
      vmFile: {
        doc: "f_count of the VM file's slab object (after Reuse, an unrelated file)",
        count: (s: State) => s.vmFile.count,
        live: (s: State) => isLive(s.vmFile),
        holders: {
          newOwner: (s: State) => s.foreign,
          vmFd: (s: State) => !s.foreign && fdInstalled(s.vmFd),
          kvmFile: (s: State) => d.kvmFile === "strong" && !s.foreign && kvmIsLive(s.kvm),
          kvmVfioPin: (s: State) => d.kvmVfioPin === true && !s.foreign && s.kvmVfioFile.state !== "freed",
          // Only references on the incarnation now in the slot count toward its f_count.
          assoc: (s: State) => ofGen(s, (v) => v.assoc && v.assocGen === s.vmFile.gen),
          devRef: (s: State) => ofGen(s, (v) => v.devRef && v.devGen === s.vmFile.gen),
        },
      },
    };
  },
  invariants: (p) => {
    const d = patches(p)[p.design];
    /** The VM's own file (not a reused slot) has not been released yet. */
    const vmFileAlive = (s: State) => !s.foreign && s.vmFile.state !== "freed";
    return {
      assocImpliesKvmVfioDev: {
        doc: "S4: an association exists only while the kvm-vfio device that set it is unreleased and kvm lives",
        holds: (s: State) => s.vfio.every((v) => !v.assoc || (v.kvf && s.kvmVfioFile.state !== "freed" && !kvmIsFreed(s.kvm))),
      },
      rightVmFile: {
        doc: "S8: an association or device reference names this VM's file, not a reused slab object",
        holds: (s: State) => s.vfio.every((v) => (!v.assoc || v.assocGen === 0) && (!v.devRef || v.devGen === 0)),
      },
      kvmFreedUnreferenced: {
        doc: "S1: once kvm_destroy_vm ran, nothing references the VM",
        holds: (s: State) =>
          !kvmIsFreed(s.kvm) ||
          (!vmFileAlive(s) && s.kvmVfioFile.state === "freed" && s.vfio.every((v) => !v.assoc && !v.devRef)),
      },
      vfioPointersIntoLoadedModules: {
        doc: "S5: function pointers VFIO keeps (2: get/put_kvm; 3: rc->destroy) point into a loaded module",
        holds: (s: State) => s.mods[0].state === "live" || !s.vfio.some((v) => d.keepsKvmPointers?.(v) === true),
      },
    };
  },
  quiescent: {
    noLeak: {
      doc: "L1: every fd closed, no release pending => kvm, the VM file and every file freed, module counts at base",
      holds: (s: State) => !allClosed(s) || allFreed(s),
    },
  },
  liveness: { freedOnceClosed: freedOnceClosed(allClosed, allFreed, "kvm, the VM file and every file (module counts back at base)") },
  fairness: deferredReleases(),
  reachable: {
    vfioHoldsLastVmRef: {
      doc: "witness: every KVM fd is closed and released, and a bound VFIO device still keeps the VM alive",
      when: (s: State) =>
        !s.devKvmFd && !fdInstalled(s.vmFd) && s.kvmVfioFile.state === "freed" && !kvmIsFreed(s.kvm) && s.vfio.some((v) => v.devRef),
    },
  },
  symmetry: (s: State) => s.vfio,
  // Designs 4a-4d fail in every configuration; the module-pinning designs only on v6.7+,
  // where struct kvm pins no module. Where VFIO's release faults, the run stops there with
  // the VM allocated: freedOnceClosed is violated though no state is quiescent with a leak.
  // The step counts are for one device; every further device adds its close and its
  // deferred release before the run can reach "every fd closed" (`more`).
  expected: (p): ExpectedEntry<z.infer<typeof params>>[] => {
    const more = 2 * (p.devices - 1);
    return [
      // v5.18-v6.6: struct kvm pins kvm.ko, and nothing holds kvm.ko across the return from
      // kvm_destroy_vm's last module_put (5f6de5cbebee..ea61294befd3).
      ...(["2-helpers", "3-no-patch1", "3-vfio-module", "3-put-swapped"] as const).flatMap((design) =>
        (["one", "two"] as const).map((modules) => ({
          when: { design, modules, era: "v5.18-v6.6" as const },
          violated: {
            noFault: {
              steps: (design === "3-put-swapped" ? 12 : 11) + (modules === "two" ? 1 : 0),
              message: "return from module_put(kvm_chardev_ops.owner) into kvm_destroy_vm calls into unloaded",
            },
            freedOnceClosed: { steps: (design === "3-put-swapped" ? 12 : 11) + (modules === "two" ? 1 : 0) + more, message: releaseFaults },
          },
          doc: "on v5.18-v6.6 the final kvm_put_kvm returns into kvm.ko after dropping its last reference",
        })),
      ),
      {
        when: { design: "4a-get_file" },
        violated: { noFault: { steps: 2, message: "get_file on dying VM file (kvm->_file)" } },
        doc: "plain get_file(kvm->_file) revives a dying VM file",
      },
      {
        when: { design: "4b-uncleared" },
        violated: { rightVmFile: { steps: 4 }, kvmFreedUnreferenced: { steps: 7 } },
        doc: "kvm->_file is never cleared: after slab reuse it names an unrelated file",
      },
      {
        when: { design: "4c-strong" },
        violated: { noLeak: { steps: 6 + more }, freedOnceClosed: { steps: 6 + more, message: `the run stops at step ${6 + more} (no action can run)` } },
        doc: "a strong kvm->_file pins the VM file from struct kvm, which the file itself pins: a cycle nothing breaks",
      },
      {
        when: { design: "4d-unlocked-read" },
        violated: {
          noFault: { steps: 5, message: "df->kvm_file loaded before the lock was dropped" },
          rightVmFile: { steps: 7 },
          kvmFreedUnreferenced: { steps: 8 },
        },
        doc: "bind loads df->kvm_file under kvm_ref_lock but calls get_file after dropping it",
      },
      // v6.7+: VFIO's last put runs kvm_destroy_vm after a module it calls into was unloaded:
      // [design, modules, noFault steps, message, vfioPointersIntoLoadedModules steps, why, freedOnceClosed steps].
      ...([
        ["2-helpers", "one", 10, "device->put_kvm (kvm_put_kvm) calls into unloaded module kvm", 8, "the kept put_kvm pointer pins no module: kvm.ko unloads under it", 10],
        ["3-no-patch1", "one", 10, "vfio_device_put_kvm -> rc->destroy calls into unloaded module kvm", 8, "without patch 1 nothing pins kvm.ko while VFIO holds the VM", 10],
        ["3-vfio-module", "one", 10, "vfio_device_put_kvm -> rc->destroy calls into unloaded module kvm", 8, "the module reference is vfio.ko's (the VFIO file's owner), so kvm.ko is not pinned", 10],
        ["3-put-swapped", "one", 11, "vfio_device_put_kvm -> rc->destroy calls into unloaded module kvm", 10, "module_put before the kvm put: kvm.ko can unload before rc->destroy runs", 11],
        ["1-symbol_get", "two", 10, "vfio_device_put_kvm -> kvm_put_kvm -> kvm_destroy_vm -> kvm_arch_destroy_vm calls into unloaded module kvm_intel", 0, "symbol_get pins kvm.ko only; on v6.7+ nothing pins kvm_intel while the VM lives only through VFIO", 10],
        ["2-helpers", "two", 10, "vfio_device_put_kvm -> kvm_put_kvm -> kvm_destroy_vm -> kvm_arch_destroy_vm calls into unloaded module kvm_intel", 9, "the helpers pin no module: kvm_intel (and kvm.ko) can unload under VFIO's last put", 11],
        ["3-module_get", "two", 10, "rc->destroy -> kvm_destroy_vm -> kvm_arch_destroy_vm calls into unloaded module kvm_intel", 0, "THIS_MODULE of virt/kvm/vfio.c is kvm.ko: the vendor module kvm_destroy_vm calls into is not pinned", 10],
        ["3-no-patch1", "two", 10, "rc->destroy -> kvm_destroy_vm -> kvm_arch_destroy_vm calls into unloaded module kvm_intel", 9, "without patch 1 no KVM module is pinned while VFIO holds the VM", 11],
        ["3-vfio-module", "two", 10, "rc->destroy -> kvm_destroy_vm -> kvm_arch_destroy_vm calls into unloaded module kvm_intel", 9, "the module reference is vfio.ko's, so no KVM module is pinned", 11],
        ["3-put-swapped", "two", 11, "rc->destroy -> kvm_destroy_vm -> kvm_arch_destroy_vm calls into unloaded module kvm_intel", 11, "module_put before the kvm put, and the vendor module is not pinned at all", 12],
      ] as const).map(([design, modules, steps, message, pointers, doc, live]) => ({
        when: { design, modules, era: "v6.7+" as const },
        violated: {
          noFault: { steps, message }, ...(pointers ? { vfioPointersIntoLoadedModules: { steps: pointers } } : {}),
          freedOnceClosed: { steps: live + more, message: releaseFaults },
        },
        doc,
      })),
    ];
  },
});
