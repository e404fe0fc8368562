// Sharding: a run's jobs (spec, parameters) split over K processes or machines, and the
// shards' results merged into the outputs the unsharded run would have written.
//
// A job is one exhaustive search; shards never split a search. `--shard i/K` keeps the jobs
// assigned to shard i (1-based): by a stable hash of the job's name, or, given the costs a
// previous run measured (--shard-costs), by longest-first into the least loaded shard. With
// --shard, `--json` prints a shard file: the verdicts plus what `merge` needs to check that
// the shards belong to one run and cover it.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { z } from "zod";
import { formatParams } from "../checker/compile.ts";
import { Verdict } from "../checker/verdict.ts";
import { FileError, ShardError } from "./errors.ts";
import { errnoText } from "./outputs.ts";

export { ShardError };

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

/** "2/4" -> shard 2 of 4. */
export function parseShard(v: unknown): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(String(v ?? ""));
  const index = m ? Number(m[1]) : NaN, count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count || count > 10000) {
    throw new ShardError(`--shard ${String(v)}: expected I/K with 1 <= I <= K, e.g. --shard 1/4 (K at most 10000)`);
  }
  return { index, count };
}

/** A job's name: the spec and every parameter of the run (defaults included), stable across runs. */
export function jobId(spec: string, params: Record<string, unknown>): string {
  const sorted = Object.fromEntries(Object.entries(params).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return `${spec} [${formatParams(sorted)}]`;
}

function hash32(s: string): number {
  return createHash("sha256").update(s).digest().readUInt32BE(0);
}

/**
 * The shard (1..K) of each job. Without costs: a stable hash, so adding a job moves no other.
 * With costs (seconds by job id): longest first into the least loaded shard (ties: lowest
 * shard); a job without a measured cost counts as the median.
 */
export function assignShards(ids: readonly string[], count: number, costs?: ReadonlyMap<string, number>): number[] {
  if (!costs || costs.size === 0) return ids.map((id) => (hash32(id) % count) + 1);
  const known = [...costs.values()].sort((a, b) => a - b);
  const median = known[Math.floor(known.length / 2)];
  const order = ids.map((id, i) => ({ i, id, cost: costs.get(id) ?? median }));
  order.sort((a, b) => b.cost - a.cost || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const load = new Array<number>(count).fill(0);
  const out = new Array<number>(ids.length);
  for (const j of order) {
    let best = 0;
    for (let k = 1; k < count; k++) if (load[k] < load[best]) best = k;
    load[best] += j.cost;
    out[j.i] = best + 1;
  }
  return out;
}

/** Seconds per job from a previous run's --json output (a list of verdicts, or a shard file). */
export function readCosts(file: string): Map<string, number> {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new FileError(`--shard-costs ${file}: ${e instanceof SyntaxError ? `not JSON (${e.message})` : errnoText(e)}`);
  }
  const list = Array.isArray(data) ? data : isShardFile(data) ? data.verdicts : [data];
  const costs = new Map<string, number>();
  for (const v of list) {
    const r = Verdict.safeParse(v);
    if (!r.success) throw new FileError(`--shard-costs ${file}: expected refcheck's --json output (a list of verdicts or a shard file)`);
    costs.set(jobId(r.data.spec, r.data.params), r.data.stats.seconds);
  }
  return costs;
}

export const ShardFile = z.object({
  refcheckShard: z.literal(1),
  index: z.number().int().min(1),
  count: z.number().int().min(1),
  /** What the run was: refcheck version, command, spec files and contents, flags. Equal across a run's shards. */
  run: z.string(),
  version: z.string(),
  command: z.enum(["check", "compare", "simulate"]),
  /** The spec files of the run, as given to the unsharded run's report planner. */
  files: z.array(z.string()),
  /** Every job of the run, in the unsharded run's order. */
  jobs: z.array(z.string()),
  /** This shard's jobs. */
  assigned: z.array(z.string()),
  /** Every assigned job ran to its verdict (false when interrupted). */
  finished: z.boolean(),
  verdicts: z.array(Verdict),
});
export type ShardFile = z.infer<typeof ShardFile>;

function isShardFile(x: unknown): x is ShardFile {
  return typeof x === "object" && x !== null && (x as { refcheckShard?: unknown }).refcheckShard === 1;
}

/** The identity of a run: everything that could change its verdicts, apart from the shard index. */
export function runIdentity(parts: { version: string; command: string; count: number; files: { file: string; content: string }[]; flags: Record<string, unknown> }): string {
  const h = createHash("sha256");
  h.update(JSON.stringify([parts.version, parts.command, parts.count, parts.flags]));
  for (const f of parts.files) h.update(`\0${f.file}\0${createHash("sha256").update(f.content).digest("hex")}`);
  return h.digest("hex").slice(0, 32);
}

export interface Merged {
  command: "check" | "compare" | "simulate";
  files: string[];
  verdicts: Verdict[];
}

/**
 * Reads the shard files of one run and returns its verdicts in the unsharded order. Refuses
 * a missing or duplicated shard, shards of different runs, and a shard that did not finish
 * its jobs (unless `allowUnfinished`: its missing jobs then make the merged run incomplete).
 */
export function mergeShards(paths: readonly string[], allowUnfinished = false): Merged & { unfinished: string[] } {
  if (paths.length === 0) throw new ShardError("merge: name the shard files (the --json output of each --shard run)");
  const shards: { path: string; s: ShardFile }[] = paths.map((p) => {
    let data: unknown;
    try {
      data = JSON.parse(readFileSync(p, "utf8"));
    } catch (e) {
      throw new FileError(`merge: ${p}: ${e instanceof SyntaxError ? `not JSON (${e.message})` : errnoText(e)}`);
    }
    if (!isShardFile(data)) throw new ShardError(`merge: ${p} is not a shard file (write one with --shard I/K --json)`);
    const r = ShardFile.safeParse(data);
    if (!r.success) throw new ShardError(`merge: ${p}: not a valid shard file: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).slice(0, 3).join("; ")}`);
    // The file as written: parsing reorders keys, and the merged outputs must equal the unsharded run's.
    return { path: p, s: data as ShardFile };
  });
  const first = shards[0];
  for (const x of shards.slice(1)) {
    const what = x.s.version !== first.s.version ? `refcheck ${x.s.version}, not ${first.s.version}`
      : x.s.count !== first.s.count ? `${x.s.count} shards, not ${first.s.count}`
      : x.s.command !== first.s.command ? `the ${x.s.command} command, not ${first.s.command}`
      : x.s.run !== first.s.run ? "other spec contents, parameters or flags" : undefined;
    if (what) throw new ShardError(`merge: ${x.path} and ${first.path} are shards of different runs (${what})`);
  }
  const byIndex = new Map<number, string>();
  for (const x of shards) {
    const dup = byIndex.get(x.s.index);
    if (dup) throw new ShardError(`merge: shard ${x.s.index}/${x.s.count} is given twice (${dup} and ${x.path})`);
    byIndex.set(x.s.index, x.path);
  }
  const missing = Array.from({ length: first.s.count }, (_, i) => i + 1).filter((i) => !byIndex.has(i));
  if (missing.length) throw new ShardError(`merge: shard${missing.length > 1 ? "s" : ""} ${missing.map((i) => `${i}/${first.s.count}`).join(", ")} missing (got ${shards.length} of ${first.s.count})`);

  const found = new Map<string, Verdict>();
  const unfinished: string[] = [];
  for (const { path, s } of shards) {
    const ran = new Set<string>();
    for (const v of s.verdicts) {
      const id = jobId(v.spec, v.params);
      found.set(id, v);
      ran.add(id);
    }
    const lost = s.assigned.filter((id) => !ran.has(id));
    if (lost.length && !allowUnfinished) {
      throw new ShardError(`merge: shard ${s.index}/${s.count} (${path}) did not finish ${lost.length} of its ${s.assigned.length} jobs (${lost.slice(0, 3).join(", ")}${lost.length > 3 ? ", ..." : ""}); rerun it, or merge with --allow-unfinished to report the run as incomplete`);
    }
    unfinished.push(...lost);
  }
  const verdicts = first.s.jobs.filter((id) => found.has(id)).map((id) => found.get(id)!);
  return { command: first.s.command, files: first.s.files, verdicts, unfinished };
}
