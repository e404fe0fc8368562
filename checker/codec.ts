// The state codec, generated once per model from the zod schema.
//
// A state is packed into a few 32-bit words: every leaf (boolean, bounded integer, enum)
// gets a bit field that never straddles a word. Specs read and mutate states through
// *views*: generated classes (one per record type) whose getters and setters work
// directly on the packed words, so an effect never decodes, copies or re-encodes a state.
// Setters carry the TypeOK checks (range, type).
//
// Four parts: the schema read into nodes, with the errors views raise (codec-schema.ts),
// the layout of the leaves in words (codec-layout.ts), the generated view classes and the
// plain-object reads and writes (codec-views.ts), and this file, which puts them together.
import type { z } from "zod";
import { planLayout, type LeafSlot } from "./codec-layout.ts";
import { schemaToNode, type Node, type ViewContext } from "./codec-schema.ts";
import { Views } from "./codec-views.ts";
import { SpecError } from "./spec.ts";

export { badValue, didYouMean, leafBits, paramsTrap, READ_ONLY, readOnly, schemaToNode, type Node, type ViewContext } from "./codec-schema.ts";
export type { LeafSlot } from "./codec-layout.ts";

export interface Codec {
  node: Node;
  /** Words per packed state. */
  words: number;
  /** Bits actually used. */
  bits: number;
  /** A view tree over `buf` (which must have at least `words` entries). */
  view(buf: Uint32Array, ctx: ViewContext): any;
  /** Writes a plain object (already validated) into a view. */
  assign(view: any, value: unknown): void;
  /** Reads a view into a plain object. */
  read(view: any): Record<string, unknown>;
  /** Bits used in the last word (the rest are always zero). */
  lastWordBits: number;
  /** Number of leaves (the bit indexes of `ViewContext.track`, in `flatten` order). */
  leaves: number;
  /**
   * For an array view of this codec: each element's leaves (word, shift, mask), in field
   * order. Null when `target` is not an array view. Used by symmetry reduction.
   */
  elementLeaves(target: unknown): LeafSlot[][] | null;
}

export function compileCodec(schema: z.ZodType): Codec {
  const node = schemaToNode(schema);
  if (node.kind !== "object") throw new SpecError("state: the state schema must be a z.object(...)");
  const layout = planLayout(node);
  const views = new Views();
  return {
    node,
    words: layout.words,
    bits: layout.bits,
    view: (buf, ctx) => views.instantiate(layout.root, buf, ctx),
    assign: (view, value) => views.assignNode(view, value, node),
    read: (view) => views.readNode(view, node) as Record<string, unknown>,
    lastWordBits: layout.lastWordBits,
    leaves: layout.leaves,
    elementLeaves: (target) => views.elementLeaves(target),
  };
}

/** The state path of a view ("vmFile", "dev[1]"), or undefined for anything else. */
export function viewPath(v: unknown): string | undefined {
  const p = typeof v === "object" && v !== null ? (v as { $$p?: unknown }).$$p : undefined;
  return typeof p === "string" && p !== "" ? p : undefined;
}

/** Flattens a plain state into [path, leaf value] pairs, in field order. */
export function flatten(value: unknown, path = "", out: [string, unknown][] = []): [string, unknown][] {
  if (Array.isArray(value)) value.forEach((v, i) => flatten(v, `${path}[${i}]`, out));
  else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) flatten(v, path ? `${path}.${k}` : k, out);
  } else out.push([path, value]);
  return out;
}
