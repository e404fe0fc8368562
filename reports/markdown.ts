// Markdown report: one comparison table per scenario (designs x properties), then
// every counterexample and witness as a numbered step table and a Mermaid
// sequenceDiagram. Mermaid text is kept to documented syntax: entity codes for
// characters its grammar reserves, no raw arrows inside messages.
import type { PropertyResult, Trace, Verdict } from "../checker/verdict.ts";
import {
  allWarnings, byScenario, cellText, designName, fmtValue, headline, leaves, propertyNames, sequenceModel,
  statsLine, stepLabel, steps, traced,
} from "./util.ts";

export interface MarkdownOptions {
  /** Document title (default "refcheck report"); null for none. */
  title?: string | null;
  /** Include witness traces too (default true). */
  witnesses?: boolean;
  /** Heading level of the scenario sections (default 2). */
  level?: number;
}

/** Text inside a Markdown table cell. */
export function mdCell(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\r?\n/g, "<br>");
}

const mermaidReserved = new Set([
  "end", "participant", "actor", "as", "note", "over", "left", "right", "of", "loop", "alt", "else", "opt",
  "par", "and", "rect", "critical", "break", "box", "activate", "deactivate", "create", "destroy", "title",
  "autonumber", "link", "links", "properties", "details", "option",
]);

/** A participant id Mermaid's lexer accepts: letters, digits, underscore. */
export function mermaidId(name: string): string {
  let id = name.replace(/\[(\d+)\]/g, "_$1").replace(/[^A-Za-z0-9_]/g, "_");
  if (!/^[A-Za-z_]/.test(id)) id = "o_" + id;
  return mermaidReserved.has(id.toLowerCase()) ? id + "_" : id;
}

/** Message/note text: Mermaid ends text at ';' and '#', reads '<' as HTML, '->' as arrows. */
export function mermaidText(s: string): string {
  return s
    .replace(/[\r\n]+/g, " ")
    .replace(/-+>/g, "→")
    .replace(/[#;<>]/g, (ch) => ({ "#": "#35;", ";": "#59;", "<": "#lt;", ">": "#gt;" })[ch]!)
    .trim();
}

export function mermaidSequence(trace: Trace): string {
  const m = sequenceModel(trace);
  const ids = new Map<string, string>();
  for (const p of m.participants) {
    let id = mermaidId(p);
    while ([...ids.values()].includes(id)) id += "_";
    ids.set(p, id);
  }
  const out = ["sequenceDiagram"];
  for (const p of m.participants) {
    const id = ids.get(p)!;
    const kw = p === "userspace" ? "actor" : "participant";
    out.push(id === p ? `    ${kw} ${id}` : `    ${kw} ${id} as ${mermaidText(p)}`);
  }
  for (const msg of m.messages) {
    const text = [msg.label, ...msg.detail].join(", ");
    out.push(`    ${ids.get(msg.from)}->>${ids.get(msg.to)}: ${mermaidText(text)}`);
    if (m.fault && m.fault.step === msg.step && msg === m.messages.filter((x) => x.step === msg.step).at(-1)) {
      const over = [m.fault.over[0]!, ...(m.fault.over.length > 1 ? [m.fault.over.at(-1)!] : [])].map((o) => ids.get(o)!);
      out.push(`    Note over ${over.join(",")}: FAULT ${mermaidText(m.fault.text)}`);
    }
  }
  return out.join("\n");
}

/** The numbered step table: step, action, what changed (the fault on its step). */
export function stepTable(trace: Trace): string {
  const rows = ["| step | action | what changed |", "|---:|---|---|"];
  for (const s of trace.steps) {
    if (s.action === null) {
      rows.push(`| 0 | *initial state* | ${mdCell(leaves(s.state).map(([p, v]) => `${p} = ${fmtValue(v)}`).join("\n"))} |`);
      continue;
    }
    const action = `\`${stepLabel(s)}\`${s.kernel ? ` ${s.kernel}` : ""}`;
    const what = s.changes.map((c) => `\`${c.path}\`: ${fmtValue(c.before)} → ${fmtValue(c.after)}`);
    if (s.fault) what.push(`**FAULT: ${s.fault}**`);
    rows.push(`| ${s.index} | ${mdCell(action)} | ${mdCell(what.join("\n") || "(no change)")} |`);
  }
  return rows.join("\n");
}

export function comparisonTable(vs: Verdict[]): string {
  const props = propertyNames(vs);
  const rows = [
    `| design | ${props.map(mdCell).join(" | ")} | states | result |`,
    `|---|${props.map(() => "---").join("|")}|---:|---|`,
  ];
  for (const v of vs) {
    const cells = props.map((n) => {
      const p = v.properties.find((x) => x.name === n);
      if (!p) return "–";
      const t = mdCell(cellText(p));
      return p.failed ? `**${t}**` : t;
    });
    const result = v.outcome === "pass" ? "pass" : v.outcome === "fail" ? "**FAIL**" : "incomplete";
    rows.push(`| ${mdCell(designName(v))} | ${cells.join(" | ")} | ${v.stats.distinctStates.toLocaleString("en-US")} | ${result} |`);
  }
  return rows.join("\n");
}

function traceSection(v: Verdict, p: PropertyResult & { trace: Trace }, h: string): string {
  const kind = p.status === "violated" ? "counterexample" : "witness";
  return [
    `${h} ${designName(v)}: ${p.name} ${kind} (${steps(p.trace.length)})`,
    "",
    ...(p.status === "violated" && p.message ? [`> ${p.message.replace(/\n/g, " ")}`, ""] : []),
    stepTable(p.trace),
    "",
    "```mermaid",
    mermaidSequence(p.trace),
    "```",
  ].join("\n");
}

export function renderMarkdown(verdicts: Verdict[], opts: MarkdownOptions = {}): string {
  const level = opts.level ?? 2;
  const h2 = "#".repeat(level);
  const h3 = "#".repeat(level + 1);
  const out: string[] = [];
  if (opts.title !== null) out.push(`${"#".repeat(level - 1) || "#"} ${opts.title ?? "refcheck report"}`, "");
  for (const [spec, vs] of byScenario(verdicts)) {
    const v0 = vs[0]!;
    out.push(`${h2} ${spec}`, "");
    const about = [v0.summary, v0.file ? `\`${v0.file}\`` : undefined, v0.source ? `from ${v0.source}` : undefined].filter(Boolean);
    if (about.length) out.push(about.join(" · "), "");
    out.push(comparisonTable(vs), "");
    for (const v of vs) {
      const notes = [statsLine(v), ...allWarnings(v).map((w) => `warning: ${w}`)];
      if (!v.complete) notes.push(`**INCOMPLETE: stopped by ${v.stoppedBy ?? "a bound"}**`);
      out.push(`- **${mdCell(designName(v))}**: ${notes.join("; ")}`);
    }
    out.push("");
    const sections = vs.flatMap((v) =>
      traced(v)
        .filter((p) => p.status === "violated" || opts.witnesses !== false)
        .sort((a, b) => Number(b.failed) - Number(a.failed))
        .map((p) => traceSection(v, p, h3)),
    );
    for (const s of sections) out.push(s, "");
  }
  return out.join("\n").replace(/\n+$/, "\n");
}

/** One-line summary per failed property, for commit messages and PR comments. */
export function failureLines(verdicts: Verdict[]): string[] {
  return verdicts.flatMap((v) => v.properties.filter((p) => p.failed).map((p) => `${v.spec} (${designName(v)}): ${headline(p)}`));
}
