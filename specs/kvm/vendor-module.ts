// kvm/vendor-module: KVM's own holders of kvm->users_count and the modules their files pin.
// Does the vendor-module hole that kvm-vfio/vm-pinning shows for VFIO (designs 1 and 3 with
// kvm.ko plus kvm_intel) exist without VFIO?
//
// Kernel text read (x86, kvm.ko + kvm_intel.ko; kvm_amd is the same):
//   - virt/kvm/kvm_main.c, a v6.12-era text (kvm_vm_stats_fops, kvm_vm_ioctl_get_stats_fd,
//     kvm_debugfs_open/kvm_debugfs_release, stat_fops_per_vm) and the diff of 087e15206d6a
//     ("KVM: Set file_operations.owner appropriately for all such structures", v6.7-rc4):
//     kvm_init(..., module) sets kvm_chardev_ops, kvm_vm_fops, kvm_vcpu_fops and
//     kvm_device_fops .owner = module, the vendor module on x86 (vmx_init/svm_init pass
//     THIS_MODULE); kvm_vm_stats_fops and kvm_vcpu_stats_fops get .owner = THIS_MODULE, i.e.
//     kvm.ko. stat_fops_per_vm (per-VM debugfs) has .owner = THIS_MODULE (kvm.ko) in every
//     text read, back to the v5.3-era file.
//   - kvm_vm_ioctl_get_stats_fd / kvm_vcpu_ioctl_get_stats_fd: kvm_get_kvm; the stats fds'
//     ->release (kvm_vm_stats_release / kvm_vcpu_stats_release) calls kvm_put_kvm.
//     kvm_debugfs_open: kvm_get_kvm_safe; kvm_debugfs_release: kvm_put_kvm.
//   - kvm_vm_ioctl_create_vcpu: kvm_get_kvm for the vCPU fd; kvm_vcpu_release: kvm_put_kvm.
//   - kvm_destroy_vm -> kvm_arch_destroy_vm (arch/x86/kvm/x86.c) -> kvm_destroy_vcpus and
//     kvm_x86_call(vm_destroy): static calls into the vendor module's text.
//   - 5f6de5cbebee ("KVM: Prevent module exit until all VMs are freed", v5.18): kvm_create_vm
//     takes __module_get(kvm_chardev_ops.owner), kvm_destroy_vm ends with
//     module_put(kvm_chardev_ops.owner); 70375c2d8fa3 (v5.18) removed .owner from kvm_vm_fops
//     and kvm_vcpu_fops. ea61294befd3 (v6.7-rc4) reverted 5f6de5cbebee because code of
//     kvm.ko keeps running after that module_put (Al Viro, 20231010003746.GN800259@ZenIV).
//   - kernel/module/main.c: delete_module refuses while the module's count is not zero or a
//     loaded module depends on it (kvm_intel depends on kvm). __fput calls ->release, then
//     fops_put (module_put of f_op->owner): a file pins its owner until its release returned.
//
// Designs (`design`):
//   v6.7+            the kernel since 087e15206d6a and ea61294befd3: VM and vCPU files pin the
//                    vendor module, stats files and debugfs files pin kvm.ko, struct kvm
//                    pins no module.
//   v5.18-v6.6       5f6de5cbebee + 70375c2d8fa3: struct kvm pins the vendor module from
//                    kvm_create_vm to the end of kvm_destroy_vm; VM, vCPU and stats fops have
//                    no owner; debugfs pins kvm.ko.
//   fix-vendor-fops  the model's candidate, not a posted patch: as v6.7+, with the stats and
//                    per-VM debugfs fops owned by the vendor module (set in kvm_init like the
//                    other four).
//   fix-per-vm-pin   the model's candidate, not a posted patch: as v6.7+ (owners unchanged),
//                    plus 5f6de5cbebee's per-VM __module_get/module_put of the vendor module.
//
// Actions (thread "vmm" is the VMM's syscalls and their task_work, "rmmod" is root's):
//   CloseDevKvm       close(/dev/kvm): fs/file.c:close_fd, fs/file_table.c:__fput ->
//                     fops_put(kvm_chardev_ops.owner)
//   Close(h)          close of holder h's fd (VM, vCPU, VM stats, debugfs stat file): close_fd
//                     and its deferred __fput: ->release (virt/kvm/kvm_main.c: kvm_vm_release,
//                     kvm_vcpu_release, kvm_vm_stats_release, kvm_debugfs_release) ->
//                     kvm_put_kvm; on the last put kvm_destroy_vm runs here (kvm.ko and vendor
//                     code; the per-VM module_put where a design has it). Otherwise fops_put
//                     and file_free follow.
//   ReturnFromDestroy after the last put: kvm_destroy_vm returns into the ->release function
//                     (kvm.ko text), then __fput's fops_put and file_free.
//   Rmmod(m)          kernel/module/main.c:delete_module(kvm_intel | kvm).
// Ownership (checked, not hand-written): users_count is held by the four fds; each module by
// the files whose f_op it owns (and, on v5.18-v6.6 and fix-per-vm-pin, by struct kvm).
//
// Abstracted away, and why that is sound:
//   - close and the deferred __fput of a holder are one step: nothing else references these
//     files, and until fops_put the file still pins its owner, so no unload fits between.
//     The one window that matters, the return into kvm.ko after kvm_destroy_vm, is its own step.
//   - The vCPU stats fd has the same owner, get and put as the VM stats fd (087e15206d6a,
//     kvm_vcpu_stats_release): one stats holder stands for both.
//   - The partial teardown of kvm_x86_vendor_exit/kvm_exit (hardware_unsetup, cache
//     destruction) is folded into "gone": any later call into vendor text is the fault.
//   - Only one holder's release runs at a time; two concurrent releases change no count here.
import { z } from "zod";
import { action, defineSpec } from "../../checker/spec.ts";
import { closeFd, deferredFput, fdSchema, fileSchema, fputAfterRelease, installedFd, newFile, type File } from "../kernel/file.ts";
import { kvmDestroyVm, kvmIsFreed, kvmPut, kvmSchema, newKvm } from "../kernel/kvm.ts";
import { canUnload, leaveModule, loadedModule, moduleSchema, runModuleCode, unloadModule } from "../kernel/module.ts";
import { freedOnceClosed } from "../kernel/lifetime.ts";

