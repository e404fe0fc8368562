// Human output of one verdict for the terminal. Colour follows chalk's own detection
// (NO_COLOR, FORCE_COLOR, TTY) unless the caller forces it.
import chalk, { Chalk, type ChalkInstance } from "chalk";
import type { PropertyResult, Step, Trace, Verdict } from "../checker/verdict.ts";
import {
  allWarnings, fmtChange, incompleteText, loopNote, termSafe, termText, fmtValue, headline, leaves, objectOf, stepLabel, statsLine, steps, traced,
} from "./util.ts";

export interface ConsoleOptions {
  /** Force colour on or off; default: chalk's detection. */
  color?: boolean;
  /** Print traces of violations and witnesses (default true). */
  traces?: boolean;
  /**
   * Witness traces of a passing run: printed in full when true, else one line each (its
   * actions). A failing run's traces are always printed.
   */
  witnesses?: boolean;
  /** Only the failed properties (a passing run is one line). */
  failuresOnly?: boolean;
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
  lines.push(`${ind}${c.dim(no)}  ${c.bold.cyan(t(stepLabel(s)))}${s.thread ? `  ${c.magenta(`on ${t(s.thread)}`)}` : ""}${s.kernel ? c.dim(`  [${t(s.kernel)}]`) : ""}`);
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

  if (opts.failuresOnly && !v.properties.some((p) => p.failed)) {
    const word = v.outcome === "pass" ? c.green.bold("PASS") : c.yellow.bold("INCOMPLETE");
    return `${word}  ${v.spec}${v.design !== undefined ? ` (${v.design})` : ""}: ${v.properties.length} properties, none failed\n`;
  }
  const shown = opts.failuresOnly ? v.properties.filter((p) => p.failed) : v.properties;
  const nameW = Math.max(...v.properties.map((p) => p.name.length), 8);
  const statW = Math.max(...v.properties.map((p) => (p.status === "violated" ? 8 : p.status.length)), 6);
  for (const p of shown) {
    const plainStatus = p.status === "violated" ? "VIOLATED" : p.status;
    const pad = " ".repeat(statW - plainStatus.length);
    const extra = p.trace ? ` in ${steps(p.trace.length)}` : "";
    const why = p.status === "violated" && p.message ? `: ${p.message}` : "";
    const expect = p.failed && p.kind === "reachable" ? ` (expected ${p.expect ?? "reachable"})` : "";
    const declared = p.expected === true ? c.dim(" (declared in the spec)") : "";
    out.push(`  ${p.name.padEnd(nameW)}  ${statusWord(p, c)}${pad}  ${c.dim(kindLabel[p.kind])}${extra}${why}${expect}${declared}`);
    // What the broken property promises, so the reader need not open the spec.
    if (p.failed && p.doc) out.push(`  ${" ".repeat(nameW)}  ${c.dim(p.doc)}`);
  }
  if (opts.failuresOnly && shown.length < v.properties.length) out.push(c.dim(`  (${v.properties.length - shown.length} other properties not failed)`));

  if (opts.traces !== false) {
    const passing = !v.properties.some((p) => p.failed);
    for (const p of traced(v)) {
      if (!p.failed && (opts.witnesses === false || opts.failuresOnly)) continue;
      const head = `${headline(p)} (${steps(p.trace.length)})`;
      if (!p.failed && passing && opts.witnesses !== true) {
        // A passing run's witness: which actions reach it, on one line.
        const acts = p.trace.steps.filter((s) => s.action !== null).map(stepLabel).join(", ");
        out.push("", `${c.green(head)}: ${acts}${c.dim(" (--witnesses prints it)")}`);
        continue;
      }
      out.push("");
      out.push(p.failed ? c.red.bold(head) : c.green.bold(head));
      if (p.failed && p.doc) out.push(c.dim(`  ${p.name}: ${p.doc}`));
      out.push(renderTrace(p.trace, { color: opts.color }));
    }
  }

  out.push("");
  out.push(c.dim(statsLine(v)));
  for (const w of allWarnings(v)) out.push(c.yellow(`warning: ${w}`));
  if (!v.complete) out.push(c.yellow.bold(incompleteText(v, "; properties not violated are unproven")));
  const verdictWord = v.outcome === "pass" ? c.green.bold("PASS") : v.outcome === "fail" ? c.red.bold("FAIL") : c.yellow.bold(v.simulation ? "NO VIOLATION FOUND" : "INCOMPLETE");
  out.push(`${verdictWord}  ${v.spec}${v.design !== undefined ? ` (${v.design})` : ""}${expectationLine(v, c)}`);
  if (v.expectation) for (const d of v.expectation.differences) out.push(`  ${v.expectation.status === "changed" ? c.red(d) : c.yellow(d)}`);
  return out.join("\n") + "\n";
}
