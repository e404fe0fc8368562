// Markdown report: one comparison table per scenario (designs x properties), then
// every counterexample and witness as a numbered step table and a Mermaid
// sequenceDiagram. Mermaid text is kept to documented syntax: entity codes for
// characters its grammar reserves, no raw arrows inside messages.
import type { PropertyResult, Trace, Verdict } from "../checker/verdict.ts";
import { laneModel, ownershipGraph, threadLanes, type Decls, type OwnershipGraph } from "./views.ts";
import {
  allWarnings, byScenario, cellText, designName, fmtValue, headline, leaves, propertyNames,
  statsLine, stepLabel, steps, traced, resultWord, incompleteText, loopNote,
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

/** Lane and message text short enough for a Markdown column; the step table has the rest. */
function short(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max - 1) + "…";
}

// Small fonts and margins: a GitHub Markdown column is about 880 px and Mermaid scales a
// wider diagram down to it, text included.
const SEQ_INIT = '%%{init: {"sequence": {"actorFontSize": 12, "messageFontSize": 12, "noteFontSize": 12, "width": 80, "actorMargin": 16, "boxMargin": 6, "messageMargin": 24, "mirrorActors": false, "wrap": false}}}%%';

/** Lanes beside the thread lanes in a Mermaid diagram (the HTML view has room for more). */
const MD_LANES = 6;

/**
 * A trace as a Mermaid sequence diagram: a lane per thread and per object touched, one
 * arrow per object a step changes, lock holds as activations of the lock's lane, the
 * fault as a note over the thread that hit it and the object it names. `ending` names a
 * violation that no step faulted (an invariant, a deadlock), noted after the last step.
 */
export function mermaidSequence(trace: Trace, d: Decls = {}, ending?: string): string {
  const m = laneModel(trace, d, MD_LANES);
  const lanes = [...m.threads, ...m.objects];
  const ids = new Map<string, string>();
  for (const p of lanes) {
    let id = mermaidId(p);
    while ([...ids.values()].includes(id)) id += "_";
    ids.set(p, id);
  }
  const out = [SEQ_INIT, "sequenceDiagram"];
  for (const p of lanes) {
    const id = ids.get(p)!;
    const kw = p === "userspace" ? "actor" : "participant";
    const label = short(p, 11);
    out.push(id === label ? `    ${kw} ${id}` : `    ${kw} ${id} as ${mermaidText(label)}`);
  }
  const active = new Set<string>();
  for (const sp of m.spans.filter((x) => x.from === 0)) {
    out.push(`    activate ${ids.get(sp.lock)}`);
    active.add(sp.lock);
  }
  const steps = [...new Set(m.arrows.map((a) => a.step))];
  // A lasso's cycle is a Mermaid loop block; a run that stops for good, a note at its end.
  const loop = trace.loop;
  const cyclic = loop !== undefined && loop < trace.length;
  let open = false;
  for (const k of steps) {
    if (cyclic && !open && k > loop!) {
      out.push(`    loop steps ${loop! + 1}..${trace.length} repeat forever`);
      open = true;
    }
    for (const a of m.arrows.filter((x) => x.step === k)) {
      out.push(`    ${ids.get(a.from)}->>${ids.get(a.to)}: ${mermaidText(short(a.label, 16))}`);
    }
    for (const sp of m.spans) {
      if (sp.from === k && !active.has(sp.lock)) {
        out.push(`    activate ${ids.get(sp.lock)}`);
        active.add(sp.lock);
      }
      if (sp.to === k && active.has(sp.lock)) {
        out.push(`    deactivate ${ids.get(sp.lock)}`);
        active.delete(sp.lock);
      }
    }
    if (m.fault && m.fault.step === k) {
      const over = [ids.get(m.fault.thread)!, ...(m.fault.object ? [ids.get(m.fault.object)!] : [])];
      out.push(`    Note over ${over.join(",")}: ${mermaidText(m.fault.at ?? m.fault.object ? short(`FAULT on ${m.fault.at ?? m.fault.object}`, 28) : "FAULT")}`);
    }
  }
  if (open) out.push("    end");
  // Notes span the lanes: one over the first lane alone juts out to its left and widens the diagram.
  const across = [ids.get(lanes[0]!)!, ...(lanes.length > 1 ? [ids.get(lanes[lanes.length - 1]!)!] : [])];
  if (loop !== undefined && !cyclic) out.push(`    Note over ${across.join(",")}: ${mermaidText(short(loopNote(trace, loop)!, 24))}`);
  if (ending && !m.fault) out.push(`    Note over ${across.join(",")}: ${mermaidText(short(ending, 24))}`);
  return out.join("\n");
}

const FLOW_INIT = '%%{init: {"flowchart": {"nodeSpacing": 24, "rankSpacing": 40, "padding": 6}, "themeVariables": {"fontSize": "12px"}}}%%';

/**
 * The ownership graph of one step as a Mermaid flowchart: objects with their count and
 * lifetime, counted references solid, uncounted pointers dashed, locks with their holder;
 * what the step changed drawn with a thick border.
 */
