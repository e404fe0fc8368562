// Threads: a kernel call that is not atomic as a whole becomes a record with a program
// counter (`pc`, "idle" when the thread is not inside the call) and locals. Its labelled
// steps are ordinary actions guarded on the pc, so they interleave with everything else.
import { z } from "zod";

export interface Thread {
  pc: string;
}

/**
 * Schema of a thread whose steps are `labels` (the resting pc "idle" is added first; with
 * `once`, also "done", where a thread that runs its call only once ends). A spec's `threads`
 * (checker/threads.ts) uses it for each thread's pc.
 */
export function threadSchema<L extends string, X extends z.ZodRawShape = {}>(labels: readonly L[], locals?: X, opts: { once?: boolean } = {}) {
  const pcs = (opts.once ? ["idle", ...labels, "done"] : ["idle", ...labels]) as ["idle", ...(L | "done")[]];
  return z.object({ pc: z.enum(pcs), ...(locals ?? ({} as X)) });
}

/** The first thread (by name) that is inside a call, for the spec's `busy`. */
export function firstBusy(threads: Record<string, Thread>): string | undefined {
  for (const [name, t] of Object.entries(threads)) if (t.pc !== "idle") return `${name} at ${t.pc}`;
  return undefined;
}
