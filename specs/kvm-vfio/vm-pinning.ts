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
// Actions (user operation -> kernel functions):
//   CloseDevKvm        close(/dev/kvm fd): __fput -> fops_put(kvm_chardev_ops.owner)
//   CloseVm            close(vm fd): fput of the VM file
//   ReleaseVm          deferred __fput of the VM file: kvm_vm_release (4: clears kvm->_file;
//                      kvm_put_kvm -> kvm_destroy_vm on the last put), fops_put, file_free
//   CloseKvmVfioDev    close(kvm-vfio device fd): fput
//   ReleaseKvmVfioDev  __fput: kvm_device_release -> kvm_vfio_release (per entry
//                      kvm_vfio_file_set_kvm(NULL), fput(kvf->file); 5: fput of its VM-file pin),
//                      kvm_put_kvm, fops_put, file_free
//   FileAdd(i)         KVM_DEV_VFIO_FILE_ADD: kvm_vfio_file_add -> get_file(vfio file),
//                      kvm_vfio_file_set_kvm -> vfio_file_set_kvm (4: vfio_kvm_file_replace)
//   FileDel(i)         KVM_DEV_VFIO_FILE_DEL: kvm_vfio_file_del -> vfio_file_set_kvm(NULL), fput
//   Bind(i)            VFIO_DEVICE_BIND_IOMMUFD: vfio_df_get_kvm_safe -> vfio_device_get_kvm_safe
//                      (4d: twice, load then get_file)
//   CloseVfio(i)       close(vfio device fd): fput (the cdev has no unbind ioctl)
//   ReleaseVfio(i)     __fput: vfio_device_fops_release -> vfio_df_unbind_iommufd ->
//                      vfio_device_put_kvm (3, 3-put-swapped: twice, the two puts in order;
//                      v5.18-v6.6: once more after it ran kvm_destroy_vm, the return from
//                      kvm_destroy_vm into its caller)
//   Rmmod(m)           delete_module: refused unless refs are 0 and no loaded module depends on m
//   Reuse              SLAB_TYPESAFE_BY_RCU: the freed VM file's memory becomes an unrelated
//                      live file (held by its new, unmodelled owner)
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
import { z } from "zod";
import { action, defineSpec, range } from "../../checker/spec.ts";
import { fileSchema, fput, freeFile, getFile, getFileActive, isDying, newFile, reuseFile } from "../kernel/file.ts";
import { kvmGetKvmSafe, kvmPutKvm } from "../kernel/kvm.ts";
import {
  canUnload, moduleSchema, modulePut, runModuleCode, symbolGet, symbolPut, tryModuleGet, unloadModule,
} from "../kernel/module.ts";
import { refcountSchema } from "../kernel/refcount.ts";

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

/** VFIO holds users_count (designs 1-3) or the VM struct file (4, 5). */
const pinsFile = (d: Design) => d.startsWith("4") || d === "5-pass-file";

function stateSchema(p: Params) {
  const nMods = p.modules === "two" ? 2 : 1;
  const vfio = z.object({
    fd: z.boolean(),
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
     * Where this file's bind or release is, when the design splits it: releaseReturn is
     * v5.18-v6.6's return from kvm_destroy_vm, releasePut design 3's second put.
     */
    pc: z.enum(["idle", "bindGetFile", "releasePut", "releaseReturn"]),
  });
  return z.object({
    devKvmFd: z.boolean(),
    vmFd: z.boolean(),
    vmFile: fileSchema({ maxCount: 2 + 2 * p.devices, maxReuse: p.reuse }),
    /** kvm->_file is non-NULL (designs 4*). */
    vmFilePtr: z.boolean(),
    /** The slot was reused: its unrelated new owner holds one reference. */
    foreign: z.boolean(),
    users: refcountSchema(2 + p.devices),
    kvmFreed: z.boolean(),
    kvmVfioFd: z.boolean(),
    kvmVfioFile: fileSchema({ maxCount: 1 }),
    vfio: z.array(vfio).length(p.devices),
    /** mods[0] = kvm.ko, mods[1] = kvm_intel (two); room for design 1's transient symbol_get. */
    mods: z.array(moduleSchema(4 + p.devices)).length(nMods),
  });
}
type State = z.infer<ReturnType<typeof stateSchema>>;
type Vfio = State["vfio"][number];

