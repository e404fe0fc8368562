// struct file reference counting (include/linux/file_ref.h, fs/file.c, fs/file_table.c).
//
// A file is a slot with a state:
//   none   -> not created yet (or never will be)
//   live   -> f_count >= 1
//   dying  -> f_count hit 0 in fput; __fput is queued (task_work / delayed_fput) but
//             ->release has not run. get_file_active fails, get_file is a bug.
//   freed  -> __fput ran ->release, fops_put and file_free.
// With slab reuse enabled (SLAB_TYPESAFE_BY_RCU), a freed slot can come back live as a
// different file: `gen` counts the incarnations, so a holder that remembers the gen it
// pinned can tell it now holds a foreign file.
import { z } from "zod";
import { Fault } from "../../checker/spec.ts";
import { modulePut, runModuleCode, tryModuleGet, type Module } from "./module.ts";
import { kernelWarn, recordsWarns, warnedField, type MayWarn } from "./warn.ts";

export const fileStates = ["none", "live", "dying", "freed"] as const;
export type FileState = (typeof fileStates)[number];

export interface File extends MayWarn {
  count: number;
  state: FileState;
  gen: number;
}

export interface FileSchemaOptions {
  /** Largest f_count the model can reach. */
  maxCount: number;
  /** How many times a freed slot may be reused for another file (0: never). */
  maxReuse?: number;
  /**
   * Record file_ref's WARN_ONCEs and go on, as the kernel does (see warn.ts): get_file on a
   * dead file leaves the count dead and the file still goes away; an extra fput changes nothing.
   */
  warn?: boolean;
}

function fileShape(o: FileSchemaOptions) {
  return {
    count: z.number().int().min(0).max(o.maxCount),
    state: z.enum(fileStates),
    gen: z.number().int().min(0).max(o.maxReuse ?? 0),
  };
}
type FileShape = ReturnType<typeof fileShape>;

export function fileSchema(o: FileSchemaOptions & { warn?: false }): z.ZodObject<FileShape>;
export function fileSchema(o: FileSchemaOptions & { warn: true }): z.ZodObject<FileShape & { warned: z.ZodBoolean }>;
export function fileSchema(o: FileSchemaOptions): z.ZodObject<FileShape & { warned: z.ZodOptional<z.ZodBoolean> }>;
export function fileSchema(o: FileSchemaOptions) {
  return o.warn ? z.object({ ...fileShape(o), warned: warnedField }) : z.object(fileShape(o));
}

/**
 * A file created by open() or fs/anon_inodes.c:anon_inode_getfile (fs/file_table.c:alloc_file,
 * file_ref_init(1)): one reference, owned by the fd.
 */
export function newFile(): File {
  return { count: 1, state: "live", gen: 0 };
}

/** A slot for a file that does not exist yet. */
export function noFile(): File {
  return { count: 0, state: "none", gen: 0 };
}

/** fs/file_table.c:alloc_file (alloc_empty_file): a not-yet-created slot becomes a live file with one reference. */
export function createFile(f: File, what: string): void {
  if (f.state !== "none") throw new Fault(`BUG: ${what} created twice`, f);
  f.count = 1;
  f.state = "live";
}

/** Files are SLAB_TYPESAFE_BY_RCU (filp_cachep): a freed one is not a KASAN report. */
const slabReuse = "(the kernel would reuse the slab object; KASAN reports it only with CONFIG_SLUB_RCU_DEBUG)";

/**
 * include/linux/fs.h:get_file (file_ref_inc): unconditional increment; only legal while the
 * caller already holds a reference. include/linux/file_ref.h:file_ref_inc WARN_ONCEs on a
 * dead count and goes on (recorded instead of faulting when the schema has `warned`).
 */