export function mermaidOwnership(g: OwnershipGraph, k: number): string {
  const st = g.steps[k]!;
  const id = (n: string) => "n_" + mermaidId(n);
  const q = (lines: string[]) => `"${lines.map((l) => mermaidText(l).replace(/"/g, "#quot;")).join("<br/>")}"`;
  const out = [FLOW_INIT, "flowchart LR"];
  g.nodes.forEach((n, i) => {
    const s = st.nodes[i]!;
    const text = q([n.label, ...s.lines.map((l) => short(l, 30))]);
    out.push(`    ${id(n.id)}${n.kind === "holder" ? `([${text}])` : n.kind === "lock" ? `[/${text}/]` : `[${text}]`}`);
  });
  g.edges.forEach((e, i) => {
    const s = st.edges[i]!;
    if (!s.on) return;
    const label = s.label ? `|${s.label}|` : "";
    out.push(`    ${id(e.from)} ${e.kind === "weak" ? "-.->" : "-->"}${label} ${id(e.to)}`);
  });
  out.push("    classDef changed stroke:#bf8700,stroke-width:3px", "    classDef freed fill:#ffebe9,stroke:#cf222e", "    classDef dying fill:#fff8c5,stroke:#9a6700", "    classDef held fill:#ddf4ff,stroke:#0969da");
  const cls = (name: string, pick: (i: number) => boolean) => {
    const ns = g.nodes.filter((_, i) => pick(i)).map((n) => id(n.id));
    if (ns.length) out.push(`    class ${ns.join(",")} ${name}`);
  };
  cls("freed", (i) => st.nodes[i]!.state === "freed");
  cls("dying", (i) => st.nodes[i]!.state === "dying");
  cls("held", (i) => st.nodes[i]!.state === "held");
  cls("changed", (i) => st.nodes[i]!.changed);
  return out.join("\n");
}

/** The numbered step table: step, action, what changed (the fault on its step). */
export function stepTable(trace: Trace): string {
  const lanes = threadLanes(trace);
  const rows = ["| step | thread | action | what changed |", "|---:|---|---|---|"];
  for (const [k, s] of trace.steps.entries()) {
    const note = loopNote(trace, k);
    const tail = note ? `<br>**↺ ${mdText(note)}**` : "";
    if (s.action === null) {
      rows.push(`| 0 | | *initial state* | ${leaves(s.state).map(([p, v]) => mdText(`${p} = ${fmtValue(v)}`)).join("<br>")}${tail} |`);
      continue;
    }
    const action = `${mdCode(stepLabel(s), true)}${s.kernel ? ` ${mdText(s.kernel)}` : ""}`;
    const what = s.changes.map((c) => `${mdCode(c.path, true)}: ${mdText(fmtValue(c.before))} → ${mdText(fmtValue(c.after))}`);
    if (s.fault) what.push(`**FAULT: ${mdText(s.fault)}**`);
    rows.push(`| ${s.index} | ${mdText(lanes[s.index] ?? "")} | ${action} | ${what.join("<br>") || "(no change)"}${tail} |`);
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

/** A fenced Mermaid block. */
function mermaidBlock(text: string): string[] {
  const fence = blockFence(text);
  return [`${fence}mermaid`, text, fence];
}

const ENDINGS: Partial<Record<PropertyResult["kind"], string>> = {
  invariant: "invariant violated",
  action: "step violates a property",
  quiescent: "quiescent: violated",
  deadlock: "DEADLOCK",
  "lock-order": "lock order cycle",
};

/** What a violation no step faulted is, in a few words, for the note that ends its diagram. */
function endingOf(p: PropertyResult): string | undefined {
  return p.status === "violated" && p.kind !== "fault" ? ENDINGS[p.kind] : undefined;
}

function traceSection(v: Verdict, p: PropertyResult & { trace: Trace }, h: string): string {
  const kind = p.status === "violated" ? "counterexample" : "witness";
  const d: Decls = { objects: v.objects, locks: v.locks };
  const lanes = laneModel(p.trace, d, MD_LANES);
  const graph = ownershipGraph(p.trace, d);
  const last = p.trace.steps.length - 1;
  const legend = [
    `lanes: ${[...lanes.threads, ...lanes.objects].map((x) => mdCode(x)).join(", ")}`,
    ...(lanes.hidden.length ? [`not drawn: ${lanes.hidden.map((x) => mdCode(x)).join(", ")} (their changes are in the table)`] : []),
  ].join("; ");
  const graphs =
    p.status === "violated" && graph.nodes.length
      ? [
          "",
          `Ownership${graph.declared ? "" : " (no ownership declaration: the objects the trace changes, by field)"}, initial state and step ${last}${p.trace.steps[last]!.fault ? " (the fault)" : ""}:`,
          "",
          ...mermaidBlock(mermaidOwnership(graph, 0)),
          "",
          ...mermaidBlock(mermaidOwnership(graph, last)),
        ]
      : [];
  return [
    `${h} ${mdText(designName(v))}: ${mdText(p.name)} ${kind} (${steps(p.trace.length)})`,
    "",
    ...(p.doc ? [`*${mdText(p.name)}*: ${mdText(p.doc)}`, ""] : []),
    ...(p.status === "violated" && p.message ? [`> ${mdText(p.message)}`, ""] : []),
    ...mermaidBlock(mermaidSequence(p.trace, d, endingOf(p))),
    "",
    legend,
    "",
    stepTable(p.trace),
    ...graphs,
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
      if (!v.complete) notes.push(`**${mdText(incompleteText(v))}**`);
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
