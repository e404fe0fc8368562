// `refcheck trace` on the traces Quint and Apalache write (hand-written fixtures under
// test/fixtures/itf/, ADR-015), and what refcheck writes for typed ITF readers (itf-rs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { printTrace } from "../bin/outputs.ts";
import { parseItf, toItf } from "../reports/itf.ts";
import { ItfSet, ItfTuple, ItfVariant } from "../reports/values.ts";
import { getFileVerdict } from "./fixtures/verdicts.ts";

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "itf");
const fixture = (n: string) => path.join(dir, n);
function traceText(file: string): string {
  let s = "";
  printTrace(file, { write: (x) => (s += x) });
  return s;
}

test("ITF (Quint): integers beyond 2^53 are exact, empty collections and payload-less variants shown", () => {
  const out = traceText(fixture("bigint-set-variant.itf.json"));
  const lines = out.split("\n");
  assert.ok(lines.includes("       supply: 1180591620717411303424"), out); // 2^70
  assert.ok(out.includes("-> 57896044618658097711785492504343953926634992332820282019728792003956564819967"), "2^255-1 printed exactly");
  assert.ok(lines.includes("       holders: Set()"), "an empty set is shown");
  assert.ok(lines.includes("       owed: {}"), "an empty map is shown");
  assert.ok(lines.includes("       log: []"), "an empty list is shown");
  assert.ok(lines.includes("       pending: None"), "a payload-less variant is its tag");
  assert.ok(lines.includes("       extra: Some(Set())"), "an empty set as a payload is kept");
  assert.ok(lines.includes("       last: (0, init)"), "a tuple prints as a tuple");
  assert.ok(lines.includes("       owed: {} -> {(alice, 1): 5}"), "a tuple map key prints as a value, not JSON");
  assert.ok(lines.includes("       pending: None -> Some(3)"));
});

test("ITF (Quint): sets diff as sets, not by position", () => {
  const { trace } = parseItf(readFileSync(fixture("bigint-set-variant.itf.json"), "utf8"), "t.itf.json");
  // Step 2 lists the same holders in another order: no change.
  assert.deepEqual(trace.steps[2]!.changes.map((c) => c.path), ["pending", "last[0]", "last[1]", "log"]);
  const h = trace.steps[3]!.changes.find((c) => c.path === "holders")!;
  assert.ok(h.before instanceof ItfSet && h.after instanceof ItfSet);
  assert.deepEqual((h.after as ItfSet).items, ["bob", "carol"]);
  assert.equal(trace.steps[0]!.state.supply, 2n ** 70n);
  assert.deepEqual(trace.steps[0]!.state.extra, new ItfVariant("Some", new ItfSet([])));
  assert.deepEqual(trace.steps[0]!.state.last, new ItfTuple([0, "init"]));
});

test("ITF (Quint): the head line shows Quint's status; a lasso marks where its cycle starts", () => {
  assert.match(traceText(fixture("bigint-set-variant.itf.json")).split("\n")[0]!, /^token\.qnt: .*\[counterexample, status violation\] \(3 steps\)$/);
  const out = traceText(fixture("lasso.itf.json")).split("\n");
  assert.equal(out[0], "ping.qnt: A sample run that repeats for ever [sample trace, status ok] [params N=2] (3 steps; lasso: after step 3 the trace returns to state 1)");
  const mark = out.findIndex((l) => l.includes("-- loop: the trace returns to this state after step 3 --"));
  assert.ok(mark > 0 && /^ {2}1 {2}step$/.test(out[mark + 1]!), out.join("\n"));
  // Parameters are constants: kept out of the states.
  const doc = parseItf(readFileSync(fixture("lasso.itf.json"), "utf8"), "lasso.itf.json");
  assert.deepEqual(doc.params, { N: 2 });
  assert.equal(doc.loop, 1);
  assert.deepEqual(Object.keys(doc.trace.steps[3]!.state), ["turn", "count"]);
});

test("ITF: a pick name with two shapes is split per action, and reads back", () => {
  const v = structuredClone(getFileVerdict);
  const p = v.properties.find((x) => x.trace && x.trace.steps.length >= 3)!;
  const steps = p.trace!.steps;
  steps[1]!.params = { i: "zero" };
  steps[2]!.params = { i: 0 };
  const doc = JSON.parse(toItf(v, p));
  const picks = doc.states.map((s: Record<string, unknown>) => s["mbt::nondetPicks"]);
  const keys = picks.map((x: object) => Object.keys(x).sort().join());
  assert.equal(new Set(keys).size, 1, "every state has the same pick names");
  assert.deepEqual(Object.keys(picks[0]).sort(), [`${steps[1]!.action}.i`, `${steps[2]!.action}.i`].sort());
  const back = parseItf(JSON.stringify(doc), "t.itf.json").trace;
  assert.deepEqual(back.steps[1]!.params, { i: "zero" });
  assert.deepEqual(back.steps[2]!.params, { i: 0 });
});

test("ITF: refcheck's meta is a JSON string now, and older files with an object still print their head", () => {
  const p = getFileVerdict.properties.find((x) => x.trace)!;
  const doc = JSON.parse(toItf(getFileVerdict, p));
  assert.equal(typeof doc["#meta"].refcheck, "string");
  const tmp = mkdtempSync(path.join(tmpdir(), "refcheck-itf-"));
  process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
  let n = 0;
  const head = (d: unknown) => {
    const f = path.join(tmp, `${n++}.itf.json`);
    writeFileSync(f, JSON.stringify(d));
    return traceText(f).split("\n")[0]!;
  };
  const now = head(doc);
  doc["#meta"].refcheck = JSON.parse(doc["#meta"].refcheck);
  assert.equal(head(doc), now);
  assert.match(now, /^kvm-vfio\/file-pinning \(get_file\): noFault violated: /);
});
