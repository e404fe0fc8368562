// @ts-check
// What the command line does before it loads anything: print refcheck's version, and
// answer `refcheck list` from the listing cache when nothing the listing depends on has
// changed. Plain JavaScript importing only node: modules, so that a clone runs it before
// starting the TypeScript loader (tsx) and the package before loading yargs.
//
// The listing cache (list.json, beside the type check's typecheck.json) keeps the output
// of a `refcheck list` that succeeded, under its command line, working directory, Node
// version and options, with the content hash of what the listing read:
//   - every module the specs loaded (the spec files, their helpers, and for a package
//     under node_modules, such as zod, its package.json), and refcheck's own modules (all
//     of them: the command line loads some before the specs);
//   - the package.json that decides how each spec file loads (ES module or CommonJS), and
//     the tsconfig.json tsx reads (from the working directory up, and the files it
//     extends);
//   - the entries of every folder the listing walked (an added or removed spec file
//     counts) or that holds a module it loaded (a new file there could change what an
//     import finds).
// The hashes are of the content the listing used: refcheck's modules and the folders are
// hashed before they are loaded and walked, a spec or helper as it is read (by a module
// hook), so that a file edited while the listing runs makes the next one run again. A
// warm run hashes those files again and prints the recorded output; any difference (or a
// file that appeared where none was) and the listing runs again. A listing whose specs
// printed something while loading is not cached: a warm run would not print it.
// What a spec reads at load time other than by importing it (a file it opens, the
// environment) is not recorded.
import { createHash } from "node:crypto";
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { register } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Bump when what the listing cache records, or how a listing is made, changes. */
const FORMAT = 1;
/** Entries kept in each cache file (one per command line and working directory, or per root set). */
const ENTRIES = 20;

const here = path.dirname(fileURLToPath(import.meta.url));
/** bin/.. in a clone, dist/ in the package (as bin/typecheck.ts counts it). */
const packageRoot = path.resolve(here, "..");

/** refcheck's package.json: beside bin/ in a clone, beside dist/ in the package. */
function ownPackageJson() {
  for (const up of ["../package.json", "../../package.json"]) {
    const file = path.resolve(here, up);
    try {
      const p = /** @type {{ name?: string; version?: string }} */ (JSON.parse(readFileSync(file, "utf8")));
      if (p.name === "refcheck" && p.version) return { file, version: p.version };
    } catch {
      // Not this one.
    }
  }
  return undefined;
}

/** refcheck's version, from its package.json. */
export function refcheckVersion() {
  return ownPackageJson()?.version;
}

/**
 * Where refcheck keeps its caches: REFCHECK_CACHE_DIR when set, else
 * node_modules/.cache/refcheck (the node_modules refcheck is installed in, or its own),
 * or the temp folder when that is missing or not writable.
 */
export function cacheDir() {
  const env = process.env.REFCHECK_CACHE_DIR;
  if (env) return path.resolve(env);
  const m = /^(.*?[\\/]node_modules)[\\/]/.exec(packageRoot);
  const nm = m ? /** @type {string} */ (m[1]) : path.join(packageRoot, "node_modules");
  const dir = path.join(nm, ".cache", "refcheck");
  try {
    if (!existsSync(nm)) throw new Error("no node_modules");
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    return dir;
  } catch {
    return path.join(tmpdir(), `refcheck-cache-${process.getuid?.() ?? "user"}`);
  }
}

/**
 * Answers the command line (given without the node and script arguments) when that needs
 * none of refcheck's modules: `--version` alone, or `list` with paths only (no options)
 * and a fresh listing in the cache. Returns true when it answered; the caller then exits
 * (code 0) without loading anything else. Otherwise, for such a `list`, the listing the
 * command line makes is cached (see beginListing).
 * @param {readonly string[]} argv
 */
export function quickStart(argv) {
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
    process.stdout.write(`${refcheckVersion() ?? "unknown"}\n`);
    return true;
  }
  if (argv[0] !== "list" || !argv.slice(1).every((a) => /^[^-]/.test(a))) return false;
  const key = listingKey(argv.slice(1));
  const file = path.join(cacheDir(), "list.json");
  const entry = /** @type {{ entries: ListingEntry[] }} */ (readCacheFile(file, FORMAT)).entries.find((e) => e.key === key);
  if (entry && isFresh(entry)) {
    process.stdout.write(entry.out);
    return true;
  }
  // refcheck's own modules as they are now, before the command line loads them.
  pending = { key, file, own: ownFiles().map((f) => /** @type {[string, string | null]} */ ([f, hashFile(f)])) };
  return false;
}