export function getFile(f: File, what: string): void {
  if (recordsWarns(f) && (f.state === "dying" || f.state === "freed")) {
    // The count stays in the dead zone: nothing is revived, the caller's pointer dangles.
    kernelWarn(f, `file_ref_inc() on a released file reference: get_file on ${f.state} ${what}`);
    return;
  }
  if (f.state === "freed" || f.state === "none") {
    throw new Fault(`model: get_file on ${what} after it was freed ${slabReuse}`, f);
  }
  if (f.state === "dying" || f.count === 0) {
    throw new Fault(
      `file_ref_inc() on a released file reference: get_file on dying ${what} (f_count was 0, ` +
        "a WARN_ONCE after which the kernel goes on and the pending __fput still frees the file)",
      f,
    );
  }
  f.count += 1;
}

/**
 * fs/file.c:get_file_active (__get_file_rcu under rcu_read_lock, no retry): increment only
 * if the file is still live (file_ref_get); false when it is dying or gone.
 */
export function getFileActive(f: File): boolean {
  if (f.state !== "live" || f.count === 0) return false;
  f.count += 1;
  return true;
}

/**
 * fs/file_table.c:fput (file_ref_put, then __fput_deferred): drop one reference. The final
 * put does not release in place: the file becomes dying and its __fput runs later as a
 * separate step (`deferredFput`, or `freeFile` after the caller's own release code). Returns
 * true on the final put. Newer kernels' close path uses fput_close (file_ref_put_close): the
 * same transition.
 */
export function fput(f: File, what: string): boolean {
  if (recordsWarns(f) && (f.state === "dying" || f.state === "freed")) {
    // fs/file.c:__file_ref_put_badval: the count is reset to FILE_REF_DEAD, nothing is freed twice.
    kernelWarn(f, `imbalanced put on file reference count: fput of ${f.state} ${what}`);
    return false;
  }
  if (f.state === "freed" || f.state === "none") {
    throw new Fault(`model: fput of ${what} after it was freed ${slabReuse}`, f);
  }
  if (f.state === "dying" || f.count === 0) {
    // fs/file.c:__file_ref_put: WARN_ONCE, count reset to FILE_REF_DEAD, nothing freed twice.
    throw new Fault(`imbalanced put on file reference count: fput of ${what} with f_count already 0`, f);
  }
  f.count -= 1;
  if (f.count === 0) {
    f.state = "dying";
    return true;
  }
  return false;
}

/** A deferred __fput (task_work ____fput or delayed_fput, fs/file_table.c:__fput_deferred) is pending. */
export function isDying(f: File): boolean {
  return f.state === "dying";
}

/** The file can be referenced (file_ref_get would succeed). */
export function isLive(f: File): boolean {
  return f.state === "live";
}

/**
 * fs/file_table.c:file_free, __fput's last step (deferredFput runs the whole __fput). The
 * caller runs the owner's ->release body and fops_put first, in the same action, in __fput's
 * order.
 */
export function freeFile(f: File, what: string): void {
  if (f.state !== "dying") throw new Fault(`BUG: __fput on ${what} while it is ${f.state}`, f);
  f.state = "freed";
}

/**
 * Slab reuse (filp_cachep is SLAB_TYPESAFE_BY_RCU, fs/file_table.c:files_init): the freed
 * memory is handed out again as an unrelated live file (alloc_empty_file on the same object).
 */
export function reuseFile(f: File, what: string, o: { countGen?: boolean } = {}): void {
  if (f.state !== "freed") throw new Fault(`BUG: slab reuse of ${what} while it is ${f.state}`, f);
  f.state = "live";
  f.count = 1;
  // `gen` is the model's, not the kernel's: a spec where no holder compares generations may
  // leave it at 0 (countGen: false), so that endless reuse stays a finite state space.
  if (o.countGen ?? true) f.gen += 1;
}

// ---- Files and their owning module (f_op->owner) ----

/**
 * fs/anon_inodes.c:__anon_inode_getfile (anon_inode_getfile, anon_inode_getfd): pins
 * f_op->owner with try_module_get before making the file, and fails with -ENOENT when the
 * owner is going (returns false, nothing created). Without an owner it only creates the file.
 */
