// guest_memfd (design 6a, the gmem file pins the VM): lock order between the gmem file's
// release and memslot updates. Brief design 6a "variant with the lock order in the seed-003
// RFC text"; seed 003_656a070350d9a7e0.txt quotes kvm_gmem_release from the 2023 RFC (v11),
// which takes filemap_invalidate_lock before kvm->slots_lock; memslot updates take
// slots_lock first (kvm_set_memory_region) and the invalidate lock inside
// kvm_gmem_bind/kvm_gmem_unbind.
//
// Designs (`design`):
//   slots-lock-first            upstream kvm_gmem_release order (slots_lock, then the
//                               invalidate lock) with kvm_gmem_unbind as in current trees
//                               (virt/kvm/guest_memfd.c:kvm_gmem_unbind, since kvm-x86
//                               ae431059e75d): a live file is pinned by CLASS(gmem_get_file)
//                               and unbound under the invalidate lock; a dying file is
//                               unbound without that lock, under slots_lock alone, which
//                               kvm_gmem_release must take before it frees anything.
//   invalidate-lock-first       the RFC v11 code as a whole: release takes the invalidate
//                               lock first, and unbind skips a dying file (get_file_rcu fails).
//   invalidate-lock-first-current-unbind
//                               the RFC release order combined with today's unbind. It holds:
//                               unbind locks the invalidate lock only under a file reference,
//                               when release cannot run. No order proposed in seed 003
//                               deadlocks on one file; lockdep, which keys the invalidate
//                               lock per filesystem type, still reports the RFC order
//                               against unbind's and bind's: `locks` below gives the two
//                               lock classes, and lockOrder is violated (a possible circular
//                               locking dependency) although noDeadlock holds.
//
// Threads (the spec's `threads`: labelled steps, locks by class; pc and lock guards are
// generated), each a kernel call split at its lock acquisitions:
//   memslotDelete (tid 1)  virt/kvm/kvm_main.c:kvm_set_memory_region(KVM_MR_DELETE) of slot 0:
//                          slots_lock, guest_memfd.c:kvm_gmem_unbind (live file: reference +
//                          invalidate lock; dying file: neither), clear binding, free slot.
//   gmemRelease (tid 2)    __fput -> guest_memfd.c:kvm_gmem_release, once the file is dying.
//   memslotCreate (tid 3)  kvm_set_memory_region(KVM_MR_CREATE) of slot 1: slots_lock,
//                          guest_memfd.c:kvm_gmem_bind (fget, invalidate lock, bind, fput).
// And the action CloseGmem (thread "vmm": close_fd of the gmem fd).
//
// Abstractions: the VM stays open throughout (the gmem file pins it; closing the VM only
// adds states irrelevant to these two locks). Steps between lock operations are atomic:
// they touch only state the held locks protect. kvm_gmem_release's synchronize_rcu and
// SPTE zap are folded into its body step; they take no lock of this model.
import { z } from "zod";
import { defineSpec } from "../../checker/spec.ts";
import { closeFd, fdSchema, fget, fileSchema, fput, freeFile, getFileActive, installedFd, isDying, isLive, newFile } from "../kernel/file.ts";
import {
  gmemFileSchema, kvmGmemBindSlot, kvmGmemReleaseBody, kvmGmemUnbindSlot, memslotCreate, memslotFree, memslotSchema, noMemslot,
} from "../kernel/guest-memfd.ts";
import { lockSchema, unlocked } from "../kernel/lock.ts";
import { threadSchema } from "../kernel/thread.ts";
import { freedOnceClosed } from "../kernel/lifetime.ts";

export const designs = ["slots-lock-first", "invalidate-lock-first", "invalidate-lock-first-current-unbind"] as const;

const params = z.object({ design: z.enum(designs).default("slots-lock-first") });

