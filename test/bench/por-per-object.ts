// Partial-order reduction against per-object invariants, measured on a shipped seed model
// (issue 14): kvm-vfio/file-pinning with footprints declared on every action (at the
// granularity of the state's objects) and reads on every invariant, run once with all its
// invariants and once with each per-device invariant alone. --por verifies the footprints
// as it runs (an action touching a field outside its declaration is a spec error), so the
// counts below are of the model as shipped, only with fewer properties.
//
//   node --import tsx test/bench/por-per-object.ts [devices] [design]
//
// Prints, per property set, the distinct states without and with --por.
import { fileURLToPath } from "node:url";
import spec from "../../specs/kvm-vfio/file-pinning.ts";
import { compile } from "../../checker/compile.ts";
import { explore } from "../../checker/explore.ts";
import type { Spec } from "../../checker/spec.ts";
import { fdInstalled, isLive } from "../../specs/kernel/file.ts";

type Args = { i: number };
type Footprint = readonly string[] | ((a: Args) => readonly string[]);
type Invariant = { reads: readonly string[]; holds: (s: any) => boolean };

const dev = (a: Args) => `vfio[${a.i}]`;
/** What each action's guard and effect read and write (checked under --por). */
const footprints: Record<string, { reads: Footprint; writes: Footprint }> = {
  CloseVm: { reads: ["vmFd", "vmFile"], writes: ["vmFd", "vmFile"] },
  ReleaseVm: { reads: ["vmFile", "vmFilePtr", "kvm"], writes: ["vmFile", "vmFilePtr", "kvm"] },
  CloseKvmVfioDev: { reads: ["kvmVfioFd", "kvmVfioFile"], writes: ["kvmVfioFd", "kvmVfioFile"] },
  ReleaseKvmVfioDev: {
    reads: ["kvmVfioFile", "kvmVfio", "kvm", "vfio", "vmFile"],
    writes: ["kvmVfioFile", "kvmVfio", "kvm", "vfio", "vmFile"],
  },
  FileAdd: { reads: (a) => ["kvmVfioFd", dev(a), "vmFilePtr", "vmFile"], writes: (a) => [dev(a), "vmFile"] },
  FileDel: { reads: (a) => ["kvmVfioFd", dev(a), "vmFile"], writes: (a) => [dev(a), "vmFile"] },
  Bind: { reads: (a) => [dev(a), "vmFile"], writes: (a) => [dev(a), "vmFile"] },
  CloseVfio: { reads: (a) => [dev(a)], writes: (a) => [dev(a)] },
  ReleaseVfio: { reads: (a) => [dev(a), "vmFile"], writes: (a) => [dev(a), "vmFile"] },
};

/** The spec's own invariants with their reads, and each per-device one split by device. */
function propertySets(devices: number): Record<string, Record<string, Invariant>> {
  const inv = (spec as any).invariants as Record<string, Invariant>;
  const perDevice = (name: string, holds: (v: any, s: any) => boolean, shared: string[]) =>
    Array.from({ length: devices }, (_, i) => [`${name}[${i}]`, { [`${name}[${i}]`]: { reads: [`vfio[${i}]`, ...shared], holds: (s: any) => holds(s.vfio[i], s) } }] as const);
  return {
    "all four": {
      assocPinsLiveVmFile: { ...inv.assocPinsLiveVmFile, reads: ["vfio", "vmFile"] },
      assocOnlyWithEntry: { ...inv.assocOnlyWithEntry, reads: ["vfio"] },
      kvmFreedUnreferenced: { ...inv.kvmFreedUnreferenced, reads: ["kvm", "vmFile", "kvmVfioFile", "vfio"] },
      vfioFileRefsExact: { ...inv.vfioFileRefsExact, reads: ["vfio"] },
    },
    ...Object.fromEntries([
      ...perDevice("assocOnlyWithEntry", (v) => !v.assoc || v.kvf, []),
      ...perDevice("vfioFileRefsExact", (v) => !isLive(v.file) || v.file.count === (fdInstalled(v.fd) ? 1 : 0) + (v.kvf ? 1 : 0), []),
      ...perDevice("assocPinsLiveVmFile", (v, s) => !(v.assoc || v.devRef) || isLive(s.vmFile), ["vmFile"]),
    ]),
  };
}

/** The shipped spec with footprints and only `invariants` as properties. */
function withFootprints(invariants: Record<string, Invariant>): Spec<any, any> {
  const base = spec as any;
  return {
    ...base,
    // Ownership adds invariants that read every field, which would make every action visible.
    ownership: undefined,
    liveness: undefined,
    fairness: undefined,
    reachable: undefined,
    quiescent: undefined,
    expected: undefined,
    invariants,
    actions: (p: unknown) => Object.fromEntries(Object.entries(base.actions(p)).map(([k, a]) => [k, { ...(a as object), ...footprints[k] }])),
  };
}

function main(): void {
  const devices = Number(process.argv[2] ?? 3), design = process.argv[3] ?? "get_file_active";
  console.log(`kvm-vfio/file-pinning devices=${devices} design=${design}: distinct states without and with --por`);
  for (const [name, invariants] of Object.entries(propertySets(devices))) {
    const counts = [false, true].map((por) => {
      const r = explore(compile(withFootprints(invariants), { devices, design }), { por });
      return `${r.distinct.toLocaleString("en-US")}${por && !r.por ? ` (not applied: ${r.porOff})` : ""}`;
    });
    console.log(`  ${name.padEnd(24)} ${counts[0].padStart(8)}  ${counts[1]}`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
