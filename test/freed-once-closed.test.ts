// The liveness property of the ownership models against their quiescent leak checks: for
// every design of every shipped spec that declares `ownership`, freedOnceClosed ("once every
// fd is closed, everything is eventually freed", specs/kernel/lifetime.ts) is violated exactly
// where a quiescent leak check (the spec's noLeak, <object>NoLeak) is, with one explained
// exception: a run that stops in a state that is not quiescent, because every step enabled
// there faults or a thread is deadlocked. The release never completes there; noFault or
// noDeadlock reports why, and a quiescent check does not look (something is enabled, or a
// thread is mid-call). A run that cycles forever without freeing would be a third kind, a
// livelock neither check names: no shipped design has one.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadSpecs } from "../bin/load.ts";
import { check, designAssignments, type Verdict } from "../checker/index.ts";
import { prop } from "./support/expect.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const owned = (await loadSpecs([path.join(root, "specs")])).filter(({ spec }) => spec.ownership !== undefined);

const stops = /the run stops at step \d+ \((no action can run(?:: every step enabled there faults|: deadlock)?)/;

/** "leak", "fault", "deadlock" or "holds": how the run's freedOnceClosed verdict is explained. */
function judge(v: Verdict): string {
  const where = `${v.spec} ${JSON.stringify(v.params)}`;
  const live = prop(v, "freedOnceClosed");
  assert.equal(live.kind, "liveness", where);
  assert.ok(live.status === "holds" || live.status === "violated", `${where}: freedOnceClosed ${live.status}`);
  const leaks = v.properties.filter((p) => p.kind === "quiescent" && p.failed);
  if (!live.failed) {
    assert.deepEqual(leaks.map((p) => p.name), [], `${where}: a leak check fails, freedOnceClosed holds`);
    return "holds";
  }
  const t = live.trace!;
  // Every violation in the shipped models is a run that stops for good, never a cycle.
  assert.equal(t.loop, t.length, `${where}: a lasso with a cycle (${live.message})`);
  const why = stops.exec(live.message ?? "")?.[1];
  assert.ok(why, `${where}: ${live.message}`);
  if (leaks.length) {
    assert.equal(why, "no action can run", `${where}: a leak is a quiescent state`);
    // The leaking state is itself such a stop, so the lasso is no longer than the shortest leak.
    for (const p of leaks) assert.ok(t.length <= p.trace!.length, `${where}: lasso ${t.length} > ${p.name} ${p.trace!.length}`);
    return "leak";
  }
  const kind = why.endsWith("faults") ? "fault" : why.endsWith("deadlock") ? "deadlock" : "quiescent";
  assert.notEqual(kind, "quiescent", `${where}: the run stops in a quiescent state, yet no leak check fails`);
  assert.equal(prop(v, kind === "fault" ? "noFault" : "noDeadlock").status, "violated", `${where}: stops at a ${kind} nobody reports`);
  return kind;
}

test("every ownership model is checked", () => {
  assert.deepEqual(owned.map(({ spec }) => spec.name).sort(), [
    "guest-memfd/lock-order", "guest-memfd/ownership", "iommufd-tsm/kvm-file", "kvm-vfio/destroy-era", "kvm-vfio/file-pinning",
    "kvm-vfio/group-path", "kvm-vfio/two-vms", "kvm-vfio/vm-pinning", "kvm/vendor-module", "tutorial/cached-file",
  ]);
});

// Per spec: the runs whose violation is a leak, and those stopped by a fault or a deadlock.
const explained: Record<string, { leak?: string[]; fault?: string[]; deadlock?: string[] }> = {
  "guest-memfd/lock-order": { fault: ["invalidate-lock-first"] },
  "guest-memfd/ownership": { leak: ["both"], fault: ["gmem-pins-kvm-unbind-skips-dying"] },
  "iommufd-tsm/kvm-file": {},
  "kvm-vfio/destroy-era": { fault: ["destroy-get_kvm", "destroy-get_kvm_safe"], deadlock: ["release-51cdc8bc120e"] },
  "kvm-vfio/file-pinning": {},
  "kvm-vfio/group-path": { fault: ["put-every-close"] },
  "kvm-vfio/two-vms": { leak: ["put-on-clear-only"] },
  "kvm-vfio/vm-pinning": {
    leak: ["4c-strong one v5.18-v6.6", "4c-strong two v5.18-v6.6", "4c-strong one", "4c-strong two"],
    fault: [
      ...["2-helpers", "3-no-patch1", "3-vfio-module", "3-put-swapped"].flatMap((d) => [`${d} one v5.18-v6.6`, `${d} two v5.18-v6.6`]),
      ...["2-helpers", "3-no-patch1", "3-vfio-module", "3-put-swapped"].map((d) => `${d} one`),
      ...["1-symbol_get", "2-helpers", "3-module_get", "3-no-patch1", "3-vfio-module", "3-put-swapped"].map((d) => `${d} two`),
    ],
  },
  "kvm/vendor-module": { fault: ["v5.18-v6.6"] },
  "tutorial/cached-file": {},
};

for (const { spec } of owned) {
  test(`${spec.name}: freedOnceClosed fails exactly where a leak check does, or where the run stops at a fault or a deadlock`, () => {
    const got: Record<string, string[]> = {};
    for (const params of designAssignments(spec)) {
      const v = check(spec, params);
      const kind = judge(v);
      if (kind === "holds") continue;
      // The run's name: its design, then its configuration's values.
      const config = spec.configurations?.find((c) => Object.entries(c).every(([k, x]) => params[k] === x)) ?? {};
      (got[kind] ??= []).push([v.design, ...Object.values(config)].join(" "));
    }
    const want = explained[spec.name] ?? {};
    for (const kind of ["leak", "fault", "deadlock"] as const) {
      assert.deepEqual((got[kind] ?? []).sort(), [...(want[kind] ?? [])].sort(), `${spec.name}: runs where freedOnceClosed fails by ${kind}`);
    }
  });
}
