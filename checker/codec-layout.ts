// The codec's layout: where each leaf of the state sits in the packed words. Leaves are
// placed in field order, each in one word (a bit field never straddles two), and every
// record and array in the state gets a plan: its path, its leaves' slots and its children.
import { leafBits, type Node } from "./codec-schema.ts";

/** A leaf's place in the packed words: word, shift, and its bits as a mask (at shift 0). */
export interface LeafSlot {
  word: number;
  shift: number;
  mask: number;
}

/** Bit position of one leaf. */
interface Slot {
  word: number;
  shift: number;
}

class Allocator {
  words = 0;
  used = 32; // bits used in the current word; 32 forces a new word
  total = 0;
  place(bits: number): Slot {
    this.total += bits;
    if (bits === 0) return { word: 0, shift: 0 };
    if (this.used + bits > 32) {
      this.words++;
      this.used = 0;
    }
    const slot = { word: this.words - 1, shift: this.used };
    this.used += bits;
    return slot;
  }
}


/** One record or array of the state: where its own leaves sit, and its children's plans. */
export interface Plan {
  node: Node;
  path: string;
  slots: number[];
  /** Flatten-order index of each own leaf (what por.ts's paths are indexed by). */
  lis: number[];
  kids: Record<string, Plan> | Plan[];
}

/** The layout of a state: the root's plan, the words and bits taken, and the leaf count. */
export interface StateLayout {
  root: Plan;
  /** Words per packed state. */
  words: number;
  /** Bits actually used. */
  bits: number;
  /** Bits used in the last word. */
  lastWordBits: number;
  /** Leaves, numbered in flatten order. */
  leaves: number;
}

export function planLayout(node: Node): StateLayout {
  const alloc = new Allocator();
  let leafCount = 0;
  function plan(n: Node, path: string): Plan {
    if (n.kind === "object") {
      const slots: number[] = [];
      const lis: number[] = [];
      const kids: Record<string, Plan> = {};
      for (const [name, f] of n.fields) {
        if (f.kind === "object" || f.kind === "array") kids[name] = plan(f, `${path}.${name}`);
        else {
          const sl = alloc.place(leafBits(f));
          slots.push(sl.word, sl.shift);
          lis.push(leafCount++);
        }
      }
      return { node: n, path, slots, lis, kids };
    }
    if (n.kind === "array") {
      const el = n.element;
      if (el.kind === "object" || el.kind === "array") {
        return { node: n, path, slots: [], lis: [], kids: Array.from({ length: n.length }, (_, i) => plan(el, `${path}[${i}]`)) };
      }
      const slots: number[] = [];
      const lis: number[] = [];
      for (let i = 0; i < n.length; i++) {
        const sl = alloc.place(leafBits(el));
        slots.push(sl.word, sl.shift);
        lis.push(leafCount++);
      }
      return { node: n, path, slots, lis, kids: [] };
    }
    throw new Error("plan of a leaf");
  }
  const root = plan(node, "");
  return { root, words: Math.max(1, alloc.words), bits: alloc.total, lastWordBits: alloc.words === 0 ? 0 : alloc.used, leaves: leafCount };
}

/** The leaves of a plan's subtree, in layout order. */
export function leavesOf(p: Plan, out: LeafSlot[]): LeafSlot[] {
  const n = p.node;
  const leafNodes: Node[] =
    n.kind === "object"
      ? n.fields.map(([, f]) => f).filter((f) => f.kind !== "object" && f.kind !== "array")
      : n.kind === "array" && n.element.kind !== "object" && n.element.kind !== "array"
        ? Array.from({ length: n.length }, () => n.element)
        : [];
  leafNodes.forEach((f, j) => {
    const bits = leafBits(f);
    out.push({ word: p.slots[2 * j], shift: p.slots[2 * j + 1], mask: bits === 0 ? 0 : (2 ** bits - 1) >>> 0 });
  });
  const kids = Array.isArray(p.kids) ? p.kids : Object.values(p.kids);
  for (const k of kids) leavesOf(k, out);
  return out;
}
