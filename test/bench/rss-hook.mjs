// Preloaded with `node --import` into benchmarked children: when REFCHECK_BENCH_RSS names
// a file, writes the process's peak RSS (KiB, worker threads included) there on exit,
// so per-run memory does not depend on /usr/bin/time being installed. Plain JavaScript:
// worker threads inherit --import and may load it before tsx's hooks are in place.
import { writeFileSync } from "node:fs";
import { isMainThread } from "node:worker_threads";

const rssFile = process.env.REFCHECK_BENCH_RSS;
if (rssFile && isMainThread) process.on("exit", () => writeFileSync(rssFile, String(process.resourceUsage().maxRSS)));
