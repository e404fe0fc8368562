// Preloaded with `node --import` into benchmarked children: when REFCHECK_BENCH_RSS names
// a file, writes the process's peak RSS (KiB, worker threads included) there on exit,
// so per-run memory does not depend on /usr/bin/time being installed.
import { writeFileSync } from "node:fs";

const rssFile = process.env.REFCHECK_BENCH_RSS;
if (rssFile) process.on("exit", () => writeFileSync(rssFile, String(process.resourceUsage().maxRSS)));
