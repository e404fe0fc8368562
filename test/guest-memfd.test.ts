// Verdicts of the guest_memfd models (brief design 6): each design's expected result, the
// length of each shortest counterexample or witness, and the actions that make it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { check, type Verdict } from "../checker/index.ts";
import { actionNames as actions, prop, type PropertyResult } from "./support/expect.ts";
import ownership, { designs as ownershipDesigns } from "../specs/guest-memfd/ownership.ts";
import lockOrder, { designs as lockOrderDesigns } from "../specs/guest-memfd/lock-order.ts";


interface Expect {
  /** Property name -> expected status; properties not listed must not fail. */
  status: Record<string, PropertyResult["status"]>;
  /** Property name -> the trace: its exact actions, or its length and the actions it contains. */
  traces?: Record<string, string[] | { length: number; includes: string[]; last: string }>;
  message?: Record<string, RegExp>;
}

function expectVerdict(v: Verdict, e: Expect): void {
  const where = `${v.spec} [${v.design}]`;
  assert.equal(v.complete, true, `${where}: search incomplete`);
  for (const [name, status] of Object.entries(e.status)) assert.equal(prop(v, name).status, status, `${where}: ${name}`);
  for (const p of v.properties) {
    if (!(p.name in e.status)) assert.equal(p.failed, false, `${where}: ${p.name} unexpectedly ${p.status}`);
  }
  for (const [name, t] of Object.entries(e.traces ?? {})) {
    const got = actions(prop(v, name));
    if (Array.isArray(t)) {
      assert.deepEqual(got, t, `${where}: ${name} trace`);
      assert.equal(prop(v, name).trace!.length, t.length);
    } else {
      assert.equal(got.length, t.length, `${where}: ${name} trace length (${got.join(" · ")})`);
      for (const a of t.includes) assert.ok(got.includes(a), `${where}: ${name} trace lacks ${a} (${got.join(" · ")})`);
      assert.equal(got.at(-1), t.last, `${where}: ${name} trace ends with ${got.at(-1)}`);
    }
  }
  for (const [name, re] of Object.entries(e.message ?? {})) assert.match(prop(v, name).message ?? "", re, `${where}: ${name} message`);
  assert.equal(v.outcome, v.properties.some((p) => p.failed) ? "fail" : "pass");
}

const vmOutlivesFd = ["CreateGmem", "CloseVm", "ReleaseVm"];

