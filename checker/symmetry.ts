// Symmetry reduction: the spec declares an array of interchangeable elements; every state
// is replaced by the representative of its orbit, the one whose elements are sorted by
// their packed value. Sorting gives one representative per orbit because elements are
// compared by their whole content.
import type { LeafSlot } from "./codec.ts";

export type Canonicalizer = (buf: Uint32Array) => void;

export function makeCanonicalizer(elements: LeafSlot[][]): Canonicalizer {
  const n = elements.length;
  const fields = elements[0]?.length ?? 0;
  const keys: number[][] = Array.from({ length: n }, () => new Array<number>(fields).fill(0));
  const order = Array.from({ length: n }, (_, i) => i);
  const compare = (a: number, b: number): number => {
    const ka = keys[a], kb = keys[b];
    for (let f = 0; f < fields; f++) if (ka[f] !== kb[f]) return ka[f] - kb[f];
    return 0;
  };
  return (buf) => {
    for (let e = 0; e < n; e++) {
      const slots = elements[e], k = keys[e];
      for (let f = 0; f < fields; f++) {
        const s = slots[f];
        k[f] = (buf[s.word] >>> s.shift) & s.mask;
      }
      order[e] = e;
    }
    // Insertion sort: arrays are small and often already sorted.
    let sorted = true;
    for (let i = 1; i < n; i++) {
      const x = order[i];
      let j = i - 1;
      while (j >= 0 && compare(order[j], x) > 0) {
        order[j + 1] = order[j];
        j--;
        sorted = false;
      }
      order[j + 1] = x;
    }
    if (sorted) return;
    for (let e = 0; e < n; e++) {
      const slots = elements[e], k = keys[order[e]];
      for (let f = 0; f < fields; f++) {
        const s = slots[f];
        const m = (s.mask << s.shift) >>> 0;
        buf[s.word] = (buf[s.word] & ~m) | ((k[f] << s.shift) & m);
      }
    }
  };
}
