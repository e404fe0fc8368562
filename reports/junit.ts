// JUnit XML for CI test tabs: one testsuite per (spec, design), one testcase per
// property; a failure carries the trace as plain text, "unknown" is a skip.
// Valid against the Jenkins xUnit plugin's junit-10.xsd, which skips a file carrying
// testcase/@file, testcase/@line or testsuites/@skipped: the spec file and property lines
// are suite properties instead, and each failure names its place as a stack-like
// "at ... (file:line)" line, which GitHub's JUnit reporters read.
import type { PropertyResult, Verdict } from "../checker/verdict.ts";
import { renderTrace } from "./console.ts";
import { allWarnings, designName, incompleteText, differenceOf, fmtValue, headline, propertyLine, repoPath, reportedFailure, runParams, statsLine, steps } from "./util.ts";

/** XML-escaped text with characters XML 1.0 forbids removed. */
export function xml(s: string): string {
  return s
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

function attrs(a: Record<string, string | number | undefined>): string {
  return Object.entries(a)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${xml(String(v))}"`)
    .join("");
}

function testcase(v: Verdict, p: PropertyResult, ind: string, file: string | undefined): string {
  const open = `${ind}<testcase${attrs({
    name: p.name,
    classname: `${v.spec}.${designName(v)}`,
    time: "0",
  })}`;
  // A violation the spec declares passes: CI fails only on a change.
  if (p.failed && p.expected === true) {
    const text = `expected violation (declared in the spec): ${headline(p)}${p.trace ? `; trace of ${steps(p.trace.length)}` : ""}`;
    return `${open}>\n${ind}  <system-out>${xml(text)}</system-out>\n${ind}</testcase>`;
  }
  if (!p.failed && p.expected === false) {
    const message = `CHANGED: ${differenceOf(v, p) ?? `${p.name} differs from the spec's expected verdict`}`;
    return `${open}>\n${ind}  <failure${attrs({ message, type: "expectation" })}>${xml(message)}\n</failure>\n${ind}</testcase>`;
  }
  if (p.failed) {
    const message =
      p.status === "violated" ? `${p.kind} violated${p.message ? `: ${p.message}` : ""}` : `witness ${p.status}, expected ${p.expect ?? "reachable"}`;
    const line = propertyLine(v, p);
    const at = file ? `\n    at ${v.spec}.${p.name} (${file}${line ? `:${line}` : ""})` : "";
    const body = p.trace ? `${message}${at}\n\n${renderTrace(p.trace, { color: false })}\n` : `${message}${at}\n`;
    return `${open}>\n${ind}  <failure${attrs({ message, type: p.kind })}>${xml(body)}</failure>\n${ind}</testcase>`;
  }
  if (p.status === "unknown") {
    const why = v.simulation ? incompleteText(v) : `search stopped by ${v.stoppedBy ?? "a bound"}`;
    return `${open}>\n${ind}  <skipped${attrs({ message: `not decided: ${why}` })}/>\n${ind}</testcase>`;
  }
  return `${open}/>`;
}

export interface JunitOptions {
  /** Rebase spec paths (relative to `cwd`) onto the repository root. */
  root?: string;
  cwd?: string;
}

export function renderJunit(verdicts: Verdict[], opts: JunitOptions = {}): string {
  const count = (v: Verdict) => ({
    tests: v.properties.length,
    failures: v.properties.filter(reportedFailure).length,
    skipped: v.properties.filter((p) => !p.failed && p.status === "unknown").length,
  });
  const totals = verdicts.map(count).reduce((a, b) => ({ tests: a.tests + b.tests, failures: a.failures + b.failures, skipped: a.skipped + b.skipped }), { tests: 0, failures: 0, skipped: 0 });
  const seconds = verdicts.reduce((s, v) => s + v.stats.seconds, 0);
  const out = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    // No skipped count here: junit-10.xsd allows it on testsuite only.
    `<testsuites${attrs({ name: "refcheck", tests: totals.tests, failures: totals.failures, errors: 0, time: seconds.toFixed(3) })}>`,
  ];
  const used = new Set<string>();
  for (const v of verdicts) {
    const tags = [...(v.design !== undefined ? [`${v.designParam ?? "design"}=${v.design}`] : []), ...runParams(v).map(([k, x]) => `${k}=${fmtValue(x)}`)];
    const base = tags.length ? `${v.spec} [${tags.join(", ")}]` : v.spec;
    // CI tools key results by suite name: the same run twice must not merge.
    let name = base;
    for (let n = 2; used.has(name); n++) name = `${base} #${n}`;
    used.add(name);
    out.push(`  <testsuite${attrs({ name, ...count(v), errors: 0, time: v.stats.seconds.toFixed(3) })}>`);
    out.push(`    <properties>`);
    for (const [k, x] of Object.entries(v.params)) out.push(`      <property${attrs({ name: k, value: fmtValue(x) })}/>`);
    out.push(`      <property${attrs({ name: "complete", value: String(v.complete) })}/>`);
    const file = v.file === undefined ? undefined : repoPath(v.file, opts.root, opts.cwd);
    if (file) {
      out.push(`      <property${attrs({ name: "file", value: file })}/>`);
      for (const p of v.properties) {
        const line = propertyLine(v, p);
        if (line) out.push(`      <property${attrs({ name: `line:${p.name}`, value: line })}/>`);
      }
    }
    out.push(`    </properties>`);
    for (const p of v.properties) out.push(testcase(v, p, "    ", file));
    const notes = [statsLine(v), ...allWarnings(v).map((w) => `warning: ${w}`)];
    if (!v.complete) notes.push(incompleteText(v));
    out.push(`    <system-out>${xml(notes.join("\n"))}</system-out>`);
    out.push(`  </testsuite>`);
  }
  out.push(`</testsuites>`);
  return out.join("\n") + "\n";
}