export const designs = ["v6.7+", "v5.18-v6.6", "fix-vendor-fops", "fix-per-vm-pin"] as const;
export type Design = (typeof designs)[number];

/** The fds that hold users_count, with the kernel function each one's ->release is. */
export const holders = ["vm", "vcpu", "stats", "debugfs"] as const;
type Holder = (typeof holders)[number];
const releaseFn: Record<Holder, string> = {
  vm: "kvm_vm_release",
  vcpu: "kvm_vcpu_release",
  stats: "kvm_vm_stats_release",
  debugfs: "kvm_debugfs_release",
};

type Owner = "vendor" | "kvm" | "none";
/** f_op->owner of each holder's file, per design. */
function ownerOf(d: Design, h: Holder): Owner {
  if (h === "debugfs") return d === "fix-vendor-fops" ? "vendor" : "kvm";
  if (d === "v5.18-v6.6") return "none";
  if (h === "stats") return d === "fix-vendor-fops" ? "vendor" : "kvm";
  return "vendor";
}
const perVmPin = (d: Design) => d === "v5.18-v6.6" || d === "fix-per-vm-pin";

const params = z.object({ design: z.enum(designs).default("v6.7+") });
type Params = z.infer<typeof params>;

const holderSchema = z.object({ fd: fdSchema(), file: fileSchema({ maxCount: 1 }) });
const stateSchema = z.object({
  devKvm: holderSchema,
  h: z.object({ vm: holderSchema, vcpu: holderSchema, stats: holderSchema, debugfs: holderSchema }),
  kvm: kvmSchema({ maxUsers: holders.length }),
  /** The holder whose release ran kvm_destroy_vm and has not returned yet. */
  returning: z.enum(["none", ...holders]),
  /** kvm.ko and kvm_intel. */
  kvmMod: moduleSchema(4),
  vendor: moduleSchema(6),
});
type S = z.infer<typeof stateSchema>;

/** The file still pins its f_op->owner: fops_put has not run. */
const pinsOwner = (f: File) => f.state === "live" || f.state === "dying";

