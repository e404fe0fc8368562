// The renderer registry (reports/index.ts): the command line's report flags, plan and
// writes come from it, so a new format is a file in reports/ and a line in the registry.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { FileError, planOutputs, reportOptions, writeOutputs } from "../bin/outputs.ts";
import { renderers, type Renderer } from "../reports/index.ts";
import { getFileVerdict } from "./fixtures/verdicts.ts";

function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), "refcheck-renderers-"));
  process.on("exit", () => rmSync(d, { recursive: true, force: true }));
  return d;
}

test("renderers: every registered format is a command-line flag", () => {
  assert.deepEqual(renderers.map((r) => r.flag), ["itf", "junit", "sarif", "markdown", "html"]);
  for (const r of renderers) assert.deepEqual(reportOptions[r.flag], { type: "string", describe: r.describe });
  assert.ok(reportOptions["sarif-root"]);
});

test("renderers: a format added to the registry is planned and written with no other change", () => {
  const list = renderers as Renderer[];
  list.push(
    { flag: "count", kind: "file", describe: "write the number of verdicts to FILE", render: (vs) => `${vs.length}\n` },
    { flag: "each", kind: "dir", describe: "one file per verdict into DIR", owns: (n) => n.endsWith(".each"), render: (vs) => vs.map((v, i) => ({ name: `${i}.each`, text: v.spec, who: v.spec })) },
  );
  try {
    const d = tmp();
    const plan = planOutputs({ count: path.join(d, "n.txt"), each: path.join(d, "each") }, []);
    assert.deepEqual(plan.files, { count: path.join(d, "n.txt") });
    assert.deepEqual(plan.dirs, { each: path.join(d, "each") });
    const r = writeOutputs([getFileVerdict, getFileVerdict], plan);
    assert.equal(r.error, undefined);
    assert.equal(readFileSync(path.join(d, "n.txt"), "utf8"), "2\n");
    assert.deepEqual(readdirSync(path.join(d, "each")).sort(), ["0.each", "1.each"]);
    // Flags name themselves in errors, and a folder's clashing names stop the writes.
    assert.throws(() => planOutputs({ count: d }, []), (e: unknown) => e instanceof FileError && e.message.startsWith(`--count ${d}: is a folder`));
    list[list.length - 1] = { ...list[list.length - 1]!, render: () => [{ name: "x.each", text: "", who: "a" }, { name: "x.each", text: "", who: "b" }] } as Renderer;
    const again = writeOutputs([getFileVerdict], planOutputs({ count: path.join(d, "n2.txt"), each: path.join(d, "each") }, []));
    assert.match(again.error ?? "", /^--each .*: two files would be written to x\.each: a and b; nothing was written$/);
    assert.equal(existsSync(path.join(d, "n2.txt")), false);
  } finally {
    list.splice(list.length - 2, 2);
  }
});

test("renderers: --sarif-root sets the folder SARIF and JUnit paths are relative to", () => {
  const d = tmp();
  assert.throws(() => planOutputs({ "sarif-root": path.join(d, "missing") }, []), (e: unknown) => e instanceof FileError && /^--sarif-root .*missing: expected an existing folder/.test(e.message));
  // The fixture's file is specs/kvm-vfio/file-pinning.ts from the repository root (the working directory of the tests).
  const plan = planOutputs({ sarif: path.join(d, "r.sarif"), junit: path.join(d, "r.xml"), "sarif-root": "specs" }, []);
  assert.equal(writeOutputs([getFileVerdict], plan).error, undefined);
  const log = JSON.parse(readFileSync(path.join(d, "r.sarif"), "utf8"));
  assert.equal(log.runs[0].results[0].locations[0].physicalLocation.artifactLocation.uri, "kvm-vfio/file-pinning.ts");
  assert.match(log.runs[0].originalUriBaseIds["%SRCROOT%"].uri, /^file:\/\/.*\/specs\/$/);
  assert.match(readFileSync(path.join(d, "r.xml"), "utf8"), /<property name="file" value="kvm-vfio\/file-pinning\.ts"\/>/);
});
