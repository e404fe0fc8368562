// Human output of one verdict for the terminal. Colour follows chalk's own detection
// (NO_COLOR, FORCE_COLOR, TTY) unless the caller forces it.
import chalk, { Chalk, type ChalkInstance } from "chalk";
import type { PropertyResult, Step, Trace, Verdict } from "../checker/verdict.ts";
import {
  allWarnings, fmtChange, termSafe, termText, fmtValue, headline, leaves, loopNote, objectOf, stepLabel, statsLine, steps, traced,
} from "./util.ts";

export interface ConsoleOptions {
  /** Force colour on or off; default: chalk's detection. */
  color?: boolean;
  /** Print traces of violations and witnesses (default true). */
  traces?: boolean;
  /** Also print witness traces of properties that did not fail (default true). */
  witnesses?: boolean;
}

export function painter(color: boolean | undefined): ChalkInstance {
  if (color === undefined) return chalk;
  return new Chalk({ level: color ? Math.max(chalk.level, 1) as 1 | 2 | 3 : 0 });
}

export function statusWord(p: PropertyResult, c: ChalkInstance): string {
  const w = p.status === "violated" ? "VIOLATED" : p.status;
  if (p.failed) return c.red.bold(w);
  if (p.status === "unknown") return c.yellow(w);
  return c.green(w);
}

const kindLabel: Record<PropertyResult["kind"], string> = {
  fault: "kernel fault",
  invariant: "invariant",
  action: "action property",
  quiescent: "quiescent",
  deadlock: "deadlock",
  "lock-order": "lock order",
  reachable: "witness",
  liveness: "liveness",
};

/**
 * A trace as numbered steps: the action and its parameters, then only the changed
 * fields (`path: old -> new`); the initial state in full; the fault at its step.
 */
export function renderTrace(trace: Trace, opts: { color?: boolean; indent?: string } = {}): string {
  const width = String(trace.steps.length - 1).length;
  const c = painter(opts.color);
  return trace.steps
    .map((s, k) => {
      const note = loopNote(trace, k);
      return renderStep(s, width, opts) + (note ? `\n${opts.indent ?? "  "}${" ".repeat(width)}    ${c.magenta.bold(`-- ${note} --`)}` : "");
    })
    .join("\n");
}

/** One step of a trace as renderTrace prints it; `width` is the width of the last step number. */
export function renderStep(s: Step, width: number, opts: { color?: boolean; indent?: string } = {}): string {
  // Spec and file text is escaped piece by piece: the state is not copied for every step.
  const t = termText;
  const c = painter(opts.color);
  const ind = opts.indent ?? "  ";
  const pad = `${ind}${" ".repeat(width)}    `;
  const lines: string[] = [];
  const no = String(s.index).padStart(width);
  if (s.action === null) {
    lines.push(`${ind}${c.dim(no)}  ${c.bold("initial state")}`);
    // One line per object (vmFile, vfio[0], ...) keeps the initial state readable.
    const byObject = new Map<string, string[]>();
    for (const [p, v] of leaves(s.state)) {
      const obj = objectOf(p);
      const field = p === obj ? "" : p.slice(obj.length).replace(/^\./, "");
      byObject.set(obj, [...(byObject.get(obj) ?? []), t(field ? `${field}=${fmtValue(v)}` : fmtValue(v))]);
    }
    for (const [obj, fields] of byObject) lines.push(`${pad}${t(obj)}: ${fields.join(" ")}`);
    return lines.join("\n");
  }
  lines.push(`${ind}${c.dim(no)}  ${c.bold.cyan(t(stepLabel(s)))}${s.kernel ? c.dim(`  [${t(s.kernel)}]`) : ""}`);
  if (s.changes.length === 0 && !s.fault) lines.push(`${pad}${c.dim("(no change)")}`);
  for (const ch of s.changes) lines.push(`${pad}${t(fmtChange(ch))}`);
  if (s.fault) lines.push(`${pad}${c.red.bold("FAULT:")} ${c.red(t(s.fault))}`);
  return lines.join("\n");
}

/** "as expected" with what the spec declares, or "CHANGED" (the differences follow). */
function expectationLine(v: Verdict, c: ChalkInstance): string {
  const e = v.expectation;
  if (!e) return "";
  if (e.status === "changed") return `  ${c.red.bold("CHANGED")} from the spec's expected verdict:`;
  return `  ${c.green.bold("as expected")}${c.dim(`: ${e.declared.length ? `declared violations ${e.declared.join("; ")}` : "no violation declared"}`)}`;
}

/** The property list, then each trace, statistics, warnings and completeness. */
export function renderVerdict(v: Verdict, opts: ConsoleOptions = {}): string {
  v = termSafe(v);
  const c = painter(opts.color);
  const out: string[] = [];
  const design = v.design !== undefined ? `  ${c.dim(`${v.designParam ?? "design"}=`)}${c.bold(v.design)}` : "";
  out.push(`${c.bold(v.spec)}${design}${v.file ? c.dim(`  (${v.file})`) : ""}`);
  if (v.summary) out.push(c.dim(`  ${v.summary}`));
  const other = Object.entries(v.params).filter(([k]) => k !== v.designParam);
  if (other.length) out.push(c.dim(`  ${other.map(([k, x]) => `${k}=${fmtValue(x)}`).join(" ")}`));
  out.push("");

  const nameW = Math.max(...v.properties.map((p) => p.name.length), 8);
  const statW = Math.max(...v.properties.map((p) => (p.status === "violated" ? 8 : p.status.length)), 6);
  for (const p of v.properties) {
    const plainStatus = p.status === "violated" ? "VIOLATED" : p.status;
    const pad = " ".repeat(statW - plainStatus.length);
    const extra = p.trace ? ` in ${steps(p.trace.length)}` : "";
    const why = p.status === "violated" && p.message ? `: ${p.message}` : "";
    const expect = p.failed && p.kind === "reachable" ? ` (expected ${p.expect ?? "reachable"})` : "";
    const declared = p.expected === true ? c.dim(" (declared in the spec)") : "";
    out.push(`  ${p.name.padEnd(nameW)}  ${statusWord(p, c)}${pad}  ${c.dim(kindLabel[p.kind])}${extra}${why}${expect}${declared}`);
  }

  if (opts.traces !== false) {
    for (const p of traced(v)) {
      if (!p.failed && opts.witnesses === false) continue;
      out.push("");
      const head = `${headline(p)} (${steps(p.trace.length)})`;
      out.push(p.failed ? c.red.bold(head) : c.green.bold(head));
      out.push(renderTrace(p.trace, { color: opts.color }));
    }
  }

  out.push("");
  out.push(c.dim(statsLine(v)));
  for (const w of allWarnings(v)) out.push(c.yellow(`warning: ${w}`));
  if (!v.complete) out.push(c.yellow.bold(`INCOMPLETE: stopped by ${v.stoppedBy ?? "a bound"}; properties not violated are unproven`));
  const verdictWord = v.outcome === "pass" ? c.green.bold("PASS") : v.outcome === "fail" ? c.red.bold("FAIL") : c.yellow.bold("INCOMPLETE");
  out.push(`${verdictWord}  ${v.spec}${v.design !== undefined ? ` (${v.design})` : ""}${expectationLine(v, c)}`);
  if (v.expectation) for (const d of v.expectation.differences) out.push(`  ${v.expectation.status === "changed" ? c.red(d) : c.yellow(d)}`);
  return out.join("\n") + "\n";
}
