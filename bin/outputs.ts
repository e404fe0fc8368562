// Report files and CI output for `check` and `compare`, and the `trace` command.
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Verdict } from "../checker/verdict.ts";
import { renderTrace } from "../reports/console.ts";
import { githubAnnotations, githubSummary } from "../reports/github.ts";
import { renderHtml } from "../reports/html.ts";
import { itfFileName, parseItf, toItf } from "../reports/itf.ts";
import { renderJunit } from "../reports/junit.ts";
import { renderMarkdown } from "../reports/markdown.ts";
import { renderSarif } from "../reports/sarif.ts";

export const reportOptions = {
  itf: { type: "string", describe: "write every counterexample and witness as an ITF trace file into DIR" },
  junit: { type: "string", describe: "write JUnit XML to FILE" },
  sarif: { type: "string", describe: "write SARIF 2.1.0 to FILE (code scanning)" },
  markdown: { type: "string", describe: "write the Markdown report (tables, traces, Mermaid) to FILE" },
  html: { type: "string", describe: "write the self-contained HTML report to FILE" },
} as const;

export interface ReportArgs {
  itf?: string;
  junit?: string;
  sarif?: string;
  markdown?: string;
  html?: string;
  json?: boolean;
}

function write(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
}

function version(): string | undefined {
  try {
    return JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version;
  } catch {
    return undefined;
  }
}

/** Writes the requested report files; on GitHub Actions also annotations and the job summary. */
export function writeReports(verdicts: Verdict[], a: ReportArgs): void {
  if (a.itf) {
    mkdirSync(a.itf, { recursive: true });
    for (const v of verdicts) for (const p of v.properties) if (p.trace) writeFileSync(join(a.itf, itfFileName(v, p)), toItf(v, p));
  }
  if (a.junit) write(a.junit, renderJunit(verdicts));
  if (a.sarif) write(a.sarif, renderSarif(verdicts, { version: version() }));
  if (a.markdown) write(a.markdown, renderMarkdown(verdicts));
  if (a.html) write(a.html, renderHtml(verdicts));
  if (process.env.GITHUB_ACTIONS === "true") {
    // Keep --json output parseable: the runner reads workflow commands on stderr too.
    (a.json ? process.stderr : process.stdout).write(githubAnnotations(verdicts));
    const summary = process.env.GITHUB_STEP_SUMMARY;
    if (summary) appendFileSync(summary, githubSummary(verdicts));
  }
}

/** `refcheck trace FILE`: an ITF trace (refcheck's or Quint's) printed like `check` does. */
export function printTrace(file: string): string {
  const { trace, meta } = parseItf(readFileSync(file, "utf8"), file);
  const rc = (meta.refcheck ?? {}) as Record<string, unknown>;
  const head =
    typeof rc.spec === "string"
      ? `${rc.spec}${rc.design !== undefined ? ` (${String(rc.design)})` : ""}: ${String(rc.property)} ${String(rc.status)}${rc.message ? `: ${String(rc.message)}` : ""}`
      : `${typeof meta.source === "string" ? meta.source : file}${typeof meta.description === "string" ? `: ${meta.description}` : ""}`;
  return `${head} (${trace.length} step${trace.length === 1 ? "" : "s"})\n${renderTrace(trace)}\n`;
}