export function anonInodeGetfile(f: File, what: string, owner?: Module): boolean {
  if (owner && !tryModuleGet(owner)) return false;
  createFile(f, what);
  return true;
}

export interface FputRelease {
  /** The f_op->release body (runs first; it is the owner's code). */
  release?: () => void;
  /** f_op->owner: pinned since the file was made, dropped by fops_put after ->release. */
  owner?: Module;
  /** The owner's name, for fault messages. */
  ownerName?: string;
}

/**
 * The deferred __fput (fs/file_table.c:__fput, run as task_work ____fput or by
 * delayed_fput): f_op->release, cdev_put, fops_put (= module_put(f_op->owner)), then
 * file_free. Running ->release needs the owner's text: if the owner was unloaded meanwhile,
 * that call is the oops. The file must be dying (its last fput ran).
 */
export function deferredFput(f: File, what: string, o: FputRelease = {}): void {
  if (f.state !== "dying") throw new Fault(`model: __fput on ${what} while it is ${f.state}`, f);
  const ownerName = o.ownerName ?? "the f_op owner";
  if (o.release) {
    if (o.owner) runModuleCode(o.owner, ownerName, `__fput -> ${what}'s f_op->release`);
    o.release();
  }
  if (o.owner) modulePut(o.owner, ownerName);
  freeFile(f, what);
}

// ---- The fd table entry (fs/file.c) ----
//
// An fd is a slot in the caller's fd table that names one struct file:
//   none       no fd
//   reserved   get_unused_fd_flags took the number; not visible to other threads yet
//   installed  fd_install published the file: other threads can fget/close it
// The fd table's reference is the file's reference handed to fd_install.

export const fdStates = ["none", "reserved", "installed"] as const;
export type FdState = (typeof fdStates)[number];

export interface Fd {
  state: FdState;
}

export function fdSchema() {
  return z.object({ state: z.enum(fdStates) });
}

export function noFd(): Fd {
  return { state: "none" };
}

/** An fd already open when the model starts (it owns one reference on its file). */
export function installedFd(): Fd {
  return { state: "installed" };
}

/** The fd is in the table (fd_install ran, no close yet): other threads can fget or close it. */
export function fdInstalled(fd: Fd): boolean {
  return fd.state === "installed";
}

/** fs/file.c:get_unused_fd_flags -> alloc_fd: reserve a number (not yet visible). */
export function getUnusedFd(fd: Fd, what: string): void {
  if (fd.state !== "none") throw new Fault(`model: get_unused_fd_flags for ${what}, which is already ${fd.state}`, fd);
  fd.state = "reserved";
}

/** fs/file.c:put_unused_fd: give back a reserved number (an error path before fd_install). */
export function putUnusedFd(fd: Fd, what: string): void {
  if (fd.state !== "reserved") throw new Fault(`model: put_unused_fd of ${what}, which is ${fd.state}`, fd);
  fd.state = "none";
}

/**
 * fs/file.c:fd_install: publishes the file in the fd table, consuming the caller's reference
 * (the fd now owns it). From here other threads sharing the table can close it, so a caller
 * that still uses the file after fd_install needs a reference of its own. Installing over an
 * installed fd is VFS_BUG_ON (CONFIG_DEBUG_VFS).
 */
export function fdInstall(fd: Fd, f: File, what: string): void {
  if (fd.state === "installed") throw new Fault(`kernel BUG at fs/file.c: fd_install of ${what} over an installed fd (VFS_BUG_ON)`, fd);
  if (fd.state !== "reserved") throw new Fault(`model: fd_install of ${what} without get_unused_fd_flags`, fd);
  if (f.state !== "live") throw new Fault(`model: fd_install of ${what} while the file is ${f.state}`, f);
  fd.state = "installed";
}

/**
 * fs/open.c:filp_close: ->flush, then fput. A file whose count is already 0 is
 * CHECK_DATA_CORRUPTION "VFS: Close: file count is 0" (a WARN, then filp_close returns 0
 * without touching the count; recorded when the file's schema has `warned`). Returns true
 * on the final put.
 */
