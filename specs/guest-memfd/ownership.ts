// guest_memfd ownership direction: who pins whom between struct kvm, the gmem file and
// the memslots bound to it. Brief design 6; seed 003_656a070350d9a7e0.txt (Ackerley Tng's
// proposal to flip the refcount), upstream virt/kvm/guest_memfd.c and kvm_main.c.
//
// Designs (`design`):
//   gmem-pins-kvm              6a, upstream: the gmem file holds kvm->users_count
//                              (__kvm_gmem_create: kvm_get_kvm; kvm_gmem_release: kvm_put_kvm);
//                              slot->gmem.file is uncounted; release clears it.
//   gmem-pins-kvm-unbind-skips-dying
//                              6a with kvm_gmem_unbind as it was before kvm-x86 commit
//                              ae431059e75d ("KVM: guest_memfd: Remove bindings on memslot
//                              deletion when gmem is dying"): unbind returns when
//                              get_file_active fails, leaving the binding to a memslot that
//                              is then freed (syzbot: KASAN slab-use-after-free in
//                              kvm_gmem_release).
//   memslot-pins-gmem          6b, seed 003: each bound memslot holds a counted gmem-file
//                              reference (the bind keeps its fget, unbind fputs); gmem->kvm
//                              is uncounted, set by the first binding, NULLed by the last
//                              unbind; nothing pins kvm but the VM file.
//   memslot-pins-gmem-phased   6b with kvm_destroy_vm split in two steps: kvm_arch_destroy_vm
//                              (MMU and vCPUs torn down) first, kvm_free_memslots (which
//                              unbinds, dropping the slots' gmem references) later. Its fault
//                              (a PUNCH_HOLE reaching kvm_mmu_unmap_gfn_range in between) is
//                              the model's assumption: the effect is arch-dependent and the
//                              seed's POC was not inspected.
//   both                       6c: both pins at once (a reference cycle).
//
// Actions (thread "vmm": the VMM's ioctls and closes; "vcpu": a guest fault; "task_work": the
// deferred __fput of a last close and what it runs):
//   CreateGmem         KVM_CREATE_GUEST_MEMFD -> virt/kvm/guest_memfd.c:__kvm_gmem_create
//   BindSlot(i)        KVM_SET_USER_MEMORY_REGION2 create: virt/kvm/kvm_main.c:
//                      kvm_set_memory_region -> guest_memfd.c:kvm_gmem_bind
//   DeleteSlot(i)      the same ioctl, delete: kvm_gmem_unbind, synchronize_srcu, kfree
//   Populate(i)        guest_memfd.c:kvm_gmem_get_pfn (CLASS(gmem_get_file) = get_file_active)
//   PunchHole          fallocate(PUNCH_HOLE) -> kvm_gmem_punch_hole -> __kvm_gmem_invalidate_begin
//   CloseGmem, CloseVm close_fd
//   ReleaseGmem        __fput -> guest_memfd.c:kvm_gmem_release (-> kvm_put_kvm -> kvm_destroy_vm)
//   ReleaseVm          __fput -> kvm_main.c:kvm_vm_release -> kvm_put_kvm -> kvm_destroy_vm
//   FreeMemslots       phased design only: the rest of kvm_destroy_vm after kvm_arch_destroy_vm
//                      (kvm_free_memslots -> kvm_gmem_unbind)
// A design is the upstream kernel with its own __kvm_gmem_create/kvm_gmem_release VM pin,
// kvm_gmem_bind and kvm_gmem_unbind (the table `designOf`). One VM, one gmem file, `slots`
// memslots, each created at most once (a re-created memslot is a new struct).
//
// Abstractions and why they are sound:
//  - Every ioctl is one atomic step. Memslot create/delete run under kvm->slots_lock and
//    delete waits for SRCU readers (synchronize_srcu_expedited) before freeing the slot;
//    kvm_gmem_release takes slots_lock too, and fallocate/bind hold the gmem invalidate
//    lock, as does unbind of a live file (a dying one is unbound under slots_lock alone,
//    guest_memfd.c:kvm_gmem_unbind): so these never overlap in a way that an interleaving of whole steps
//    misses. The one window that matters, the deferred __fput, is its own step
//    (ReleaseGmem / ReleaseVm). The lock order itself is checked in lock-order.ts.
//  - Guest faults (kvm_gmem_get_pfn, under kvm->srcu) are the step Populate; a vCPU fd is
//    represented by the VM fd (both pin the VM while open).
//  - In the phased design only the gap between arch teardown and kvm_free_memslots is
//    opened; the rest of kvm_destroy_vm is atomic since nothing else reaches gmem->kvm.
//  - kvm_gmem_invalidate_begin touches gmem->kvm only when the range has bindings, which
//    is how PunchHole is modelled.
import { z } from "zod";
import { action, defineSpec, range } from "../../checker/spec.ts";
import {
  closeFd, deferredFput, fdSchema, fget, fileSchema, fileUse, fput, getFileActive, installedFd, isDying, isLive, newFile, noFd, noFile,
} from "../kernel/file.ts";
import {
  gmemFileSchema, kvmGmemBindSlot, kvmGmemCreate, kvmGmemInvalidateBegin, kvmGmemReleaseBody, kvmGmemUnbind, kvmGmemUnbindSlot,
  memslotCreate, memslotFree, memslotSchema, noGmemFile, noMemslot,
} from "../kernel/guest-memfd.ts";
import { kvmDestroyStep, kvmDestroyVm, kvmIsDestroying, kvmIsFreed, kvmPut, kvmSchema, kvmVmFileRelease, newKvm, type KvmDestroyHooks } from "../kernel/kvm.ts";
import { slabUse } from "../kernel/slab.ts";
import { deferredReleases, freedOnceClosed } from "../kernel/lifetime.ts";

