// The launcher's quick start (bin/startup.mjs): --version before anything loads, and
// `refcheck list` answered from the listing cache, which is never stale: a change in a
// helper a spec imports, or a spec file added, lists again; a warm listing prints what a
// listing without the cache prints.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// Specs under the repo so that their imports of zod and the checker resolve; a dot folder,
// so that a type check running meanwhile does not pick them up.
const tmp = path.join(root, "test", `.tmp-startup-${process.pid}`);
const cache = mkdtempSync(path.join(tmpdir(), "refcheck-startup-cache-"));
// Each load of a spec appends a line here: a warm listing loads none.
const loads = path.join(cache, "loads.txt");
after(() => {
  rmSync(tmp, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
});

const env = { ...process.env, REFCHECK_DEBUG: "", NO_COLOR: "1", REFCHECK_CACHE_DIR: cache, LOADS: loads };

/** The launcher (quick start and cache), or with `direct` the command line without either. */
function refcheck(args: string[], direct = false) {
  const argv = direct ? ["--import", "tsx", "bin/refcheck.ts", ...args] : ["bin/refcheck.mjs", ...args];
  const r = spawnSync(process.execPath, argv, { cwd: root, encoding: "utf8", timeout: 60_000, env });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const loadCount = () => (existsSync(loads) ? readFileSync(loads, "utf8").split("\n").filter(Boolean).length : 0);

const spec = (name: string, extra = "") => `import { appendFileSync } from "node:fs";
import { z } from "zod";
import { defineSpec } from "../../../checker/spec.ts";
import { DESIGNS } from "./lib/designs.ts";
${extra}
appendFileSync(process.env.LOADS!, ${JSON.stringify(name)} + "\\n");

export default defineSpec({
  name: ${JSON.stringify(name)},
  summary: "a counter",
  params: z.object({ design: z.enum(DESIGNS).default("plain"), N: z.number().int().min(1).max(4).default(2) }),
  state: (p) => z.object({ n: z.number().int().min(0).max(p.N) }),
  init: () => ({ n: 0 }),
  actions: (p) => ({ inc: { when: (s) => s.n < p.N, then: (s) => { s.n += 1; } } }),
});
`;

function write(file: string, text: string): void {
  mkdirSync(path.dirname(path.join(tmp, file)), { recursive: true });
  writeFileSync(path.join(tmp, file), text);
}

test("--version: the quick start prints what yargs prints", () => {
  const quick = refcheck(["--version"]);
  const full = refcheck(["--version"], true);
  assert.equal(quick.code, 0);
  assert.equal(quick.out, full.out);
  assert.equal(quick.out, `${(JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { version: string }).version}\n`);
  assert.equal(refcheck(["-V"]).out, full.out);
});

test("list: a warm listing loads no spec and prints what a cold one and an uncached one print; a changed helper or a new spec lists again", () => {
  const dir = path.relative(root, path.join(tmp, "specs")).split(path.sep).join("/");
  write("specs/lib/designs.ts", `export const DESIGNS = ["plain", "pinned"] as const;\n`);
  write("specs/counter.ts", spec("tmp/counter"));

  const cold = refcheck(["list", dir]);
  assert.equal(cold.code, 0, cold.err);
  assert.equal(loadCount(), 1, "the cold listing loads the spec");
  assert.ok(existsSync(path.join(cache, "list.json")), "the listing is cached");
  assert.match(cold.out, /designs \(design\): plain, pinned\n/);
  assert.match(cold.out, new RegExp(`skipped ${dir}/lib/designs.ts: helper`));

  const warm = refcheck(["list", dir]);
  assert.equal(warm.code, 0, warm.err);
  assert.equal(warm.out, cold.out);
  assert.equal(warm.err, cold.err);
  assert.equal(loadCount(), 1, "the warm listing loads no spec");

  const direct = refcheck(["list", dir], true);
  assert.equal(direct.out, cold.out, "the same as the command line without the cache");
  assert.equal(loadCount(), 2);

  // A helper the spec imports changes: the listing runs again and shows it.
  write("specs/lib/designs.ts", `export const DESIGNS = ["plain", "pinned", "rcu"] as const;\n`);
  const changed = refcheck(["list", dir]);
  assert.equal(changed.code, 0, changed.err);
  assert.equal(loadCount(), 3, "a changed helper lists again");
  assert.match(changed.out, /designs \(design\): plain, pinned, rcu\n/);
  assert.equal(refcheck(["list", dir]).out, changed.out);
  assert.equal(loadCount(), 3, "and the new listing is cached");
  assert.equal(refcheck(["list", dir], true).out, changed.out);
  assert.equal(loadCount(), 4);

  // Changed back to the first content: the first listing again, whatever the cache holds.
  write("specs/lib/designs.ts", `export const DESIGNS = ["plain", "pinned"] as const;\n`);
  assert.equal(refcheck(["list", dir]).out, cold.out);

  // A spec file added to the folder is listed.
  write("specs/second.ts", spec("tmp/second"));
  const added = refcheck(["list", dir]);
  assert.match(added.out, /^tmp\/second {2}\(/m);
  assert.equal(refcheck(["list", dir]).out, added.out);
  assert.equal(refcheck(["list", dir], true).out, added.out);
});

test("list: a listing whose spec prints while loading is not cached (a warm run would not print it)", () => {
  write("chatty/lib/designs.ts", `export const DESIGNS = ["plain"] as const;\n`);
  write("chatty/chatty.ts", spec("tmp/chatty", `console.log("loading chatty");`));
  const dir = path.relative(root, path.join(tmp, "chatty")).split(path.sep).join("/");
  const before = loadCount();
  const first = refcheck(["list", dir]);
  const second = refcheck(["list", dir]);
  assert.equal(first.code, 0, first.err);
  assert.equal(second.out, first.out);
  assert.match(second.err, /loading chatty/);
  assert.equal(loadCount(), before + 2, "both runs load the spec");
});

test("list: a helper edited while the listing runs is recorded as it was loaded, so the next list runs again", async () => {
  write("race/lib/designs.ts", `export const DESIGNS = ["plain"] as const;\n`);
  // The spec waits at load time (after its helper loaded) while this test edits the helper.
  write("race/slow.ts", spec("tmp/slow", `if (process.env.SLOW) { appendFileSync(process.env.SLOW, "waiting\\n"); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3000); }`));
  const dir = path.relative(root, path.join(tmp, "race")).split(path.sep).join("/");
  const slow = path.join(cache, "slow.txt");
  const child = spawn(process.execPath, ["bin/refcheck.mjs", "list", dir], { cwd: root, env: { ...env, SLOW: slow }, stdio: ["ignore", "pipe", "pipe"] });
  let first = "";
  child.stdout.on("data", (d) => (first += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  while (!existsSync(slow)) await new Promise((r) => setTimeout(r, 20));
  write("race/lib/designs.ts", `export const DESIGNS = ["plain", "rcu"] as const;\n`);
  assert.equal(await exited, 0);
  assert.match(first, /designs \(design\): plain\n/, "the listing shows the helper as it was loaded");
  const next = refcheck(["list", dir]);
  assert.match(next.out, /designs \(design\): plain, rcu\n/, "the next listing is not the cached one");
  assert.equal(refcheck(["list", dir], true).out, next.out);
});

test("list: errors are not cached and keep their message and exit code", () => {
  const missing = path.relative(root, path.join(tmp, "missing")).split(path.sep).join("/");
  for (let i = 0; i < 2; i++) {
    const r = refcheck(["list", missing]);
    assert.equal(r.code, 2);
    assert.equal(r.err, `refcheck: ${missing}: no such file or folder (expected a spec file or a folder of specs)\n`);
  }
});
