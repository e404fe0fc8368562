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
// Threads (pc + locals), each a kernel call split at its lock acquisitions:
//   memslot delete (tid 1)  kvm_set_memory_region(KVM_MR_DELETE) of slot 0: slots_lock,
//                           kvm_gmem_unbind (live file: reference + invalidate lock;
//                           dying file: neither), clear binding, free slot.
//   gmem release (tid 2)    __fput -> kvm_gmem_release, enabled once the file is dying.
//   memslot create (tid 3)  kvm_set_memory_region(KVM_MR_CREATE) of slot 1: slots_lock,
//                           kvm_gmem_bind (fget, invalidate lock, bind, fput).
//
// Abstractions: the VM stays open throughout (the gmem file pins it; closing the VM only
// adds states irrelevant to these two locks). Steps between lock operations are atomic:
// they touch only state the held locks protect. kvm_gmem_release's synchronize_rcu and
// SPTE zap are folded into its body step; they take no lock of this model.
import { z } from "zod";
import { defineSpec, Fault } from "../../checker/spec.ts";
import { fileSchema, fput, freeFile, getFile, getFileActive, isDying, newFile } from "../kernel/file.ts";
import { acquire, isFree, lockSchema, release, unlocked, type Lock } from "../kernel/lock.ts";
import { firstBusy, threadSchema } from "../kernel/thread.ts";

export const designs = ["slots-lock-first", "invalidate-lock-first", "invalidate-lock-first-current-unbind"] as const;

const params = z.object({ design: z.enum(designs).default("slots-lock-first") });

const DEL = 1, REL = 2, BIND = 3;

const slotSchema = z.object({ state: z.enum(["none", "live", "freed"]), file: z.boolean(), bound: z.boolean() });

const stateSchema = z.object({
  gmemFd: z.boolean(),
  gmemFile: fileSchema({ maxCount: 3 }),
  /** struct kvm_gmem (bindings xarray) allocated. */
  gmemAlive: z.boolean(),
  slot: z.array(slotSchema).length(2),
  slotsLock: lockSchema(3),
  /** The gmem inode's mapping->invalidate_lock. */
  invalidateLock: lockSchema(3),
  /** ref: unbind holds a file reference (and then the invalidate lock from lockInvalidate on). */
  del: threadSchema(["lockInvalidate", "unbind", "finish"], { ref: z.boolean() }),
  rel: threadSchema(["second", "body"], {}),
  bind: threadSchema(["lockInvalidate", "body"], {}),
});
type S = z.infer<typeof stateSchema>;

