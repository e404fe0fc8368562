// The comparison table for the terminal: one table per scenario, designs as rows,
// properties as columns; failure details and (optionally) counterexamples below.
import type { ChalkInstance } from "chalk";
import type { PropertyResult, Verdict } from "../checker/verdict.ts";
import { painter, renderTrace } from "./console.ts";
import { byScenario, designName, headline, incompleteText, propertyNames, resultWord, shortCell, statsLine, steps, termSafe, traced } from "./util.ts";

export interface CompareOptions {
  color?: boolean;
  /** Print each counterexample (and witness with `witnesses`) below the tables. */
  traces?: boolean;
  witnesses?: boolean;
  /** Terminal width: a wider table is printed transposed (properties as rows). */
  width?: number;
  /** Only the designs with a failed property (a scenario without one is one line). */
  failuresOnly?: boolean;
}

function paintCell(p: PropertyResult | undefined, text: string, c: ChalkInstance): string {
  if (!p) return c.dim(text);
  if (p.failed && p.expected === true) return c.red(text);
  if (p.failed || p.expected === false) return c.red.bold(text);
  if (p.status === "unknown") return c.yellow(text);
  return c.green(text);
}

function paintResult(v: Verdict, text: string, c: ChalkInstance): string {
  const w = resultWord(v);
  return w === "pass" || w === "expected" ? c.green(text) : w === "incomplete" ? c.yellow(text) : c.red.bold(text);
}

/** Properties as rows, designs as columns: for many properties on a narrow terminal. */
function transposed(vs: Verdict[], c: ChalkInstance): string[] {
  const props = propertyNames(vs);
  const head = ["property", ...vs.map(designName)];
  const rows = props.map((n) => [n, ...vs.map((v) => shortCell(v.properties.find((p) => p.name === n)))]);
  rows.push(["states", ...vs.map((v) => v.stats.distinctStates.toLocaleString("en-US"))]);
  rows.push(["result", ...vs.map(resultWord)]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const out = ["  " + head.map((h, i) => c.bold(i === head.length - 1 ? h : h.padEnd(w[i]!))).join("  "), "  " + w.map((n) => "-".repeat(n)).join("  ")];
  rows.forEach((r, k) => {
    out.push(
      "  " +
        r
          .map((s, i) => {
            const t = i === r.length - 1 ? s : s.padEnd(w[i]!);
            if (i === 0) return c.bold(t);
            const v = vs[i - 1]!;
            if (k < props.length) return paintCell(v.properties.find((p) => p.name === props[k]), t, c);
            if (k === props.length) return c.dim(t);
            return paintResult(v, t, c);
          })
          .join("  "),
    );
  });
  return out;
}

function table(vs: Verdict[], c: ChalkInstance): string[] {
  const props = propertyNames(vs);
  const head = ["design", ...props, "states", "result"];
  const rows = vs.map((v) => [
    designName(v),
    ...props.map((n) => shortCell(v.properties.find((p) => p.name === n))),
    v.stats.distinctStates.toLocaleString("en-US"),
    resultWord(v),
  ]);
  // Widths from plain text; colour is applied after padding so escapes do not count.
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[], paint: (i: number, s: string) => string) =>
    "  " + cells.map((s, i) => paint(i, i === cells.length - 2 ? s.padStart(w[i]!) : i === cells.length - 1 ? s : s.padEnd(w[i]!))).join("  ");
  const out = [line(head, (_, s) => c.bold(s)), "  " + w.map((n) => "-".repeat(n)).join("  ")];
  rows.forEach((r, k) => {
    const v = vs[k]!;
    out.push(
      line(r, (i, s) => {
        if (i === 0) return c.bold(s);
        if (i <= props.length) return paintCell(v.properties.find((p) => p.name === props[i - 1]), s, c);
        if (i === r.length - 1) return paintResult(v, s, c);
        return c.dim(s);
      }),
    );
  });
  return out;
}

export function renderComparison(verdicts: Verdict[], opts: CompareOptions = {}): string {
  verdicts = termSafe(verdicts);
  const c = painter(opts.color);
  const out: string[] = [];
  for (const [spec, all] of byScenario(verdicts)) {
    const vs = opts.failuresOnly ? all.filter((v) => v.properties.some((p) => p.failed)) : all;
    if (vs.length === 0) {
      out.push(`${c.bold(spec)}  ${c.green(`${all.length} design${all.length === 1 ? "" : "s"}, none failed`)}`);
      continue;
    }
    if (out.length) out.push("");
    const summary = vs[0]!.summary;
    out.push(`${c.bold(spec)}${summary ? c.dim(`  ${summary}`) : ""}`);
    const plain = table(vs, painter(false));
    const tooWide = opts.width !== undefined && Math.max(...plain.map((l) => l.length)) > opts.width;
    out.push(...(tooWide ? transposed(vs, c) : table(vs, c)));
    // What each failure was, one line per failed cell.
    const notes: string[] = [];
    for (const v of vs) {
      for (const p of v.properties) {
        if (p.failed) {
          notes.push(`  ${c.bold(designName(v))}: ${c.red(headline(p))}${p.trace ? c.dim(` (${steps(p.trace.length)})`) : ""}${p.expected ? c.dim(" (expected)") : ""}`);
          if (p.doc) notes.push(c.dim(`    ${p.name}: ${p.doc}`));
        }
      }
      if (v.expectation?.status === "changed") {
        for (const d of v.expectation.differences) notes.push(`  ${c.bold(designName(v))}: ${c.red.bold("CHANGED")} ${d}`);
      }
      if (!v.complete) notes.push(`  ${c.bold(designName(v))}: ${c.yellow(incompleteText(v))}`);
    }
    if (notes.length) out.push("", ...notes);
    if (opts.traces) {
      for (const v of vs) {
        for (const p of traced(v)) {
          if (!p.failed && !opts.witnesses) continue;
          out.push("", (p.failed ? c.red.bold : c.green.bold)(`${designName(v)}: ${headline(p)} (${steps(p.trace.length)})`));
          out.push(renderTrace(p.trace, { color: opts.color }));
        }
      }
      for (const v of vs) out.push(c.dim(`  ${designName(v)}: ${statsLine(v)}`));
    }
  }
  return out.join("\n") + "\n";
}