export const designs = [
  "gmem-pins-kvm",
  "gmem-pins-kvm-unbind-skips-dying",
  "memslot-pins-gmem",
  "memslot-pins-gmem-phased",
  "both",
] as const;
export type Design = (typeof designs)[number];

const params = z.object({
  design: z.enum(designs).default("gmem-pins-kvm"),
  slots: z.number().int().min(1).max(3).default(2),
});
type P = z.infer<typeof params>;

function stateSchema(p: P) {
  return z.object({
    vmFd: fdSchema(),
    vmFile: fileSchema({ maxCount: 1 }),
    /** kvm->users_count and how far kvm_destroy_vm got. */
    kvm: kvmSchema({ maxUsers: 2 }),
    gmemFd: fdSchema(),
    /** f_count: the fd, one per pinning memslot, one transient (get_file_active). */
    gmemFile: fileSchema({ maxCount: p.slots + 2 }),
    /** struct gmem_file: allocated with the file, freed by kvm_gmem_release. */
    gmem: gmemFileSchema(),
    /** pin: the memslot holds a counted reference on the gmem file (6b, 6c). */
    slot: z.array(memslotSchema().extend({ pin: z.boolean() })).length(p.slots),
  });
}
type S = z.infer<ReturnType<typeof stateSchema>>;

/** What a design changes in the kernel: the functions that take and drop the references. */
interface Kernel {
  /** __kvm_gmem_create takes kvm_get_kvm, kvm_gmem_release puts it. */
  pinKvm: boolean;
  /** kvm_gmem_bind for memslot i (after the memslot is made). */
  bind: (s: S, i: number) => void;
  /** kvm_gmem_unbind for memslot i (memslot delete, kvm_free_memslots). */
  unbind: (s: S, i: number) => void;
  /** kvm_destroy_vm stops after kvm_arch_destroy_vm; FreeMemslots runs the rest. */
  phased?: boolean;
}