/**
 * @typedef {object} ListingEntry
 * @property {string} key hash of the command line, working directory, Node and options
 * @property {[file: string, hash: string | null][]} files null: the file must not exist
 * @property {[dir: string, hash: string][]} dirs the hash of the entries of each folder walked or holding a local module
 * @property {string} out what the listing printed
 */

/** @type {{ key: string; file: string; own: [string, string | null][] } | undefined} */
let pending;

/**
 * @typedef {object} Listing
 * @property {() => void} loaded the specs are loaded: what is printed from here on is the listing
 * @property {(out: string) => void} done caches the listing's output, unless the specs printed something
 */

// Module hooks (they run in Node's loader thread) that post every URL resolved, and the
// content hash of each file loaded outside node_modules as it is read: a file edited
// while the listing runs is recorded as it was loaded.
const RECORDER = `import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
let port;
export function initialize(data) { port = data.port; }
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  port.postMessage({ url: r.url });
  return r;
}
export async function load(url, context, next) {
  if (url.startsWith("file:") && !url.includes("/node_modules/")) {
    try {
      port.postMessage({ url, hash: createHash("sha256").update(readFileSync(new URL(url))).digest("hex").slice(0, 32) });
    } catch {
      // Hashed once the listing is done.
    }
  }
  return next(url, context);
}`;

/**
 * Called by `list` before it loads the specs of these paths (as loadSpecs is given them):
 * records the folders it will walk and the modules that load from here on, and watches
 * what the specs print, for the cache. Does nothing unless quickStart found no fresh
 * listing for this command line (so not for bin/refcheck.ts run directly).
 * @param {readonly string[]} paths
 * @returns {Promise<Listing>}
 */
export async function beginListing(paths) {
  const none = { loaded() {}, done() {} };
  if (!pending) return none;
  const { key, file, own } = pending;
  pending = undefined;
  /** @type {[string, string][]} */
  let walked;
  try {
    walked = [...walkedDirs(paths)].map((d) => [d, hashDir(d)]);
  } catch {
    return none; // A path that is missing: loadSpecs says so.
  }
  // Not loaded before: a warm listing has no use for it.
  const { MessageChannel, receiveMessageOnPort } = await import("node:worker_threads");
  const { port1: port, port2 } = new MessageChannel();
  register(`data:text/javascript,${encodeURIComponent(RECORDER)}`, { data: { port: port2 }, transferList: [port2] });
  let printed = false;
  /** @type {[NodeJS.WriteStream, NodeJS.WriteStream["write"]][]} */
  const saved = [process.stdout, process.stderr].map((s) => [s, s.write]);
  for (const [stream, write] of saved) {
    stream.write = /** @type {NodeJS.WriteStream["write"]} */ (function (/** @type {any[]} */ ...args) {
      printed = true;
      return /** @type {any} */ (write).apply(stream, args);
    });
  }
  const restore = () => {
    for (const [stream, write] of saved) stream.write = write;
  };
  return {
    loaded: restore,
    done(out) {
      restore();
      /** @type {Map<string, string | null>} */
      const loaded = new Map();
      for (let m; (m = receiveMessageOnPort(port)); ) {
        const { url, hash } = /** @type {{ url: string; hash?: string }} */ (m.message);
        if (hash !== undefined) loaded.set(url, hash);
        else if (!loaded.has(url)) loaded.set(url, null);
      }
      port.close();
      if (printed) return;
      try {
        writeCacheEntry(file, FORMAT, { key, ...dependencies(loaded, own, walked), out }, (a, b) => a.key === b.key);
      } catch {
        // A cache that cannot be written only costs time.
      }
    },
  };
}

/** @param {readonly string[]} paths */
function listingKey(paths) {
  return hash(
    JSON.stringify({
      FORMAT,
      paths,
      cwd: process.cwd(),
      node: process.version,
      execArgv: process.execArgv,
      nodeOptions: process.env.NODE_OPTIONS ?? "",
      tsconfig: process.env.TSX_TSCONFIG_PATH ?? "",
      refcheck: packageRoot,
    }),
  );
}