const ownershipExpected: Record<(typeof ownershipDesigns)[number], Expect> = {
  // 6a: holds; the VM outlives its fd while the gmem fd is open (the "false handle").
  "gmem-pins-kvm": {
    status: { noFault: "holds", noDanglingSlotFile: "holds", noDanglingGmemKvm: "holds", noLeak: "holds", vmOutlivesFd: "reachable" },
    traces: { vmOutlivesFd },
  },
  // kvm_gmem_unbind before ae431059e75d: release writes to a memslot freed while the file was dying.
  "gmem-pins-kvm-unbind-skips-dying": {
    // The faulting release never frees the gmem file or the VM: the run stops there.
    status: { noFault: "violated", vmOutlivesFd: "reachable", freedOnceClosed: "violated" },
    traces: {
      noFault: ["CreateGmem", "BindSlot", "CloseGmem", "DeleteSlot", "ReleaseGmem"], vmOutlivesFd,
      freedOnceClosed: { length: 6, includes: ["CloseGmem", "DeleteSlot", "CloseVm"], last: "ReleaseVm" },
    },
    message: { noFault: /slab-use-after-free in kvm_gmem_release/, freedOnceClosed: /every step enabled there faults \(ReleaseGmem\)/ },
  },
  // 6b, reference-only: holds, and the VM dies with its fd.
  "memslot-pins-gmem": {
    status: { noFault: "holds", noDanglingSlotFile: "holds", noDanglingGmemKvm: "holds", noLeak: "holds", vmOutlivesFd: "unreachable" },
  },
  // 6b with kvm_destroy_vm phases: PUNCH_HOLE zaps through an MMU already torn down.
  "memslot-pins-gmem-phased": {
    status: { noFault: "violated", noLeak: "holds", vmOutlivesFd: "unreachable" },
    traces: { noFault: ["CreateGmem", "BindSlot", "CloseVm", "ReleaseVm", "PunchHole"] },
    // Labelled as the model's assumption, not a kernel message (domain review U9).
    message: { noFault: /^model's assumption: .*kvm_arch_destroy_vm/ },
  },
  // 6c: reference cycle, nothing frees struct kvm once every fd is closed.
  both: {
    status: { noFault: "holds", noLeak: "violated", vmOutlivesFd: "reachable", freedOnceClosed: "violated" },
    traces: {
      noLeak: { length: 5, includes: ["CreateGmem", "BindSlot", "CloseGmem", "CloseVm", "ReleaseVm"], last: "ReleaseVm" },
      freedOnceClosed: { length: 5, includes: ["CreateGmem", "BindSlot", "CloseGmem", "CloseVm", "ReleaseVm"], last: "ReleaseVm" },
      vmOutlivesFd,
    },
    message: { freedOnceClosed: /the run stops at step 5 \(no action can run\)/ },
  },
};

for (const design of ownershipDesigns) {
  test(`guest-memfd/ownership [${design}]`, () => {
    expectVerdict(check(ownership, { design }), ownershipExpected[design]);
  });
}

const dyingFileUnbound = ["CloseGmem", "memslotDelete.lockSlots"];
// The dependency that closes the cycle: memslot delete takes the invalidate lock under slots_lock.
const lockdepTrace = ["memslotDelete.lockSlots", "memslotDelete.lockInvalidate"];
const lockdepMessage = /^possible circular locking dependency detected: slots_lock taken while holding invalidate_lock \(thread 2, in gmemRelease\.second\); and invalidate_lock taken while holding slots_lock \(thread 1, in memslotDelete\.lockInvalidate\)$/;

const lockOrderExpected: Record<(typeof lockOrderDesigns)[number], Expect> = {
  // Current kvm_gmem_unbind: a dying file is unbound under slots_lock alone.
  "slots-lock-first": {
    status: { noFault: "holds", noDeadlock: "holds", lockOrder: "holds", gmemReleased: "holds", dyingFileUnbound: "reachable" },
    traces: { dyingFileUnbound },
  },
  // The seed's order alone does not deadlock: unbind skips a dying file, and bind holds a
  // file reference, so release never overlaps them. It has the dying-file UAF instead.
  "invalidate-lock-first": {
    // The release never completes: the run stops where its body faults, the file never freed.
    status: { noFault: "violated", noDeadlock: "holds", lockOrder: "violated", dyingFileUnbound: "unreachable", freedOnceClosed: "violated" },
    traces: {
      noFault: ["CloseGmem", "memslotDelete.lockSlots", "memslotDelete.finish", "gmemRelease.first", "gmemRelease.second", "gmemRelease.body"],
      lockOrder: lockdepTrace,
      freedOnceClosed: ["CloseGmem", "memslotDelete.lockSlots", "memslotDelete.finish", "gmemRelease.first", "gmemRelease.second"],
    },
    message: {
      noFault: /slab-use-after-free in kvm_gmem_release: Write of slot->gmem\.file after kfree/, lockOrder: lockdepMessage,
      freedOnceClosed: /the run stops at step 5 \(no action can run: every step enabled there faults \(gmemRelease\.body\)\)/,
    },
  },
  // The seed's order with today's unbind (virt/kvm/guest_memfd.c:kvm_gmem_unbind): the
  // invalidate lock is taken only under a file reference, when release cannot run, so no
  // ABBA. The model before this fix locked a dying file's invalidate lock and deadlocked in 3.
  // Lockdep still reports the order (release: invalidate_lock then slots_lock; memslot
  // updates: the reverse), a possible circular dependency although this model never deadlocks.
  "invalidate-lock-first-current-unbind": {
    status: { noFault: "holds", noDeadlock: "holds", lockOrder: "violated", gmemReleased: "holds", dyingFileUnbound: "reachable" },
    traces: { dyingFileUnbound, lockOrder: lockdepTrace },
    message: { lockOrder: lockdepMessage },
  },
};

for (const design of lockOrderDesigns) {
  test(`guest-memfd/lock-order [${design}]`, () => {
    expectVerdict(check(lockOrder, { design }), lockOrderExpected[design]);
  });
}

test("guest-memfd models stay small", () => {
  for (const design of ownershipDesigns) assert.ok(check(ownership, { design, slots: 3 }).stats.distinctStates < 5000);
  for (const design of lockOrderDesigns) assert.ok(check(lockOrder, { design }).stats.distinctStates < 1000);
});
