// Markdown report: one comparison table per scenario (designs x properties), then
// every counterexample and witness as a numbered step table and a Mermaid
// sequenceDiagram. Mermaid text is kept to documented syntax: entity codes for
// characters its grammar reserves, no raw arrows inside messages.
import type { PropertyResult, Trace, Verdict } from "../checker/verdict.ts";
import {
  allWarnings, byScenario, cellText, designName, fmtValue, headline, leaves, loopNote, propertyNames, sequenceModel,
  statsLine, stepLabel, steps, traced, resultWord,
} from "./util.ts";

export interface MarkdownOptions {
  /** Document title (default "refcheck report"); null for none. */
  title?: string | null;
  /** Include witness traces too (default true). */
  witnesses?: boolean;
  /** Heading level of the scenario sections (default 2). */
  level?: number;
}

const HTML_ENTITY: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/**
 * Spec text in Markdown headings, prose and table cells: HTML-escaped (renderers that allow
 * raw HTML must not run it), and the characters of code spans, links, emphasis and table
 * cells backslash-escaped; a line break becomes a space.
 */
export function mdText(s: string): string {
  return s
    .replace(/[&<>"']/g, (ch) => HTML_ENTITY[ch]!)
    .replace(/[\\`*[\]|]/g, "\\$&")
    .replace(/\r\n?|\n/g, " ");
}

/**
 * Spec text as an inline code span: a fence longer than any run of backticks inside it.
 * Code spans are shown literally (no HTML, no entities); in a table cell '|' still needs escaping.
 */
export function mdCode(s: string, inTable = false): string {
  let t = s.replace(/\r\n?|\n/g, " ");
  if (inTable) t = t.replace(/\|/g, "\\|");
  const longest = Math.max(0, ...[...t.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = "`".repeat(longest + 1);
  const pad = /^[` ]|[` ]$/.test(t) ? " " : "";
  return `${fence}${pad}${t}${pad}${fence}`;
}

/** A fence for a fenced block that its content cannot close. */
function blockFence(content: string): string {
  const longest = Math.max(0, ...[...content.matchAll(/`{3,}/g)].map((m) => m[0].length));
  return "`".repeat(Math.max(3, longest + 1));
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
  // A lasso's cycle is a Mermaid loop block; a run that stops for good, a note at its end.
  const loop = trace.loop;
  const cyclic = loop !== undefined && loop < trace.length;
  let open = false;
  for (const msg of m.messages) {
    if (cyclic && !open && msg.step > loop!) {
      out.push(`    loop steps ${loop! + 1}..${trace.length} repeat forever`);
      open = true;
    }
    const text = [msg.label, ...msg.detail].join(", ");
    out.push(`    ${ids.get(msg.from)}->>${ids.get(msg.to)}: ${mermaidText(text)}`);
    if (m.fault && m.fault.step === msg.step && msg === m.messages.filter((x) => x.step === msg.step).at(-1)) {
      const over = [m.fault.over[0]!, ...(m.fault.over.length > 1 ? [m.fault.over.at(-1)!] : [])].map((o) => ids.get(o)!);
      out.push(`    Note over ${over.join(",")}: FAULT ${mermaidText(m.fault.text)}`);
    }
  }
  if (open) out.push("    end");
  if (loop !== undefined && !cyclic) out.push(`    Note over ${ids.get(m.participants[0]!)}: ${mermaidText(loopNote(trace, loop)!)}`);
  return out.join("\n");
}

/** The numbered step table: step, action, what changed (the fault on its step). */
export function stepTable(trace: Trace): string {
  const rows = ["| step | action | what changed |", "|---:|---|---|"];
  for (const [k, s] of trace.steps.entries()) {
    const note = loopNote(trace, k);
    const tail = note ? `<br>**↺ ${mdText(note)}**` : "";
    if (s.action === null) {
      rows.push(`| 0 | *initial state* | ${leaves(s.state).map(([p, v]) => mdText(`${p} = ${fmtValue(v)}`)).join("<br>")}${tail} |`);
      continue;
    }
    const action = `${mdCode(stepLabel(s), true)}${s.kernel ? ` ${mdText(s.kernel)}` : ""}`;
    const what = s.changes.map((c) => `${mdCode(c.path, true)}: ${mdText(fmtValue(c.before))} → ${mdText(fmtValue(c.after))}`);
    if (s.fault) what.push(`**FAULT: ${mdText(s.fault)}**`);
    rows.push(`| ${s.index} | ${action} | ${what.join("<br>") || "(no change)"}${tail} |`);
  }
  return rows.join("\n");
}

export function comparisonTable(vs: Verdict[]): string {
  const props = propertyNames(vs);
  const rows = [
    `| design | ${props.map(mdText).join(" | ")} | states | result |`,
    `|---|${props.map(() => "---").join("|")}|---:|---|`,
  ];
  for (const v of vs) {
    const cells = props.map((n) => {
      const p = v.properties.find((x) => x.name === n);
      if (!p) return "–";
      const t = mdText(cellText(p));
      return p.failed ? `**${t}**` : t;
    });
    const word = resultWord(v);
    const result = word === "FAIL" || word === "CHANGED" ? `**${word}**` : word;
    rows.push(`| ${mdText(designName(v))} | ${cells.join(" | ")} | ${v.stats.distinctStates.toLocaleString("en-US")} | ${result} |`);
  }
  return rows.join("\n");
}

function traceSection(v: Verdict, p: PropertyResult & { trace: Trace }, h: string): string {
  const kind = p.status === "violated" ? "counterexample" : "witness";
  const mermaid = mermaidSequence(p.trace);
  const fence = blockFence(mermaid);
  return [
    `${h} ${mdText(designName(v))}: ${mdText(p.name)} ${kind} (${steps(p.trace.length)})`,
    "",
    ...(p.status === "violated" && p.message ? [`> ${mdText(p.message)}`, ""] : []),
    stepTable(p.trace),
    "",
    `${fence}mermaid`,
    mermaid,
    fence,
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
    out.push(`${h2} ${mdText(spec)}`, "");
    const about = [v0.summary ? mdText(v0.summary) : undefined, v0.file ? mdCode(v0.file) : undefined, v0.source ? `from ${mdText(v0.source)}` : undefined].filter(Boolean);
    if (about.length) out.push(about.join(" · "), "");
    out.push(comparisonTable(vs), "");
    for (const v of vs) {
      const notes = [statsLine(v), ...allWarnings(v).map((w) => `warning: ${w}`)].map(mdText);
      if (!v.complete) notes.push(`**INCOMPLETE: stopped by ${v.stoppedBy ?? "a bound"}**`);
      out.push(`- **${mdText(designName(v))}**: ${notes.join("; ")}`);
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
  return verdicts.flatMap((v) => v.properties.filter((p) => p.failed).map((p) => mdText(`${v.spec} (${designName(v)}): ${headline(p)}`)));
}
