// The README tutorial's model, and `refcheck init`, which starts a new spec from it.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { checkAllDesigns } from "../checker/index.ts";
import { Verdict } from "../checker/verdict.ts";
import tutorial from "../specs/tutorial/cached-file.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const tutorialFile = path.join(root, "specs", "tutorial", "cached-file.ts");
const tmp = path.join(root, "test", `.tmp-init-${process.pid}`);
after(() => rmSync(tmp, { recursive: true, force: true }));

function refcheck(cwd: string, ...args: string[]) {
  // The launcher registers tsx from refcheck's own node_modules, whatever the working directory.
  const r = spawnSync(process.execPath, [path.join(root, "bin", "refcheck.mjs"), ...args], {
    cwd, encoding: "utf8", env: { ...process.env, NO_COLOR: "1", GITHUB_ACTIONS: "" },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("tutorial: the model is under 100 lines and the README shows its counterexample", () => {
  const lines = readFileSync(tutorialFile, "utf8").trimEnd().split("\n").length;
  assert.ok(lines < 100, `${lines} lines`);
  const readme = readFileSync(path.join(root, "README.md"), "utf8");
  assert.match(readme, /## Tutorial: from an empty file to a counterexample/);
  assert.ok(readme.includes(`(${lines} lines;`), "the README states the model's length");
});

test("tutorial: borrowed fails in SetFile, CloseFd, Work; pinned holds everything", () => {
  const [borrowed, pinned] = ["borrowed", "pinned"].map((d) => checkAllDesigns(tutorial).find((v) => v.design === d)!);
  const fault = borrowed.properties.find((p) => p.name === "noFault")!;
  assert.equal(fault.status, "violated");
  assert.deepEqual(fault.trace!.steps.slice(1).map((s) => s.action), ["SetFile", "CloseFd", "Work"]);
  assert.match(fault.message!, /^file_ref_inc\(\) on a released file reference: get_file on dying drv->file/);
  for (const p of pinned.properties) assert.ok(!p.failed, `${p.name} ${p.status}`);
  for (const name of ["fileCountExact", "fileNoHolderAfterFree", "fileNoLeak"]) assert.equal(pinned.properties.find((p) => p.name === name)!.status, "holds");
});

test("init: writes specs/NAME.ts that checks out of the box, never overwrites", () => {
  mkdirSync(tmp, { recursive: true });
  const made = refcheck(tmp, "init", "team/my-race");
  assert.equal(made.code, 0, made.err);
  const file = path.join(tmp, "specs", "team", "my-race.ts");
  const text = readFileSync(file, "utf8");
  assert.match(text, /name: "team\/my-race"/);
  assert.match(text, /from "(\.\.\/)+checker\/spec\.ts"/, "inside refcheck's tree the imports are relative");
  const r = refcheck(tmp, "check", "specs/team/my-race.ts", "--json");
  assert.equal(r.code, 0, `the buggy design's failure is declared as expected: ${r.err}`);
  const verdicts = (JSON.parse(r.out) as unknown[]).map((v) => Verdict.parse(v));
  assert.deepEqual(verdicts.map((v) => [v.design, v.outcome === "pass"]), [["borrowed", false], ["pinned", true]]);
  const again = refcheck(tmp, "init", "team/my-race");
  assert.equal(again.code, 2);
  assert.match(again.err, /exists already/);
  assert.equal(refcheck(tmp, "init", "../escape").code, 2);
});

test("init: outside refcheck's tree the spec imports the package", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "refcheck-init-"));
  try {
    const made = refcheck(dir, "init", "my-race");
    assert.equal(made.code, 0, made.err);
    const text = readFileSync(path.join(dir, "specs", "my-race.ts"), "utf8");
    assert.match(text, /from "refcheck";/);
    assert.match(text, /from "refcheck\/kernel\/file";/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
