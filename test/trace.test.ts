import { test } from "node:test";
import assert from "node:assert/strict";
import { check } from "../checker/index.ts";
import filePinning from "../specs/kvm-vfio/file-pinning.ts";

test("trace: a fault names the object it is about (the dying VM file), not what the step changed", () => {
  const v = check(filePinning, { design: "get_file" });
  const trace = v.properties.find((p) => p.name === "noFault")!.trace!;
  const last = trace.steps.at(-1)!;
  assert.equal(last.action, "FileAdd");
  assert.equal(last.faultAt, "vmFile");
  assert.ok(!last.changes.some((c) => c.path.startsWith("vmFile")), "get_file faulted before changing the VM file");
});