/** Upstream kvm_gmem_bind: fget for the call only ("The file pins KVM, not the other way 'round"). */
const bindUpstream = (s: S, i: number) => {
  if (!fget(s.gmemFd, s.gmemFile)) return;
  kvmGmemBindSlot(s.slot[i]!, s.gmem);
  fput(s.gmemFile, "gmem file");
};
const unbindUpstream = (s: S, i: number) => kvmGmemUnbind(s.slot[i]!, s.gmem, s.gmemFile);
/** kvm_gmem_unbind before ae431059e75d: returns when get_file_active fails on a dying file. */
const unbindSkipsDying = (s: S, i: number) => {
  const sl = s.slot[i]!;
  if (!sl.file) return;
  fileUse(s.gmemFile, "slot->gmem.file", "kvm_gmem_unbind");
  if (!getFileActive(s.gmemFile)) return;
  kvmGmemUnbindSlot(sl, s.gmem);
  fput(s.gmemFile, "gmem file");
};
/** Seed 003's bind: the fget is kept by the memslot, and the first binding sets gmem->kvm. */
const bindPinned = (s: S, i: number) => {
  if (!fget(s.gmemFd, s.gmemFile)) return;
  s.slot[i]!.pin = true;
  s.gmem.kvm = true; // later bindings check it is this VM
  kvmGmemBindSlot(s.slot[i]!, s.gmem);
};
/** Seed 003's unbind: the memslot's own reference keeps the file live; the last unbind clears gmem->kvm (`clearKvm`). */
const unbindPinned = (clearKvm: boolean) => (s: S, i: number) => {
  const sl = s.slot[i]!;
  if (!sl.pin) return unbindUpstream(s, i);
  kvmGmemUnbindSlot(sl, s.gmem);
  if (clearKvm && !s.slot.some((o) => o.bound)) s.gmem.kvm = false;
  sl.pin = false;
  fput(s.gmemFile, "gmem file");
};

const upstream: Kernel = { pinKvm: true, bind: bindUpstream, unbind: unbindUpstream };
const seed003: Kernel = { pinKvm: false, bind: bindPinned, unbind: unbindPinned(true) };
const designOf: Record<Design, Kernel> = {
  "gmem-pins-kvm": upstream,
  "gmem-pins-kvm-unbind-skips-dying": { ...upstream, unbind: unbindSkipsDying },
  "memslot-pins-gmem": seed003,
  "memslot-pins-gmem-phased": { ...seed003, phased: true },
  both: { ...upstream, bind: bindPinned, unbind: unbindPinned(false) },
};

/** The VM fd and the gmem fd (once created) are closed. */
const allClosed = (s: S) => s.vmFd.state !== "installed" && s.gmemFd.state !== "installed";
/** struct kvm, the VM file, struct gmem_file and the gmem file are freed (or were never made). */
const allFreed = (s: S) =>
  kvmIsFreed(s.kvm) && s.vmFile.state === "freed" && s.gmem.state !== "live" && (s.gmemFile.state === "none" || s.gmemFile.state === "freed");

