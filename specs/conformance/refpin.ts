// Conformance model RefPin(N, VARIANT), implemented to the letter of RefPin.md so that
// refcheck's counts (distinct states, depth, shortest counterexample) can be compared
// number for number with other model checkers. Do not "improve" it: same variables,
// same atomic actions, same macro order. Faults are recorded in `err` (first fault only),
// not thrown, exactly as the reference text says; Safe is the invariant err = 0.
import { z } from "zod";
import { defineSpec } from "../../checker/spec.ts";

const params = z.object({
  N: z.number().int().min(1).max(7).default(3),
  variant: z.enum(["active", "plain"]).default("active"),
});
type P = z.infer<typeof params>;

const stateOf = (p: P) =>
  z.object({
    vmFd: z.boolean(),
    vmRef: z.number().int().min(0).max(2 * p.N + 1),
    vmState: z.number().int().min(0).max(2),
    kvmUsers: z.number().int().min(0).max(2),
    kvmFreed: z.boolean(),
    devFd: z.boolean(),
    err: z.number().int().min(0).max(3),
    df: z
      .array(
        z.object({
          fd: z.boolean(),
          ref: z.number().int().min(0).max(2),
          freed: z.boolean(),
          kvf: z.boolean(),
          assoc: z.boolean(),
          bound: z.boolean(),
          pin: z.boolean(),
        }),
      )
      .length(p.N),
  });
type S = z.infer<ReturnType<typeof stateOf>>;

// Macros, run inside the step that calls them, in the order written.
function fault(s: S, e: number): void {
  if (s.err === 0) s.err = e;
}
function vmGet(s: S): void {
  if (s.vmState === 2) fault(s, 1);
  else if (s.vmRef === 0) fault(s, 2);
  else s.vmRef = s.vmRef + 1;
}
function vmGetActive(s: S): boolean {
  if (s.vmRef > 0) {
    s.vmRef = s.vmRef + 1;
    return true;
  }
  return false;
}
function vmPut(s: S): void {
  if (s.vmRef === 0) fault(s, 3);
  else {
    s.vmRef = s.vmRef - 1;
    if (s.vmRef === 0) s.vmState = 1;
  }
}
function kvmPut(s: S): void {
  if (s.kvmUsers === 0) fault(s, 3);
  else {
    s.kvmUsers = s.kvmUsers - 1;
    if (s.kvmUsers === 0) s.kvmFreed = true;
  }
}
function dfGet(s: S, i: number): void {
  const d = s.df[i - 1];
  if (d.freed) fault(s, 1);
  else if (d.ref === 0) fault(s, 2);
  else d.ref = d.ref + 1;
}
function dfPut(s: S, i: number): void {
  const d = s.df[i - 1];
  if (d.ref === 0) fault(s, 3);
  else {
    d.ref = d.ref - 1;
    if (d.ref === 0) {
      d.freed = true;
      if (d.bound) {
        d.bound = false;
        if (d.pin) {
          d.pin = false;
          vmPut(s);
        }
      }
    }
  }
}
/** vfio_kvm_file_replace on file i. */
function setKvm(s: S, p: P, i: number, attach: boolean): void {
  let fresh = false;
  if (attach) {
    if (s.kvmFreed) fault(s, 1);
    else if (p.variant === "active") fresh = vmGetActive(s);
    else {
      vmGet(s);
      fresh = true;
    }
  }
  const d = s.df[i - 1];
  const old = d.assoc;
  d.assoc = fresh;
  if (old) vmPut(s);
}

const devices = (p: P) => Array.from({ length: p.N }, (_, k) => k + 1);

// Footprints for --por. Every action can write vmRef or err, and the invariants read both,
// so every action is visible and the reduction leaves RefPin's state space as it is.
const vm = ["vmRef", "vmState", "err"];
const dev = (a: Record<string, unknown>) => [`df[${Number(a.i) - 1}]`];

