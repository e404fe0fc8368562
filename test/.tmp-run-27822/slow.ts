
import { z } from "zod";
import { defineSpec } from "../../checker/spec.ts";
export default defineSpec({
  name: "tmp/slow",
  params: z.object({}),
  state: () => z.object({ x: z.number().int().min(0).max(1000) }),
  init: () => ({ x: 0 }),
  actions: () => ({ Inc: { when: (s) => { const t = Date.now() + 15; while (Date.now() < t); return true; }, then: (s) => { s.x = (s.x + 1) % 1001; } } }),
  
});
