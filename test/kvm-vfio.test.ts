// Verdicts of the KVM/VFIO ownership models: every design's expected result and the length
// of its shortest counterexample, so a checker change that flips one fails CI.
import { test } from "node:test";
import assert from "node:assert/strict";
import { check, type Verdict } from "../checker/index.ts";
import filePinning from "../specs/kvm-vfio/file-pinning.ts";
import vmPinning, { designs } from "../specs/kvm-vfio/vm-pinning.ts";
import { actionLabels as actionsOf, expectVerdict as expectShared, prop, type Violation } from "./support/expect.ts";

// Traces are compared with parameters: "FileAdd(0)".
const expectVerdict = (v: Verdict, violations: Violation[]) => expectShared(v, violations, { labels: true });

const incFromZero = /file_ref_inc\(\) on a released file reference/;

test("file-pinning: get_file_active holds everything", () => {
  for (const devices of [1, 2, 3]) {
    const v = check(filePinning, { design: "get_file_active", devices }, { validate: true });
    expectVerdict(v, []);
    assert.equal(prop(v, "vfioHoldsLastVmRef").status, "reachable");
  }
});

test("file-pinning: plain get_file is IncFromZero in 2 steps (CloseVm, FileAdd)", () => {
  for (const devices of [1, 2, 3]) {
    const v = check(filePinning, { design: "get_file", devices }, { validate: true });
    expectVerdict(v, [{ property: "noFault", length: 2, actions: ["CloseVm", "FileAdd(0)"], message: incFromZero }]);
    assert.equal(prop(v, "noFault").trace?.steps.at(-1)?.fault !== undefined, true);
  }
});

// What a design-2/3-no-patch1 or design-1/3 (two modules) run looks like: every KVM fd
// closed and released, the module unloaded, then VFIO's release drops the last kvm ref.
const moduleRun = (mod: string): Partial<Violation> => ({
  length: 10,
  includes: ["FileAdd(0)", "Bind(0)", "CloseVm", "ReleaseVm", "CloseKvmVfioDev", "ReleaseKvmVfioDev", "CloseDevKvm", `Rmmod(${mod})`, "CloseVfio(0)"],
  last: "ReleaseVfio(0)",
  message: new RegExp(`calls into unloaded module ${mod}$`),
});

// The same runs seen as liveness: every fd closed, the run stops where VFIO's release faults
// (no state there is quiescent, so noLeak holds), with the VM never freed.
const stops = (length: number): Violation => ({ property: "freedOnceClosed", length, message: /every step enabled there faults \(ReleaseVfio\(i=0\)\)/ });

type Expected = Record<(typeof designs)[number], Violation[]>;

const oneModule: Expected = {
  "1-symbol_get": [],
  "2-helpers": [
    { property: "noFault", ...moduleRun("kvm") } as Violation,
    { property: "vfioPointersIntoLoadedModules", length: 8, last: "Rmmod(kvm)" },
    stops(10),
  ],
  "3-module_get": [],
  "3-no-patch1": [
    { property: "noFault", ...moduleRun("kvm") } as Violation,
    { property: "vfioPointersIntoLoadedModules", length: 8, last: "Rmmod(kvm)" },
    stops(10),
  ],
  "3-vfio-module": [
    { property: "noFault", ...moduleRun("kvm") } as Violation,
    { property: "vfioPointersIntoLoadedModules", length: 8, last: "Rmmod(kvm)" },
    stops(10),
  ],
  // module_put first opens a window between the two halves of the put.
  "3-put-swapped": [
    { property: "noFault", ...moduleRun("kvm"), length: 11, includes: ["CloseVfio(0)", "ReleaseVfio(0)", "Rmmod(kvm)"] } as Violation,
    { property: "vfioPointersIntoLoadedModules", length: 10, last: "Rmmod(kvm)" },
    stops(11),
  ],
  "4-get_file_active": [],
  "4a-get_file": [{ property: "noFault", length: 2, actions: ["CloseVm", "FileAdd(0)"], message: incFromZero }],
  "4b-uncleared": [
    { property: "rightVmFile", length: 4, actions: ["CloseVm", "ReleaseVm", "Reuse", "FileAdd(0)"] },
    // VFIO then pins the foreign file past kvm_destroy_vm.
    { property: "kvmFreedUnreferenced", length: 7, includes: ["Reuse", "FileAdd(0)", "Bind(0)"] },
  ],
  "4c-strong": [
    { property: "noLeak", length: 6, includes: ["CloseVm", "CloseDevKvm", "ReleaseKvmVfioDev", "ReleaseVfio(0)"] },
    { property: "freedOnceClosed", length: 6, message: /the run stops at step \d+ \(no action can run\) and stays there forever/ },
  ],
  "4d-unlocked-read": [
    { property: "noFault", length: 5, actions: ["FileAdd(0)", "CloseVm", "Bind(0)", "FileDel(0)", "Bind(0)"], message: incFromZero },
    // With reuse the late get_file pins whatever file took the slot.
    { property: "rightVmFile", length: 7, includes: ["FileDel(0)", "ReleaseVm", "Reuse"], last: "Bind(0)" },
    { property: "kvmFreedUnreferenced", length: 8, includes: ["ReleaseKvmVfioDev", "ReleaseVm", "Reuse"], last: "Bind(0)" },
  ],
  "5-pass-file": [],
};