/** @param {string | Buffer} s */
export const hash = (s) => createHash("sha256").update(s).digest("hex").slice(0, 32);

/**
 * The content hash of a file; null when there is none.
 * @param {string} file
 * @returns {string | null}
 */
export function hashFile(file) {
  try {
    return hash(readFileSync(file));
  } catch (e) {
    const code = /** @type {NodeJS.ErrnoException} */ (e).code;
    return code === "ENOENT" || code === "ENOTDIR" ? null : `unreadable ${code}`;
  }
}

/**
 * The hash of a folder's entries: names and kinds (a symbolic link by what it points to).
 * @param {string} dir
 */
function hashDir(dir) {
  try {
    const entries = readdirSync(dir, { withFileTypes: true }).map((d) => {
      let kind = d.isDirectory() ? "d" : d.isSymbolicLink() ? "l" : "f";
      if (kind === "l") {
        try {
          kind = statSync(path.join(dir, d.name)).isDirectory() ? "ld" : "lf";
        } catch {
          // A dangling link.
        }
      }
      return `${d.name}\0${kind}`;
    });
    return hash(entries.sort().join("\n"));
  } catch (e) {
    return `unreadable ${/** @type {NodeJS.ErrnoException} */ (e).code}`;
  }
}

/** @param {ListingEntry} e */
function isFresh(e) {
  return e.files.every(([f, h]) => hashFile(f) === h) && e.dirs.every(([d, h]) => hashDir(d) === h);
}

/**
 * The folders loadSpecs walks for these paths (it skips node_modules and dot entries).
 * @param {readonly string[]} paths
 */
function walkedDirs(paths) {
  /** @type {Set<string>} */
  const out = new Set();
  /** @param {string} dir */
  const walk = (dir) => {
    if (out.has(dir)) return;
    out.add(dir);
    for (const name of readdirSync(dir)) {
      if (name === "node_modules" || name.startsWith(".")) continue;
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
    }
  };
  for (const p of paths) {
    const abs = path.resolve(p);
    if (statSync(abs).isDirectory()) walk(abs);
  }
  return out;
}

/** refcheck's package.json and modules: bin/, checker/ and reports/ (in dist/ in the package). */
function ownFiles() {
  const pkg = ownPackageJson();
  const out = pkg ? [pkg.file] : [];
  for (const dir of ["bin", "checker", "reports"]) {
    try {
      for (const name of readdirSync(path.join(packageRoot, dir)).sort()) {
        if (/\.(ts|js|mjs)$/.test(name) && !/\.d\.m?ts$/.test(name)) out.push(path.join(packageRoot, dir, name));
      }
    } catch {
      // Not in this build.
    }
  }
  return out;
}

/** The folder of the package a node_modules file belongs to. */
const packageDirOf = (/** @type {string} */ file) => /^(.*[\\/]node_modules[\\/](?:@[^\\/]+[\\/])?[^\\/]+)[\\/]/.exec(file)?.[1];

/**
 * What the listing depends on, with the hashes: refcheck's own files (hashed before they
 * loaded); of the modules the listing loaded, local files themselves (hashed as they were
 * read), and a package under node_modules by its package.json (refcheck itself file by
 * file); the package.json and tsconfig.json files that decide how they load; the folders
 * walked (hashed before the walk), and those holding a local module (a file added there
 * could change what an import finds).
 * @param {Map<string, string | null>} loaded URLs resolved, with the content hash of those read
 * @param {[string, string | null][]} own
 * @param {[string, string][]} walked
 * @returns {Pick<ListingEntry, "files" | "dirs">}
 */
