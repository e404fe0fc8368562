// refcheck as a dependency of someone else's project: the packed tarball installed into a
// project made by `npm init -y` (CommonJS under npm 11), a spec there importing "refcheck"
// and "refcheck/kernel/file", type-checked with tsc and checked with `npx refcheck`.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { defineSpec } from "../checker/spec.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const work = mkdtempSync(path.join(tmpdir(), "refcheck-package-"));
after(() => rmSync(work, { recursive: true, force: true }));

const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const npx = process.platform === "win32" ? "npx.cmd" : "npx";

function run(cmd: string, args: string[], cwd: string, timeout = 90_000) {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout, env: { ...process.env, NO_COLOR: "1", REFCHECK_DEBUG: "", REFCHECK_CACHE_DIR: "" } });
  return { code: r.status, out: r.stdout ?? "", err: r.stderr ?? "", error: r.error };
}

const spec = `import { z } from "zod";
import { defineSpec, type Verdict } from "refcheck";
import { fileSchema, fput, getFile, newFile } from "refcheck/kernel/file";

export type Checked = Verdict["outcome"];

export default defineSpec({
  name: "consumer/pin",
  params: z.object({ design: z.enum(["balanced", "double-put"]).default("balanced") }),
  state: () => z.object({ file: fileSchema({ maxCount: 2 }), fd: z.boolean(), pinned: z.boolean() }),
  init: () => ({ file: newFile(), fd: true, pinned: false }),
  actions: (p) => ({
    pin: { when: (s) => s.fd && !s.pinned, then: (s) => { getFile(s.file, "the file"); s.pinned = true; } },
    close: { when: (s) => s.fd, then: (s) => { fput(s.file, "the file"); s.fd = false; } },
    unpin: {
      when: (s) => s.pinned,
      then: (s) => {
        fput(s.file, "the file");
        if (p.design === "double-put") fput(s.file, "the file");
        s.pinned = false;
      },
    },
  }),
});
`;

// npm's own words when it cannot reach the registry (and the cache does not have it all).
const offline = /ENOTFOUND|ENOTCACHED|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network|offline|request to .* failed/i;

test("the packed tarball installs into an npm init -y project, and a spec there imports refcheck, type-checks and runs", { timeout: 240_000 }, (t) => {
  // npm pack runs the prepare script (the tsc build) first.
  const pack = run(npm, ["pack", "--json", "--pack-destination", work], root, 180_000);
  assert.equal(pack.code, 0, `npm pack failed:\n${pack.err}`);
  const [info] = JSON.parse(pack.out.slice(pack.out.indexOf("["))) as { filename: string; files: { path: string }[] }[];
  const files = info!.files.map((f) => f.path);
  assert.deepEqual(files.filter((f) => /^test\/|\.test\.|^specs\/|^\.ci\//.test(f)), [], "the tarball holds no tests, fixtures or example specs");
  for (const f of ["package.json", "README.md", "LICENSE", "dist/checker/index.js", "dist/checker/index.d.ts", "dist/bin/cli.js", "dist/specs/kernel/file.d.ts", "dist/checker/verdict.d.ts"]) {
    assert.ok(files.includes(f), `${f} is in the tarball`);
  }
  assert.ok(!files.some((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")), "no TypeScript sources: the package ships JavaScript");

  const proj = path.join(work, "consumer");
  mkdirSync(proj);
  assert.equal(run(npm, ["init", "-y"], proj).code, 0);
  const install = run(npm, ["install", "--prefer-offline", "--no-audit", "--no-fund", path.join(work, info!.filename), "zod@4"], proj, 180_000);
  if (install.code !== 0 && offline.test(install.err)) {
    t.skip(`the npm registry is unreachable and the cache lacks a dependency, so the tarball cannot be installed: ${install.err.trim().split("\n").at(-1)}`);
    return;
  }
  assert.equal(install.code, 0, `npm install failed:\n${install.err}`);

  mkdirSync(path.join(proj, "specs"));
  writeFileSync(path.join(proj, "specs", "pin.ts"), spec);
  writeFileSync(
    path.join(proj, "tsconfig.json"),
    JSON.stringify({ compilerOptions: { strict: true, noEmit: true, target: "ES2022", module: "preserve", moduleResolution: "bundler", types: [] }, include: ["specs"] }),
  );
  // The project's own tsc (typescript comes with refcheck), over refcheck's declarations too.
  const tsc = run(process.execPath, [path.join(proj, "node_modules", "typescript", "bin", "tsc"), "-p", "."], proj);
  assert.equal(tsc.code, 0, `tsc:\n${tsc.out}${tsc.err}`);

  const version = run(npx, ["refcheck", "--version"], proj);
  assert.equal(version.out.trim(), (JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { version: string }).version);

  const check = run(npx, ["refcheck", "check", "specs/pin.ts", "--json", "--quiet"], proj);
  assert.equal(check.code, 1, `exit 1 (double-put breaks a property); stderr:\n${check.err}`);
  const verdicts = JSON.parse(check.out) as { params: { design: string }; outcome: string; properties: { name: string; status: string }[] }[];
  assert.deepEqual(
    verdicts.map((v) => [v.params.design, v.outcome]),
    [["balanced", "pass"], ["double-put", "fail"]],
  );

  // `list` again answers from the listing cache (node_modules/.cache/refcheck), the same
  // text; a changed spec lists again.
  const list = run(npx, ["refcheck", "list"], proj);
  assert.equal(list.code, 0, list.err);
  assert.match(list.out, /^consumer\/pin {2}\(specs\/pin\.ts\)\n {2}params: design \{balanced, double-put\} \(default balanced\)\n/);
  assert.ok(existsSync(path.join(proj, "node_modules", ".cache", "refcheck", "list.json")), "the listing is cached");
  assert.equal(run(npx, ["refcheck", "list"], proj).out, list.out);
  writeFileSync(path.join(proj, "specs", "pin.ts"), spec.replace('name: "consumer/pin"', 'name: "consumer/pinned"'));
  assert.equal(run(npx, ["refcheck", "list"], proj).out, list.out.replace("consumer/pin ", "consumer/pinned "));
});

test("a zod 3 schema is named as such; a zod 4 schema is recognised by shape, not by class", () => {
  // What zod 3's z.object({}) looks like to refcheck: _def, and no _zod.
  const zod3 = { _def: { typeName: "ZodObject", shape: () => ({}) }, parse: () => ({}) };
  const def = { name: "t", state: () => z.object({}), init: () => ({}), actions: () => ({}) };
  assert.throws(() => defineSpec({ ...def, params: zod3 as never }), /refcheck needs zod 4 \(found a zod 3 schema\): install zod@\^4/);
  // Another copy of zod 4 has other classes: only the shape counts.
  const other = Object.create(null, { _zod: { value: { def: { type: "object", shape: {} } } } });
  assert.doesNotThrow(() => defineSpec({ ...def, params: other }));
  assert.throws(() => defineSpec({ ...def, params: z.string() as never }), /"params" must be a z\.object/);
});
