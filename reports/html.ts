// One self-contained HTML page: comparison tables, then every trace as a
// step-by-step view (state table with changed cells marked, previous/next buttons
// and arrow keys, the fault at its step) and an inline SVG sequence diagram.
// No network: a CSP forbids every fetch; styles, data and script are inline.
import type { PropertyResult, Trace, Verdict } from "../checker/verdict.ts";
import {
  allWarnings, byScenario, cellText, designName, fmtValue, headline, leaves, loopNote, propertyNames, sequenceModel,
  statsLine, stepLabel, steps, traced, resultWord,
} from "./util.ts";

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

/** The sequence diagram as SVG; each arrow is a <g class="msg" data-step=n>. */
export function sequenceSvg(trace: Trace): string {
  const m = sequenceModel(trace);
  const texts = m.messages.map((x) => [x.label, ...x.detail]);
  const longest = Math.max(10, ...texts.flat().map((t) => t.length));
  const gap = Math.min(380, Math.max(150, longest * CHAR_W + 30));
  const boxW = Math.max(90, ...m.participants.map((p) => p.length * CHAR_W + 20));
  const x = (p: string) => 20 + boxW / 2 + m.participants.indexOf(p) * gap;
  let width = 40 + boxW + (m.participants.length - 1) * gap + 60;
  const parts: string[] = [];
  let y = 60;
  const body: string[] = [];
  m.messages.forEach((msg, k) => {
    const lines = texts[k]!;
    y += lines.length * ROW_H + 8;
    const x1 = x(msg.from);
    const x2 = x(msg.to);
    const g: string[] = [`<g class="msg" data-step="${msg.step}">`];
    const tx = msg.from === msg.to ? x1 + 12 : (x1 + x2) / 2;
    const anchor = msg.from === msg.to ? "start" : "middle";
    lines.forEach((t, i) => {
      const ty = y - (lines.length - i) * ROW_H + 4;
      g.push(`<text x="${tx}" y="${ty}" text-anchor="${anchor}"${i === 0 ? ' class="label"' : ""}>${esc(t.replace(/ -> /g, " → "))}</text>`);
    });
    if (msg.from === msg.to) {
      g.push(`<path d="M${x1} ${y - 6} h30 v16 h-26" class="arrow" marker-end="url(#arrowhead)"/>`);
      y += 16;
    } else {
      const dir = x2 > x1 ? -1 : 1;
      g.push(`<line x1="${x1}" y1="${y}" x2="${x2 + dir * 2}" y2="${y}" class="arrow" marker-end="url(#arrowhead)"/>`);
    }
    g.push("</g>");
    body.push(g.join(""));
    const last = m.messages.filter((o) => o.step === msg.step).at(-1) === msg;
    if (m.fault && last && m.fault.step === msg.step) {
      const xs = m.fault.over.map(x);
      const lo = Math.min(...xs) - boxW / 2;
      const hi = Math.max(...xs) + boxW / 2;
      const fl = wrap(`FAULT: ${m.fault.text}`, Math.max(24, Math.floor((Math.max(hi - lo, 260) - 16) / CHAR_W)));
      const w = Math.max(hi - lo, 260);
      const left = Math.max(4, (lo + hi) / 2 - w / 2);
      const h = fl.length * ROW_H + 10;
      width = Math.max(width, left + w + 10);
      y += 12;
      body.push(
        `<g class="fault" data-step="${msg.step}"><rect x="${left}" y="${y}" width="${w}" height="${h}" rx="3"/>` +
          fl.map((t, i) => `<text x="${left + 8}" y="${y + 16 + i * ROW_H}">${esc(t)}</text>`).join("") +
          "</g>",
      );
      y += h;
    }
  });
  y += 24;
  parts.push(
    `<svg class="seq" xmlns="http://www.w3.org/2000/svg" width="${Math.ceil(width)}" height="${y}" viewBox="0 0 ${Math.ceil(width)} ${y}" role="img" aria-label="sequence diagram">`,
    `<defs><marker id="arrowhead" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z"/></marker></defs>`,
  );
  for (const p of m.participants) {
    const cx = x(p);
    parts.push(
      `<g class="participant"><line x1="${cx}" y1="40" x2="${cx}" y2="${y - 8}" class="lifeline"/>` +
        `<rect x="${cx - boxW / 2}" y="10" width="${boxW}" height="30" rx="4"/>` +
        `<text x="${cx}" y="30" text-anchor="middle">${esc(p)}</text></g>`,
    );
  }
  parts.push(...body, "</svg>");
  return parts.join("\n");
}

interface TraceData {
  id: string;
  title: string;
  failed: boolean;
  fields: string[];
  steps: { index: number; label: string; kernel?: string; fault?: string; loop?: string; values: string[]; changed: number[]; before: Record<number, string> }[];
}

