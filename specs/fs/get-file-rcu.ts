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
// Two file objects stand for the slab: a replacement installs the free one (count 1, the
// pointer's reference) and puts the old one's pointer reference; while the reader holds a
// reference on the other object, there is no free one and the replacer waits.
import { z } from "zod";
import { defineSpec, Fault } from "../../checker/spec.ts";

const params = z.object({
  replacer: z.enum(["bounded", "forever"]).default("bounded"),
  replacements: z.number().int().min(1).max(4).default(2),
});

export default defineSpec({
  name: "fs/get-file-rcu",
  summary: "get_file_rcu's retry loop against a thread that keeps replacing the pointer",
  source: "fs/file.c: get_file_rcu, __get_file_rcu",
  params,
  designParam: "replacer",
  state: (p) =>
    z.object({
      ptr: z.number().int().min(0).max(1), // *f: which object is installed
      count: z.array(z.number().int().min(0).max(3)).length(2), // f_ref of each object
      pc: z.enum(["load", "get", "reload", "done"]), // the reader in get_file_rcu
      file: z.number().int().min(0).max(1), // the reader's local `file`
      replaced: z.number().int().min(0).max(p.replacements),
    }),
  init: () => ({ ptr: 0, count: [1, 0], pc: "load" as const, file: 0, replaced: 0 }),
  actions: (p) => {
    const fput = (s: { count: number[] }, i: number) => {
      if (s.count[i] === 0) throw new Fault(`fput on file object ${i} with no reference left`);
      s.count[i]--;
    };
    return {
      Load: { thread: "reader", kernel: "__get_file_rcu: file = rcu_dereference_raw(*f)", when: (s) => s.pc === "load", then: (s) => { s.file = s.ptr; s.pc = "get"; } },
      Get: {
        thread: "reader",
        kernel: "__get_file_rcu: file_ref_get(&file->f_ref), else -EAGAIN",
        when: (s) => s.pc === "get",
        then: (s) => {
          if (s.count[s.file] === 0) s.pc = "load";
          else {
            s.count[s.file]++;
            s.pc = "reload";
          }
        },
      },
      Reload: {
        thread: "reader",
        kernel: "__get_file_rcu: file == rcu_dereference_raw(*f), else fput and -EAGAIN",
        when: (s) => s.pc === "reload",
        then: (s) => {
          if (s.ptr === s.file) s.pc = "done";
          else {
            fput(s, s.file);
            s.pc = "load";
          }
        },
      },
      Replace: {
        thread: "replacer",
        kernel: "rcu_assign_pointer(*f, new file); fput(old)",
        when: (s) => s.count[1 - s.ptr] === 0 && (p.replacer === "forever" || s.replaced < p.replacements),
        then: (s) => {
          const old = s.ptr;
          s.count[1 - old] = 1;
          s.ptr = 1 - old;
          fput(s, old);
          if (p.replacer === "bounded") s.replaced++;
        },
      },
    };
  },
  invariants: {
    installedIsLive: { holds: (s) => s.count[s.ptr] >= 1, doc: "the installed file holds the pointer's reference" },
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
