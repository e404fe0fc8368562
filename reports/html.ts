// One self-contained HTML page: comparison tables, then every trace as a
// step-by-step view (state table with changed cells marked, previous/next buttons
// and arrow keys, the fault at its step) and an inline SVG sequence diagram.
// No network: a CSP forbids every fetch; styles, data and script are inline.
import type { PropertyResult, Trace, Verdict } from "../checker/verdict.ts";
import {
  allWarnings, byScenario, cellText, designName, fmtValue, headline, leaves, propertyNames, reportedFailure, shortCell,
  statsLine, stepLabel, steps, traced, resultWord, incompleteText, loopNote,
} from "./util.ts";
import { laneModel, ownershipGraph, threadLanes, type Decls, type OwnershipGraph } from "./views.ts";

export interface HtmlOptions {
  title?: string;
  /** Include witness traces too (default true). */
  witnesses?: boolean;
}

export function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

const CHAR_W = 7.2; // 12px monospace
const ROW_H = 16;

function wrap(s: string, width: number): string[] {
  const out: string[] = [];
  let line = "";
  for (const word of s.split(/\s+/)) {
    if (line && (line + " " + word).length > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out;
}

const LANE_GAP = 132;
const BOX_W = 116;
const clip = (s: string, n: number) => (s.length <= n ? s : s.slice(0, n - 1) + "…");

/**
 * The sequence diagram as SVG: a lane per thread, then per object; each step's arrows are
 * a <g class="msg" data-step=n>; lock holds are spans on the lock's lane; the fault is a
 * box under the thread that hit it, reaching to the object it names. `uid` keeps the
 * marker's id unique on the page.
 */
export function sequenceSvg(trace: Trace, d: Decls = {}, ending?: string, uid = "t"): string {
  const m = laneModel(trace, d, 9);
  const lanes = [...m.threads, ...m.objects];
  const x = (p: string) => 20 + BOX_W / 2 + lanes.indexOf(p) * LANE_GAP;
  let width = 40 + BOX_W + (lanes.length - 1) * LANE_GAP;
  const marker = `arrowhead-${uid}`;
  let y = 56;
  const body: string[] = [];
  const stepY = new Map<number, [number, number]>();
  const steps = [...new Set(m.arrows.map((a) => a.step))];
  for (const k of steps) {
    const top = y;
    for (const a of m.arrows.filter((q) => q.step === k)) {
      const lines = [a.label, ...a.detail].map((t) => clip(t.replace(/ -> /g, " → "), 40));
      y += lines.length * ROW_H + 8;
      const x1 = x(a.from), x2 = x(a.to);
      const self = a.from === a.to;
      const right = x2 >= x1;
      const tx = self ? x1 + 12 : right ? x1 + 8 : x1 - 8;
      const anchor = self || right ? "start" : "end";
      const g: string[] = [`<g class="msg" data-step="${a.step}">`];
      lines.forEach((t, i) => {
        const ty = y - (lines.length - i) * ROW_H + 2;
        g.push(`<text x="${tx}" y="${ty}" text-anchor="${anchor}"${i === 0 ? ' class="label"' : ""}>${esc(t)}</text>`);
        width = Math.max(width, (anchor === "start" ? tx : 0) + t.length * CHAR_W + 12);
      });
      if (self) {
        g.push(`<path d="M${x1} ${y - 4} h28 v14 h-24" class="arrow" marker-end="url(#${marker})"/>`);
        y += 14;
      } else {
        g.push(`<line x1="${x1}" y1="${y}" x2="${x2 + (right ? -2 : 2)}" y2="${y}" class="arrow" marker-end="url(#${marker})"/>`);
      }
      g.push("</g>");
      body.push(g.join(""));
    }
    if (m.fault && m.fault.step === k) {
      const xs = [x(m.fault.thread), ...(m.fault.object ? [x(m.fault.object)] : [])];
      const lo = Math.min(...xs) - BOX_W / 2, hi = Math.max(...xs) + BOX_W / 2;
      const w = Math.max(hi - lo, 300);
      const left = Math.max(4, Math.min(lo, x(m.fault.thread) - 20));
      const head = `FAULT in ${m.fault.thread}${m.fault.at ? ` on ${m.fault.at}` : ""}:`;
      const fl = [head, ...wrap(m.fault.text, Math.max(30, Math.floor((w - 16) / CHAR_W)))];
      const h = fl.length * ROW_H + 10;
      width = Math.max(width, left + w + 10);
      y += 10;
      body.push(
        `<g class="fault" data-step="${k}"><rect x="${left}" y="${y}" width="${w}" height="${h}" rx="3"/>` +
          fl.map((t, i) => `<text x="${left + 8}" y="${y + 16 + i * ROW_H}"${i === 0 ? ' class="label"' : ""}>${esc(t)}</text>`).join("") +
          "</g>",
      );
      y += h;
    }
    stepY.set(k, [top, y]);
  }
  if (ending && !m.fault) {
    const w = Math.max(240, ending.length * CHAR_W + 20);
    y += 10;
    body.push(`<g class="fault ending" data-step="${trace.steps.length - 1}"><rect x="8" y="${y}" width="${w}" height="26" rx="3"/><text x="16" y="${y + 17}">${esc(ending)}</text></g>`);
    width = Math.max(width, w + 20);
    y += 26;
  }
  y += 16;
  // Lock holds: a bar on the lock's lane from the step that took it to the one that released it.
  const spans = m.spans.map((sp) => {
    const y0 = sp.from === 0 ? 44 : (stepY.get(sp.from)?.[1] ?? 44) - 4;
    const y1 = sp.to !== undefined ? (stepY.get(sp.to)?.[1] ?? y) - 4 : y - 8;
    const cx = x(sp.lock);
    return `<g class="span" data-from="${sp.from}"><title>${esc(`${sp.lock} held by ${sp.holder}`)}</title><rect x="${cx - 5}" y="${y0}" width="10" height="${Math.max(6, y1 - y0)}"/>` +
      `<text x="${cx + 9}" y="${y0 + 12}" class="holder">${esc(clip(sp.holder, 14))}</text></g>`;
  });
  const parts: string[] = [
    `<svg class="seq" xmlns="http://www.w3.org/2000/svg" width="${Math.ceil(width)}" height="${y}" viewBox="0 0 ${Math.ceil(width)} ${y}" role="img" aria-label="sequence diagram">`,
    `<defs><marker id="${marker}" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z"/></marker></defs>`,
  ];
  lanes.forEach((p, i) => {
    const cx = x(p);
    const cls = i < m.threads.length ? "participant thread" : "participant object";
    parts.push(
      `<g class="${cls}" data-lane="${esc(p)}"><title>${esc(p)}</title><line x1="${cx}" y1="38" x2="${cx}" y2="${y - 6}" class="lifeline"/>` +
        `<rect x="${cx - BOX_W / 2}" y="8" width="${BOX_W}" height="30" rx="${i < m.threads.length ? 15 : 4}"/>` +
        `<text x="${cx}" y="28" text-anchor="middle">${esc(clip(p, 15))}</text></g>`,
    );
  });
  parts.push(...spans, ...body, "</svg>");
  if (m.hidden.length) parts.push(`<p class="notes">not drawn: ${esc(m.hidden.join(", "))} (their changes are in the state table)</p>`);
  return parts.join("\n");
}

const NODE_W = 158;

/**
 * The ownership graph of a trace as SVG: every node and edge any step shows, laid out once;
 * the page's script sets each step's text, states and visible edges from the embedded data.
 */
export function graphSvg(g: OwnershipGraph, uid = "t"): string {
  const maxLines = g.nodes.map((_, i) => Math.max(1, ...g.steps.map((s) => s.nodes[i]!.lines.length)));
  const h = (i: number) => (g.nodes[i]!.kind === "holder" ? 30 : 26 + maxLines[i]! * 14 + (g.nodes[i]!.type ? 13 : 0));
  const cols = new Map<number, number[]>();
  g.nodes.forEach((n, i) => cols.set(n.rank, [...(cols.get(n.rank) ?? []), i]));
  const ranks = [...cols.keys()].sort((a, b) => a - b);
  const pos: { x: number; y: number }[] = [];
  let height = 0;
  let width: number;
  if (g.declared) {
    ranks.forEach((r, ci) => {
      let y = 10;
      for (const i of cols.get(r)!) {
        pos[i] = { x: 10 + ci * (NODE_W + 70), y };
        y += h(i) + 16;
      }
      height = Math.max(height, y);
    });
    width = 20 + ranks.length * (NODE_W + 70) - 70;
  } else {
    // No edges to follow: a grid, four nodes a row.
    const per = Math.min(4, g.nodes.length);
    let y = 10;
    for (let r = 0; r * per < g.nodes.length; r++) {
      const row = g.nodes.map((_, i) => i).slice(r * per, r * per + per);
      row.forEach((i, c) => (pos[i] = { x: 10 + c * (NODE_W + 16), y }));
      y += Math.max(...row.map(h)) + 14;
    }
    height = y;
    width = 20 + per * (NODE_W + 16);
  }
  const marker = `ownhead-${uid}`;
  const idx = new Map(g.nodes.map((n, i) => [n.id, i] as const));
  const out: string[] = [
    `<svg class="own" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="ownership graph">`,
    `<defs><marker id="${marker}" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="8" markerHeight="8" orient="auto"><path d="M0 0 L10 5 L0 10 z"/></marker></defs>`,
  ];
  g.edges.forEach((e, k) => {
    const a = idx.get(e.from), b = idx.get(e.to);
    if (a === undefined || b === undefined) return;
    const pa = pos[a]!, pb = pos[b]!;
    const y1 = pa.y + h(a) / 2, y2 = pb.y + h(b) / 2;
    let d: string, lx: number, ly: number;
    if (pb.x > pa.x) {
      const x1 = pa.x + NODE_W, x2 = pb.x - 2;
      d = `M${x1} ${y1} C${x1 + 35} ${y1} ${x2 - 35} ${y2} ${x2} ${y2}`;
      [lx, ly] = [(x1 + x2) / 2, (y1 + y2) / 2 - 4];
    } else {
      // Same column or leftwards: around the right side.
      const x1 = pa.x + NODE_W, x2 = pb.x + NODE_W + 2;
      d = `M${x1} ${y1} C${x1 + 50} ${y1} ${x2 + 50} ${y2} ${x2} ${y2}`;
      [lx, ly] = [Math.max(x1, x2) + 40, (y1 + y2) / 2];
    }
    out.push(`<g class="edge ${e.kind}" data-e="${k}"><path d="${d}" marker-end="url(#${marker})"/><text x="${lx}" y="${ly}" text-anchor="middle" class="elabel"></text></g>`);
  });
  g.nodes.forEach((n, i) => {
    const p = pos[i]!;
    const lines = Array.from({ length: maxLines[i]! }, (_, j) => `<text x="${p.x + 8}" y="${p.y + 32 + (n.type ? 13 : 0) + j * 14}" class="line" data-l="${j}"></text>`).join("");
    out.push(
      `<g class="node ${n.kind}" data-n="${i}"><title>${esc(n.type ? `${n.label}: ${n.type}` : n.label)}</title>` +
        `<rect x="${p.x}" y="${p.y}" width="${NODE_W}" height="${h(i)}" rx="${n.kind === "holder" ? 15 : 4}"/>` +
        `<text x="${p.x + 8}" y="${p.y + 18}" class="name">${esc(clip(n.label, 20))}</text>` +
        (n.type ? `<text x="${p.x + 8}" y="${p.y + 31}" class="type">${esc(clip(n.type, 26))}</text>` : "") +
        (n.kind === "holder" ? "" : lines) +
        "</g>",
    );
  });
  out.push("</svg>");
  return out.join("\n");
}

interface TraceData {
  id: string;
  title: string;
  failed: boolean;
  fields: string[];
  steps: {
    index: number;
    label: string;
    thread?: string;
    kernel?: string;
    fault?: string;
    /** On a lasso: where the run loops back, or that it stops for good. */
    loop?: string;
    values: string[];
    changed: number[];
    before: Record<number, string>;
    /** Ownership graph: per node [lines, state, changed], per edge [on, label, changed]. */
    g: { n: [string[], string, boolean][]; e: [boolean, string, boolean][] };
  }[];
}

function traceData(id: string, v: Verdict, p: PropertyResult & { trace: Trace }, graph: OwnershipGraph): TraceData {
  const fields = leaves(p.trace.steps[0]!.state).map(([f]) => f);
  const lanes = threadLanes(p.trace);
  return {
    id,
    title: `${designName(v)}: ${headline(p)}`,
    failed: p.failed,
    fields,
    steps: p.trace.steps.map((s, k) => {
      const lv = new Map(leaves(s.state).map(([f, x]) => [f, fmtValue(x)]));
      const changed = new Set<number>();
      const before: Record<number, string> = {};
      for (const c of s.changes) {
        // A change may be a whole record/array; mark every leaf under it.
        fields.forEach((f, i) => {
          if (f === c.path || f.startsWith(c.path + ".") || f.startsWith(c.path + "[")) {
            changed.add(i);
            if (f === c.path) before[i] = fmtValue(c.before);
          }
        });
      }
      const gs = graph.steps[k]!;
      return {
        index: s.index,
        label: s.action === null ? "initial state" : stepLabel(s),
        ...(lanes[k] ? { thread: lanes[k] } : {}),
        ...(s.kernel ? { kernel: s.kernel } : {}),
        ...(s.fault ? { fault: s.fault } : {}),
        ...(loopNote(p.trace, k) ? { loop: loopNote(p.trace, k) } : {}),
        values: fields.map((f) => lv.get(f) ?? ""),
        changed: [...changed],
        before,
        g: { n: gs.nodes.map((n) => [n.lines, n.state, n.changed]), e: gs.edges.map((e) => [e.on, e.label, e.changed]) },
      };
    }),
  };
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1b1f24;background:#fff;max-width:1352px}
h1{font-size:20px}h2{font-size:17px;margin-top:32px}h3{font-size:15px;margin:0 0 6px;overflow-wrap:anywhere}
code,td.v,td.f,.seq text,.own text,.steplabel{font-family:ui-monospace,Menlo,Consolas,monospace}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.holds,td.reachable,td.unreachable{color:#1a7f37}td.failed{color:#cf222e;font-weight:600;background:#ffebe9}
td.unknown{color:#9a6700}td.num{text-align:right}a{color:#0969da}
.tablewrap{overflow-x:auto;max-width:100%}table.compare td{max-width:22em;overflow-wrap:anywhere}
.notes{color:#57606a;font-size:13px;margin:4px 0;overflow-wrap:anywhere}.warn{color:#9a6700}.doc{color:#57606a;font-weight:400}
.toolbar{position:sticky;top:0;background:#fff;padding:6px 0;border-bottom:1px solid #d0d7de;z-index:1}
.trace{border:1px solid #d0d7de;border-radius:6px;padding:12px;margin:18px 0;min-width:0;scroll-margin-top:44px}.trace:focus-within{outline:2px solid #0969da}
.trace.failed{border-color:#cf222e}.msgline{margin:4px 0 8px;color:#cf222e;overflow-wrap:anywhere}
.controls{display:flex;gap:8px;align-items:center;margin:8px 0}.controls button{font-size:14px;padding:3px 10px}
.steplabel{font-weight:600}.kernel,.onthread{color:#57606a}
.fault{color:#cf222e;font-weight:600}.faultbox{background:#ffebe9;border:1px solid #cf222e;padding:6px 8px;border-radius:4px;margin:6px 0;overflow-wrap:anywhere}.loopbox{background:#fbefff;border:1px solid #8250df;padding:6px 8px;border-radius:4px;margin:6px 0}
.state td.v.changed{background:#fff8c5;font-weight:600}.state td.v .was{color:#57606a;font-weight:400;text-decoration:line-through;margin-right:6px}
.cols{display:grid;grid-template-columns:minmax(0,max-content) minmax(0,1fr);gap:16px;align-items:start}
.statewrap{max-height:75vh;overflow:auto}.right{min-width:0}
.svgwrap{overflow:auto;max-width:100%;max-height:60vh;border:1px solid #eaeef2;border-radius:4px}.graphwrap{overflow:auto;max-width:100%;margin-bottom:10px}
.seq text{font-size:12px;fill:#1b1f24;paint-order:stroke;stroke:#fff;stroke-width:3px}.seq .participant rect{fill:#ddf4ff;stroke:#0969da}
.seq .participant.thread rect{fill:#eef1f4;stroke:#57606a}.seq .lifeline{stroke:#8c959f;stroke-dasharray:4 3}
.seq .arrow{stroke:#1b1f24;fill:none;stroke-width:1.3}.seq marker path{fill:#1b1f24}
.seq .msg.future{opacity:.25}.seq .msg.current .arrow{stroke:#0969da;stroke-width:2.5}.seq .msg.current text{fill:#0969da;font-weight:600}
.seq .fault rect{fill:#ffebe9;stroke:#cf222e}.seq .fault text{fill:#cf222e;stroke:none}.seq .fault.future{opacity:.25}
.seq .span rect{fill:#0969da;opacity:.35}.seq .span text{fill:#0969da;font-size:11px}
.own text{font-size:12px;fill:#1b1f24}.own .name{font-weight:600}.own .type{fill:#57606a;font-size:11px}
.own .node rect{fill:#fff;stroke:#57606a}.own .node.object rect{fill:#ddf4ff;stroke:#0969da}.own .node.holder rect{fill:#eef1f4}
.own .node.lock rect{fill:#f6f8fa;stroke-dasharray:2 2}.own .node.held rect{fill:#ddf4ff;stroke:#0969da;stroke-dasharray:none}
.own .node.dying rect{fill:#fff8c5;stroke:#9a6700}.own .node.freed rect{fill:#ffebe9;stroke:#cf222e}
.own .node.changed rect{stroke:#bf8700;stroke-width:3}
.own .edge path{fill:none;stroke:#1b1f24;stroke-width:1.5}.own .edge.weak path{stroke-dasharray:5 4;stroke:#57606a}
.own .edge.changed path{stroke:#bf8700;stroke-width:3}.own .edge.off{display:none}.own marker path{fill:#1b1f24}
.failures-only .ok{display:none}
.sbs{margin:12px 0}.sbs .pair{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:12px}.sbs .pair>div{min-width:0}
.sbs .trace .cols{grid-template-columns:minmax(0,1fr)}
`;

// Runs in the page: each trace's stepper (state table, ownership graph, diagram), the
// failures-only filter and the side-by-side view. Keys act on the focused trace only.
const SCRIPT = `
(function(){
  var data = JSON.parse(document.getElementById("refcheck-data").textContent);
  var byId = {};
  data.traces.forEach(function(t){ byId[t.id] = t; });
  function el(tag, cls, text){ var e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; }
  // Scrolls a box (not the page) so that a child is in view.
  function reveal(box, node){
    if (!box || !node) return;
    var b = box.getBoundingClientRect(), r = node.getBoundingClientRect();
    if (r.left < b.left || r.right > b.right) box.scrollLeft += (r.left + r.right) / 2 - (b.left + b.right) / 2;
    if (r.top < b.top || r.bottom > b.bottom) box.scrollTop += (r.top + r.bottom) / 2 - (b.top + b.bottom) / 2;
  }
  function init(root, t){
    var v = { t: t, k: 0, root: root };
    function show(k){
      k = Math.max(0, Math.min(t.steps.length - 1, k)); v.k = k;
      var s = t.steps[k];
      root.querySelector(".pos").textContent = "step " + k + " of " + (t.steps.length - 1);
      root.querySelector(".steplabel").textContent = (k === 0 ? "" : k + ". ") + s.label;
      root.querySelector(".onthread").textContent = s.thread ? "on " + s.thread : "";
      root.querySelector(".kernel").textContent = s.kernel ? "[" + s.kernel + "]" : "";
      var fb = root.querySelector(".faultbox");
      fb.hidden = !s.fault; fb.textContent = s.fault ? "FAULT: " + s.fault : "";
      var lb = root.querySelector(".loopbox");
      lb.hidden = !s.loop; lb.textContent = s.loop ? "\u21ba " + s.loop : "";
      var prev = root.querySelector(".prev"), next = root.querySelector(".next");
      var refocus = document.activeElement === prev && k === 0 || document.activeElement === next && k === t.steps.length - 1;
      prev.disabled = k === 0; next.disabled = k === t.steps.length - 1;
      if (refocus) root.focus({ preventScroll: true });
      var tb = root.querySelector(".state tbody"); tb.textContent = "";
      var changed = {}; s.changed.forEach(function(i){ changed[i] = true; });
      t.fields.forEach(function(f, i){
        var tr = el("tr"); tr.appendChild(el("td", "f", f));
        var td = el("td", "v" + (changed[i] ? " changed" : ""));
        if (changed[i] && s.before[i] !== undefined) td.appendChild(el("span", "was", s.before[i]));
        td.appendChild(document.createTextNode(s.values[i]));
        tr.appendChild(td); tb.appendChild(tr);
      });
      root.querySelectorAll(".own .node").forEach(function(g){
        var n = s.g.n[Number(g.getAttribute("data-n"))];
        g.setAttribute("class", "node " + g.getAttribute("class").split(" ")[1] + (n[1] ? " " + n[1] : "") + (n[2] ? " changed" : ""));
        g.querySelectorAll(".line").forEach(function(x){ x.textContent = n[0][Number(x.getAttribute("data-l"))] || ""; });
      });
      root.querySelectorAll(".own .edge").forEach(function(g){
        var e = s.g.e[Number(g.getAttribute("data-e"))];
        g.classList.toggle("off", !e[0]); g.classList.toggle("changed", e[2]);
        g.querySelector(".elabel").textContent = e[1];
      });
      root.querySelectorAll(".seq .msg, .seq .fault").forEach(function(g){
        var n = Number(g.getAttribute("data-step"));
        g.classList.toggle("current", n === s.index);
        g.classList.toggle("future", n > s.index);
      });
      reveal(root.querySelector(".svgwrap"), root.querySelector(".seq .msg.current") || (k === 0 ? root.querySelector(".seq .participant") : null));
    }
    v.show = show;
    root.querySelector(".prev").addEventListener("click", function(){ show(v.k - 1); });
    root.querySelector(".next").addEventListener("click", function(){ show(v.k + 1); });
    root.addEventListener("keydown", function(e){
      if (e.altKey || e.ctrlKey || e.metaKey || e.target.tagName === "SELECT" || e.target.tagName === "INPUT") return;
      if (e.key === "ArrowRight" || e.key === "j") show(v.k + 1);
      else if (e.key === "ArrowLeft" || e.key === "k") show(v.k - 1);
      else if (e.key === "Home") show(0);
      else if (e.key === "End") show(t.steps.length - 1);
      else return;
      e.preventDefault(); e.stopPropagation();
    });
    show(0);
    return v;
  }
  data.traces.forEach(function(t){ init(document.getElementById(t.id), t); });
  // A link to a trace focuses it, so that the keys then step it.
  function focusHash(){
    var id = decodeURIComponent(location.hash.slice(1)), s = id && byId[id] && document.getElementById(id);
    if (s) s.focus({ preventScroll: true });
  }
  window.addEventListener("hashchange", focusHash); focusHash();
  var only = document.getElementById("failures-only");
  if (only) only.addEventListener("change", function(){ document.body.classList.toggle("failures-only", only.checked); });
  // Side by side: two designs of one scenario, each with its trace (a copy with its own stepper).
  var copies = 0;
  document.querySelectorAll(".sbs").forEach(function(box){
    var sc = data.scenarios[Number(box.getAttribute("data-scenario"))];
    box.querySelectorAll("select.design").forEach(function(sel){
      var col = sel.parentNode.parentNode.querySelector(".col");
      function fill(){
        var d = sc.designs[Number(sel.value)]; col.textContent = "";
        col.appendChild(el("p", "notes", d.name + ": " + d.result + ", " + d.states + " states"));
        var ul = el("ul", "props");
        d.props.forEach(function(p){ ul.appendChild(el("li", p[2] ? "fault" : "", p[0] + ": " + p[1])); });
        col.appendChild(ul);
        if (!d.traces.length) { col.appendChild(el("p", "notes", "no trace: nothing failed and no witness")); return; }
        var src = document.getElementById(d.traces[0]);
        var copy = src.cloneNode(true); copy.id = src.id + "-copy-" + (++copies);
        copy.classList.remove("ok"); copy.classList.add("copy");
        col.appendChild(copy); init(copy, byId[src.id]);
      }
      sel.addEventListener("change", fill);
      // Filled when first opened: the copies cost nothing until someone looks.
      box.addEventListener("toggle", function(){ if (box.open && !col.firstChild) fill(); });
    });
  });
})();
`;

function cellClass(p: PropertyResult | undefined): string {
  if (!p) return "";
  if (p.failed) return "failed";
  return p.status;
}

const ENDINGS: Partial<Record<PropertyResult["kind"], string>> = {
  invariant: "invariant violated in the last state",
  action: "the last step violates the property",
  quiescent: "violated where no action is enabled",
  deadlock: "deadlock: nothing can run while a thread is mid-call",
  "lock-order": "lock order cycle closed by the last step",
};

interface ScenarioData {
  designs: { name: string; result: string; states: string; props: [string, string, boolean][]; traces: string[] }[];
}

export function renderHtml(verdicts: Verdict[], opts: HtmlOptions = {}): string {
  const title = opts.title ?? "refcheck report";
  const traces: TraceData[] = [];
  const scenarios: ScenarioData[] = [];
  const html: string[] = [];
  let n = 0;
  for (const [spec, vs] of byScenario(verdicts)) {
    const v0 = vs[0]!;
    const anyFailed = vs.some((v) => v.properties.some((p) => p.failed));
    html.push(`<div class="scenario${anyFailed ? "" : " ok"}">`, `<h2>${esc(spec)}</h2>`);
    const about = [v0.summary, v0.file, v0.source ? `from ${v0.source}` : undefined].filter((x): x is string => !!x);
    if (about.length) html.push(`<p class="notes">${esc(about.join(" · "))}</p>`);
    const props = propertyNames(vs);
    // Trace ids first, so table cells can link to them.
    const ids = new Map<PropertyResult, string>();
    const sections: string[] = [];
    const sc: ScenarioData = { designs: [] };
    for (const v of vs) {
      const d: Decls = { objects: v.objects, locks: v.locks };
      const mine: string[] = [];
      for (const p of traced(v).sort((a, b) => Number(b.failed) - Number(a.failed))) {
        if (p.status !== "violated" && opts.witnesses === false) continue;
        const id = `trace-${++n}`;
        ids.set(p, id);
        mine.push(id);
        const graph = ownershipGraph(p.trace, d);
        const td = traceData(id, v, p, graph);
        traces.push(td);
        const ending = p.status === "violated" && p.kind !== "fault" ? `${p.name}: ${ENDINGS[p.kind] ?? "violated"}` : undefined;
        sections.push(
          `<section class="trace${p.failed ? " failed" : " ok"}" id="${id}" tabindex="0" aria-label="${esc(td.title)}">` +
            `<h3>${esc(td.title)} <span class="notes">(${steps(p.trace.length)}; ${p.status === "violated" ? "counterexample" : "witness"})</span>` +
            (p.doc ? `<br><span class="doc">${esc(p.name)}: ${esc(p.doc)}</span>` : "") +
            `</h3>` +
            (p.status === "violated" && p.message ? `<div class="msgline">${esc(p.message)}</div>` : "") +
            `<div class="controls"><button type="button" class="prev" aria-label="previous step">◀ prev</button>` +
            `<button type="button" class="next" aria-label="next step">next ▶</button><span class="pos"></span>` +
            `<span class="notes">← → Home End keys when the trace has focus</span></div>` +
            `<div><span class="steplabel"></span> <span class="onthread"></span> <span class="kernel"></span></div><div class="faultbox" hidden></div><div class="loopbox" hidden></div>` +
            `<div class="cols"><div class="statewrap"><table class="state"><thead><tr><th>field</th><th>value</th></tr></thead><tbody></tbody></table></div>` +
            `<div class="right">` +
            (graph.nodes.length
              ? `<div class="notes">ownership${graph.declared ? "" : " (no declaration: the objects the trace changes)"}</div><div class="graphwrap">${graphSvg(graph, id)}</div>`
              : "") +
            `<div class="svgwrap" tabindex="-1">${sequenceSvg(p.trace, d, ending, id)}</div></div></div></section>`,
        );
      }
      sc.designs.push({
        name: designName(v),
        result: resultWord(v),
        states: v.stats.distinctStates.toLocaleString("en-US"),
        props: v.properties.map((p) => [p.name, shortCell(p), p.failed] as [string, string, boolean]),
        traces: mine,
      });
    }
    html.push(
      `<div class="tablewrap"><table class="compare"><thead><tr><th>design</th>${props.map((p) => `<th>${esc(p)}</th>`).join("")}<th>states</th><th>result</th></tr></thead><tbody>`,
    );
    for (const v of vs) {
      const cells = props.map((name) => {
        const p = v.properties.find((x) => x.name === name);
        if (!p) return `<td>–</td>`;
        const t = esc(cellText(p));
        const id = ids.get(p);
        return `<td class="${cellClass(p)}">${id ? `<a href="#${id}">${t}</a>` : t}</td>`;
      });
      const result = resultWord(v);
      const cls = result === "FAIL" || result === "CHANGED" ? "failed" : result === "incomplete" ? "unknown" : "holds";
      const ok = !v.properties.some((p) => p.failed || reportedFailure(p));
      html.push(
        `<tr${ok ? ' class="ok"' : ""}><th>${esc(designName(v))}</th>${cells.join("")}<td class="num">${v.stats.distinctStates.toLocaleString("en-US")}</td>` +
          `<td class="${cls}">${result}</td></tr>`,
      );
    }
    html.push(`</tbody></table></div>`);
    for (const v of vs) {
      const notes = [statsLine(v), ...allWarnings(v).map((w) => `warning: ${w}`)];
      if (!v.complete) notes.push(incompleteText(v));
      html.push(`<p class="notes"><b>${esc(designName(v))}</b>: ${notes.map((x) => (/^(warning|INCOMPLETE|SIMULATION)/.test(x) ? `<span class="warn">${esc(x)}</span>` : esc(x))).join("; ")}</p>`);
    }
    if (vs.length > 1) {
      // Default pair: the first design with a failure beside the first without.
      const bad = Math.max(0, vs.findIndex((v) => v.properties.some((p) => p.failed)));
      const good = Math.max(0, vs.findIndex((v, i) => i !== bad && !v.properties.some((p) => p.failed)));
      const other = good === bad ? (bad + 1) % vs.length : good;
      const select = (sel: number, side: string) =>
        `<div><label>${side} <select class="design" aria-label="${side} design">${vs.map((v, i) => `<option value="${i}"${i === sel ? " selected" : ""}>${esc(designName(v))}</option>`).join("")}</select></label><div class="col"></div></div>`;
      html.push(
        `<details class="sbs" data-scenario="${scenarios.length}"><summary>side by side: two designs of ${esc(spec)}</summary>` +
          `<div class="pair">${select(bad, "left")}${select(other, "right")}</div></details>`,
      );
    }
    scenarios.push(sc);
    html.push(...sections, "</div>");
  }
  // "<" escaped so the JSON cannot close its script element.
  const json = JSON.stringify({ traces, scenarios }).replace(/</g, "\\u003c");
  return [
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(title)}</title><style>${STYLE}</style></head><body>`,
    `<h1>${esc(title)}</h1>`,
    `<div class="toolbar"><label><input type="checkbox" id="failures-only"> failures only</label></div>`,
    ...html,
    `<script type="application/json" id="refcheck-data">${json}</script>`,
    `<script>${SCRIPT}</script>`,
    "</body></html>",
    "",
  ].join("\n");
}
