// Tutorial: a driver keeps the struct file an ioctl names, for a worker to use later.
// Not a shipped kernel bug: the pattern behind many (a pointer kept past fdput()).
//
// Designs (`design`):
//   borrowed  the ioctl stores f.file from fdget() and keeps it past fdput(): the fd
//             table's reference is the only one (the bug).
//   pinned    the ioctl takes its own reference with get_file() before fdput(), and the
//             driver's release drops it with fput() (the fix).
//
// Actions (kernel functions they stand for, include/linux/file.h and fs/file_table.c):
//   SetFile     ioctl(SET_FILE, fd): fdget(fd), store f.file, [get_file], fdput
//   CloseFd     close(fd): the fd table's fput; the last one queues __fput
//   Fput        __fput (task_work): the file is freed
//   Work        the worker: get_file(drv->file) to use it, then fput
//   Release     the driver's ->release: [fput(drv->file)], drop the pointer
import { z } from "zod";
import { defineSpec } from "../../checker/spec.ts";
import { fileSchema, fput, freeFile, getFile, isDying, newFile } from "../kernel/file.ts";

export default defineSpec({
  name: "tutorial/cached-file",
  summary: "a driver keeps the struct file an ioctl names, for a worker to use later",
  source: "README tutorial",
  params: z.object({ design: z.enum(["borrowed", "pinned"]).default("pinned") }),
  state: () =>
    z.object({
      fd: z.boolean(), // the fd is open: the fd table holds one reference
      file: fileSchema({ maxCount: 3 }),
      stored: z.boolean(), // drv->file points at the file
      pinned: z.boolean(), // ... and the driver holds a reference through it
      worked: z.boolean(),
    }),
  init: () => ({ fd: true, file: newFile(), stored: false, pinned: false, worked: false }),
  actions: (p) => ({
    SetFile: {
      thread: "ioctl",
      kernel: "fdget; drv->file = f.file; get_file (pinned); fdput",
      when: (s) => s.fd && !s.stored,
      then: (s) => {
        s.stored = true;
        if (p.design === "pinned") {
          getFile(s.file, "the ioctl's file");
          s.pinned = true;
        }
      },
    },
    CloseFd: { thread: "close", kernel: "close -> fput", when: (s) => s.fd, then: (s) => { s.fd = false; fput(s.file, "the fd's file"); } },
    Fput: { thread: "task_work", kernel: "__fput", when: (s) => isDying(s.file), then: (s) => freeFile(s.file, "the file") },
    Work: {
      thread: "worker",
      kernel: "get_file(drv->file); ...; fput",
      when: (s) => s.stored && !s.worked,
      then: (s) => {
        getFile(s.file, "drv->file");
        fput(s.file, "drv->file");
        s.worked = true;
      },
    },
    Release: {
      thread: "task_work",
      kernel: "drv->release: fput(drv->file) (pinned)",
      when: (s) => s.stored,
      then: (s) => {
        if (s.pinned) fput(s.file, "drv->file");
        s.stored = s.pinned = false;
      },
    },
  }),
  // Who holds the file's counted references: the fd table, and the driver when pinned.
  ownership: {
    file: {
      count: (s) => s.file.count,
      live: (s) => s.file.state === "live",
      holders: { fd: (s) => s.fd, driver: (s) => s.pinned },
      // drv->file without a reference (the borrowed design): drawn, not counted.
      weak: { driver: (s) => s.stored && !s.pinned },
    },
  },
  // Once the fd is closed, the file is freed, provided the deferred __fput gets to run.
  liveness: { freedOnceClosed: { leadsTo: [(s) => !s.fd, (s) => s.file.state === "freed"] } },
  fairness: { weak: [{ thread: "task_work" }] },
  reachable: { workAfterClose: (s) => s.worked && !s.fd },
  // The buggy design is shipped on purpose: its failure is expected, and a change is news.
  expected: [{ when: { design: "borrowed" }, violated: { noFault: { steps: 3, message: "get_file on dying drv->file" } } }],
});
