// SARIF 2.1.0 for code scanning: one result per failed property, located at the
// property's line of the spec file, its trace as a codeFlow whose steps point at
// each action's line. Paths are relative to the repository root (%SRCROOT%), which
// is what GitHub resolves them against; each result has its own fingerprint, since
// GitHub merges results with the same rule and primaryLocationLineHash.
import { createHash } from "node:crypto";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { PropertyResult, Step, Verdict } from "../checker/verdict.ts";
import { actionLine, allWarnings, designName, incompleteText, loopNote, fmtChange, fmtValue, headline, propertyLine, stepLabel, steps } from "./util.ts";

const SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json";

export interface SarifOptions {
  /** refcheck's version for tool.driver.version. */
  version?: string;
  /** The folder Verdict.file is relative to (default: the working directory). */
  cwd?: string;
  /**
   * The repository root: URIs are made relative to it and it is recorded as %SRCROOT%.
   * Unset: Verdict.file is used as it is and %SRCROOT% has no recorded location.
   */
  root?: string;
}

export const SRCROOT = "%SRCROOT%";
/** GitHub's code-scanning category (a trailing "/" leaves the run id to the uploader). */
export const AUTOMATION_ID = "refcheck/";

/** A spec file's URI relative to the root, or an absolute file URI when it lies outside. */
function artifactUri(v: Verdict, opts: SarifOptions): { uri: string; uriBaseId?: string } {
  const file = v.file ?? `${v.spec}.ts`;
  if (opts.root === undefined) return { uri: fileUri(file), uriBaseId: SRCROOT };
  const abs = path.resolve(opts.cwd ?? process.cwd(), file);
  const rel = path.relative(path.resolve(opts.root), abs);
  if (rel === "" || rel.startsWith("..") || path.isAbsolute(rel)) return { uri: pathToFileURL(abs).href };
  return { uri: fileUri(rel), uriBaseId: SRCROOT };
}

/** What tells one result from every other: spec, configuration, design and property. */
export function resultKey(v: Verdict, p: PropertyResult): string {
  return [v.spec, v.configuration ?? "", v.designParam ?? "", v.design ?? "", p.name].join("\u0000");
}

function fingerprints(v: Verdict, p: PropertyResult, uri: string): Record<string, string> {
  const h = (s: string) => createHash("sha256").update(s).digest("hex");
  // Not the source line's hash: alerts of different designs at one line stay apart, and
  // an alert survives edits that move its line.
  return { primaryLocationLineHash: `${h(`${uri}\u0000${resultKey(v, p)}`).slice(0, 16)}:1`, "refcheck/v1": h(resultKey(v, p)) };
}

const KIND_HELP: Record<string, string> = {
  fault: "No kernel operation faults (refcount_t misuse, use-after-free, a call into an unloaded module) on any reachable path.",
  invariant: "Holds in every reachable state.",
  action: "Holds across every step (a relation between the state before and after).",
  quiescent: "Holds in every reachable state where no action is enabled (nothing left over at rest).",
  deadlock: "No reachable state where threads wait on each other for ever.",
  reachable: "A witness: a state that should (or should not) be reachable.",
};

/** A relative path as a URI reference (segments percent-encoded, "/" separators). */
export function fileUri(file: string): string {
  return file.split(/[\\/]/).map(encodeURIComponent).join("/");
}

function ruleId(v: Verdict, p: PropertyResult): string {
  return `${v.spec}/${p.name}`;
}

function physical(loc: { uri: string; uriBaseId?: string }, line: number) {
  return { physicalLocation: { artifactLocation: { ...loc }, region: { startLine: line } } };
}

function stepMessage(s: Step): string {
  if (s.action === null) return "0. initial state";
  const parts = [`${s.index}. ${stepLabel(s)}${s.kernel ? ` [${s.kernel}]` : ""}`];
  if (s.changes.length) parts.push(s.changes.map(fmtChange).join(", "));
  if (s.fault) parts.push(`FAULT: ${s.fault}`);
  return parts.join(": ");
}