/** Every fd closed: /dev/kvm's and each holder's. */
const allClosed = (s: S) => s.devKvm.fd.state !== "installed" && holders.every((h) => s.h[h].fd.state !== "installed");
/** struct kvm and every file freed, each module's count back at 0 (an unload stays root's choice). */
const allFreed = (s: S) =>
  kvmIsFreed(s.kvm) && s.devKvm.file.state === "freed" && holders.every((h) => s.h[h].file.state === "freed") &&
  [s.kvmMod, s.vendor].every((m) => m.state === "gone" || m.refs === 0);

export default defineSpec({
  name: "kvm/vendor-module",
  summary: "KVM's own users_count holders (VM, vCPU, stats, debugfs files) and the modules they pin",
  source: "087e15206d6a, ea61294befd3, 5f6de5cbebee; virt/kvm/kvm_main.c; review section 3a",
  params,
  state: () => stateSchema,
  init: (p: Params) => {
    const kvmRefs = holders.filter((h) => ownerOf(p.design, h) === "kvm").length;
    const vendorRefs = 1 + holders.filter((h) => ownerOf(p.design, h) === "vendor").length + (perVmPin(p.design) ? 1 : 0);
    const holder = () => ({ fd: installedFd(), file: newFile() });
    return {
      devKvm: holder(),
      h: { vm: holder(), vcpu: holder(), stats: holder(), debugfs: holder() },
      kvm: { ...newKvm(), users: { count: holders.length } },
      returning: "none" as const,
      kvmMod: { ...loadedModule(), refs: kvmRefs },
      vendor: { ...loadedModule(), refs: vendorRefs },
    };
  },
  actions: (p: Params) => {
    const d = p.design;
    /** f_op->owner of holder h's file, for __fput's fops_put. */
    const owner = (s: S, h: Holder) => {
      const o = ownerOf(d, h);
      return o === "none" ? {} : o === "kvm" ? { owner: s.kvmMod, ownerName: "kvm" } : { owner: s.vendor, ownerName: "kvm_intel" };
    };
    /** h's ->release (kvm.ko text): kvm_put_kvm, and on the last put kvm_destroy_vm. True on the last put. */
    const release = (s: S, h: Holder): boolean => {
      runModuleCode(s.kvmMod, "kvm", releaseFn[h]);
      if (!kvmPut(s.kvm)) return false;
      runModuleCode(s.kvmMod, "kvm", `${releaseFn[h]} -> kvm_put_kvm -> kvm_destroy_vm`);
      kvmDestroyVm(s.kvm, {
        archDestroy: () => runModuleCode(s.vendor, "kvm_intel", `${releaseFn[h]} -> kvm_destroy_vm -> kvm_arch_destroy_vm`),
        // module_put(kvm_chardev_ops.owner), the last statement of kvm_destroy_vm (5f6de5cbebee).
        vendorPin: perVmPin(d) ? { module: s.vendor, name: "kvm_intel" } : undefined,
      });
      return true;
    };
    return {
      CloseDevKvm: {
        kernel: "close(/dev/kvm) -> __fput -> fops_put(kvm_chardev_ops.owner)",
        thread: "vmm",
        when: (s: S) => s.devKvm.fd.state === "installed",
        then: (s: S) => {
          if (closeFd(s.devKvm.fd, s.devKvm.file, "/dev/kvm file") === "last") {
            deferredFput(s.devKvm.file, "/dev/kvm file", { owner: s.vendor, ownerName: "kvm_intel" });
          }
        },
      },
      Close: action({
        kernel: "close(fd) -> fput -> __fput -> ->release -> kvm_put_kvm (-> kvm_destroy_vm)",
        thread: "vmm",
        each: { h: holders },
        when: (s: S, { h }) => s.h[h].fd.state === "installed" && s.returning === "none",
        then: (s: S, { h }) => {
          if (closeFd(s.h[h].fd, s.h[h].file, `${h} file`) !== "last") return;
          if (release(s, h)) s.returning = h; // the return into ->release is the next step
          else fputAfterRelease(s.h[h].file, `${h} file`, owner(s, h));
        },
      }),
      ReturnFromDestroy: {
        kernel: "kvm_destroy_vm returns into the ->release function (kvm.ko); __fput: fops_put, file_free",
        thread: "vmm",
        when: (s: S) => s.returning !== "none",
        then: (s: S) => {
          const h = s.returning as Holder;
          leaveModule(s.kvmMod, "kvm", `kvm_destroy_vm (called by ${releaseFn[h]})`);
          fputAfterRelease(s.h[h].file, `${h} file`, owner(s, h));
          s.returning = "none";
        },
      },
      Rmmod: action({
        kernel: "delete_module",
        thread: "rmmod",
        each: { m: ["kvm_intel", "kvm"] },
        when: (s: S, { m }) => (m === "kvm" ? canUnload(s.kvmMod, [s.vendor]) : canUnload(s.vendor)),
        then: (s: S, { m }) => unloadModule(m === "kvm" ? s.kvmMod : s.vendor),
      }),
    };
  },
  ownership: (p: Params) => {
    const owned = (o: Owner) =>
      Object.fromEntries(holders.filter((h) => ownerOf(p.design, h) === o).map((h) => [`${h}File`, (s: S) => pinsOwner(s.h[h].file)]));
    return {
      kvm: {
        doc: "kvm->users_count",
        count: (s: S) => s.kvm.users.count,
        live: (s: S) => !kvmIsFreed(s.kvm),
        holders: Object.fromEntries(holders.map((h) => [`${h}Fd`, (s: S) => s.h[h].fd.state === "installed"])),
      },
      vendor: {
        doc: "kvm_intel's module refcount",
        count: (s: S) => s.vendor.refs,
        live: (s: S) => s.vendor.state !== "gone",
        holders: {
          devKvmFile: (s: S) => pinsOwner(s.devKvm.file),
          ...owned("vendor"),
          // kvm_create_vm's __module_get, put at the end of kvm_destroy_vm.
          ...(perVmPin(p.design) ? { vm: (s: S) => s.kvm.phase !== "module_put" } : {}),
        },
      },
      // fix-vendor-fops leaves kvm.ko no file to own.
      ...(holders.some((h) => ownerOf(p.design, h) === "kvm")
        ? { kvmModule: { doc: "kvm.ko's module refcount", count: (s: S) => s.kvmMod.refs, live: (s: S) => s.kvmMod.state !== "gone", holders: owned("kvm") } }
        : {}),
    };
  },
  liveness: { freedOnceClosed: freedOnceClosed(allClosed, allFreed, "kvm and every file (module counts back at 0)") },
  // The deferred __fput runs in the closing task here (close and release are one step; the
  // return from kvm_destroy_vm is the vmm thread's next step): a close that began goes on.
  // On v6.7+ the fault is inside a Close, which then never completes: "every fd closed"
  // never holds on that run, so only noFault reports it.
  fairness: { weak: [{ thread: "vmm" }] },
  reachable: (p: Params) => ({
    vendorGoneWhileVmLives: {
      doc: "kvm_intel is unloaded while struct kvm is alive, held only by kvm.ko-owned files",
      when: (s: S) => s.vendor.state === "gone" && !kvmIsFreed(s.kvm),
      expect: p.design === "v6.7+" ? ("reachable" as const) : ("unreachable" as const),
    },
  }),
  expected: [
    {
      when: { design: "v6.7+" },
      violated: { noFault: { steps: 6, message: "kvm_debugfs_release -> kvm_destroy_vm -> kvm_arch_destroy_vm calls into unloaded module kvm_intel" } },
      doc: "debugfs files pin kvm.ko only, and struct kvm pins no module: the last put runs vendor code after kvm_intel unloaded",
    },
    {
      when: { design: "v5.18-v6.6" },
      violated: {
        noFault: { steps: 8, message: "kvm_destroy_vm (called by kvm_vm_stats_release) returns into kvm's text, freed by delete_module" },
        // The faulting return never completes __fput: the run stops with the file unfreed (not a quiescent state).
        freedOnceClosed: { steps: 7, message: "every step enabled there faults (ReturnFromDestroy)" },
      },
      doc: "VM and stats fops have no owner: the stats file's release returns into kvm.ko, which nothing pins once kvm_destroy_vm's module_put lets the modules unload",
    },
  ],
});
