// Renderer tests on the engine's file-pinning verdicts: golden files per format,
// format rules (SARIF 2.1.0 structure, ITF encodings, JUnit XML, Mermaid syntax),
// and the HTML page driven in the system chromium.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { tmpdir } from "node:os";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { Trace } from "../checker/verdict.ts";
import { renderVerdict } from "../reports/console.ts";
import { renderComparison } from "../reports/compare.ts";
import { fromItf, parseItf, toItf, ItfError } from "../reports/itf.ts";
import { ItfTuple } from "../reports/values.ts";
import { renderJunit } from "../reports/junit.ts";
import { renderSarif } from "../reports/sarif.ts";
import { sarifValidator } from "./support/schemas.ts";
import { githubAnnotations, githubSummary } from "../reports/github.ts";
import { mermaidOwnership, mermaidSequence, renderMarkdown } from "../reports/markdown.ts";
import { laneModel, ownershipGraph, threadLanes } from "../reports/views.ts";
import { renderHtml } from "../reports/html.ts";
import { FAULT, getFileActiveVerdict, getFileVerdict, incompleteVerdict, shallowVerdict } from "./fixtures/verdicts.ts";

const here = dirname(fileURLToPath(import.meta.url));
const both = [getFileActiveVerdict, getFileVerdict];
const noFault = getFileVerdict.properties.find((p) => p.name === "noFault")!;
const specSource = readFileSync(join(here, "..", getFileVerdict.file!), "utf8").split("\n");
/** 1-based line of the spec file that starts with `start` (after indentation). */
function specLine(start: string): number {
  const n = specSource.findIndex((l) => l.trimStart().startsWith(start)) + 1;
  assert.ok(n > 0, `no line starting with ${start} in ${getFileVerdict.file}`);
  return n;
}
const FILE_ADD = specLine("FileAdd: action(");
const CLOSE_VM = specLine("CloseVm: {");

/** Compares with test/golden/<name>; UPDATE_GOLDEN=1 rewrites the file. */
function golden(name: string, actual: string): void {
  const file = join(here, "golden", name);
  if (process.env.UPDATE_GOLDEN || !existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, actual);
  }
  assert.equal(actual, readFileSync(file, "utf8"), `${name} differs from its golden file (UPDATE_GOLDEN=1 to accept)`);
}

test("golden files per renderer, file-pinning counterexample", () => {
  golden("file-pinning.console.txt", renderVerdict(getFileVerdict, { color: false }));
  golden("file-pinning.incomplete.console.txt", renderVerdict(incompleteVerdict, { color: false }));
  golden("file-pinning.compare.txt", renderComparison(both, { color: false, traces: true }));
  golden("file-pinning.md", renderMarkdown(both));
  golden("file-pinning.html", renderHtml(both));
  golden("file-pinning.sarif.json", renderSarif(both, { version: "0.1.0" }));
  golden("file-pinning.junit.xml", renderJunit(both));
  golden("file-pinning.itf.json", toItf(getFileVerdict, noFault));
  golden("file-pinning.github.txt", githubAnnotations(both));
});