export default defineSpec({
  name: "guest-memfd/ownership",
  summary: "Who pins whom: struct kvm, the guest_memfd file, the memslots bound to it",
  source: "seed 003_656a070350d9a7e0.txt; virt/kvm/guest_memfd.c; kvm-x86 ae431059e75d",
  params,
  state: stateSchema,
  init: (p) => ({
    vmFd: installedFd(),
    vmFile: newFile(),
    kvm: newKvm(),
    gmemFd: noFd(),
    gmemFile: noFile(),
    gmem: noGmemFile(),
    slot: range(p.slots).map(() => ({ ...noMemslot(), pin: false })),
  }),
  actions: (p) => {
    const k = designOf[p.design];
    const hooks = (s: S): KvmDestroyHooks => ({
      // kvm_free_memslots: every memslot unbound and freed.
      freeMemslots: () =>
        s.slot.forEach((sl, i) => {
          if (sl.state !== "live") return;
          k.unbind(s, i);
          memslotFree(sl, "kvm_free_memslots");
        }),
    });
    const destroyVm = (s: S) => {
      if (k.phased) while (kvmDestroyStep(s.kvm, hooks(s)) !== "kvm_arch_destroy_vm");
      else kvmDestroyVm(s.kvm, hooks(s));
    };
    const vmm = { thread: "vmm" } as const;
    return {
      CreateGmem: {
        ...vmm,
        kernel: "kvm_vm_ioctl(KVM_CREATE_GUEST_MEMFD) -> __kvm_gmem_create",
        when: (s: S) => s.vmFd.state === "installed" && s.gmemFile.state === "none",
        then: (s: S) => kvmGmemCreate(s.gmemFile, s.gmem, s.gmemFd, k.pinKvm ? s.kvm : undefined),
      },
      BindSlot: action({
        ...vmm,
        kernel: "kvm_set_memory_region(KVM_MR_CREATE) -> kvm_gmem_bind",
        each: { i: range(p.slots) },
        when: (s: S, { i }) => s.vmFd.state === "installed" && s.gmemFd.state === "installed" && s.slot[i]!.state === "none",
        then: (s: S, { i }) => {
          memslotCreate(s.slot[i]!);
          k.bind(s, i);
        },
      }),
      DeleteSlot: action({
        ...vmm,
        kernel: "kvm_set_memory_region(KVM_MR_DELETE) -> kvm_gmem_unbind, synchronize_srcu, free",
        each: { i: range(p.slots) },
        when: (s: S, { i }) => s.vmFd.state === "installed" && s.slot[i]!.state === "live",
        then: (s: S, { i }) => {
          k.unbind(s, i);
          memslotFree(s.slot[i]!);
        },
      }),
      Populate: action({
        thread: "vcpu",
        kernel: "kvm_gmem_get_pfn (guest fault, under kvm->srcu): get_file_active(&slot->gmem.file)",
        each: { i: range(p.slots) },
        when: (s: S, { i }) => s.vmFd.state === "installed" && s.slot[i]!.state === "live" && s.slot[i]!.file,
        then: (s: S) => {
          fileUse(s.gmemFile, "slot->gmem.file", "kvm_gmem_get_pfn");
          if (!getFileActive(s.gmemFile)) return; // -EFAULT: file is dying
          slabUse(s.gmem, "struct gmem_file", "kvm_gmem_get_pfn");
          fput(s.gmemFile, "gmem file");
        },
      }),
      PunchHole: {
        ...vmm,
        kernel: "kvm_gmem_fallocate(PUNCH_HOLE) -> kvm_gmem_punch_hole -> kvm_gmem_invalidate_begin",
        when: (s: S) => s.gmemFd.state === "installed",
        then: (s: S) => kvmGmemInvalidateBegin(s.gmem, s.slot, s.kvm, "kvm_gmem_punch_hole"),
      },
      CloseGmem: {
        ...vmm,
        kernel: "close(gmem fd) -> fput",
        when: (s: S) => s.gmemFd.state === "installed",
        then: (s: S) => void closeFd(s.gmemFd, s.gmemFile, "gmem file"),
      },
      ReleaseGmem: {
        thread: "task_work",
        kernel: "__fput -> kvm_gmem_release (slots_lock, invalidate lock, clear slot->gmem.file, kvm_put_kvm)",
        when: (s: S) => isDying(s.gmemFile),
        then: (s: S) =>
          deferredFput(s.gmemFile, "gmem file", {
            release: () => {
              kvmGmemReleaseBody(s.gmem, s.slot, () => kvmGmemInvalidateBegin(s.gmem, s.slot, s.kvm, "kvm_gmem_release"));
              if (k.pinKvm && kvmPut(s.kvm)) destroyVm(s);
            },
          }),
      },
      CloseVm: {
        ...vmm,
        kernel: "close(VM fd) -> fput",
        when: (s: S) => s.vmFd.state === "installed",
        then: (s: S) => void closeFd(s.vmFd, s.vmFile, "VM file"),
      },
      ReleaseVm: {
        thread: "task_work",
        kernel: "__fput -> kvm_vm_release -> kvm_put_kvm -> kvm_destroy_vm",
        when: (s: S) => isDying(s.vmFile),
        then: (s: S) => {
          if (kvmVmFileRelease(s.kvm, s.vmFile)) destroyVm(s);
        },
      },
      // The second half of kvm_destroy_vm exists as a step only where destruction is phased.
      ...(k.phased
        ? {
            FreeMemslots: {
              thread: "task_work",
              kernel: "kvm_destroy_vm (after kvm_arch_destroy_vm) -> kvm_free_memslots -> kvm_gmem_unbind",
              when: (s: S) => kvmIsDestroying(s.kvm),
              then: (s: S) => kvmDestroyVm(s.kvm, hooks(s)),
            },
          }
        : {}),
    };
  },
  ownership: (p) => ({
    kvm: {
      doc: "kvm->users_count",
      count: (s: S) => s.kvm.users.count,
      live: (s: S) => !kvmIsFreed(s.kvm),
      // Each file's ->release puts its reference.
      holders: {
        vmFile: (s: S) => s.vmFile.state !== "freed",
        ...(designOf[p.design].pinKvm ? { gmemFile: (s: S) => isLive(s.gmemFile) || isDying(s.gmemFile) } : {}),
      },
    },
    gmemFile: {
      doc: "the gmem file's f_count",
      count: (s: S) => s.gmemFile.count,
      live: (s: S) => isLive(s.gmemFile),
      holders: { fd: (s: S) => s.gmemFd.state === "installed", memslots: (s: S) => s.slot.filter((sl) => sl.pin).length },
    },
  }),
  invariants: {
    noDanglingSlotFile: {
      doc: "a live memslot's gmem.file points at a file that is not freed",
      holds: (s) => s.slot.every((sl) => sl.state !== "live" || !sl.file || isLive(s.gmemFile) || isDying(s.gmemFile)),
    },
    noDanglingGmemKvm: {
      doc: "while struct gmem_file lives, gmem->kvm is NULL or points at a struct kvm not yet freed",
      holds: (s) => s.gmem.state !== "live" || !s.gmem.kvm || !kvmIsFreed(s.kvm),
    },
  },
  quiescent: {
    // Not implied by the ownership declarations: a reference cycle keeps every count held.
    noLeak: {
      doc: "every fd closed and every release run: struct kvm and the gmem file are freed",
      holds: allFreed,
    },
  },
  liveness: { freedOnceClosed: freedOnceClosed(allClosed, allFreed, "struct kvm and the gmem file") },
  fairness: deferredReleases(),
  reachable: (p) => ({
    vmOutlivesFd: {
      doc: "the VM fd is closed and released, yet struct kvm is still referenced (the 'false handle')",
      when: (s) => s.vmFile.state === "freed" && s.kvm.users.count > 0,
      expect: designOf[p.design].pinKvm ? ("reachable" as const) : ("unreachable" as const),
    },
  }),
  expected: [
    {
      when: { design: "gmem-pins-kvm-unbind-skips-dying" },
      violated: {
        noFault: { steps: 5, message: "slab-use-after-free in kvm_gmem_release" },
        // The release that faults is the one that would free the gmem file: the run stops there (not a quiescent state).
        freedOnceClosed: { steps: 6, message: "every step enabled there faults (ReleaseGmem)" },
      },
      doc: "unbind before ae431059e75d returns for a dying file, leaving a binding to a memslot that is then freed (syzbot)",
    },
    {
      when: { design: "memslot-pins-gmem-phased" },
      violated: { noFault: { steps: 5, message: "kvm_mmu_unmap_gfn_range through gmem->kvm after kvm_arch_destroy_vm" } },
      doc: "the model's assumption: a PUNCH_HOLE between kvm_arch_destroy_vm and kvm_free_memslots reaches a torn-down MMU",
    },
    {
      when: { design: "both" },
      violated: { noLeak: { steps: 5 }, freedOnceClosed: { steps: 5, message: "the run stops at step 5 (no action can run)" } },
      doc: "both pins at once form a reference cycle: nothing is freed once the fds are closed",
    },
  ],
});
