// RefPin with a leads-to property for the liveness row of the benchmark: the VM's last
// reference gone (vmState 1) leads to its release (vmState 2), under weak fairness of
// ReleaseVm. Same state space as specs/conformance/refpin.ts.
import { defineSpec } from "../../checker/spec.ts";
import refpin from "../../specs/conformance/refpin.ts";

const { kind: _kind, expected: _expected, ...def } = refpin;

export default defineSpec({
  ...def,
  name: "conformance/refpin-live",
  liveness: { vmReleased: { leadsTo: [(s) => s.vmState === 1, (s) => s.vmState === 2], doc: "kvm_put_kvm runs once the VM's last reference is gone" } },
  fairness: { weak: ["ReleaseVm"] },
});
