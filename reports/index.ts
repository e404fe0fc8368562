// The report renderers the command line offers, one entry each: bin/outputs.ts builds its
// flags, its output plan and its writes from this list, so a new format is a file in
// reports/ and a line here.
import type { PropertyResult, Verdict } from "../checker/verdict.ts";
import { renderHtml } from "./html.ts";
import { itfFileName, toItf } from "./itf.ts";
import { renderJunit } from "./junit.ts";
import { renderMarkdown } from "./markdown.ts";
import { renderSarif } from "./sarif.ts";

export interface RenderContext {
  /** refcheck's version, for tools that record it. */
  version?: string;
  /** The folder spec paths (Verdict.file) are relative to. */
  cwd: string;
  /** The repository root (or --sarif-root): SARIF and JUnit paths are made relative to it. */
  root?: string;
}

/** One file of a folder output: a name inside the folder, and who it belongs to (for clash messages). */
export interface DirEntry {
  name: string;
  text: string;
  who: string;
}

interface Base {
  /** The command-line flag without dashes ("junit"). */
  flag: string;
  describe: string;
}

export interface FileRenderer extends Base {
  kind: "file";
  render(verdicts: Verdict[], ctx: RenderContext): string;
}

export interface DirRenderer extends Base {
  kind: "dir";
  /** The files to write into the folder; names must be unique (the caller checks). */
  render(verdicts: Verdict[], ctx: RenderContext): DirEntry[];
  /** Files in the folder that a previous run wrote and this one replaces. */
  owns(name: string): boolean;
}

export type Renderer = FileRenderer | DirRenderer;

function who(v: Verdict, p: PropertyResult): string {
  const run = v.design !== undefined ? ` (${v.design}${v.configuration ? `, ${v.configuration}` : ""})` : v.configuration ? ` (${v.configuration})` : "";
  return `${v.spec}${run}: ${p.name}`;
}

export const renderers: readonly Renderer[] = [
  {
    flag: "itf",
    kind: "dir",
    describe: "write every counterexample and witness as an ITF trace file into DIR",
    owns: (name) => name.endsWith(".itf.json"),
    render: (verdicts) => verdicts.flatMap((v) => v.properties.filter((p) => p.trace).map((p) => ({ name: itfFileName(v, p), text: toItf(v, p), who: who(v, p) }))),
  },
  { flag: "junit", kind: "file", describe: "write JUnit XML to FILE", render: (verdicts, ctx) => renderJunit(verdicts, { root: ctx.root, cwd: ctx.cwd }) },
  {
    flag: "sarif",
    kind: "file",
    describe: "write SARIF 2.1.0 to FILE (code scanning)",
    render: (verdicts, ctx) => renderSarif(verdicts, { version: ctx.version, cwd: ctx.cwd, root: ctx.root }),
  },
  { flag: "markdown", kind: "file", describe: "write the Markdown report (tables, traces, Mermaid) to FILE", render: (verdicts) => renderMarkdown(verdicts) },
  { flag: "html", kind: "file", describe: "write the self-contained HTML report to FILE", render: (verdicts) => renderHtml(verdicts) },
];