const twoModules: Expected = {
  ...oneModule,
  "1-symbol_get": [{ property: "noFault", ...moduleRun("kvm_intel") } as Violation, stops(10)],
  "2-helpers": [
    { property: "noFault", ...moduleRun("kvm_intel") } as Violation,
    { property: "vfioPointersIntoLoadedModules", length: 9, last: "Rmmod(kvm)", includes: ["Rmmod(kvm_intel)"] },
    stops(11),
  ],
  "3-module_get": [{ property: "noFault", ...moduleRun("kvm_intel") } as Violation, stops(10)],
  "3-no-patch1": [
    { property: "noFault", ...moduleRun("kvm_intel") } as Violation,
    { property: "vfioPointersIntoLoadedModules", length: 9, last: "Rmmod(kvm)", includes: ["Rmmod(kvm_intel)"] },
    stops(11),
  ],
  "3-vfio-module": [
    { property: "noFault", ...moduleRun("kvm_intel") } as Violation,
    { property: "vfioPointersIntoLoadedModules", length: 9, last: "Rmmod(kvm)", includes: ["Rmmod(kvm_intel)"] },
    stops(11),
  ],
  "3-put-swapped": [
    { property: "noFault", ...moduleRun("kvm_intel"), length: 11 } as Violation,
    { property: "vfioPointersIntoLoadedModules", length: 11, last: "Rmmod(kvm)", includes: ["Rmmod(kvm_intel)", "ReleaseVfio(0)"] },
    stops(12),
  ],
};

for (const [modules, expected] of [["one", oneModule], ["two", twoModules]] as const) {
  for (const design of designs) {
    test(`vm-pinning: design ${design}, ${modules} module(s)`, () => {
      const v = check(vmPinning, { design, modules }, { validate: true });
      expectVerdict(v, expected[design]);
      // Every design lets a bound VFIO device outlive all KVM fds (the brief's witness).
      assert.equal(prop(v, "vfioHoldsLastVmRef").status, "reachable", `${design}: witness`);
    });
  }
}

// v5.18-v6.6 (5f6de5cbebee .. ea61294befd3): struct kvm pins kvm_chardev_ops.owner until the
// end of kvm_destroy_vm, so no module can go while VFIO keeps the VM alive; but when VFIO's
// release ran kvm_destroy_vm, its return after that module_put is kvm.ko text (Al Viro's
// window). Designs that pin kvm.ko across the put (1's symbol_get, 3's try_module_get) hold;
// the others oops on the return. The file-pinning variants keep their own faults.
const returnFault = /^BUG: unable to handle page fault: return from module_put\(kvm_chardev_ops\.owner\) into kvm_destroy_vm calls into unloaded module kvm$/;
const oldEraRun = (modules: "one" | "two", extra = 0): Partial<Violation> => {
  const rmmod = modules === "two" ? ["Rmmod(kvm_intel)", "Rmmod(kvm)"] : ["Rmmod(kvm)"];
  return {
    length: (modules === "two" ? 12 : 11) + extra,
    includes: ["FileAdd(0)", "Bind(0)", "ReleaseVm", "ReleaseKvmVfioDev", "CloseDevKvm", "CloseVfio(0)", ...rmmod],
    last: "ReleaseVfio(0)",
    message: returnFault,
  };
};
const oldEra = (modules: "one" | "two"): Expected => ({
  ...oneModule,
  "2-helpers": [{ property: "noFault", ...oldEraRun(modules) } as Violation, stops(modules === "two" ? 12 : 11)],
  "3-no-patch1": [{ property: "noFault", ...oldEraRun(modules) } as Violation, stops(modules === "two" ? 12 : 11)],
  "3-vfio-module": [{ property: "noFault", ...oldEraRun(modules) } as Violation, stops(modules === "two" ? 12 : 11)],
  // module_put(kvm.ko) first, then the put that destroys: one step more.
  "3-put-swapped": [{ property: "noFault", ...oldEraRun(modules, 1) } as Violation, stops(modules === "two" ? 13 : 12)],
});

