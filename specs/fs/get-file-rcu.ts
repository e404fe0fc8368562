// get_file_rcu(): take a reference on the file an RCU-protected pointer names, while another
// thread keeps replacing it (fs/file.c, get_file_rcu and __get_file_rcu).
//
// __get_file_rcu loads *f, takes a reference with file_ref_get() (inc-not-zero: it fails on
// a file whose last reference is gone, -EAGAIN), then loads *f again: the same file, it is
// the one installed now (with SLAB_TYPESAFE_BY_RCU the object may have been freed and reused,
// which is why the pointer is compared after the reference is taken); another file, it
// drops the reference with fput() and answers -EAGAIN. get_file_rcu() retries until it gets
// a file.
//
// The liveness question: does the lookup return? It is lock-free, not wait-free: every retry
// means the replacer made progress, but a replacer that never stops can win every race, and
// no fairness of the reader helps (its retry loop keeps running, and every attempt sees a
// new pointer). With a replacer that stops (`bounded`), the lookup returns, under no fairness
// assumption at all: once the replacer is done only the reader can run.
//
// Designs (`replacer`):
//   forever   the pointer is replaced again and again (violates lookupReturns)
//   bounded   at most `replacements` replacements
//
// Two struct file objects stand for the slab (specs/kernel/file.ts): a replacement makes a
// new file on the free object (fs/file_table.c:alloc_empty_file; with SLAB_TYPESAFE_BY_RCU
// the memory of a freed file, specs/kernel/file.ts:reuseFile), installs it, and fputs the old
// one. A final fput's __fput runs in the same step (its task_work before the thread returns
// to user space; nothing of this model runs in between that could tell). While the reader
// holds a reference on the other object, there is no free one and the replacer waits.
import { z } from "zod";
import { defineSpec } from "../../checker/spec.ts";
import { deferredFput, fileSchema, fput, getFileRcu, isLive, newFile, noFile, reuseFile, type File } from "../kernel/file.ts";

const params = z.object({
  replacer: z.enum(["bounded", "forever"]).default("bounded"),
  replacements: z.number().int().min(1).max(4).default(2),
});

const what = (i: number) => `file object ${i}`;
/** fput, and the deferred __fput when it was the last reference. */
function fputNow(f: File, i: number): void {
  if (fput(f, what(i))) deferredFput(f, what(i));
}

export default defineSpec({
  name: "fs/get-file-rcu",
  summary: "get_file_rcu's retry loop against a thread that keeps replacing the pointer",
  source: "fs/file.c: get_file_rcu, __get_file_rcu",
  params,
  designParam: "replacer",
  state: (p) =>
    z.object({
      ptr: z.number().int().min(0).max(1), // *f: which object is installed
      files: z.array(fileSchema({ maxCount: 2 })).length(2),
      pc: z.enum(["load", "get", "reload", "done"]), // the reader in get_file_rcu
      file: z.number().int().min(0).max(1), // the reader's local `file`
      replaced: z.number().int().min(0).max(p.replacements),
    }),
  // The other object is a file freed earlier: the slab's free memory the next file takes.
  init: () => ({ ptr: 0, files: [newFile(), { ...noFile(), state: "freed" as const }], pc: "load" as const, file: 0, replaced: 0 }),
  actions: (p) => ({
    Load: { thread: "reader", kernel: "__get_file_rcu: file = rcu_dereference_raw(*f)", when: (s) => s.pc === "load", then: (s) => { s.file = s.ptr; s.pc = "get"; } },
    Get: {
      thread: "reader",
      kernel: "__get_file_rcu: file_ref_get(&file->f_ref), else -EAGAIN",
      when: (s) => s.pc === "get",
      then: (s) => { s.pc = getFileRcu(true, s.files[s.file]!) === "got" ? "reload" : "load"; },
    },
    Reload: {
      thread: "reader",
      kernel: "__get_file_rcu: file == rcu_dereference_raw(*f), else fput and -EAGAIN",
      when: (s) => s.pc === "reload",
      then: (s) => {
        if (s.ptr === s.file) s.pc = "done";
        else {
          fputNow(s.files[s.file]!, s.file);
          s.pc = "load";
        }
      },
    },
    Replace: {
      thread: "replacer",
      kernel: "alloc_empty_file (the free slab object), rcu_assign_pointer(*f, new file); fput(old)",
      when: (s) => s.files[1 - s.ptr]!.state === "freed" && (p.replacer === "forever" || s.replaced < p.replacements),
      then: (s) => {
        const old = s.ptr, next = s.files[1 - old]!;
        // Nobody here compares generations, so reuse does not count them (see reuseFile).
        reuseFile(next, what(1 - old), { countGen: false });
        s.ptr = 1 - old;
        fputNow(s.files[old]!, old);
        if (p.replacer === "bounded") s.replaced++;
      },
    },
  }),
  invariants: {
    installedIsLive: { holds: (s) => isLive(s.files[s.ptr]!), doc: "the installed file holds the pointer's reference" },
  },
  liveness: {
    lookupReturns: { eventually: (s) => s.pc === "done", doc: "get_file_rcu returns a file" },
  },
  // The reader as one thread: it keeps running (its retries included).
  fairness: { weak: [{ thread: "reader" }] },
  expected: [
    {
      when: { replacer: "forever" },
      violated: { lookupReturns: { message: "it never holds" } },
      doc: "a replacer that never stops can make every attempt fail: get_file_rcu is lock-free, not wait-free",
    },
  ],
});
