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

export const fileStates = ["none", "live", "dying", "freed"] as const;
export type FileState = (typeof fileStates)[number];

export interface File {
  count: number;
  state: FileState;
  gen: number;
}

export interface FileSchemaOptions {
  /** Largest f_count the model can reach. */
  maxCount: number;
  /** How many times a freed slot may be reused for another file (0: never). */
  maxReuse?: number;
}

export function fileSchema(o: FileSchemaOptions) {
  return z.object({
    count: z.number().int().min(0).max(o.maxCount),
    state: z.enum(fileStates),
    gen: z.number().int().min(0).max(o.maxReuse ?? 0),
  });
}

/** A file created by open()/anon_inode_getfile(): one reference, owned by the fd. */
export function newFile(): File {
  return { count: 1, state: "live", gen: 0 };
}

/** A slot for a file that does not exist yet. */
export function noFile(): File {
  return { count: 0, state: "none", gen: 0 };
}

/** alloc_file: a not-yet-created slot becomes a live file with one reference. */
export function createFile(f: File, what: string): void {
  if (f.state !== "none") throw new Fault(`BUG: ${what} created twice`, f);
  f.count = 1;
  f.state = "live";
}

/** Files are SLAB_TYPESAFE_BY_RCU (filp_cachep): a freed one is not a KASAN report. */
const slabReuse = "(the kernel would reuse the slab object; KASAN reports it only with CONFIG_SLUB_RCU_DEBUG)";

/**
 * get_file: unconditional increment; only legal while the caller already holds a reference.
 * include/linux/file_ref.h:file_ref_inc WARN_ONCEs on a dead count and goes on.
 */
export function getFile(f: File, what: string): void {
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

/** get_file_active: increment only if the file is still live; false when it is dying or gone. */
export function getFileActive(f: File): boolean {
  if (f.state !== "live" || f.count === 0) return false;
  f.count += 1;
  return true;
}

/**
 * fput: drop one reference. The final put does not release in place: the file becomes
 * dying and its __fput runs later as a separate step (`releaseFile`). Returns true on the
 * final put.
 */
export function fput(f: File, what: string): boolean {
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

/** A deferred __fput is pending on this file. */
export function isDying(f: File): boolean {
  return f.state === "dying";
}

export function isLive(f: File): boolean {
  return f.state === "live";
}

/**
 * __fput's last step, file_free. The caller runs the owner's ->release body and fops_put
 * first, in the same action, in __fput's order.
 */
export function freeFile(f: File, what: string): void {
  if (f.state !== "dying") throw new Fault(`BUG: __fput on ${what} while it is ${f.state}`, f);
  f.state = "freed";
}

/** Slab reuse: the freed memory is handed out again as an unrelated live file. */
export function reuseFile(f: File, what: string): void {
  if (f.state !== "freed") throw new Fault(`BUG: slab reuse of ${what} while it is ${f.state}`, f);
  f.state = "live";
  f.count = 1;
  f.gen += 1;
}