for (const modules of ["one", "two"] as const) {
  for (const design of designs) {
    test(`vm-pinning: design ${design}, ${modules} module(s), era v5.18-v6.6`, () => {
      const v = check(vmPinning, { design, modules, era: "v5.18-v6.6" }, { validate: true });
      expectVerdict(v, oldEra(modules)[design]);
      assert.equal(v.configuration, `modules=${modules} era=v5.18-v6.6`);
      assert.equal(prop(v, "vfioHoldsLastVmRef").status, "reachable", `${design}: witness`);
    });
  }
}

test("vm-pinning: design 1 and 3 with two modules hold on v5.18-v6.6 and fail on v6.7+", () => {
  for (const design of ["1-symbol_get", "3-module_get"] as const) {
    expectVerdict(check(vmPinning, { design, modules: "two", era: "v5.18-v6.6" }), []);
    expectVerdict(check(vmPinning, { design, modules: "two", era: "v6.7+" }), twoModules[design]);
  }
});

test("vm-pinning: design 2 fails on both kernels, on v5.18-v6.6 by the return into kvm.ko", () => {
  for (const modules of ["one", "two"] as const) {
    const old = check(vmPinning, { design: "2-helpers", modules, era: "v5.18-v6.6" });
    expectVerdict(old, oldEra(modules)["2-helpers"]);
    // The oops comes after the module_put that dropped the VM's pin and the unloads.
    const acts = actionsOf(prop(old, "noFault"));
    assert.deepEqual(acts.slice(-(modules === "two" ? 4 : 3)),
      [...["ReleaseVfio(0)"], ...(modules === "two" ? ["Rmmod(kvm_intel)", "Rmmod(kvm)"] : ["Rmmod(kvm)"]), "ReleaseVfio(0)"]);
    expectVerdict(check(vmPinning, { design: "2-helpers", modules, era: "v6.7+" }), (modules === "one" ? oneModule : twoModules)["2-helpers"]);
  }
});

test("vm-pinning: the return step exists only on v5.18-v6.6; v6.7+ verdicts keep their traces", () => {
  for (const design of designs) {
    for (const modules of ["one", "two"] as const) {
      const v = check(vmPinning, { design, modules, era: "v6.7+" });
      expectVerdict(v, (modules === "one" ? oneModule : twoModules)[design]);
      for (const p of v.properties) assert.doesNotMatch(p.message ?? "", /return from module_put/, `${design} ${modules}`);
    }
  }
});

test("vm-pinning: two VFIO devices give the same verdicts, with and without symmetry", () => {
  for (const modules of ["one", "two"] as const) {
    for (const design of designs) {
      const plain = check(vmPinning, { design, modules, devices: 2 });
      const sym = check(vmPinning, { design, modules, devices: 2 }, { symmetry: true });
      const summary = (v: Verdict) => v.properties.map((p) => `${p.name}:${p.status}:${p.trace?.length ?? "-"}`);
      assert.deepEqual(summary(sym), summary(plain), `${design}, ${modules}: symmetry changed the verdict`);
      // Only the traces that close every fd grow: 4c's leak, and the lassos (by the second device's close and release).
      const want = (modules === "one" ? oneModule : twoModules)[design].map((x) =>
        x.property === "noLeak" ? { ...x, length: 8, includes: undefined }
        : x.property === "freedOnceClosed" ? { ...x, length: x.length! + 2 }
        : x,
      );
      expectVerdict(plain, want);
    }
  }
});

test("vm-pinning: 4b needs slab reuse to go wrong", () => {
  const v = check(vmPinning, { design: "4b-uncleared", reuse: 0 }, { validate: true });
  expectVerdict(v, []);
});

// Speed is the benchmark's job; this only keeps the state space small enough for CI.
test("vm-pinning: every model stays small with two devices", () => {
  for (const design of designs) {
    const v = check(vmPinning, { design, modules: "two", devices: 2 });
    assert.ok(v.stats.distinctStates < 10_000, `${design}: ${v.stats.distinctStates} states`);
  }
});

test("vm-pinning: with two devices every design still reads as its spec expects (the liveness counterexamples grow by two steps a device)", () => {
  for (const modules of ["one", "two"] as const) {
    for (const era of ["v6.7+", "v5.18-v6.6"] as const) {
      for (const design of designs) {
        const v = check(vmPinning, { design, modules, era, devices: 2 });
        assert.equal(v.expectation?.status, "as-expected", `${design} ${modules} ${era}: ${JSON.stringify(v.expectation)}`);
      }
    }
  }
});