const stateSchema = z.object({
  gmemFd: fdSchema(),
  gmemFile: fileSchema({ maxCount: 3 }),
  /** struct gmem_file (bindings xarray). */
  gmem: gmemFileSchema(),
  slot: z.array(memslotSchema()).length(2),
  slotsLock: lockSchema(3),
  /** The gmem inode's mapping->invalidate_lock. */
  invalidateLock: lockSchema(3),
  /** unbindLocked: the live-file path (a reference and the invalidate lock); unbind: the dying-file path. */
  del: threadSchema(["lockInvalidate", "unbindLocked", "unbind", "finish"]),
  rel: threadSchema(["second", "body"]),
  bind: threadSchema(["lockInvalidate", "body"]),
});
type S = z.infer<typeof stateSchema>;

export default defineSpec({
  name: "guest-memfd/lock-order",
  summary: "kvm_gmem_release vs memslot create/delete: slots_lock and the gmem invalidate lock",
  source: "seed 003_656a070350d9a7e0.txt (RFC v11 kvm_gmem_release); virt/kvm/guest_memfd.c; kvm-x86 ae431059e75d",
  params,
  state: () => stateSchema,
  init: () => ({
    gmemFd: installedFd(),
    gmemFile: newFile(),
    gmem: { state: "live" as const, kvm: true },
    slot: [{ state: "live" as const, file: true, bound: true }, noMemslot()],
    slotsLock: unlocked(),
    invalidateLock: unlocked(),
    del: { pc: "idle" as const },
    rel: { pc: "idle" as const },
    bind: { pc: "idle" as const },
  }),
  actions: () => ({
    CloseGmem: {
      kernel: "close(gmem fd) -> fput",
      thread: "vmm",
      when: (s: S) => s.gmemFd.state === "installed",
      then: (s: S) => void closeFd(s.gmemFd, s.gmemFile, "gmem file"),
    },
  }),
  // lockdep's classes: kvm->slots_lock, and the gmem inode's mapping->invalidate_lock.
  locks: (s) => ({ slots_lock: s.slotsLock, invalidate_lock: s.invalidateLock }),
  threads: (p) => {
    // The RFC's kvm_gmem_release takes the invalidate lock first; upstream takes slots_lock first.
    const [first, second] = p.design === "slots-lock-first" ? ["slots_lock", "invalidate_lock"] : ["invalidate_lock", "slots_lock"];
    // RFC v11's unbind leaves a dying file to kvm_gmem_release; today's unbinds it under slots_lock alone.
    const dying = p.design === "invalidate-lock-first" ? "finish" : "unbind";
    return {
      memslotDelete: {
        id: 1,
        pc: (s: S) => s.del,
        steps: {
          lockSlots: {
            // guest_memfd.c:kvm_gmem_unbind (current) / RFC v11 kvm_gmem_unbind: which file ref.
            kernel: "kvm_set_memory_region(DELETE): mutex_lock(slots_lock); kvm_gmem_unbind: get_file_active(&slot->gmem.file)",
            lock: "slots_lock",
            when: (s: S) => s.slot[0]!.state === "live",
            then: (s: S) => void (s.slot[0]!.file && getFileActive(s.gmemFile)),
            // A NULL slot->gmem.file: release already unbound it. get_file_active succeeded iff the file is live.
            next: (s: S) => (!s.slot[0]!.file ? "finish" : isLive(s.gmemFile) ? "lockInvalidate" : dying),
          },
          lockInvalidate: { kernel: "kvm_gmem_unbind (live file): filemap_invalidate_lock", lock: "invalidate_lock" },
          unbindLocked: {
            kernel: "__kvm_gmem_unbind: xa_store_range(NULL), slot->gmem.file = NULL; filemap_invalidate_unlock, fput",
            then: (s: S) => {
              kvmGmemUnbindSlot(s.slot[0]!, s.gmem);
              fput(s.gmemFile, "gmem file");
            },
            unlock: "invalidate_lock",
            next: "finish",
          },
          unbind: {
            kernel: "kvm_gmem_unbind (dying file): __kvm_gmem_unbind without the invalidate lock",
            then: (s: S) => kvmGmemUnbindSlot(s.slot[0]!, s.gmem),
          },
          finish: {
            kernel: "kvm_set_memory_region(DELETE): synchronize_srcu, free the memslot, mutex_unlock(slots_lock)",
            then: (s: S) => memslotFree(s.slot[0]!),
            unlock: "slots_lock",
          },
        },
      },
      gmemRelease: {
        id: 2,
        pc: (s: S) => s.rel,
        kernel: "__fput -> kvm_gmem_release",
        steps: {
          first: { kernel: `kvm_gmem_release: lock ${first}`, lock: first, when: (s: S) => isDying(s.gmemFile) && s.gmem.state === "live" },
          second: { kernel: `kvm_gmem_release: lock ${second}`, lock: second },
          body: {
            kernel: "kvm_gmem_release: clear slot->gmem.file of every binding, invalidate, unlock, free",
            then: (s: S) => {
              kvmGmemReleaseBody(s.gmem, s.slot);
              freeFile(s.gmemFile, "gmem file");
            },
            unlock: ["slots_lock", "invalidate_lock"],
          },
        },
      },
      memslotCreate: {
        id: 3,
        pc: (s: S) => s.bind,
        steps: {
          lockSlots: {
            kernel: "kvm_set_memory_region(CREATE): mutex_lock(slots_lock); kvm_gmem_bind: fget(fd)",
            lock: "slots_lock",
            when: (s: S) => s.slot[1]!.state === "none" && s.gmemFd.state === "installed",
            then: (s: S) => void fget(s.gmemFd, s.gmemFile),
          },
          lockInvalidate: { kernel: "kvm_gmem_bind: filemap_invalidate_lock", lock: "invalidate_lock" },
          body: {
            kernel: "kvm_gmem_bind: slot->gmem.file = file, xa_store_range, unlock, fput; unlock slots_lock",
            then: (s: S) => {
              memslotCreate(s.slot[1]!);
              kvmGmemBindSlot(s.slot[1]!, s.gmem);
              fput(s.gmemFile, "gmem file");
            },
            unlock: ["invalidate_lock", "slots_lock"],
          },
        },
      },
    };
  },
  // The gmem file's counted references: the fd, and the calls that hold one across steps.
  ownership: {
    gmemFile: {
      count: (s: S) => s.gmemFile.count,
      live: (s: S) => isLive(s.gmemFile),
      holders: {
        fd: (s: S) => s.gmemFd.state === "installed",
        memslotDelete: (s: S) => s.del.pc === "lockInvalidate" || s.del.pc === "unbindLocked",
        memslotCreate: (s: S) => s.bind.pc === "lockInvalidate" || s.bind.pc === "body",
      },
    },
  },
  quiescent: {
    gmemReleased: {
      doc: "once nothing can run, the gmem file has been released",
      holds: (s) => s.gmemFile.state === "freed" && s.gmem.state === "freed",
    },
  },
  liveness: {
    freedOnceClosed: freedOnceClosed((s: S) => s.gmemFd.state !== "installed", (s: S) => s.gmemFile.state === "freed" && s.gmem.state === "freed", "the gmem file and struct gmem_file"),
  },
  // kvm_gmem_release is __fput's task_work here, the thread gmemRelease.
  fairness: { weak: [{ thread: "gmemRelease" }] },
  reachable: (p) => ({
    dyingFileUnbound: {
      doc: "memslot delete unbinds a dying gmem file without its invalidate lock (kvm_gmem_unbind, !file)",
      when: (s) => s.del.pc === "unbind",
      expect: p.design === "invalidate-lock-first" ? ("unreachable" as const) : ("reachable" as const),
    },
  }),
  expected: [
    {
      when: { design: "invalidate-lock-first" },
      violated: {
        noFault: { steps: 6, message: "slab-use-after-free in kvm_gmem_release" },
        lockOrder: { steps: 2, message: "possible circular locking dependency detected" },
        // The release faults before it frees the file: the run stops there (not a quiescent state).
        freedOnceClosed: { steps: 5, message: "every step enabled there faults (gmemRelease.body)" },
      },
      doc: "RFC v11: unbind skips a dying file, so release writes the binding of a memslot already freed; and its lock order is the reverse of memslot updates'",
    },
    {
      when: { design: "invalidate-lock-first-current-unbind" },
      violated: { lockOrder: { steps: 2, message: "possible circular locking dependency detected" } },
      doc: "no deadlock on one file, but release takes the locks in the reverse order of memslot updates: lockdep reports it",
    },
  ],
});