test("console: trace shows only changed fields, the fault, stats and warnings", () => {
  const out = renderVerdict(getFileVerdict, { color: false });
  assert.match(out, /1 {2}CloseVm/);
  assert.match(out, /vmFile\.state: live -> dying/);
  assert.match(out, /2 {2}FileAdd\(i=0\)/);
  assert.ok(out.includes(`FAULT: ${FAULT}`));
  assert.match(out, /2 {2}FileAdd\(i=0\).*\n +vfio\[0\]\.file\.count: 1 -> 2\n +vfio\[0\]\.kvf: false -> true\n +FAULT: /);
  assert.match(out, /961 distinct states, 3,363 generated, depth 10, 0\.010 s, 96,100 states\/s/);
  assert.match(renderVerdict(shallowVerdict, { color: false }), /warning: action ReleaseVm never fired/);
  assert.doesNotMatch(out, /\x1b\[/, "color: false must not emit escapes");
  assert.match(renderVerdict(incompleteVerdict, { color: false }), /INCOMPLETE: stopped by max-states/);
  assert.match(renderVerdict(getFileVerdict, { color: true }), /\x1b\[/);
});

// ---- SARIF ----
// Checked against the SARIF 2.1.0 JSON schema (test/schemas/) with ajv.
type SarifLog = { runs: { tool: { driver: { rules: { id: string }[] } }; invocations: { toolExecutionNotifications: { message: { text: string } }[] }[]; results: any[] }[] };
function sarifLog(text: string): SarifLog {
  const v = sarifValidator();
  const log = JSON.parse(text);
  assert.ok(v(log), JSON.stringify(v.errors?.slice(0, 5)));
  return log as SarifLog;
}

test("SARIF: 2.1.0 structure, one result per failed property, codeFlow at action lines", () => {
  const log = sarifLog(renderSarif([...both, incompleteVerdict]));
  const run = log.runs[0]!;
  assert.equal(run.results!.length, 1);
  const r = run.results![0]!;
  assert.equal(r.ruleId, "kvm-vfio/file-pinning/noFault");
  assert.equal(run.tool.driver.rules![r.ruleIndex!]!.id, r.ruleId);
  // No property line for a fault: the failing action's line (FileAdd).
  assert.deepEqual(r.locations![0]!.physicalLocation, { artifactLocation: { uri: "specs/kvm-vfio/file-pinning.ts", uriBaseId: "%SRCROOT%" }, region: { startLine: FILE_ADD } });
  const flow = r.codeFlows![0]!.threadFlows[0]!.locations;
  assert.deepEqual(flow.map((l: any) => l.location!.physicalLocation!.region!.startLine), [FILE_ADD, CLOSE_VM, FILE_ADD]);
  assert.match(flow[2]!.location!.message!.text!, /FAULT: file_ref_inc/);
  assert.equal(flow[2]!.importance, "essential");
  assert.ok(run.invocations![0]!.toolExecutionNotifications!.some((n) => /INCOMPLETE/.test(n.message.text!)));
  // A passing run still yields a valid log with no results.
  assert.equal(sarifLog(renderSarif([getFileActiveVerdict])).runs[0]!.results!.length, 0);
});

// ---- ITF ----
function walk(v: unknown, visit: (v: unknown, path: string) => void, path = ""): void {
  visit(v, path);
  if (Array.isArray(v)) v.forEach((x, i) => walk(x, visit, `${path}[${i}]`));
  else if (typeof v === "object" && v !== null) for (const [k, x] of Object.entries(v)) walk(x, visit, `${path}.${k}`);
}

test("ITF: field rules of the written trace", () => {
  const doc = JSON.parse(toItf(getFileVerdict, noFault));
  assert.equal(doc["#meta"].format, "ITF");
  // itf-rs reads every #meta value as a string: refcheck's own meta is a JSON string.
  for (const [k, v] of Object.entries(doc["#meta"])) assert.equal(typeof v, "string", `#meta.${k}`);
  assert.equal(JSON.parse(doc["#meta"].refcheck).property, "noFault");
  assert.deepEqual(doc.params, ["design", "devices"]);
  assert.ok(Array.isArray(doc.vars) && doc.vars.includes("mbt::actionTaken"));
  assert.equal(doc.states.length, 3);
  doc.states.forEach((s: Record<string, unknown>, k: number) => {
    assert.deepEqual(Object.keys(s).filter((x) => x !== "#meta").sort(), [...doc.params, ...doc.vars].sort(), `states[${k}] has exactly the params and vars`);
    assert.equal((s["#meta"] as { index: number }).index, k);
    const { "#meta": _meta, ...vars } = s;
    walk(vars, (v, path) => {
      assert.notEqual(typeof v, "number", `states[${k}]${path}: plain JSON number; integers must be #bigint`);
      if (typeof v === "object" && v !== null && !Array.isArray(v)) {
        for (const key of Object.keys(v)) assert.ok(!key.startsWith("#") || key === "#bigint" || (key === "#tup" && path.endsWith(".value")), `states[${k}]${path}: field ${key}`); // {"#tup": []}: the unit of a None pick
      }
    });
  });
  assert.deepEqual(doc.states[1].vmFile.count, { "#bigint": "0" });
  assert.equal(doc.states[0]["mbt::actionTaken"], "init");
  assert.equal(doc.states[2]["mbt::actionTaken"], "FileAdd");
  assert.deepEqual(doc.states[2]["mbt::nondetPicks"], { i: { tag: "Some", value: { "#bigint": "0" } } });
  // Every state has every pick name (one shape for typed readers): None where not picked.
  assert.deepEqual(doc.states[0]["mbt::nondetPicks"], { i: { tag: "None", value: { "#tup": [] } } });
  assert.equal(doc.states[1]["#meta"].index, 1);
  assert.deepEqual(doc.states[1].devices, { "#bigint": "2" });
  assert.equal(doc.states[2]["#meta"].fault, FAULT);
});

test("ITF: round trip gives back the trace", () => {
  for (const p of [...getFileVerdict.properties, ...getFileActiveVerdict.properties].filter((x) => x.trace)) {
    const back = fromItf(toItf(getFileVerdict, p), "t.itf.json");
    Trace.parse(back);
    // A step's `owned` is derived from the state and the verdict's ownership declaration, which ITF does not carry.
    assert.deepEqual(back, { ...p.trace, steps: p.trace!.steps.map(({ owned: _, ...s }) => s) });
    // The thread is a state variable (typed readers see it), and is read back from it alone.
    const doc = JSON.parse(toItf(getFileVerdict, p));
    assert.ok(doc.vars.includes("refcheck::thread"));
    assert.deepEqual(doc.states.map((st: Record<string, unknown>) => st["refcheck::thread"]), p.trace!.steps.map((s) => s.thread ?? ""));
    for (const st of doc.states) delete st["#meta"].thread;
    assert.deepEqual(fromItf(JSON.stringify(doc), "t.itf.json").steps.map((s) => s.thread), p.trace!.steps.map((s) => s.thread));
  }
});

test("ITF: reads a Quint-style trace (#bigint, #map, #set, #tup, variants, mbt:: vars)", () => {
  const file = join(here, "fixtures", "quint-pin.itf.json");
  const { trace, vars, meta } = parseItf(readFileSync(file, "utf8"), "quint-pin.itf.json");
  assert.equal(meta.source, "pin.qnt");
  assert.deepEqual(vars, ["vmFd", "vmFile", "pinned", "holders", "last"]);
  assert.equal(trace.length, 2);
  assert.deepEqual(trace.steps.map((s) => s.action), [null, "closeVm", "fileAdd"]);
  assert.deepEqual(trace.steps[2]!.params, { i: 0 });
  assert.deepEqual(trace.steps[1]!.params, {});
  assert.deepEqual(trace.steps[0]!.state.vmFile, { count: 1, state: "Live" });
  assert.deepEqual(trace.steps[0]!.state.pinned, { "0": false, "1": false });
  assert.deepEqual(trace.steps[0]!.state.last, new ItfTuple([0, "none"]));
  assert.deepEqual(trace.steps[2]!.changes.map((c) => c.path), ["pinned.0", "holders", "last[0]", "last[1]"]);
});

test("ITF: malformed input names the file and the field", () => {
  const cases: [string, RegExp][] = [
    ["{", /^bad\.itf\.json: not valid JSON/],
    ["[]", /^bad\.itf\.json: \(top level\)/],
    ['{"states":[]}', /^bad\.itf\.json: vars:/],
    ['{"vars":[],"states":[]}', /^bad\.itf\.json: states: the trace has no states/],
    ['{"vars":["x"],"states":[{"x":{"#bigint":"1.5"}}]}', /^bad\.itf\.json: states\[0\]\.x: #bigint must be a decimal string/],
    ['{"vars":["x"],"states":[{"x":1},{"#meta":{"index":3},"x":2}]}', /^bad\.itf\.json: states\[1\]\.#meta\.index: expected 1, got 3/],
    ['{"vars":["x"],"states":[{"y":1}]}', /^bad\.itf\.json: states\[0\]\.x: variable "x" listed in vars is missing/],
    ['{"vars":["x"],"states":[{"x":{"#map":[[1]]}}]}', /^bad\.itf\.json: states\[0\]\.x\.#map\[0\]: expected a \[key, value\] pair/],
    ['{"vars":["x"],"states":[{"x":{"#foo":1}}]}', /^bad\.itf\.json: states\[0\]\.x: unknown ITF encoding "#foo"/],
    ['{"vars":["x"],"states":[{"x":1,"mbt::actionTaken":3}]}', /^bad\.itf\.json: states\[0\]\.mbt::actionTaken: expected a string/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => fromItf(text, "bad.itf.json"), (e: unknown) => e instanceof ItfError && re.test(e.message), text);
  }
});

// ---- JUnit ----
test("JUnit: well-formed XML, one suite per design, one case per property, trace in the failure", () => {
  const text = renderJunit([...both, incompleteVerdict]);
  assert.equal(XMLValidator.validate(text), true);
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@", isArray: (n) => ["testsuite", "testcase", "property"].includes(n) }).parse(text);
  const suites = doc.testsuites.testsuite as any[];
  assert.equal(suites.length, 3);
  assert.equal(suites[1]["@name"], "kvm-vfio/file-pinning [design=get_file]");
  assert.equal(doc.testsuites["@failures"], "1");
  for (const s of suites) assert.equal(s.testcase.length, 14);
  const failing = suites[1].testcase.find((c: any) => c["@name"] === "noFault");
  assert.ok(String(failing.failure["#text"]).includes(`FAULT: ${FAULT}`));
  assert.ok(String(failing.failure["#text"]).includes("CloseVm"));
  // Every property is unknown after 100 states, the witness too.
  assert.equal(suites[2]["@skipped"], "14");
});

// ---- Markdown / Mermaid ----
test("Markdown: comparison table and Mermaid within documented syntax", () => {
  const md = renderMarkdown(both);
  assert.match(md, /\| get_file \| \*\*violated: file_ref_inc\(\) on a released file reference: get_file on dying VM file \(kvm-&gt;_file\) \(f_count was 0[^)]*\) in 2 steps\*\* (\| holds ){11}\| witness reachable in 5 steps \|/);
  const blocks = [...md.matchAll(/```mermaid\n([\s\S]*?)```/g)].map((m) => m[1]!);
  // Two sequence diagrams and a witness's, and the ownership at the start and at the fault.
  assert.equal(blocks.filter((b) => b.includes("sequenceDiagram")).length, 3);
  assert.equal(blocks.filter((b) => b.includes("flowchart LR")).length, 2);
  const id = "[A-Za-z_][A-Za-z0-9_]*";
  const line = [
    /^%%\{init: \{.*\}\}%%$/,
    /^sequenceDiagram$/,
    new RegExp(`^ {4}(actor|participant) ${id}( as [^#;\\n]+)?$`),
    new RegExp(`^ {4}${id}->>${id}: [^;\\n]+$`),
    new RegExp(`^ {4}(activate|deactivate) ${id}$`),
    new RegExp(`^ {4}Note over ${id}(,${id})?: [^;\\n]+$`),
    /^flowchart LR$/,
    new RegExp(`^ {4}${id}(\\(\\[|\\[/|\\[)"[^"\\n]*"(\\]\\)|/\\]|\\])$`),
    new RegExp(`^ {4}${id} (-->|-\\.->)(\\|[^|\\n]+\\|)? ${id}$`),
    new RegExp(`^ {4}classDef ${id} [a-z:#0-9,-]+$`),
    new RegExp(`^ {4}class ${id}(,${id})* ${id}$`),
  ];
  for (const b of blocks) {
    for (const l of b.trimEnd().split("\n")) {
      assert.ok(line.some((re) => re.test(l)), `not documented Mermaid: ${l}`);
      if (l.startsWith("%%") || /classDef/.test(l)) continue;
      const text = l.split(": ").slice(1).join(": ");
      assert.doesNotMatch(text.replace(/#(\d+|[a-z]+);/g, ""), /[#;<>]|->/, `unescaped text: ${l}`);
    }
  }
  const seq = mermaidSequence(noFault.trace!);
  // A lane per thread the actions declare, then the objects they change.
  assert.match(seq, /participant close\n {4}participant ioctl\n {4}participant vmFd\n {4}participant vmFile\n {4}participant vfio_0 as vfio\[0\]\n/);
  assert.match(seq, /close->>vmFile: 1\.\n/);
  assert.match(seq, /ioctl->>vfio_0: 2\. FileAdd\(i=0\)\n/);
  // The fault sits at the thread that hit it and names the object: the dying VM file.
  assert.match(seq, /Note over ioctl,vmFile: FAULT on vmFile$/);
  // Hostile text is escaped, not passed through.
  const odd = structuredClone(noFault.trace!);
  odd.steps[2]!.faultAt = "a; b # c -> d <e>";
  assert.match(mermaidSequence(odd), /FAULT on a#59; b #35; c → d #lt;e#gt;/);
  // Without threads, steps go to lanes named after their kernel functions, or one userspace lane.
  const plain = structuredClone(noFault.trace!);
  for (const st of plain.steps) delete st.thread;
  assert.deepEqual(threadLanes(plain), [undefined, "close", "KVM_DEV_VFIO_FILE_ADD"]);
  for (const st of plain.steps) delete st.kernel;
  assert.deepEqual(threadLanes(plain), [undefined, "userspace", "userspace"]);
});

test("views: lock holds are spans; the ownership graph follows the declaration", async () => {
  const { check } = await import("../checker/index.ts");
  const lockOrder = (await import("../specs/guest-memfd/lock-order.ts")).default;
  const v = check(lockOrder, { design: "invalidate-lock-first" });
  assert.deepEqual(v.locks, [{ name: "slots_lock", path: "slotsLock" }, { name: "invalidate_lock", path: "invalidateLock" }]);
  const t = v.properties.find((p) => p.name === "noFault")!.trace!;
  const m = laneModel(t, v);
  // The spec's threads (memslotDelete, gmemRelease) are the lanes.
  assert.ok(m.threads.includes("memslotDelete") && m.threads.includes("gmemRelease"));
  assert.deepEqual(m.spans.map((sp) => [sp.lock, sp.holder, sp.from, sp.to]), [["slots_lock", "memslotDelete", 2, 3], ["invalidate_lock", "gmemRelease", 4, undefined], ["slots_lock", "gmemRelease", 5, undefined]]);
  assert.equal(m.fault?.thread, "gmemRelease");
  const seq = mermaidSequence(t, v);
  assert.match(seq, /activate slots_lock\n[\s\S]*deactivate slots_lock/);

  const cached = (await import("../specs/tutorial/cached-file.ts")).default;
  const cv = check(cached, { design: "borrowed" }, { validate: true });
  assert.deepEqual(cv.objects, [{ name: "file", count: ["file.count"], live: ["file.state"], holders: ["fd", "driver"], weak: ["driver"] }]);
  const ct = cv.properties.find((p) => p.name === "noFault")!.trace!;
  const g = ownershipGraph(ct, cv);
  assert.equal(g.declared, true);
  assert.deepEqual(g.nodes.map((n) => [n.id, n.kind]), [["fd", "holder"], ["driver", "holder"], ["file", "object"]]);
  const edge = (k: number, from: string, kind: string) => g.steps[k]!.edges[g.edges.findIndex((e) => e.from === from && e.kind === kind)]!;
  assert.equal(edge(0, "fd", "counted").on, true);
  assert.equal(edge(1, "driver", "weak").on, true); // SetFile stores the pointer without a reference
  assert.equal(edge(2, "fd", "counted").on, false); // CloseFd drops the fd's reference
  assert.deepEqual(g.steps[2]!.nodes[2], { lines: ["count 0 · dying"], state: "dying", changed: true });
  const flow = mermaidOwnership(g, 2);
  assert.match(flow, /n_driver -\.-> n_file/);
  assert.match(flow, /class n_file dying/);
});

test("GitHub: annotations at spec lines, escaped; summary is Markdown", () => {
  const out = githubAnnotations([...both, incompleteVerdict, shallowVerdict]).trimEnd().split("\n");
  const err = out.filter((l) => l.startsWith("::error "));
  assert.equal(err.length, 1);
  assert.match(err[0]!, new RegExp(`^::error file=specs/kvm-vfio/file-pinning\\.ts,line=${FILE_ADD},title=refcheck%3A kvm-vfio/file-pinning noFault::get_file: noFault violated: `));
  assert.match(err[0]!, /%0A2\. FileAdd\(i=0\): vfio\[0\]\.file\.count: 1 -> 2, vfio\[0\]\.kvf: false -> true%0A {3}FAULT: /);
  assert.ok(out.some((l) => /^::warning file=[^,]+,title=[^:]+::.*INCOMPLETE: stopped by max-states/.test(l)));
  // Never-fired actions are annotated at their own line.
  assert.ok(out.some((l) => l.startsWith(`::warning file=specs/kvm-vfio/file-pinning.ts,line=${specLine("ReleaseVm: {")},`) && l.endsWith("action ReleaseVm never fired")));
  assert.match(githubSummary(both), /^# refcheck\n/);
});

test("HTML: self-contained (no external URLs, CSP), data embedded as JSON", () => {
  const html = renderHtml(both);
  assert.doesNotMatch(html, /<(script|link|img|iframe)[^>]+(src|href)=/i);
  assert.doesNotMatch(html, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
  const json = /<script type="application\/json" id="refcheck-data">([\s\S]*?)<\/script>/.exec(html)![1]!;
  const data = JSON.parse(json);
  assert.equal(data.traces.length, 3);
  // Text is escaped in markup and in the JSON script.
  const hostile = structuredClone(getFileVerdict);
  hostile.properties[0]!.message = "</script><b>x</b>";
  hostile.properties[0]!.trace!.steps[2]!.fault = "</script><b>x</b>";
  const h2 = renderHtml([hostile]);
  assert.doesNotMatch(h2, /<b>x<\/b>/);
  assert.equal((h2.match(/<\/script>/g) ?? []).length, 2);
});

// ---- the HTML page in a real browser ----
const CHROMIUM = "/usr/bin/chromium";

test("HTML: step through a trace with buttons and arrow keys in chromium", { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} not found; install it with apt-get install -y chromium (see .ci/run-browser-setup.sh)` }, async () => {
  const { chromium } = await import("playwright-core");
  const file = join(mkdirTmp(), "report.html");
  writeFileSync(file, renderHtml(both));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("request", (r) => requests.push(r.url()));
    await page.goto(pathToFileURL(file).href);

    // The comparison table links the violated cell to its trace.
    const cell = page.locator("table.compare tr", { hasText: "get_file " }).locator("td.failed a").first();
    assert.match(await cell.innerText(), /violated: file_ref_inc\(\)/);
    const id = (await cell.getAttribute("href"))!.slice(1);
    const t = page.locator(`#${id}`);
    const pos = t.locator(".pos");
    const label = t.locator(".steplabel");
    const fault = t.locator(".faultbox");
    const changed = () => t.locator("table.state td.v.changed").allInnerTexts();

    assert.equal(await pos.innerText(), "step 0 of 2");
    assert.equal(await label.innerText(), "initial state");
    assert.equal(await t.locator(".prev").isDisabled(), true);
    assert.equal(await fault.isVisible(), false);
    assert.equal(await t.locator("table.state tbody tr").count(), 29); // every leaf field of the state

    await t.locator(".next").click();
    assert.equal(await pos.innerText(), "step 1 of 2");
    assert.equal(await label.innerText(), "1. CloseVm");
    assert.deepEqual(await changed(), ["installednone", "10", "livedying"]); // old value struck through, then new
    assert.equal(await t.locator('.seq .msg.current[data-step="1"]').count(), 2);
    assert.equal(await t.locator('.seq .msg.future[data-step="2"]').count(), 1);

    await page.keyboard.press("ArrowRight");
    assert.equal(await pos.innerText(), "step 2 of 2");
    assert.equal(await label.innerText(), "2. FileAdd(i=0)");
    assert.equal(await fault.isVisible(), true);
    assert.equal(await fault.innerText(), `FAULT: ${FAULT}`);
    assert.deepEqual(await changed(), ["12", "falsetrue"]); // vfio[0].file.count, vfio[0].kvf
    assert.equal(await t.locator(".next").isDisabled(), true);
    assert.equal(await t.locator('.seq .fault[data-step="2"]').count(), 1);
    assert.equal(await t.locator(".seq .future").count(), 0);

    await page.keyboard.press("ArrowRight"); // stays at the end
    assert.equal(await pos.innerText(), "step 2 of 2");
    await page.keyboard.press("ArrowLeft");
    assert.equal(await pos.innerText(), "step 1 of 2");
    assert.equal(await fault.isVisible(), false);
    await t.locator(".prev").click();
    assert.equal(await pos.innerText(), "step 0 of 2");
    await page.keyboard.press("End");
    assert.equal(await pos.innerText(), "step 2 of 2");

    // Another trace's keys are independent once it is focused.
    const other = page.locator("#trace-1");
    await other.focus();
    await page.keyboard.press("ArrowRight");
    assert.equal(await other.locator(".pos").innerText(), "step 1 of 5");
    assert.equal(await pos.innerText(), "step 2 of 2");

    assert.deepEqual(errors, []);
    assert.deepEqual(requests.filter((u) => !u.startsWith("file:")), [], "the page must not touch the network");
  } finally {
    await browser.close();
  }
});

async function launch() {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}
const noChromium = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found; install it with apt-get install -y chromium (see .ci/run-browser-setup.sh)`;

test("HTML: a shipped trace's lanes and ownership graph follow the stepper; the page fits 1400 px; Home/End scroll it", { skip: noChromium }, async () => {
  const { check } = await import("../checker/index.ts");
  const cached = (await import("../specs/tutorial/cached-file.ts")).default;
  const cv = ["borrowed", "pinned"].map((design) => check(cached, { design }, { file: "specs/tutorial/cached-file.ts" }));
  const file = join(mkdirTmp(), "shipped.html");
  writeFileSync(file, renderHtml([...cv, ...both]));
  const browser = await launch();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(pathToFileURL(file).href);
    assert.ok((await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth)) <= 1400, "no horizontal overflow at 1400 px");

    // Nothing focused: Home and End scroll the page and step no trace.
    const first = page.locator("#trace-1");
    await page.keyboard.press("End");
    // At the bottom, not merely moving: a Home pressed while End's smooth scroll still runs
    // could be overtaken by it on a loaded machine (seen once: scrollY never came back to 0).
    await page.waitForFunction(() => {
      const g = globalThis as any;
      return g.scrollY > 0 && g.scrollY + g.innerHeight >= g.document.documentElement.scrollHeight - 1;
    });
    assert.equal(await first.locator(".pos").innerText(), "step 0 of 3");
    await page.keyboard.press("Home");
    await page.waitForFunction(() => (globalThis as any).scrollY === 0);

    const t = page.locator("section.trace:not(.copy)", { hasText: "borrowed: noFault violated" });
    const h3 = await t.locator("h3").innerText();
    assert.match(h3, /noFault: no kernel fault/, "the heading carries the property's doc");
    // Lanes: the threads the actions declare, then the objects.
    const lanes = await t.locator(".seq .participant").evaluateAll((gs) => gs.map((g) => `${g.classList.contains("thread") ? "T" : "O"}:${g.getAttribute("data-lane")}`));
    assert.deepEqual(lanes.filter((l) => l.startsWith("T:")), ["T:ioctl", "T:close", "T:worker"]);
    assert.ok(lanes.includes("O:file"));
    const graph = t.locator('svg[aria-label="ownership graph"]');
    const fileNode = graph.locator(".node.object");
    const fdEdge = graph.locator('.edge.counted[data-e="0"]');
    const weak = graph.locator(".edge.weak");
    assert.match((await fileNode.getAttribute("class"))!, /\blive\b/);
    assert.equal(await fileNode.locator(".line").first().textContent(), "count 1 · live");
    assert.doesNotMatch((await fdEdge.getAttribute("class"))!, /\boff\b/);
    assert.match((await weak.getAttribute("class"))!, /\boff\b/);

    await t.locator(".next").click();
    assert.doesNotMatch((await weak.getAttribute("class"))!, /\boff\b/, "SetFile stores a borrowed pointer: a dashed edge");
    assert.equal(await t.locator(".onthread").innerText(), "on ioctl");
    await page.keyboard.press("ArrowRight"); // focus is in the trace: the keys step it
    assert.equal(await t.locator(".pos").innerText(), "step 2 of 3");
    assert.match((await fileNode.getAttribute("class"))!, /\bdying\b.*\bchanged\b/);
    assert.equal(await fileNode.locator(".line").first().textContent(), "count 0 · dying");
    assert.match((await fdEdge.getAttribute("class"))!, /\boff\b/, "close drops the fd's reference");
    assert.equal(await t.locator('.seq .msg.current[data-step="2"]').count(), 2);
    await page.keyboard.press("End");
    assert.equal(await t.locator(".pos").innerText(), "step 3 of 3");
    const fault = t.locator('.seq .fault[data-step="3"]');
    assert.match(await fault.textContent() ?? "", /^FAULT in worker on file:/);
    // The diagram's box scrolled to the current step, and the page still fits.
    const seen = await t.evaluate((root) => {
      const box = root.querySelector(".svgwrap")!.getBoundingClientRect();
      const cur = root.querySelector(".seq .msg.current")!.getBoundingClientRect();
      return cur.top >= box.top - 1 && cur.bottom <= box.bottom + 1;
    });
    assert.ok(seen, "the current step is in view in the diagram's box");
    assert.ok((await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth)) <= 1400);

    // Failures only: witnesses and passing rows are hidden.
    const witness = page.locator("section.trace", { hasText: "pinned: workAfterClose witness reached" });
    assert.equal(await witness.isVisible(), true);
    await page.locator("#failures-only").check();
    assert.equal(await witness.isVisible(), false);
    assert.equal(await t.isVisible(), true);
    await page.locator("#failures-only").uncheck();

    // Side by side: the buggy design's trace beside the fixed design's, each with its own stepper.
    const sbs = page.locator("details.sbs").first();
    await sbs.locator("summary").click();
    const cols = sbs.locator(".col");
    await cols.nth(1).locator("section.trace").waitFor();
    assert.match(await cols.nth(0).innerText(), /^borrowed: expected/);
    assert.match(await cols.nth(1).innerText(), /^pinned: pass/);
    const left = cols.nth(0).locator("section.trace");
    await left.locator(".next").click();
    assert.equal(await left.locator(".pos").innerText(), "step 1 of 3");
    assert.equal(await t.locator(".pos").innerText(), "step 3 of 3");
    assert.ok((await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth)) <= 1400);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

/** The browser bundle of mermaid (a devDependency), or undefined. */
function mermaidBundle(): string | undefined {
  try {
    return createRequire(import.meta.url).resolve("mermaid/dist/mermaid.min.js");
  } catch {
    return undefined;
  }
}

test(
  "Markdown: every Mermaid block of the shipped report renders under 880 px wide (a GitHub Markdown column)",
  { skip: noChromium || (mermaidBundle() ? false : "mermaid is not installed (a devDependency: npm ci installs it)") },
  async () => {
    const md = join(mkdirTmp(), "shipped.md");
    const run = spawnSync(process.execPath, [join(here, "..", "bin", "refcheck.mjs"), "compare", "specs", "--markdown", md, "--quiet"], { cwd: join(here, ".."), encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    const blocks = [...readFileSync(md, "utf8").matchAll(/```mermaid\n([\s\S]*?)```/g)].map((m) => m[1]!);
    assert.ok(blocks.length > 100);
    const browser = await launch();
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      await page.setContent("<!DOCTYPE html><html><body><div id=c></div></body></html>");
      await page.addScriptTag({ path: mermaidBundle()! });
      const widths = await page.evaluate(async (blocks: string[]) => {
        const m = (globalThis as any).mermaid;
        m.initialize({ startOnLoad: false, securityLevel: "strict" });
        const out: (number | string)[] = [];
        for (let i = 0; i < blocks.length; i++) {
          try {
            const { svg } = await m.render(`d${i}`, blocks[i]);
            const c = (globalThis as any).document.getElementById("c")!;
            c.innerHTML = svg;
            out.push(c.querySelector("svg")!.viewBox.baseVal.width);
          } catch (e) {
            out.push(String(e));
          }
        }
        return out;
      }, blocks);
      widths.forEach((w, i) => {
        assert.equal(typeof w, "number", `block ${i} does not render: ${w}\n${blocks[i]}`);
        assert.ok((w as number) < 880, `block ${i} is ${w} px wide:\n${blocks[i]}`);
      });
    } finally {
      await browser.close();
    }
  },
);

function mkdirTmp(): string {
  const d = join(tmpdir(), `refcheck-html-${process.pid}`);
  mkdirSync(d, { recursive: true });
  return d;
}

test("compare: a table wider than the terminal is printed with properties as rows", () => {
  const wide = renderComparison(both, { color: false });
  assert.match(wide, /design +noFault +assocPinsLiveVmFile/);
  const narrow = renderComparison(both, { color: false, width: 60 });
  assert.match(narrow, /property +get_file_active +get_file/);
  assert.match(narrow, /noFault +holds +VIOLATED \(2 steps\)/);
  assert.match(narrow, /result +pass +FAIL/);
});
