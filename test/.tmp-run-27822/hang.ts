
import { z } from "zod";
import { defineSpec } from "../../checker/spec.ts";
export default defineSpec({
  name: "tmp/hang",
  params: z.object({}),
  state: () => z.object({ x: z.number().int().min(0).max(3) }),
  init: () => ({ x: 0 }),
  actions: () => ({ Inc: { when: (s) => { if (s.x === 2) for (;;) {} return s.x < 3; }, then: (s) => { s.x += 1; } } }),
  
});