function dependencies(loaded, own, walked) {
  /** @type {Map<string, string | null>} */
  const files = new Map(own);
  const add = (/** @type {string} */ f, /** @type {string | null} */ h = null) => {
    if (!files.has(f)) files.set(f, h ?? hashFile(f));
  };
  const pkg = ownPackageJson();
  const ownDir = pkg ? path.dirname(pkg.file) + path.sep : undefined;
  // The command line's parser, loaded before the recording began.
  const yargs = packageDirOf(fileURLToPath(import.meta.resolve("yargs")));
  if (yargs) add(path.join(yargs, "package.json"));
  /** @type {Map<string, string>} */
  const dirs = new Map(walked);
  for (const [url, h] of loaded) {
    if (!url.startsWith("file:")) continue;
    const file = fileURLToPath(url);
    const pkgDir = packageDirOf(file);
    if (pkgDir && pkgDir + path.sep !== ownDir) add(path.join(pkgDir, "package.json"));
    else {
      add(file, h);
      if (!dirs.has(path.dirname(file))) dirs.set(path.dirname(file), hashDir(path.dirname(file)));
    }
  }
  // The nearest package.json of each local module ("type": module or commonjs), and the
  // names above it where one could appear.
  const seen = new Set();
  for (const dir of dirs.keys()) {
    for (let d = dir; !seen.has(d); d = path.dirname(d)) {
      seen.add(d);
      const f = path.join(d, "package.json");
      add(f);
      if (files.get(f) !== null || path.dirname(d) === d) break;
    }
  }
  for (const f of tsconfigs()) add(f);
  return { files: [...files], dirs: [...dirs] };
}

/**
 * The tsconfig.json files tsx reads: TSX_TSCONFIG_PATH, or the nearest one from the
 * working directory up (and the names above it where one could appear); then, as far as
 * a plain reading finds them, the files it extends.
 */
function tsconfigs() {
  const out = [];
  let found = process.env.TSX_TSCONFIG_PATH ? path.resolve(process.env.TSX_TSCONFIG_PATH) : undefined;
  if (found) out.push(found);
  for (let d = process.cwd(); !found; d = path.dirname(d)) {
    const f = path.join(d, "tsconfig.json");
    out.push(f);
    if (existsSync(f)) found = f;
    if (path.dirname(d) === d) break;
  }
  for (let i = 0, config = found; config && i < 10; i++) {
    config = extended(config);
    if (config) out.push(config);
  }
  return out;
}

/**
 * The first file a tsconfig.json extends: a relative path, or a package's file (by that
 * package's package.json); undefined when there is none or it cannot be told.
 * @param {string} config
 */
function extended(config) {
  let text;
  try {
    text = readFileSync(config, "utf8");
  } catch {
    return undefined;
  }
  const m = /"extends"\s*:\s*(?:\[\s*)?"([^"]+)"/.exec(text);
  if (!m) return undefined;
  const target = /** @type {string} */ (m[1]);
  if (target.startsWith(".") || path.isAbsolute(target)) {
    const f = path.resolve(path.dirname(config), target);
    return f.endsWith(".json") ? f : `${f}.json`;
  }
  const name = target.startsWith("@") ? target.split("/").slice(0, 2).join("/") : target.split("/")[0];
  for (let d = path.dirname(config); ; d = path.dirname(d)) {
    const f = path.join(d, "node_modules", /** @type {string} */ (name), "package.json");
    if (existsSync(f)) return f;
    if (path.dirname(d) === d) return undefined;
  }
}

/**
 * A cache file's entries (refcheck's caches: list.json, typecheck.json); none when it is
 * missing, damaged or of another `format`.
 * @template E
 * @param {string} file
 * @param {number} format
 * @returns {{ format: number; entries: E[] }}
 */
export function readCacheFile(file, format) {
  try {
    const c = JSON.parse(readFileSync(file, "utf8"));
    if (c.format === format && Array.isArray(c.entries)) return c;
  } catch {
    // Missing or damaged: start again.
  }
  return { format, entries: [] };
}

/**
 * Puts `entry` first in a cache file, in place of an entry for the same key (`sameKey`),
 * keeping the ENTRIES most recent. Throws when it cannot write.
 * @template E
 * @param {string} file
 * @param {number} format
 * @param {E} entry
 * @param {(a: E, b: E) => boolean} sameKey
 */
export function writeCacheEntry(file, format, entry, sameKey) {
  const c = readCacheFile(file, format);
  c.entries = [entry, ...c.entries.filter((e) => !sameKey(e, entry))].slice(0, ENTRIES);
  mkdirSync(path.dirname(file), { recursive: true });
  // Write then rename: two runs at once never leave half a file.
  const tmp = `${file}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify(c));
  renameSync(tmp, file);
}