export default defineSpec({
  name: "conformance/refpin",
  summary: "RefPin(N, VARIANT): the VM file pinned through kvm->_file, fixed to the letter for cross-checker counts",
  source: "RefPin.md (conformance model); seed 000_c0bd9b432b2ea1fa.txt",
  params,
  designParam: "variant",
  state: stateOf,
  init: (p) => ({
    vmFd: true,
    vmRef: 1,
    vmState: 0,
    kvmUsers: 2,
    kvmFreed: false,
    devFd: true,
    err: 0,
    df: Array.from({ length: p.N }, () => ({ fd: true, ref: 1, freed: false, kvf: false, assoc: false, bound: false, pin: false })),
  }),
  actions: (p) => ({
    CloseVm: {
      reads: ["vmFd", ...vm],
      writes: ["vmFd", ...vm],
      when: (s) => s.vmFd,
      then: (s) => {
        s.vmFd = false;
        vmPut(s);
      },
    },
    ReleaseVm: {
      reads: ["vmState", "kvmUsers", "err"],
      writes: ["vmState", "kvmUsers", "kvmFreed", "err"],
      when: (s) => s.vmState === 1,
      then: (s) => {
        s.vmState = 2;
        kvmPut(s);
      },
    },
    CloseDev: {
      reads: ["devFd", "df", "kvmUsers", ...vm],
      writes: ["devFd", "df", "kvmUsers", "kvmFreed", ...vm],
      when: (s) => s.devFd,
      then: (s) => {
        s.devFd = false;
        for (let i = 1; i <= p.N; i++) {
          if (s.df[i - 1].kvf) {
            setKvm(s, p, i, false);
            s.df[i - 1].kvf = false;
            dfPut(s, i);
          }
        }
        kvmPut(s);
      },
    },
    FileAdd: {
      each: { i: devices(p) },
      reads: (a) => ["devFd", "kvmFreed", ...dev(a), ...vm],
      writes: (a) => [...dev(a), ...vm],
      when: (s, { i }) => s.devFd && s.df[i - 1].fd && !s.df[i - 1].kvf,
      then: (s, { i }) => {
        dfGet(s, i);
        s.df[i - 1].kvf = true;
        setKvm(s, p, i, true);
      },
    },
    FileDel: {
      each: { i: devices(p) },
      reads: (a) => ["devFd", ...dev(a), ...vm],
      writes: (a) => [...dev(a), ...vm],
      when: (s, { i }) => s.devFd && s.df[i - 1].fd && s.df[i - 1].kvf,
      then: (s, { i }) => {
        setKvm(s, p, i, false);
        s.df[i - 1].kvf = false;
        dfPut(s, i);
      },
    },
    Bind: {
      each: { i: devices(p) },
      reads: (a) => [...dev(a), ...vm],
      writes: (a) => [...dev(a), ...vm],
      when: (s, { i }) => s.df[i - 1].fd && !s.df[i - 1].bound,
      then: (s, { i }) => {
        const d = s.df[i - 1];
        d.bound = true;
        if (d.assoc) {
          d.pin = true;
          vmGet(s);
        }
      },
    },
    Unbind: {
      each: { i: devices(p) },
      reads: (a) => [...dev(a), ...vm],
      writes: (a) => [...dev(a), ...vm],
      when: (s, { i }) => s.df[i - 1].fd && s.df[i - 1].bound,
      then: (s, { i }) => {
        const d = s.df[i - 1];
        d.bound = false;
        if (d.pin) {
          d.pin = false;
          vmPut(s);
        }
      },
    },
    CloseDf: {
      each: { i: devices(p) },
      reads: (a) => [...dev(a), ...vm],
      writes: (a) => [...dev(a), ...vm],
      when: (s, { i }) => s.df[i - 1].fd,
      then: (s, { i }) => {
        s.df[i - 1].fd = false;
        dfPut(s, i);
      },
    },
  }),
  invariants: {
    Safe: { holds: (s) => s.err === 0, reads: ["err"] },
    VmRefExact: { reads: ["vmState", "vmRef", "vmFd", "df"], holds: (s) => {
      if (s.vmState !== 0) return true;
      let n = s.vmFd ? 1 : 0;
      for (const d of s.df) n += (d.assoc ? 1 : 0) + (d.pin ? 1 : 0);
      return s.vmRef === n;
    } },
    NoLeak: { reads: ["vmFd", "devFd", "df", "vmState", "kvmFreed"], holds: (s) => {
      const closed = !s.vmFd && !s.devFd && s.df.every((d) => !d.fd) && s.vmState !== 1;
      return !closed || (s.kvmFreed && s.vmState === 2 && s.df.every((d) => d.freed));
    } },
  },
  symmetry: (s) => s.df,
  expected: [
    {
      when: { variant: "plain" },
      violated: { Safe: { steps: 2 } },
      doc: "plain get_file of the VM file: FILE_ADD after the VM fd's close takes a reference on a dying file",
    },
  ],
});