export function filpClose(f: File, what: string): boolean {
  if (f.state === "dying" || f.state === "freed") {
    kernelWarn(f, `VFS: Close: file count is 0 (${what}; filp_close returns without fput)`);
    return false;
  }
  return fput(f, what);
}

/**
 * close(fd): fs/file.c:close_fd -> file_close_fd_locked (clear the table slot) ->
 * filp_close -> fput (newer kernels: fput_close, the same count transition). "EBADF" when
 * the fd is not installed; "last" when this dropped the file's final reference (its __fput
 * is now pending), else "closed".
 */
export function closeFd(fd: Fd, f: File, what: string): "EBADF" | "closed" | "last" {
  if (fd.state !== "installed") return "EBADF";
  fd.state = "none";
  return filpClose(f, what) ? "last" : "closed";
}

/**
 * fs/file.c:fget: look the fd up and take a reference (file_ref_get, which fails on a dead
 * file, then re-check the table). False when the fd is not installed or the file is dying.
 */
export function fget(fd: Fd, f: File): boolean {
  if (fd.state !== "installed") return false;
  return getFileActive(f);
}

/** What fdget handed out: no file, the table's reference borrowed, or a reference of its own. */
export type FdRef = "empty" | "borrowed" | "cloned";

/**
 * fs/file.c:fdget (__fget_light): when the fd table is not shared (`shared` false) it
 * borrows the table's reference without touching the count, which is safe only because no
 * other thread can close the fd meanwhile; when shared, it takes a reference like fget.
 */
export function fdget(fd: Fd, f: File, shared: boolean): FdRef {
  if (fd.state !== "installed") return "empty";
  if (!shared) return f.state === "live" ? "borrowed" : "empty";
  return getFileActive(f) ? "cloned" : "empty";
}

/** include/linux/file.h:fdput: drops the reference only if fdget took one. True on the final put. */
export function fdput(ref: FdRef, f: File, what: string): boolean {
  return ref === "cloned" ? fput(f, what) : false;
}

/**
 * One pass of fs/file.c:get_file_rcu over a pointer to `f` (`ptrSet`: the pointer is not
 * NULL). "null": the pointer is NULL, get_file_rcu returns NULL. "retry": file_ref_get
 * failed on a dead file (or, in the kernel, the pointer changed under the reload), and the
 * kernel loops: the step should run again later, after the owner has changed the pointer.
 * "got": a reference was taken. With slab reuse the pointer may name a recycled slot: "got"
 * then pins whatever file lives there now, which the caller tells apart by `gen`.
 * get_file_active is the same pass without the loop (a retry there returns NULL).
 */
export function getFileRcu(ptrSet: boolean, f: File): "null" | "retry" | "got" {
  if (!ptrSet) return "null";
  return getFileActive(f) ? "got" : "retry";
}

/**
 * The rest of fs/file_table.c:__fput once f_op->release has returned: fops_put
 * (module_put of f_op->owner), then file_free. For a spec whose ->release is a step of its
 * own (a window inside it, or a return into module text, matters); deferredFput runs all of
 * __fput in one step.
 */
export function fputAfterRelease(f: File, what: string, o: { owner?: Module; ownerName?: string } = {}): void {
  if (o.owner) modulePut(o.owner, o.ownerName ?? "the f_op owner");
  freeFile(f, what);
}

/**
 * `fn` reads a field of the struct file (f->private_data, f_op) through a pointer that holds
 * no reference. A freed file is no KASAN report (filp_cachep is SLAB_TYPESAFE_BY_RCU): the
 * read returns whatever the slab holds now, so the wording is the model's.
 */
export function fileUse(f: File, what: string, fn: string): void {
  if (f.state === "freed") throw new Fault(`model: ${fn} reads ${what} after the file was freed ${slabReuse}`, f);
}
