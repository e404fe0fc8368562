// Run by test/codec.test.ts under --trace-deopt: makes the codec's accessors hot on packed
// words below 2^31, then on words with the top bit set (and a read mask with it set).
import { z } from "zod";
import { compileCodec } from "../../checker/codec.ts";

// 16 two-bit fields fill one word: f15 sits in bits 30 and 31.
const shape: Record<string, z.ZodTypeAny> = {};
for (let i = 0; i < 16; i++) shape[`f${i}`] = z.number().int().min(0).max(3);
const codec = compileCodec(z.object(shape));
const buf = new Uint32Array(codec.words);
const plain = codec.view(buf, { ro: false });
const masked = codec.view(buf, { ro: true, readMask: new Uint32Array(codec.words) });
let sum = 0;
const low = (v: any) => {
  for (let k = 0; k < 200_000; k++) {
    sum += v.f0 + v.f1;
    plain.f1 = k & 3;
  }
};
const high = (v: any) => {
  for (let k = 0; k < 200_000; k++) {
    sum += v.f0 + v.f1 + v.f15;
    plain.f15 = k & 3;
  }
};
for (let r = 0; r < 5; r++) {
  low(plain);
  low(masked);
}
for (let r = 0; r < 5; r++) {
  high(plain);
  high(masked);
  low(plain);
  low(masked);
}
console.log(`sum ${sum}`);
