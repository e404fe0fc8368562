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
// Actions (kernel functions in each action's `kernel:`): CreateGmem (KVM_CREATE_GUEST_MEMFD),
// BindSlot/DeleteSlot (KVM_SET_USER_MEMORY_REGION2 create/delete: kvm_gmem_bind/unbind),
// Populate (kvm_gmem_get_pfn), PunchHole (fallocate PUNCH_HOLE), CloseGmem/CloseVm (close),
// ReleaseGmem/ReleaseVm (the deferred __fput: kvm_gmem_release, kvm_vm_release), and in the
// phased design FreeMemslots (the second half of kvm_destroy_vm). One VM, one gmem file,
// `slots` memslots, each created at most once (a re-created memslot is a new struct).
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
import { action, defineSpec, Fault, range } from "../../checker/spec.ts";
import {
  createFile, fileSchema, fput, freeFile, getFile, getFileActive, isDying, isLive, noFile, newFile,
} from "../kernel/file.ts";
import { kvmGetKvm, kvmPutKvm } from "../kernel/kvm.ts";
import { refcountSchema } from "../kernel/refcount.ts";

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

/** What a design pins, derived once per run. */
function shape(d: Design) {
  return {
    gmemPinsKvm: d === "gmem-pins-kvm" || d === "gmem-pins-kvm-unbind-skips-dying" || d === "both",
    slotPinsGmem: d === "memslot-pins-gmem" || d === "memslot-pins-gmem-phased" || d === "both",
    unbindSkipsDying: d === "gmem-pins-kvm-unbind-skips-dying",
    phasedDestroy: d === "memslot-pins-gmem-phased",
  };
}

const slotStates = ["none", "live", "freed"] as const;

function stateSchema(p: P) {
  return z.object({
    vmFd: z.boolean(),
    vmFile: fileSchema({ maxCount: 1 }),
    /** kvm->users_count and how far kvm_destroy_vm got. */
    kvm: z.object({
      users: refcountSchema(2),
      phase: z.enum(["alive", "archDestroyed", "freed"]),
    }),
    gmemFd: z.boolean(),
    /** f_count: the fd, one per pinning memslot, one transient (get_file_active). */
    gmemFile: fileSchema({ maxCount: p.slots + 2 }),
    /** struct kvm_gmem: allocated with the file, freed by kvm_gmem_release. */
    gmem: z.object({ alive: z.boolean(), kvm: z.boolean() }),
    slot: z
      .array(
        z.object({
          state: z.enum(slotStates),
          /** slot->gmem.file is non-NULL. */
          file: z.boolean(),
          /** The memslot holds a counted reference on the gmem file (6b, 6c). */
          pin: z.boolean(),
          /** gmem->bindings has an entry pointing at this memslot. */
          bound: z.boolean(),
        }),
      )
      .length(p.slots),
  });
}
type S = z.infer<ReturnType<typeof stateSchema>>;