export default defineSpec({
  name: "guest-memfd/lock-order",
  summary: "kvm_gmem_release vs memslot create/delete: slots_lock and the gmem invalidate lock",
  source: "seed 003_656a070350d9a7e0.txt (RFC v11 kvm_gmem_release); virt/kvm/guest_memfd.c; kvm-x86 ae431059e75d",
  params,
  state: () => stateSchema,
  init: () => ({
    gmemFd: true,
    gmemFile: newFile(),
    gmemAlive: true,
    slot: [
      { state: "live" as const, file: true, bound: true },
      { state: "none" as const, file: false, bound: false },
    ],
    slotsLock: unlocked(),
    invalidateLock: unlocked(),
    del: { pc: "idle" as const, ref: false },
    rel: { pc: "idle" as const },
    bind: { pc: "idle" as const },
  }),
  actions: (p) => {
    const invalidateFirst = p.design !== "slots-lock-first";
    const unbindSkipsDying = p.design === "invalidate-lock-first";
    const first = (s: S): [Lock, string] => (invalidateFirst ? [s.invalidateLock, "invalidate_lock"] : [s.slotsLock, "slots_lock"]);
    const second = (s: S): [Lock, string] => (invalidateFirst ? [s.slotsLock, "slots_lock"] : [s.invalidateLock, "invalidate_lock"]);
    return {
      CloseGmem: {
        kernel: "close(gmem fd) -> fput",
        when: (s: S) => s.gmemFd,
        then: (s: S) => {
          s.gmemFd = false;
          fput(s.gmemFile, "gmem file");
        },
      },

      DelLockSlots: {
        // guest_memfd.c:kvm_gmem_unbind (current) / RFC v11 kvm_gmem_unbind: which file ref.
        kernel: "kvm_set_memory_region(DELETE): mutex_lock(slots_lock); kvm_gmem_unbind: get_file_active(&slot->gmem.file)",
        when: (s: S) => s.del.pc === "idle" && s.slot[0]!.state === "live" && isFree(s.slotsLock),
        then: (s: S) => {
          acquire(s.slotsLock, DEL, "slots_lock");
          const sl = s.slot[0]!;
          if (!sl.file) {
            s.del.pc = "finish"; // release already unbound it
            return;
          }
          s.del.ref = getFileActive(s.gmemFile);
          if (s.del.ref) s.del.pc = "lockInvalidate";
          // RFC v11: a dying file is left to kvm_gmem_release. Current: unbound at once,
          // without the invalidate lock; slots_lock keeps release out.
          else s.del.pc = unbindSkipsDying ? "finish" : "unbind";
        },
      },
      DelLockInvalidate: {
        kernel: "kvm_gmem_unbind (live file): filemap_invalidate_lock",
        when: (s: S) => s.del.pc === "lockInvalidate" && isFree(s.invalidateLock),
        then: (s: S) => {
          acquire(s.invalidateLock, DEL, "invalidate_lock");
          s.del.pc = "unbind";
        },
      },
      DelUnbind: {
        // guest_memfd.c:__kvm_gmem_unbind; the lock and the fput only on the live-file path.
        kernel: "__kvm_gmem_unbind: xa_store_range(NULL), slot->gmem.file = NULL; live file: unlock, fput",
        when: (s: S) => s.del.pc === "unbind",
        then: (s: S) => {
          if (!s.gmemAlive) throw new Fault("BUG: KASAN: slab-use-after-free in __kvm_gmem_unbind: struct gmem_file freed");
          s.slot[0]!.bound = false;
          s.slot[0]!.file = false;
          if (s.del.ref) {
            release(s.invalidateLock, DEL, "invalidate_lock");
            fput(s.gmemFile, "gmem file");
          }
          s.del.ref = false;
          s.del.pc = "finish";
        },
      },
      DelFinish: {
        kernel: "kvm_set_memory_region(DELETE): synchronize_srcu, free the memslot, mutex_unlock(slots_lock)",
        when: (s: S) => s.del.pc === "finish",
        then: (s: S) => {
          s.slot[0]!.state = "freed";
          release(s.slotsLock, DEL, "slots_lock");
          s.del.pc = "idle";
        },
      },

      RelLockFirst: {
        kernel: "kvm_gmem_release: first lock",
        when: (s: S) => s.rel.pc === "idle" && isDying(s.gmemFile) && s.gmemAlive && isFree(first(s)[0]),
        then: (s: S) => {
          const [l, n] = first(s);
          acquire(l, REL, n);
          s.rel.pc = "second";
        },
      },
      RelLockSecond: {
        kernel: "kvm_gmem_release: second lock",
        when: (s: S) => s.rel.pc === "second" && isFree(second(s)[0]),
        then: (s: S) => {
          const [l, n] = second(s);
          acquire(l, REL, n);
          s.rel.pc = "body";
        },
      },
      RelBody: {
        kernel: "kvm_gmem_release: clear slot->gmem.file of every binding, invalidate, unlock, free",
        when: (s: S) => s.rel.pc === "body",
        then: (s: S) => {
          for (const sl of s.slot) {
            if (!sl.bound) continue;
            if (sl.state === "freed") {
              throw new Fault("BUG: KASAN: slab-use-after-free in kvm_gmem_release: write to slot->gmem.file of a freed memslot");
            }
            sl.bound = false;
            sl.file = false;
          }
          s.gmemAlive = false;
          release(s.slotsLock, REL, "slots_lock");
          release(s.invalidateLock, REL, "invalidate_lock");
          freeFile(s.gmemFile, "gmem file");
          s.rel.pc = "idle";
        },
      },

      BindLockSlots: {
        kernel: "kvm_set_memory_region(CREATE): mutex_lock(slots_lock); kvm_gmem_bind: fget(fd)",
        when: (s: S) => s.bind.pc === "idle" && s.slot[1]!.state === "none" && s.gmemFd && isFree(s.slotsLock),
        then: (s: S) => {
          acquire(s.slotsLock, BIND, "slots_lock");
          getFile(s.gmemFile, "gmem file"); // fget: the fd table holds a reference
          s.bind.pc = "lockInvalidate";
        },
      },
      BindLockInvalidate: {
        kernel: "kvm_gmem_bind: filemap_invalidate_lock",
        when: (s: S) => s.bind.pc === "lockInvalidate" && isFree(s.invalidateLock),
        then: (s: S) => {
          acquire(s.invalidateLock, BIND, "invalidate_lock");
          s.bind.pc = "body";
        },
      },
      BindBody: {
        kernel: "kvm_gmem_bind: slot->gmem.file = file, xa_store_range, unlock, fput; unlock slots_lock",
        when: (s: S) => s.bind.pc === "body",
        then: (s: S) => {
          if (!s.gmemAlive) throw new Fault("BUG: KASAN: slab-use-after-free in kvm_gmem_bind: struct gmem_file freed");
          const sl = s.slot[1]!;
          sl.state = "live";
          sl.file = true;
          sl.bound = true;
          release(s.invalidateLock, BIND, "invalidate_lock");
          fput(s.gmemFile, "gmem file");
          release(s.slotsLock, BIND, "slots_lock");
          s.bind.pc = "idle";
        },
      },
    };
  },
  quiescent: {
    gmemReleased: {
      doc: "once nothing can run, the gmem file has been released",
      holds: (s) => s.gmemFile.state === "freed" && !s.gmemAlive,
    },
  },
  reachable: (p) => ({
    dyingFileUnbound: {
      doc: "memslot delete unbinds a dying gmem file without its invalidate lock (kvm_gmem_unbind, !file)",
      when: (s) => s.del.pc === "unbind" && !s.del.ref,
      expect: p.design === "invalidate-lock-first" ? ("unreachable" as const) : ("reachable" as const),
    },
  }),
  busy: (s) => firstBusy({ "memslot delete": s.del, "gmem release": s.rel, "memslot create": s.bind }),
  // lockdep's classes: kvm->slots_lock, and the gmem inode's mapping->invalidate_lock.
  locks: (s) => ({ slots_lock: s.slotsLock, invalidate_lock: s.invalidateLock }),
  expected: [
    {
      when: { design: "invalidate-lock-first" },
      violated: {
        noFault: { steps: 6, message: "slab-use-after-free in kvm_gmem_release" },
        lockOrder: { steps: 2, message: "possible circular locking dependency detected" },
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