function result(v: Verdict, p: PropertyResult, ruleIndex: number, opts: SarifOptions) {
  const uri = artifactUri(v, opts);
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
    partialFingerprints: fingerprints(v, p, uri.uri),
    ...(p.trace
      ? {
          codeFlows: [
            {
              message: { text: headline(p) },
              threadFlows: [
                {
                  locations: p.trace.steps.map((s, k) => ({
                    location: { ...physical(uri, actionLine(v, s.action) ?? line), message: { text: stepMessage(s) + (loopNote(p.trace!, k) ? ` (${loopNote(p.trace!, k)})` : "") } },
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
    properties: {
      spec: v.spec,
      ...(v.design !== undefined ? { design: v.design } : {}),
      ...(v.configuration !== undefined ? { configuration: v.configuration } : {}),
      params: v.params,
      kind: p.kind,
      status: p.status,
    },
    // Declared in the spec: code scanning keeps it, suppressed, instead of raising an alert.
    ...(p.expected === true ? { suppressions: [{ kind: "inSource" as const, justification: "expected violation declared in the spec" }] } : {}),
  };
}

function md(s: string): string {
  return s.replace(/[\\`*_[\]<>|#]/g, (c) => `\\${c}`);
}

/** A rule's help: what the property says, its spec, and the spec's summary (per design when they differ). */
function help(v: Verdict, p: PropertyResult, summaries: Map<string, string>): { text: string; markdown: string } {
  const what = p.doc ?? KIND_HELP[p.kind] ?? `${p.kind} property`;
  const kind = `${p.kind} property ${p.name} of the refcheck spec ${v.spec}`;
  const distinct = new Set(summaries.values());
  const how = "A result carries the shortest trace that breaks it as a code flow; refcheck check on the spec file prints the same trace.";
  const text = [what, `${kind}.`];
  const markdown = [`**${md(p.name)}**: ${md(what)}`, `${md(kind[0]!.toUpperCase() + kind.slice(1))}.`];
  if (distinct.size === 1) {
    text.push(`The spec: ${[...distinct][0]}.`);
    markdown.push(`The spec: ${md([...distinct][0]!)}.`);
  } else if (distinct.size > 1) {
    text.push(`The spec, by design:\n${[...summaries].map(([d, x]) => `- ${d}: ${x}`).join("\n")}`);
    markdown.push(`The spec, by design:\n\n${[...summaries].map(([d, x]) => `- ${md(d)}: ${md(x)}`).join("\n")}`);
  }
  text.push(how);
  markdown.push(how.replace("refcheck check", "`refcheck check`"));
  return { text: text.join("\n\n"), markdown: markdown.join("\n\n") };
}

export function renderSarif(verdicts: Verdict[], opts: SarifOptions = {}): string {
  type Rule = {
    id: string;
    name: string;
    shortDescription: { text: string };
    fullDescription: { text: string };
    help: { text: string; markdown: string };
    defaultConfiguration: { level: "error" };
    properties: { kind: string };
  };
  const rules: Rule[] = [];
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
          help: { text: "", markdown: "" }, // filled in below, once every design's summary is known
          defaultConfiguration: { level: "error" },
          properties: { kind: p.kind },
        });
      }
      if (p.failed) results.push(result(v, p, idx, opts));
    }
  }
  for (const r of rules) {
    const summaries = new Map<string, string>();
    let first: [Verdict, PropertyResult] | undefined;
    for (const v of verdicts) {
      const p = v.properties.find((x) => ruleId(v, x) === r.id);
      if (!p) continue;
      first ??= [v, p];
      if (v.summary) summaries.set(designName(v), v.summary);
    }
    r.help = help(first![0], first![1], summaries);
  }
  const notes = verdicts.flatMap((v) => [
    ...allWarnings(v).map((w) => `${v.spec} (${designName(v)}): ${w}`),
    ...(v.complete ? [] : [`${v.spec} (${designName(v)}): ${incompleteText(v)}`]),
  ]);
  const log = {
    $schema: SCHEMA,
    version: "2.1.0",
    runs: [
      {
        tool: { driver: { name: "refcheck", ...(opts.version ? { version: opts.version } : {}), rules } },
        automationDetails: { id: AUTOMATION_ID },
        originalUriBaseIds: {
          [SRCROOT]:
            opts.root !== undefined
              ? { uri: pathToFileURL(path.resolve(opts.root)).href.replace(/\/?$/, "/"), description: { text: "The repository root." } }
              : { description: { text: "The repository root (spec paths are relative to it)." } },
        },
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