function traceData(id: string, v: Verdict, p: PropertyResult & { trace: Trace }): TraceData {
  const fields = leaves(p.trace.steps[0]!.state).map(([f]) => f);
  return {
    id,
    title: `${designName(v)}: ${headline(p)}`,
    failed: p.failed,
    fields,
    steps: p.trace.steps.map((s, k) => {
      const loop = loopNote(p.trace, k);
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
      return {
        index: s.index,
        label: s.action === null ? "initial state" : stepLabel(s),
        ...(s.kernel ? { kernel: s.kernel } : {}),
        ...(s.fault ? { fault: s.fault } : {}),
        ...(loop ? { loop } : {}),
        values: fields.map((f) => lv.get(f) ?? ""),
        changed: [...changed],
        before,
      };
    }),
  };
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{font-size:20px}h2{font-size:17px;margin-top:32px}h3{font-size:15px;margin:0 0 6px}
code,td.v,td.f,.seq text,.steplabel{font-family:ui-monospace,Menlo,Consolas,monospace}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.holds,td.reachable,td.unreachable{color:#1a7f37}td.failed{color:#cf222e;font-weight:600;background:#ffebe9}
td.unknown{color:#9a6700}td.num{text-align:right}a{color:#0969da}
.notes{color:#57606a;font-size:13px;margin:4px 0}.warn{color:#9a6700}
.trace{border:1px solid #d0d7de;border-radius:6px;padding:12px;margin:18px 0}.trace:focus{outline:2px solid #0969da}
.trace.failed{border-color:#cf222e}.msgline{margin:4px 0 8px;color:#cf222e}
.controls{display:flex;gap:8px;align-items:center;margin:8px 0}.controls button{font-size:14px;padding:3px 10px}
.steplabel{font-weight:600}.kernel{color:#57606a}
.fault{color:#cf222e;font-weight:600}.faultbox{background:#ffebe9;border:1px solid #cf222e;padding:6px 8px;border-radius:4px;margin:6px 0}.loopbox{background:#fbefff;border:1px solid #8250df;padding:6px 8px;border-radius:4px;margin:6px 0}
.state td.v.changed{background:#fff8c5;font-weight:600}.state td.v .was{color:#57606a;font-weight:400;text-decoration:line-through;margin-right:6px}
.cols{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}.svgwrap{overflow-x:auto;max-width:100%}
.seq text{font-size:12px;fill:#1b1f24}.seq .participant rect{fill:#ddf4ff;stroke:#0969da}.seq .lifeline{stroke:#8c959f;stroke-dasharray:4 3}
.seq .arrow{stroke:#1b1f24;fill:none;stroke-width:1.3}.seq marker path{fill:#1b1f24}
.seq .msg.future{opacity:.25}.seq .msg.current .arrow{stroke:#0969da;stroke-width:2.5}.seq .msg.current text{fill:#0969da;font-weight:600}
.seq .fault rect{fill:#ffebe9;stroke:#cf222e}.seq .fault text{fill:#cf222e}.seq .fault.future{opacity:.25}
`;

// Runs in the page: draws the state table of the current step of each trace.
const SCRIPT = `
(function(){
  var data = JSON.parse(document.getElementById("refcheck-data").textContent);
  var views = {};
  var active = null;
  function el(tag, cls, text){ var e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; }
  function show(id, k){
    var v = views[id], t = v.t;
    k = Math.max(0, Math.min(t.steps.length - 1, k)); v.k = k;
    var s = t.steps[k], root = v.root;
    root.querySelector(".pos").textContent = "step " + k + " of " + (t.steps.length - 1);
    root.querySelector(".steplabel").textContent = (k === 0 ? "" : k + ". ") + s.label;
    root.querySelector(".kernel").textContent = s.kernel ? "[" + s.kernel + "]" : "";
    var fb = root.querySelector(".faultbox");
    fb.hidden = !s.fault; fb.textContent = s.fault ? "FAULT: " + s.fault : "";
    var lb = root.querySelector(".loopbox");
    lb.hidden = !s.loop; lb.textContent = s.loop ? "\u21ba " + s.loop : "";
    root.querySelector(".prev").disabled = k === 0;
    root.querySelector(".next").disabled = k === t.steps.length - 1;
    var tb = root.querySelector(".state tbody"); tb.textContent = "";
    var changed = {}; s.changed.forEach(function(i){ changed[i] = true; });
    t.fields.forEach(function(f, i){
      var tr = el("tr"); tr.appendChild(el("td", "f", f));
      var td = el("td", "v" + (changed[i] ? " changed" : ""));
      if (changed[i] && s.before[i] !== undefined) td.appendChild(el("span", "was", s.before[i]));
      td.appendChild(document.createTextNode(s.values[i]));
      tr.appendChild(td); tb.appendChild(tr);
    });
    root.querySelectorAll(".seq .msg, .seq .fault").forEach(function(g){
      var n = Number(g.getAttribute("data-step"));
      g.classList.toggle("current", n === s.index);
      g.classList.toggle("future", n > s.index);
    });
  }
  data.traces.forEach(function(t){
    var root = document.getElementById(t.id);
    views[t.id] = { t: t, k: 0, root: root };
    root.querySelector(".prev").addEventListener("click", function(){ active = t.id; show(t.id, views[t.id].k - 1); });
    root.querySelector(".next").addEventListener("click", function(){ active = t.id; show(t.id, views[t.id].k + 1); });
    root.addEventListener("focusin", function(){ active = t.id; });
    root.addEventListener("click", function(){ active = t.id; });
    show(t.id, 0);
  });
  if (data.traces.length) active = data.traces[0].id;
  document.addEventListener("keydown", function(e){
    if (!active || e.altKey || e.ctrlKey || e.metaKey) return;
    var v = views[active];
    if (e.key === "ArrowRight" || e.key === "j") show(active, v.k + 1);
    else if (e.key === "ArrowLeft" || e.key === "k") show(active, v.k - 1);
    else if (e.key === "Home") show(active, 0);
    else if (e.key === "End") show(active, v.t.steps.length - 1);
    else return;
    e.preventDefault();
  });
})();
`;

function cellClass(p: PropertyResult | undefined): string {
  if (!p) return "";
  if (p.failed) return "failed";
  return p.status;
}

export function renderHtml(verdicts: Verdict[], opts: HtmlOptions = {}): string {
  const title = opts.title ?? "refcheck report";
  const traces: TraceData[] = [];
  const html: string[] = [];
  let n = 0;
  for (const [spec, vs] of byScenario(verdicts)) {
    const v0 = vs[0]!;
    html.push(`<h2>${esc(spec)}</h2>`);
    const about = [v0.summary, v0.file, v0.source ? `from ${v0.source}` : undefined].filter((x): x is string => !!x);
    if (about.length) html.push(`<p class="notes">${esc(about.join(" · "))}</p>`);
    const props = propertyNames(vs);
    // Trace ids first, so table cells can link to them.
    const ids = new Map<PropertyResult, string>();
    const sections: string[] = [];
    for (const v of vs) {
      for (const p of traced(v)) {
        if (p.status !== "violated" && opts.witnesses === false) continue;
        const id = `trace-${++n}`;
        ids.set(p, id);
        const d = traceData(id, v, p);
        traces.push(d);
        sections.push(
          `<section class="trace${p.failed ? " failed" : ""}" id="${id}" tabindex="0" aria-label="${esc(d.title)}">` +
            `<h3>${esc(d.title)} <span class="notes">(${steps(p.trace.length)}; ${p.status === "violated" ? "counterexample" : "witness"})</span></h3>` +
            (p.status === "violated" && p.message ? `<div class="msgline">${esc(p.message)}</div>` : "") +
            `<div class="controls"><button type="button" class="prev" aria-label="previous step">◀ prev</button>` +
            `<button type="button" class="next" aria-label="next step">next ▶</button><span class="pos"></span>` +
            `<span class="notes">← → keys</span></div>` +
            `<div><span class="steplabel"></span> <span class="kernel"></span></div><div class="faultbox" hidden></div><div class="loopbox" hidden></div>` +
            `<div class="cols"><table class="state"><thead><tr><th>field</th><th>value</th></tr></thead><tbody></tbody></table>` +
            `<div class="svgwrap">${sequenceSvg(p.trace)}</div></div></section>`,
        );
      }
    }
    html.push(
      `<table class="compare"><thead><tr><th>design</th>${props.map((p) => `<th>${esc(p)}</th>`).join("")}<th>states</th><th>result</th></tr></thead><tbody>`,
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
      html.push(
        `<tr><th>${esc(designName(v))}</th>${cells.join("")}<td class="num">${v.stats.distinctStates.toLocaleString("en-US")}</td>` +
          `<td class="${cls}">${result}</td></tr>`,
      );
    }
    html.push(`</tbody></table>`);
    for (const v of vs) {
      const notes = [statsLine(v), ...allWarnings(v).map((w) => `warning: ${w}`)];
      if (!v.complete) notes.push(`INCOMPLETE: stopped by ${v.stoppedBy ?? "a bound"}`);
      html.push(`<p class="notes"><b>${esc(designName(v))}</b>: ${notes.map((x) => (x.startsWith("warning") || x.startsWith("INCOMPLETE") ? `<span class="warn">${esc(x)}</span>` : esc(x))).join("; ")}</p>`);
    }
    html.push(...sections);
  }
  // "<" escaped so the JSON cannot close its script element.
  const json = JSON.stringify({ traces }).replace(/</g, "\\u003c");
  return [
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(title)}</title><style>${STYLE}</style></head><body>`,
    `<h1>${esc(title)}</h1>`,
    ...html,
    `<script type="application/json" id="refcheck-data">${json}</script>`,
    `<script>${SCRIPT}</script>`,
    "</body></html>",
    "",
  ].join("\n");
}
