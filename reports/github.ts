// GitHub Actions: workflow-command annotations (::error/::warning) that point at the
// spec line of each failure, and a Markdown job summary ($GITHUB_STEP_SUMMARY).
import type { Verdict } from "../checker/verdict.ts";
import { renderMarkdown } from "./markdown.ts";
import { coverageWarnings, designName, differenceOf, fmtChange, headline, propertyLine, reportedFailure, stepLabel, steps, termSafe } from "./util.ts";

/** Escaping of workflow-command data (the message). */
export function ghData(s: string): string {
  return s.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
}

/** Escaping of workflow-command property values (file, title). */
export function ghProp(s: string): string {
  return ghData(s).replace(/:/g, "%3A").replace(/,/g, "%2C");
}

function command(kind: "error" | "warning" | "notice", props: Record<string, string | number | undefined>, message: string): string {
  const p = Object.entries(props)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${ghProp(String(v))}`)
    .join(",");
  return `::${kind}${p ? " " + p : ""}::${ghData(message)}`;
}

/** One annotation line per failure, incomplete run and never-fired action. */
export function githubAnnotations(verdicts: Verdict[]): string {
  // Spec text may hold terminal escapes or newlines of its own; the lines are ours.
  verdicts = termSafe(verdicts);
  const out: string[] = [];
  for (const v of verdicts) {
    for (const p of v.properties) {
      // Only changes are errors: a violation the spec declares is not.
      if (!reportedFailure(p)) continue;
      const diff = differenceOf(v, p);
      const lines = [`${designName(v)}: ${diff ? `CHANGED: ${diff}` : p.status === "unreachable" ? `${p.name} witness unreachable, expected reachable` : headline(p)}`];
      if (p.trace) {
        lines.push(`Trace (${steps(p.trace.length)}):`);
        for (const s of p.trace.steps.slice(1)) {
          lines.push(`${s.index}. ${stepLabel(s)}${s.changes.length ? ": " + s.changes.map(fmtChange).join(", ") : ""}`);
          if (s.fault) lines.push(`   FAULT: ${s.fault}`);
        }
      }
      out.push(command("error", { file: v.file, line: v.file ? propertyLine(v, p) : undefined, title: `refcheck: ${v.spec} ${p.name}` }, lines.join("\n")));
    }
    if (!v.complete) {
      out.push(command("warning", { file: v.file, title: `refcheck: ${v.spec} incomplete` }, `${designName(v)}: INCOMPLETE: stopped by ${v.stoppedBy ?? "a bound"}; unviolated properties are unproven`));
    }
    for (const c of v.coverage) {
      const w = coverageWarnings({ ...v, coverage: [c] })[0];
      if (w) out.push(command("warning", { file: v.file, line: v.file ? c.line : undefined, title: `refcheck: ${v.spec} coverage` }, `${designName(v)}: ${w}`));
    }
  }
  return out.length ? out.join("\n") + "\n" : "";
}

/** The job summary: comparison tables and counterexamples, Mermaid included. */
export function githubSummary(verdicts: Verdict[]): string {
  return renderMarkdown(verdicts, { title: "refcheck", witnesses: false });
}

