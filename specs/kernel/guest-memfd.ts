// guest_memfd (virt/kvm/guest_memfd.c, current tree after ae431059e75d): the gmem file's
// private struct gmem_file, the memslots bound to it, and the bodies of kvm_gmem_bind,
// kvm_gmem_unbind and kvm_gmem_release. Locks are the caller's: a spec that interleaves
// inside these calls takes kvm->slots_lock and the invalidate lock in its own steps and
// calls the bodies in between.
//
// Objects:
//   struct gmem_file  kzalloc'd by __kvm_gmem_create, kfree'd at the end of kvm_gmem_release;
//                     `kvm` is f->kvm non-NULL (the seed-003 proposal clears it)
//   memslot           struct kvm_memory_slot, kzalloc'd by a memslot create, kfree'd after
//                     its delete; `file` is slot->gmem.file non-NULL (uncounted upstream),
//                     `bound` is an entry for it in f->bindings
import { z } from "zod";
import { Fault } from "../../checker/spec.ts";
import { createFile, fdInstall, fileUse, fput, getFileActive, getUnusedFd, type Fd, type File } from "./file.ts";
import { kvmGet, kvmUse, type Kvm } from "./kvm.ts";
import { kfree, kzalloc, slabStates, slabUse, type SlabObject } from "./slab.ts";

export interface GmemFile extends SlabObject {
  /** f->kvm is non-NULL. */
  kvm: boolean;
}

export interface Memslot extends SlabObject {
  /** slot->gmem.file is non-NULL. */
  file: boolean;
  /** f->bindings has an entry for this memslot. */
  bound: boolean;
}

export function gmemFileSchema() {
  return z.object({ state: z.enum(slabStates), kvm: z.boolean() });
}

export function memslotSchema() {
  return z.object({ state: z.enum(slabStates), file: z.boolean(), bound: z.boolean() });
}

export function noGmemFile(): GmemFile {
  return { state: "none", kvm: false };
}

export function noMemslot(): Memslot {
  return { state: "none", file: false, bound: false };
}

const gmemFile = "struct gmem_file";
const memslot = "struct kvm_memory_slot";

/**
 * virt/kvm/guest_memfd.c:__kvm_gmem_create: get_unused_fd_flags, kzalloc the gmem_file,
 * alloc_file_pseudo, kvm_get_kvm and f->kvm = kvm (pass `kvm`; the seed-003 proposal takes
 * no VM reference and leaves f->kvm to the first binding), fd_install.
 */
export function kvmGmemCreate(file: File, f: GmemFile, fd: Fd, kvm?: Kvm): void {
  getUnusedFd(fd, "the guest_memfd fd");
  kzalloc(f, gmemFile);
  createFile(file, "gmem file");
  if (kvm) {
    kvmGet(kvm);
    f.kvm = true;
  }
  fdInstall(fd, file, "gmem file");
}

/** A memslot create (virt/kvm/kvm_main.c:kvm_set_memory_region, KVM_MR_CREATE): the new struct. */
export function memslotCreate(slot: Memslot): void {
  kzalloc(slot, memslot);
}

/** A memslot delete's end (kvm_set_memory_region, KVM_MR_DELETE): after synchronize_srcu, kfree the old slot. */
export function memslotFree(slot: Memslot, fn = "kvm_set_memory_region"): void {
  kfree(slot, memslot, fn);
}

/**
 * kvm_gmem_bind under the invalidate lock: WRITE_ONCE(slot->gmem.file, file), xa_store_range.
 * The fget before it and the fput after it are the caller's.
 */
export function kvmGmemBindSlot(slot: Memslot, f: GmemFile): void {
  slabUse(f, gmemFile, "kvm_gmem_bind", "Write");
  slot.file = true;
  slot.bound = true;
}

/** guest_memfd.c:__kvm_gmem_unbind: xa_store_range(NULL) on f->bindings, WRITE_ONCE(slot->gmem.file, NULL). */
export function kvmGmemUnbindSlot(slot: Memslot, f: GmemFile): void {
  slabUse(f, gmemFile, "__kvm_gmem_unbind", "Write");
  slot.bound = false;
  slot.file = false;
}

/**
 * guest_memfd.c:kvm_gmem_unbind in one step (the caller holds slots_lock): nothing if
 * slot->gmem.file is NULL (release cleared it); a live file is pinned by CLASS(gmem_get_file)
 * (get_file_active) and unbound under the invalidate lock, then put; a dying file is unbound
 * without that lock, since kvm_gmem_release cannot run before slots_lock is dropped.
 */
export function kvmGmemUnbind(slot: Memslot, f: GmemFile, file: File): void {
  if (!slot.file) return;
  fileUse(file, "slot->gmem.file", "kvm_gmem_unbind");
  const pinned = getFileActive(file);
  kvmGmemUnbindSlot(slot, f);
  if (pinned) fput(file, "gmem file");
}

/**
 * guest_memfd.c:__kvm_gmem_invalidate_begin, from PUNCH_HOLE or kvm_gmem_release: only when
 * f->bindings has an entry does it take KVM_MMU_LOCK(f->kvm) and kvm_mmu_unmap_gfn_range.
 * With phased VM destruction, reaching the MMU after kvm_arch_destroy_vm is a fault by the
 * model's assumption (what it does is arch-dependent).
 */
export function kvmGmemInvalidateBegin(f: GmemFile, slots: readonly Memslot[], kvm: Kvm, fn: string): void {
  if (!slots.some((sl) => sl.bound)) return;
  // KVM_MMU_LOCK(NULL) would oops; the text is the model's.
  if (!f.kvm) throw new Fault(`model: ${fn}: NULL gmem->kvm with live bindings (a NULL dereference in KVM_MMU_LOCK)`, f);
  kvmUse(kvm, `${fn} (KVM_MMU_LOCK(gmem->kvm))`);
  if (kvmPastArchDestroy(kvm)) {
    throw new Fault(
      `model's assumption: ${fn}: kvm_mmu_unmap_gfn_range through gmem->kvm after kvm_arch_destroy_vm ` +
        "(a suspicious ordering, not an observed kernel failure)",
      kvm,
    );
  }
}

function kvmPastArchDestroy(k: Kvm): boolean {
  return k.phase === "kvm_arch_destroy_vm" || k.phase === "kvm_destroy_devices" || k.phase === "kvm_free_memslots";
}

/**
 * The body of guest_memfd.c:kvm_gmem_release between its locks and after them (the caller
 * holds slots_lock and the invalidate lock, or runs it all as one step): WRITE_ONCE(slot->gmem.file,
 * NULL) for every binding, __kvm_gmem_invalidate_begin (`invalidate`), list_del, then
 * xa_destroy and kfree of the gmem_file. The kvm_put_kvm that ends it is the caller's.
 */
export function kvmGmemReleaseBody(f: GmemFile, slots: Memslot[], invalidate?: () => void): void {
  for (const sl of slots) {
    if (!sl.bound) continue;
    slabUse(sl, "slot->gmem.file", "kvm_gmem_release", "Write");
    sl.file = false;
  }
  invalidate?.();
  for (const sl of slots) sl.bound = false; // xa_destroy(&f->bindings)
  f.kvm = false;
  kfree(f, gmemFile, "kvm_gmem_release");
}
