// SARIF 2.1.0 for code scanning: one result per failed property, located at the
// property's line of the spec file, its trace as a codeFlow whose steps point at
// each action's line.
import type { PropertyResult, Step, Verdict } from "../checker/verdict.ts";
import { actionLine, allWarnings, designName, fmtChange, fmtValue, headline, propertyLine, stepLabel, steps } from "./util.ts";

const SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json";

export interface SarifOptions {
  /** refcheck's version for tool.driver.version. */
  version?: string;
}

/** A relative path as a URI reference (segments percent-encoded, "/" separators). */
export function fileUri(file: string): string {
  return file.split(/[\\/]/).map(encodeURIComponent).join("/");
}

function ruleId(v: Verdict, p: PropertyResult): string {
  return `${v.spec}/${p.name}`;
}

function physical(uri: string, line: number) {
  return { physicalLocation: { artifactLocation: { uri }, region: { startLine: line } } };
}

function stepMessage(s: Step): string {
  if (s.action === null) return "0. initial state";
  const parts = [`${s.index}. ${stepLabel(s)}${s.kernel ? ` [${s.kernel}]` : ""}`];
  if (s.changes.length) parts.push(s.changes.map(fmtChange).join(", "));
  if (s.fault) parts.push(`FAULT: ${s.fault}`);
  return parts.join(": ");
}

function result(v: Verdict, p: PropertyResult, ruleIndex: number) {
  const uri = fileUri(v.file ?? `${v.spec}.ts`);
  const line = propertyLine(v, p) ?? 1;
  const n = p.trace ? ` (${steps(p.trace.length)})` : "";
  const text = `${v.spec} with ${designName(v)}: ${p.status === "unreachable" ? `${p.name} witness unreachable, expected reachable` : headline(p)}${n}`;
  return {
    ruleId: ruleId(v, p),
    ruleIndex,
    level: "error" as const,
    kind: "fail" as const,
    message: { text },
    locations: [physical(uri, line)],
    ...(p.trace
      ? {
          codeFlows: [
            {
              message: { text: headline(p) },
              threadFlows: [
                {
                  locations: p.trace.steps.map((s, k) => ({
                    location: { ...physical(uri, actionLine(v, s.action) ?? line), message: { text: stepMessage(s) } },
                    // Changed fields only: the state a reviewer needs at this step.
                    state: Object.fromEntries(
                      (s.action === null ? Object.entries(s.state).map(([f, x]) => [f, x] as const) : s.changes.map((c) => [c.path, c.after] as const)).map(
                        ([f, x]) => [f, { text: fmtValue(x) }],
                      ),
                    ),
                    nestingLevel: 0,
                    executionOrder: k + 1,
                    importance: s.fault !== undefined || k === p.trace!.steps.length - 1 ? ("essential" as const) : ("important" as const),
                  })),
                },
              ],
            },
          ],
        }
      : {}),
    properties: { spec: v.spec, ...(v.design !== undefined ? { design: v.design } : {}), params: v.params, kind: p.kind, status: p.status },
    // Declared in the spec: code scanning keeps it, suppressed, instead of raising an alert.
    ...(p.expected === true ? { suppressions: [{ kind: "inSource" as const, justification: "expected violation declared in the spec" }] } : {}),
  };
}

export function renderSarif(verdicts: Verdict[], opts: SarifOptions = {}): string {
  const rules: { id: string; name: string; shortDescription: { text: string }; fullDescription: { text: string }; defaultConfiguration: { level: "error" }; properties: { kind: string } }[] = [];
  const results = [];
  for (const v of verdicts) {
    for (const p of v.properties) {
      const id = ruleId(v, p);
      let idx = rules.findIndex((r) => r.id === id);
      if (idx < 0) {
        idx = rules.length;
        rules.push({
          id,
          name: p.name,
          shortDescription: { text: p.doc ?? `${p.kind} ${p.name}` },
          fullDescription: { text: `${p.kind} property ${p.name} of ${v.spec}${p.doc ? `: ${p.doc}` : ""}` },
          defaultConfiguration: { level: "error" },
          properties: { kind: p.kind },
        });
      }
      if (p.failed) results.push(result(v, p, idx));
    }
  }
  const notes = verdicts.flatMap((v) => [
    ...allWarnings(v).map((w) => `${v.spec} (${designName(v)}): ${w}`),
    ...(v.complete ? [] : [`${v.spec} (${designName(v)}): INCOMPLETE: stopped by ${v.stoppedBy ?? "a bound"}`]),
  ]);
  const log = {
    $schema: SCHEMA,
    version: "2.1.0",
    runs: [
      {
        tool: { driver: { name: "refcheck", ...(opts.version ? { version: opts.version } : {}), rules } },
        invocations: [
          {
            executionSuccessful: true,
            toolExecutionNotifications: notes.map((text) => ({ level: "warning" as const, message: { text } })),
          },
        ],
        results,
      },
    ],
  };
  return JSON.stringify(log, null, 2) + "\n";
}
