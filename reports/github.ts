// GitHub Actions: workflow-command annotations (::error/::warning) that point at the
// spec line of each failure, and a Markdown job summary ($GITHUB_STEP_SUMMARY).
import type { Verdict } from "../checker/verdict.ts";
import { renderMarkdown } from "./markdown.ts";
import { coverageWarnings, designName, incompleteText, loopNote, differenceOf, fmtChange, headline, propertyLine, repoPath, reportedFailure, stepLabel, steps, termSafe } from "./util.ts";

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

/** GitHub shows at most this many annotations of each level per step; the rest are dropped silently. */
export const ANNOTATIONS_PER_STEP = 10;

export interface GithubOptions {
  /** Annotations of each level before the rest go to the summary (default 10). */
  max?: number;
  /** Rebase spec paths (relative to `cwd`) onto the repository root, which GitHub resolves them against. */
  root?: string;
  cwd?: string;
}

interface Annotation {
  kind: "error" | "warning";
  /** Lower first: violations, then other failures; shorter traces first. */
  rank: [number, number];
  /** A one-line description for the summary when not annotated. */
  line: string;
  text: string;
}

function specPath(v: Verdict, opts: GithubOptions): string | undefined {
  return v.file === undefined ? undefined : repoPath(v.file, opts.root, opts.cwd);
}

function annotations(verdicts: Verdict[], opts: GithubOptions): Annotation[] {
  // Spec text may hold terminal escapes or newlines of its own; the lines are ours.
  verdicts = termSafe(verdicts);
  const out: Annotation[] = [];
  for (const v of verdicts) {
    const file = specPath(v, opts);
    for (const p of v.properties) {
      // Only changes are errors: a violation the spec declares is not.
      if (!reportedFailure(p)) continue;
      const diff = differenceOf(v, p);
      const head = `${designName(v)}: ${diff ? `CHANGED: ${diff}` : p.status === "unreachable" ? `${p.name} witness unreachable, expected reachable` : headline(p)}`;
      const lines = [head];
      if (p.trace) {
        lines.push(`Trace (${steps(p.trace.length)}):`);
        for (const s of p.trace.steps.slice(1)) {
          lines.push(`${s.index}. ${stepLabel(s)}${s.changes.length ? ": " + s.changes.map(fmtChange).join(", ") : ""}`);
          if (s.fault) lines.push(`   FAULT: ${s.fault}`);
          const note = loopNote(p.trace, s.index);
          if (note) lines.push(`   (${note})`);
        }
      }
      const line = file ? propertyLine(v, p) : undefined;
      out.push({
        kind: "error",
        rank: [p.status === "violated" ? 0 : 1, p.trace?.length ?? Number.MAX_SAFE_INTEGER],
        line: `${file ?? v.spec}${line ? `:${line}` : ""}: ${v.spec} ${head}`,
        text: command("error", { file, line, title: `refcheck: ${v.spec} ${p.name}` }, lines.join("\n")),
      });
    }
    if (!v.complete) {
      const msg = `${designName(v)}: ${incompleteText(v, "; unviolated properties are unproven")}`;
      out.push({ kind: "warning", rank: [2, 0], line: `${file ?? v.spec}: ${v.spec} ${msg}`, text: command("warning", { file, title: `refcheck: ${v.spec} incomplete` }, msg) });
    }
    for (const c of v.coverage) {
      const w = coverageWarnings({ ...v, coverage: [c] })[0];
      if (!w) continue;
      const line = file ? c.line : undefined;
      out.push({
        kind: "warning",
        rank: [3, 0],
        line: `${file ?? v.spec}${line ? `:${line}` : ""}: ${v.spec} ${designName(v)}: ${w}`,
        text: command("warning", { file, line, title: `refcheck: ${v.spec} coverage` }, `${designName(v)}: ${w}`),
      });
    }
  }
  // Stable sort: equal ranks keep the order of the run.
  return out.sort((a, b) => a.rank[0] - b.rank[0] || a.rank[1] - b.rank[1]);
}

function split(verdicts: Verdict[], opts: GithubOptions): { shown: Annotation[]; rest: Annotation[] } {
  const max = opts.max ?? ANNOTATIONS_PER_STEP;
  const all = annotations(verdicts, opts);
  const shown: Annotation[] = [];
  const rest: Annotation[] = [];
  const count = { error: 0, warning: 0 };
  for (const a of all) (count[a.kind]++ < max ? shown : rest).push(a);
  return { shown, rest };
}

/**
 * Annotation lines: failures as errors (violations first, shorter traces first), incomplete
 * runs and never-fired actions as warnings, at most `max` of each level (GitHub shows no
 * more per step), then a notice naming how many more the job summary lists.
 */
export function githubAnnotations(verdicts: Verdict[], opts: GithubOptions = {}): string {
  const { shown, rest } = split(verdicts, opts);
  const out = shown.map((a) => a.text);
  if (rest.length) {
    const errors = rest.filter((a) => a.kind === "error").length;
    const what = [errors ? `${errors} more failure${errors === 1 ? "" : "s"}` : "", rest.length - errors ? `${rest.length - errors} more warning${rest.length - errors === 1 ? "" : "s"}` : ""].filter(Boolean).join(" and ");
    out.push(command("notice", { title: "refcheck: more in the job summary" }, `${what} than GitHub shows per step: see the job summary (refcheck writes them to $GITHUB_STEP_SUMMARY)`));
  }
  return out.length ? out.join("\n") + "\n" : "";
}

/** The job summary: comparison tables and counterexamples, Mermaid included, and the findings not annotated. */
export function githubSummary(verdicts: Verdict[], opts: GithubOptions = {}): string {
  const md = renderMarkdown(verdicts, { title: "refcheck", witnesses: false });
  const { rest } = split(verdicts, opts);
  if (!rest.length) return md;
  const max = opts.max ?? ANNOTATIONS_PER_STEP;
  const list = rest.map((a) => `- ${a.kind === "error" ? "**error**" : "warning"} ${mdEscape(a.line)}`);
  return `${md.trimEnd()}\n\n## Not shown as annotations\n\nGitHub shows ${max} errors and ${max} warnings per step; these ${rest.length} are the rest:\n\n${list.join("\n")}\n`;
}

function mdEscape(s: string): string {
  return s.replace(/[\\`*_[\]<>|]/g, (c) => `\\${c}`);
}