const modNames = ["kvm", "kvm_intel"];

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
    const strongPtr = p.design === "4c-strong";
    const kvPin = p.design === "5-pass-file";
    const ownerRefs = p.era === "v6.7+" ? 3 : 2;
    return {
      devKvmFd: true,
      vmFd: true,
      vmFile: { count: 1 + (strongPtr ? 1 : 0) + (kvPin ? 1 : 0), state: "live" as const, gen: 0 },
      vmFilePtr: p.design.startsWith("4"),
      foreign: false,
      users: { count: 2 },
      kvmFreed: false,
      kvmVfioFd: true,
      kvmVfioFile: newFile(),
      vfio: range(p.devices).map(() => ({
        fd: true, file: newFile(), kvf: false, assoc: false, assocGen: 0, bound: false, devRef: false, devGen: 0, pc: "idle" as const,
      })),
      // kvm_chardev_ops.owner: held by /dev/kvm, plus the VM file and the kvm-vfio file
      // (v6.7+) or plus struct kvm (v5.18-v6.6).
      mods: p.modules === "two" ? [{ refs: 0, state: "live" as const }, { refs: ownerRefs, state: "live" as const }]
        : [{ refs: ownerRefs, state: "live" as const }],
    };
  },
  actions: (p) => {
    const d = p.design;
    const two = p.modules === "two";
    const each = { i: range(p.devices) };
    const kvm = (s: State) => s.mods[0];
    /** The module owning KVM's file_operations and the arch/vendor hooks. */
    const owner = (s: State) => s.mods[s.mods.length - 1];
    const ownerName = two ? "kvm_intel" : "kvm";

    const oldEra = p.era === "v5.18-v6.6";
    /**
     * virt/kvm/kvm_main.c:kvm_destroy_vm: runs kvm.ko code and, through kvm_arch_destroy_vm,
     * the vendor hooks; v5.18-v6.6 (5f6de5cbebee) ends with module_put(kvm_chardev_ops.owner).
     */
    function destroyVm(s: State, via: string): void {
      runModuleCode(kvm(s), "kvm", `${via} -> kvm_destroy_vm`);
      runModuleCode(owner(s), ownerName, `${via} -> kvm_destroy_vm -> kvm_arch_destroy_vm`);
      s.kvmFreed = true;
      if (d === "4c-strong") {
        s.vmFilePtr = false;
        fput(s.vmFile, "VM file (kvm->_file)");
      }
      if (oldEra) modulePut(owner(s), ownerName);
    }
    function putKvm(s: State, via: string): void {
      if (kvmPutKvm(s.users)) destroyVm(s, via);
    }
    /** vfio_file_set_kvm(file, NULL): clear the association, dropping its reference in 4/5. */
    function clearAssoc(s: State, v: Vfio): void {
      if (!v.assoc) return;
      v.assoc = false;
      if (pinsFile(d)) fput(s.vmFile, "VM file (df->kvm_file)");
      v.assocGen = 0;
    }
    /** __fput's tail for a KVM file: fops_put(f_op->owner) after ->release. */
    const fopsPut = (s: State) => modulePut(owner(s), ownerName);
    /** The VM and kvm-vfio device fops have an owner only since 087e15206d6a (v6.7). */
    const vmFopsPut = (s: State) => {
      if (!oldEra) fopsPut(s);
    };

    return {
      CloseDevKvm: {
        kernel: "close(/dev/kvm fd) -> __fput -> fops_put",
        when: (s: State) => s.devKvmFd,
        then: (s: State) => {
          s.devKvmFd = false;
          fopsPut(s);
        },
      },
      CloseVm: {
        kernel: "close(vm fd) -> fput",
        when: (s: State) => s.vmFd,
        then: (s: State) => {
          s.vmFd = false;
          fput(s.vmFile, "VM file");
        },
      },
      ReleaseVm: {
        // kvm_main.c:kvm_vm_release; fops_put(kvm_vm_fops.owner) only since 087e15206d6a.
        kernel: "__fput -> kvm_vm_release -> kvm_put_kvm; fops_put",
        when: (s: State) => isDying(s.vmFile) && !s.foreign,
        then: (s: State) => {
          runModuleCode(kvm(s), "kvm", "kvm_vm_release");
          if (d !== "4b-uncleared") s.vmFilePtr = false; // v5: RCU_INIT_POINTER(kvm->_file, NULL)
          putKvm(s, "kvm_vm_release");
          vmFopsPut(s);
          freeFile(s.vmFile, "VM file");
        },
      },
      CloseKvmVfioDev: {
        kernel: "close(kvm-vfio fd) -> fput",
        when: (s: State) => s.kvmVfioFd,
        then: (s: State) => {
          s.kvmVfioFd = false;
          fput(s.kvmVfioFile, "kvm-vfio device file");
        },
      },
      ReleaseKvmVfioDev: {
        // kvm_main.c:kvm_device_release; fops_put(kvm_device_fops.owner) only since 087e15206d6a.
        kernel: "__fput -> kvm_device_release -> kvm_vfio_release; kvm_put_kvm; fops_put",
        when: (s: State) => isDying(s.kvmVfioFile),
        then: (s: State) => {
          runModuleCode(kvm(s), "kvm", "kvm_device_release -> kvm_vfio_release");
          for (const v of s.vfio) {
            if (!v.kvf) continue;
            clearAssoc(s, v);
            v.kvf = false;
            fput(v.file, "VFIO device file (kvf->file)");
          }
          if (d === "5-pass-file") fput(s.vmFile, "VM file (kvm-vfio pin)");
          putKvm(s, "kvm_device_release");
          vmFopsPut(s);
          freeFile(s.kvmVfioFile, "kvm-vfio device file");
        },
      },
      FileAdd: action({
        kernel: "KVM_DEV_VFIO_FILE_ADD: kvm_vfio_file_add -> kvm_vfio_file_set_kvm -> vfio_file_set_kvm",
        each,
        when: (s: State, { i }) => s.kvmVfioFd && s.vfio[i].fd && !s.vfio[i].kvf,
        then: (s: State, { i }) => {
          const v = s.vfio[i];
          runModuleCode(kvm(s), "kvm", "kvm_vfio_file_add");
          getFile(v.file, "VFIO device file (kvf->file)");
          v.kvf = true;
          if (!pinsFile(d)) {
            v.assoc = true; // raw kvm (+ get/put pointers in 2, + kvm_module in 3)
            return;
          }
          // vfio_kvm_file_replace(&df->kvm_file, kvm)
          let got = false;
          if (d === "5-pass-file") {
            getFile(s.vmFile, "VM file (kvm-vfio pin)");
            got = true;
          } else if (s.vmFilePtr) {
            if (d === "4a-get_file") {
              getFile(s.vmFile, "VM file (kvm->_file)");
              got = true;
            } else got = getFileActive(s.vmFile);
          }
          if (got) {
            v.assoc = true;
            v.assocGen = s.vmFile.gen;
          }
        },
      }),
      FileDel: action({
        kernel: "KVM_DEV_VFIO_FILE_DEL: kvm_vfio_file_del -> vfio_file_set_kvm(NULL); fput(kvf->file)",
        each,
        when: (s: State, { i }) => s.kvmVfioFd && s.vfio[i].fd && s.vfio[i].kvf,
        then: (s: State, { i }) => {
          const v = s.vfio[i];
          runModuleCode(kvm(s), "kvm", "kvm_vfio_file_del");
          clearAssoc(s, v);
          v.kvf = false;
          fput(v.file, "VFIO device file (kvf->file)");
        },
      }),
      Bind: action({
        kernel: "VFIO_DEVICE_BIND_IOMMUFD: vfio_df_get_kvm_safe -> vfio_device_get_kvm_safe",
        each,
        when: (s: State, { i }) => (s.vfio[i].fd && !s.vfio[i].bound && s.vfio[i].pc === "idle") || s.vfio[i].pc === "bindGetFile",
        then: (s: State, { i }) => {
          const v = s.vfio[i];
          if (v.pc === "bindGetFile") {
            // 4d, second step: get_file on the pointer loaded earlier, without kvm_ref_lock
            getFile(s.vmFile, "VM file (df->kvm_file loaded before the lock was dropped)");
            v.devRef = true;
            v.devGen = s.vmFile.gen; // whatever now occupies the slot
            v.bound = true;
            v.pc = "idle";
            return;
          }
          if (!v.assoc) {
            v.bound = true;
            return;
          }
          switch (d) {
            case "1-symbol_get": {
              v.bound = true;
              if (!symbolGet(kvm(s))) return; // symbol_get(kvm_put_kvm), kept until put
              if (!symbolGet(kvm(s))) { symbolPut(kvm(s), "kvm"); return; }
              runModuleCode(kvm(s), "kvm", "kvm_get_kvm_safe");
              const ok = kvmGetKvmSafe(s.users);
              symbolPut(kvm(s), "kvm"); // symbol_put(kvm_get_kvm_safe)
              if (!ok) { symbolPut(kvm(s), "kvm"); return; }
              v.devRef = true;
              return;
            }
            case "2-helpers":
              v.bound = true;
              runModuleCode(kvm(s), "kvm", "ref->get_kvm (kvm_get_kvm_safe)");
              v.devRef = kvmGetKvmSafe(s.users);
              return;
            case "3-module_get":
            case "3-put-swapped":
              v.bound = true;
              if (!tryModuleGet(kvm(s))) return; // try_module_get(kvm_module): kvm.ko
              if (!kvmGetKvmSafe(s.users)) { modulePut(kvm(s), "kvm"); return; }
              v.devRef = true;
              return;
            case "3-no-patch1":
            case "3-vfio-module": // try_module_get(vfio.ko) pins no KVM module
              v.bound = true;
              v.devRef = kvmGetKvmSafe(s.users); // inline in kvm_types.h: VFIO's own code
              return;
            case "4d-unlocked-read":
              // first step: load df->kvm_file under kvm_ref_lock, drop the lock
              v.pc = "bindGetFile";
              return;
            default:
              v.bound = true;
              getFile(s.vmFile, "VM file (df->kvm_file)");
              v.devRef = true;
              v.devGen = v.assocGen;
          }
        },
      }),
      CloseVfio: action({
        kernel: "close(vfio fd) -> fput",
        each,
        // A close racing with an ioctl on the same file only delays the release past it.
        when: (s: State, { i }) => s.vfio[i].fd && s.vfio[i].pc === "idle",
        then: (s: State, { i }) => {
          s.vfio[i].fd = false;
          fput(s.vfio[i].file, "VFIO device file");
        },
      }),
      ReleaseVfio: action({
        kernel: "__fput -> vfio_device_fops_release -> vfio_df_unbind_iommufd -> vfio_device_put_kvm",
        each,
        when: (s: State, { i }) => isDying(s.vfio[i].file),
        then: (s: State, { i }) => {
          const v = s.vfio[i];
          /** v5.18-v6.6: this step ran kvm_destroy_vm, whose return is a step of its own. */
          let destroyed = false;
          /** The inline kvm_put_kvm of patch 3: dec_and_test in VFIO, then rc->destroy into KVM. */
          const inlinePut = () => {
            v.devRef = false;
            if (kvmPutKvm(s.users)) {
              runModuleCode(kvm(s), "kvm", "vfio_device_put_kvm -> rc->destroy");
              destroyVm(s, "rc->destroy");
              destroyed = true;
            }
          };
          const finish = () => {
            v.pc = "idle";
            v.bound = false;
            freeFile(v.file, "VFIO device file");
          };
          /** After the kvm put (and its return): design 1's symbol_put, design 3's module_put step. */
          const afterPut = () => {
            if (d === "1-symbol_get") symbolPut(kvm(s), "kvm"); // symbol_put(kvm_put_kvm)
            if (d === "3-module_get") {
              v.pc = "releasePut";
              return;
            }
            finish();
          };
          const stopForReturn = () => {
            if (!(oldEra && destroyed)) return false;
            v.pc = "releaseReturn";
            return true;
          };
          if (v.pc === "releaseReturn") {
            // kvm_destroy_vm's code after module_put(kvm_chardev_ops.owner) is kvm.ko text
            // (and so is design 1/2's caller kvm_put_kvm), unless every call was a tail call.
            runModuleCode(kvm(s), "kvm", "return from module_put(kvm_chardev_ops.owner) into kvm_destroy_vm");
            if (d === "3-put-swapped") finish();
            else afterPut();
            return;
          }
          if (v.pc === "releasePut") {
            // second half of a split put
            if (d === "3-module_get") modulePut(kvm(s), "kvm");
            else {
              inlinePut();
              if (stopForReturn()) return;
            }
            finish();
            return;
          }
          if (v.devRef) {
            switch (d) {
              case "1-symbol_get":
              case "2-helpers":
                v.devRef = false;
                runModuleCode(kvm(s), "kvm", "device->put_kvm (kvm_put_kvm)");
                if (kvmPutKvm(s.users)) {
                  destroyVm(s, "vfio_device_put_kvm -> kvm_put_kvm");
                  destroyed = true;
                }
                if (stopForReturn()) return;
                afterPut();
                return;
              case "3-module_get":
                // kvm put (maybe destroy) first; module_put is a step of its own
                inlinePut();
                if (stopForReturn()) return;
                afterPut();
                return;
              case "3-put-swapped":
                modulePut(kvm(s), "kvm");
                v.pc = "releasePut";
                return;
              case "3-no-patch1":
              case "3-vfio-module":
                inlinePut();
                if (stopForReturn()) return;
                break;
              default:
                v.devRef = false;
                fput(s.vmFile, "VM file (device->kvm_file)");
                v.devGen = 0;
            }
          }
          finish();
        },
      }),
      Rmmod: action({
        kernel: "delete_module",
        each: { m: modNames.slice(0, two ? 2 : 1) },
        when: (s: State, { m }) => {
          const i = modNames.indexOf(m);
          return canUnload(s.mods[i], i === 0 && two ? [s.mods[1]] : []); // kvm_intel depends on kvm
        },
        then: (s: State, { m }) => unloadModule(s.mods[modNames.indexOf(m)]),
      }),
      Reuse: {
        kernel: "kmem_cache_alloc(filp_cachep) returns the freed VM file's object",
        when: (s: State) => s.vmFile.state === "freed" && s.vmFile.gen < p.reuse,
        then: (s: State) => {
          reuseFile(s.vmFile, "VM file slot");
          s.foreign = true;
        },
      },
    };
  },
  invariants: (p) => {
    const d = p.design;
    /** The VM's own file (not a reused slot) has not been released yet. */
    const vmFileAlive = (s: State) => !s.foreign && s.vmFile.state !== "freed";
    const kvPinAlive = (s: State) => d === "5-pass-file" && s.kvmVfioFile.state !== "freed";
    return {
      usersExact: {
        doc: "users_count = VM file + kvm-vfio device + bound devices (1-3), until kvm_destroy_vm",
        holds: (s: State) =>
          s.kvmFreed ||
          s.users.count ===
            (vmFileAlive(s) ? 1 : 0) + (s.kvmVfioFile.state !== "freed" ? 1 : 0) +
              (pinsFile(d) ? 0 : s.vfio.filter((v) => v.devRef).length),
      },
      vmFileRefsExact: {
        doc: "f_count of the VM file's slot = every holder of that incarnation",
        holds: (s: State) => {
          if (s.vmFile.state !== "live") return true;
          const g = s.vmFile.gen;
          let n = s.foreign ? 1 : (s.vmFd ? 1 : 0) + (d === "4c-strong" && !s.kvmFreed ? 1 : 0) + (kvPinAlive(s) ? 1 : 0);
          if (pinsFile(d)) for (const v of s.vfio) n += (v.assoc && v.assocGen === g ? 1 : 0) + (v.devRef && v.devGen === g ? 1 : 0);
          return s.vmFile.count === n;
        },
      },
      assocImpliesKvmVfioDev: {
        doc: "S4: an association exists only while the kvm-vfio device that set it is unreleased and kvm lives",
        holds: (s: State) => s.vfio.every((v) => !v.assoc || (v.kvf && s.kvmVfioFile.state !== "freed" && !s.kvmFreed)),
      },
      rightVmFile: {
        doc: "S8: an association or device reference names this VM's file, not a reused slab object",
        holds: (s: State) => s.vfio.every((v) => (!v.assoc || v.assocGen === 0) && (!v.devRef || v.devGen === 0)),
      },
      kvmFreedUnreferenced: {
        doc: "S1: once kvm_destroy_vm ran, nothing references the VM",
        holds: (s: State) =>
          !s.kvmFreed ||
          (!vmFileAlive(s) && s.kvmVfioFile.state === "freed" && s.vfio.every((v) => !v.assoc && !v.devRef)),
      },
      vfioPointersIntoLoadedModules: {
        doc: "S5: function pointers VFIO keeps (2: get/put_kvm; 3: rc->destroy) point into a loaded module",
        holds: (s: State) =>
          s.mods[0].state === "live" ||
          !s.vfio.some((v) => (d === "2-helpers" && (v.assoc || v.devRef)) || (d.startsWith("3") && v.devRef)),
      },
    };
  },
  quiescent: (p) => ({
    noLeak: {
      doc: "L1: every fd closed, no release pending => kvm, the VM file and every file freed, module counts at base",
      holds: (s: State) =>
        s.devKvmFd || s.vmFd || s.kvmVfioFd || s.vfio.some((v) => v.fd) ||
        (s.kvmFreed && (s.foreign || s.vmFile.state === "freed") && s.kvmVfioFile.state === "freed" &&
          s.vfio.every((v) => v.file.state === "freed") && s.mods.every((m) => m.state === "gone" || m.refs === 0)),
    },
  }),
  reachable: {
    vfioHoldsLastVmRef: {
      doc: "witness: every KVM fd is closed and released, and a bound VFIO device still keeps the VM alive",
      when: (s: State) =>
        !s.devKvmFd && !s.vmFd && s.kvmVfioFile.state === "freed" && !s.kvmFreed && s.vfio.some((v) => v.devRef),
    },
  },
  symmetry: (s: State) => s.vfio,
  // Designs 4a-4d fail in every configuration; the module-pinning designs only on v6.7+,
  // where struct kvm pins no module.
  expected: [
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
      violated: { noLeak: { steps: 6 } },
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
    {
      when: { design: "2-helpers", modules: "one", era: "v6.7+" },
      violated: { noFault: { steps: 10, message: "device->put_kvm (kvm_put_kvm) calls into unloaded module kvm" }, vfioPointersIntoLoadedModules: { steps: 8 } },
      doc: "the kept put_kvm pointer pins no module: kvm.ko unloads under it",
    },
    {
      when: { design: "3-no-patch1", modules: "one", era: "v6.7+" },
      violated: { noFault: { steps: 10, message: "vfio_device_put_kvm -> rc->destroy calls into unloaded module kvm" }, vfioPointersIntoLoadedModules: { steps: 8 } },
      doc: "without patch 1 nothing pins kvm.ko while VFIO holds the VM",
    },
    {
      when: { design: "3-vfio-module", modules: "one", era: "v6.7+" },
      violated: { noFault: { steps: 10, message: "vfio_device_put_kvm -> rc->destroy calls into unloaded module kvm" }, vfioPointersIntoLoadedModules: { steps: 8 } },
      doc: "the module reference is vfio.ko's (the VFIO file's owner), so kvm.ko is not pinned",
    },
    {
      when: { design: "3-put-swapped", modules: "one", era: "v6.7+" },
      violated: { noFault: { steps: 11, message: "vfio_device_put_kvm -> rc->destroy calls into unloaded module kvm" }, vfioPointersIntoLoadedModules: { steps: 10 } },
      doc: "module_put before the kvm put: kvm.ko can unload before rc->destroy runs",
    },
    {
      when: { design: "1-symbol_get", modules: "two", era: "v6.7+" },
      violated: { noFault: { steps: 10, message: "vfio_device_put_kvm -> kvm_put_kvm -> kvm_destroy_vm -> kvm_arch_destroy_vm calls into unloaded module kvm_intel" } },
      doc: "symbol_get pins kvm.ko only; on v6.7+ nothing pins kvm_intel while the VM lives only through VFIO",
    },
    {
      when: { design: "2-helpers", modules: "two", era: "v6.7+" },
      violated: {
        noFault: { steps: 10, message: "vfio_device_put_kvm -> kvm_put_kvm -> kvm_destroy_vm -> kvm_arch_destroy_vm calls into unloaded module kvm_intel" },
        vfioPointersIntoLoadedModules: { steps: 9 },
      },
      doc: "the helpers pin no module: kvm_intel (and kvm.ko) can unload under VFIO's last put",
    },
    {
      when: { design: "3-module_get", modules: "two", era: "v6.7+" },
      violated: { noFault: { steps: 10, message: "rc->destroy -> kvm_destroy_vm -> kvm_arch_destroy_vm calls into unloaded module kvm_intel" } },
      doc: "THIS_MODULE of virt/kvm/vfio.c is kvm.ko: the vendor module kvm_destroy_vm calls into is not pinned",
    },
    {
      when: { design: "3-no-patch1", modules: "two", era: "v6.7+" },
      violated: { noFault: { steps: 10, message: "rc->destroy -> kvm_destroy_vm -> kvm_arch_destroy_vm calls into unloaded module kvm_intel" }, vfioPointersIntoLoadedModules: { steps: 9 } },
      doc: "without patch 1 no KVM module is pinned while VFIO holds the VM",
    },
    {
      when: { design: "3-vfio-module", modules: "two", era: "v6.7+" },
      violated: { noFault: { steps: 10, message: "rc->destroy -> kvm_destroy_vm -> kvm_arch_destroy_vm calls into unloaded module kvm_intel" }, vfioPointersIntoLoadedModules: { steps: 9 } },
      doc: "the module reference is vfio.ko's, so no KVM module is pinned",
    },
    {
      when: { design: "3-put-swapped", modules: "two", era: "v6.7+" },
      violated: { noFault: { steps: 11, message: "rc->destroy -> kvm_destroy_vm -> kvm_arch_destroy_vm calls into unloaded module kvm_intel" }, vfioPointersIntoLoadedModules: { steps: 11 } },
      doc: "module_put before the kvm put, and the vendor module is not pinned at all",
    },
  ],
});
