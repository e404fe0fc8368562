// Verdicts of kvm/vendor-module: KVM's own users_count holders and the modules they pin.
import { test } from "node:test";
import assert from "node:assert/strict";
import { check } from "../checker/index.ts";
import vendorModule, { designs } from "../specs/kvm/vendor-module.ts";
import { actionLabels, expectVerdict, prop, type Violation } from "./support/expect.ts";

const expected: Record<(typeof designs)[number], Violation[]> = {
  // kvm_intel goes once every vendor-owned file is closed; a kvm.ko-owned file (stats or
  // debugfs) then drops the last reference and kvm_destroy_vm calls into the vendor text.
  "v6.7+": [{
    property: "noFault", length: 6,
    includes: ["CloseDevKvm", "Close(vm)", "Close(vcpu)", "Rmmod(kvm_intel)"],
    message: /kvm_destroy_vm -> kvm_arch_destroy_vm calls into unloaded module kvm_intel$/,
  }],
  // struct kvm pins kvm_intel until the end of kvm_destroy_vm, whose return into kvm.ko
  // then races both unloads (the window ea61294befd3 cites).
  "v5.18-v6.6": [{
    property: "noFault", length: 8,
    includes: ["Rmmod(kvm_intel)", "Rmmod(kvm)"], last: "ReturnFromDestroy",
    message: /kvm_destroy_vm \(called by kvm_\w+_release\) returns into kvm's text, freed by delete_module$/,
  }, {
    // Every fd closed, then the run stops at the faulting return: its file is never freed.
    property: "freedOnceClosed", length: 7, includes: ["Rmmod(kvm_intel)", "Rmmod(kvm)"],
    message: /the run stops at step 7 \(no action can run: every step enabled there faults \(ReturnFromDestroy\)\)/,
  }],
  "fix-vendor-fops": [],
  "fix-per-vm-pin": [],
};

for (const design of designs) {
  test(`kvm/vendor-module: ${design}`, () => {
    const v = check(vendorModule, { design }, { validate: true });
    expectVerdict(v, expected[design], { labels: true });
    const w = prop(v, "vendorGoneWhileVmLives");
    assert.equal(w.status, design === "v6.7+" ? "reachable" : "unreachable");
    if (design === "v6.7+") {
      assert.equal(w.trace?.length, 4);
      assert.equal(actionLabels(w).at(-1), "Rmmod(kvm_intel)");
    }
    assert.ok(v.stats.distinctStates < 200, `${design}: ${v.stats.distinctStates} states`);
  });
}

test("kvm/vendor-module v6.7+: the fault needs no VFIO and no race: the last holder is kvm.ko's", () => {
  const v = check(vendorModule, { design: "v6.7+" });
  const last = actionLabels(prop(v, "noFault")).at(-1);
  assert.ok(last === "Close(stats)" || last === "Close(debugfs)", String(last));
});