export default defineSpec({
  name: "guest-memfd/ownership",
  summary: "Who pins whom: struct kvm, the guest_memfd file, the memslots bound to it",
  source: "seed 003_656a070350d9a7e0.txt; virt/kvm/guest_memfd.c; kvm-x86 ae431059e75d",
  params,
  state: stateSchema,
  init: (p) => ({
    vmFd: true,
    vmFile: newFile(),
    kvm: { users: { count: 1 }, phase: "alive" as const },
    gmemFd: false,
    gmemFile: noFile(),
    gmem: { alive: false, kvm: false },
    slot: range(p.slots).map(() => ({ state: "none" as const, file: false, pin: false, bound: false })),
  }),
  actions: (p) => {
    const d = shape(p.design);

    /** kvm_gmem_invalidate_begin: reaches the MMU through gmem->kvm when bindings exist. */
    const invalidate = (s: S, who: string) => {
      if (!s.slot.some((sl) => sl.bound)) return;
      // KVM_MMU_LOCK(kvm) on NULL would oops; the text is the model's.
      if (!s.gmem.kvm) throw new Fault(`model: ${who}: NULL gmem->kvm with live bindings (a NULL dereference in KVM_MMU_LOCK)`);
      if (s.kvm.phase === "freed") throw new Fault(`BUG: KASAN: slab-use-after-free in ${who}: gmem->kvm points at a freed struct kvm`);
      if (s.kvm.phase === "archDestroyed") {
        // Asserted, not derived (domain review U9): what an unmap after kvm_arch_destroy_vm
        // does is arch-dependent; the model treats reaching it as the fault.
        throw new Fault(
          `model's assumption: ${who}: kvm_mmu_unmap_gfn_range through gmem->kvm after kvm_arch_destroy_vm ` +
            "(a suspicious ordering, not an observed kernel failure)",
        );
      }
    };

    /** kvm_gmem_unbind for memslot i (slot deletion or kvm_free_memslots). */
    const unbind = (s: S, i: number) => {
      const sl = s.slot[i]!;
      if (sl.pin) {
        // 6b/6c: the slot's own reference keeps the file live; no get_file_active needed.
        sl.bound = false;
        sl.file = false;
        if (!s.slot.some((o) => o.bound)) {
          if (!d.gmemPinsKvm) s.gmem.kvm = false;
        }
        sl.pin = false;
        fput(s.gmemFile, "gmem file");
        return;
      }
      if (!sl.file) return; // release already cleared it
      if (s.gmemFile.state === "freed") throw new Fault("model: kvm_gmem_unbind on slot->gmem.file after it was freed (the kernel would reuse the slab object; KASAN reports it only with CONFIG_SLUB_RCU_DEBUG)");
      if (getFileActive(s.gmemFile)) {
        sl.bound = false;
        sl.file = false;
        fput(s.gmemFile, "gmem file");
      } else if (!d.unbindSkipsDying) {
        // Dying file: release has not run and cannot until slots_lock is dropped.
        if (!s.gmem.alive) throw new Fault("BUG: KASAN: slab-use-after-free in kvm_gmem_unbind: struct gmem_file freed");
        sl.bound = false;
        sl.file = false;
      }
    };

    /** kvm_free_memslots: every memslot unbound and freed, then struct kvm freed. */
    const freeMemslots = (s: S) => {
      for (let i = 0; i < p.slots; i++) {
        if (s.slot[i]!.state !== "live") continue;
        unbind(s, i);
        s.slot[i]!.state = "freed";
      }
      s.kvm.phase = "freed";
    };

    /** kvm_destroy_vm after the last kvm_put_kvm. */
    const destroyVm = (s: S) => {
      if (d.phasedDestroy) s.kvm.phase = "archDestroyed";
      else freeMemslots(s);
    };

    return {
      CreateGmem: {
        kernel: "kvm_vm_ioctl(KVM_CREATE_GUEST_MEMFD) -> __kvm_gmem_create",
        when: (s: S) => s.vmFd && s.gmemFile.state === "none",
        then: (s: S) => {
          createFile(s.gmemFile, "gmem file");
          s.gmemFd = true;
          s.gmem.alive = true;
          if (d.gmemPinsKvm) {
            kvmGetKvm(s.kvm.users);
            s.gmem.kvm = true;
          }
        },
      },
      BindSlot: action({
        kernel: "kvm_set_memory_region(KVM_MR_CREATE) -> kvm_gmem_bind",
        each: { i: range(p.slots) },
        when: (s: S, { i }) => s.vmFd && s.gmemFd && s.slot[i]!.state === "none",
        then: (s: S, { i }) => {
          const sl = s.slot[i]!;
          sl.state = "live";
          if (d.slotPinsGmem) {
            getFile(s.gmemFile, "gmem file"); // the fget of the fd, kept
            sl.pin = true;
            s.gmem.kvm = true; // first binding sets it; later ones check it is this VM
          }
          sl.file = true;
          sl.bound = true;
        },
      }),
      DeleteSlot: action({
        kernel: "kvm_set_memory_region(KVM_MR_DELETE) -> kvm_gmem_unbind, synchronize_srcu, free",
        each: { i: range(p.slots) },
        when: (s: S, { i }) => s.vmFd && s.slot[i]!.state === "live",
        then: (s: S, { i }) => {
          unbind(s, i);
          s.slot[i]!.state = "freed";
        },
      }),
      Populate: action({
        kernel: "kvm_gmem_get_pfn (guest fault, under kvm->srcu): get_file_active(&slot->gmem.file)",
        each: { i: range(p.slots) },
        when: (s: S, { i }) => s.vmFd && s.slot[i]!.state === "live" && s.slot[i]!.file,
        then: (s: S) => {
          if (s.gmemFile.state === "freed") throw new Fault("model: kvm_gmem_get_pfn on slot->gmem.file after it was freed (the kernel would reuse the slab object; KASAN reports it only with CONFIG_SLUB_RCU_DEBUG)");
          if (!getFileActive(s.gmemFile)) return; // -EFAULT: file is dying
          if (!s.gmem.alive) throw new Fault("BUG: KASAN: slab-use-after-free in kvm_gmem_get_pfn: struct gmem_file freed");
          fput(s.gmemFile, "gmem file");
        },
      }),
      PunchHole: {
        kernel: "kvm_gmem_fallocate(PUNCH_HOLE) -> kvm_gmem_punch_hole -> kvm_gmem_invalidate_begin",
        when: (s: S) => s.gmemFd,
        then: (s: S) => invalidate(s, "kvm_gmem_punch_hole"),
      },
      CloseGmem: {
        kernel: "close(gmem fd) -> fput",
        when: (s: S) => s.gmemFd,
        then: (s: S) => {
          s.gmemFd = false;
          fput(s.gmemFile, "gmem file");
        },
      },
      ReleaseGmem: {
        kernel: "__fput -> kvm_gmem_release (slots_lock, invalidate lock, clear slot->gmem.file, kvm_put_kvm)",
        when: (s: S) => isDying(s.gmemFile),
        then: (s: S) => {
          for (const sl of s.slot) {
            if (!sl.bound) continue;
            if (sl.state === "freed") {
              throw new Fault("BUG: KASAN: slab-use-after-free in kvm_gmem_release: write to slot->gmem.file of a freed memslot");
            }
          }
          invalidate(s, "kvm_gmem_release");
          for (const sl of s.slot) {
            if (!sl.bound) continue;
            sl.file = false;
            sl.bound = false;
          }
          s.gmem.alive = false;
          s.gmem.kvm = false;
          freeFile(s.gmemFile, "gmem file");
          if (d.gmemPinsKvm && kvmPutKvm(s.kvm.users)) destroyVm(s);
        },
      },
      CloseVm: {
        kernel: "close(VM fd) -> fput",
        when: (s: S) => s.vmFd,
        then: (s: S) => {
          s.vmFd = false;
          fput(s.vmFile, "VM file");
        },
      },
      ReleaseVm: {
        kernel: "__fput -> kvm_vm_release -> kvm_put_kvm -> kvm_destroy_vm",
        when: (s: S) => isDying(s.vmFile),
        then: (s: S) => {
          freeFile(s.vmFile, "VM file");
          if (kvmPutKvm(s.kvm.users)) destroyVm(s);
        },
      },
      // The second half of kvm_destroy_vm exists as a step only where destruction is phased.
      ...(d.phasedDestroy
        ? {
            FreeMemslots: {
              kernel: "kvm_destroy_vm (after kvm_arch_destroy_vm) -> kvm_free_memslots -> kvm_gmem_unbind",
              when: (s: S) => s.kvm.phase === "archDestroyed",
              then: (s: S) => freeMemslots(s),
            },
          }
        : {}),
    };
  },
  invariants: {
    noDanglingSlotFile: {
      doc: "a live memslot's gmem.file points at a file that is not freed",
      holds: (s) => s.slot.every((sl) => sl.state !== "live" || !sl.file || isLive(s.gmemFile) || isDying(s.gmemFile)),
    },
    noDanglingGmemKvm: {
      doc: "while struct kvm_gmem lives, gmem->kvm is NULL or points at a struct kvm not yet freed",
      holds: (s) => !s.gmem.alive || !s.gmem.kvm || s.kvm.phase !== "freed",
    },
  },
  quiescent: {
    noLeak: {
      doc: "every fd closed and every release run: struct kvm and the gmem file are freed",
      holds: (s) =>
        s.kvm.phase === "freed" && s.vmFile.state === "freed" && !s.gmem.alive &&
        (s.gmemFile.state === "none" || s.gmemFile.state === "freed"),
    },
  },
  reachable: (p) => ({
    vmOutlivesFd: {
      doc: "the VM fd is closed and released, yet struct kvm is still referenced (the 'false handle')",
      when: (s) => s.vmFile.state === "freed" && s.kvm.users.count > 0,
      expect: shape(p.design).gmemPinsKvm ? ("reachable" as const) : ("unreachable" as const),
    },
  }),
  expected: [
    {
      when: { design: "gmem-pins-kvm-unbind-skips-dying" },
      violated: { noFault: { steps: 5, message: "slab-use-after-free in kvm_gmem_release" } },
      doc: "unbind before ae431059e75d returns for a dying file, leaving a binding to a memslot that is then freed (syzbot)",
    },
    {
      when: { design: "memslot-pins-gmem-phased" },
      violated: { noFault: { steps: 5, message: "kvm_mmu_unmap_gfn_range through gmem->kvm after kvm_arch_destroy_vm" } },
      doc: "the model's assumption: a PUNCH_HOLE between kvm_arch_destroy_vm and kvm_free_memslots reaches a torn-down MMU",
    },
    {
      when: { design: "both" },
      violated: { noLeak: { steps: 5 } },
      doc: "both pins at once form a reference cycle: nothing is freed once the fds are closed",
    },
  ],
});
