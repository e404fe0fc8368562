// Lock-order tracking as lockdep does it: dependencies gathered over every reachable
// transition, a cycle reported even on a model that never deadlocks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { check, checkAsync, defineSpec, SpecError } from "../checker/index.ts";
import { LockOrder } from "../checker/lockdep.ts";
import { acquire, isFree, lockSchema, release } from "../specs/kernel/lock.ts";
import lockOrderSpec from "../specs/guest-memfd/lock-order.ts";

const here = path.dirname(fileURLToPath(import.meta.url));

test("LockOrder: records each dependency once, finds 2- and 3-cycles, none in a chain", () => {
  const order = new LockOrder((s) => s);
  const L = (a: number, b: number, c: number) => ({ A: { holder: a }, B: { holder: b }, C: { holder: c } });
  order.observe(L(1, 0, 0), L(1, 1, 0), 0, 0); // A -> B
  order.observe(L(1, 0, 0), L(1, 1, 0), 5, 1); // the same dependency later: first kept
  order.observe(L(0, 2, 0), L(0, 2, 2), 1, 2); // B -> C
  assert.equal(order.edges.size, 2);
  assert.equal(order.edges.get("A\0B")!.state, 0);
  assert.equal(order.cycle(), null, "A -> B -> C is an order, not a cycle");
  order.observe(L(0, 0, 3), L(3, 0, 3), 2, 3); // C -> A
  const c = order.cycle()!;
  assert.deepEqual(c.map((e) => `${e.from}>${e.to}`).sort(), ["A>B", "B>C", "C>A"]);
  order.observe(L(0, 1, 0), L(1, 1, 0), 3, 4); // B -> A: a shorter cycle with A -> B
  assert.deepEqual(order.cycle()!.map((e) => `${e.from}>${e.to}`).sort(), ["A>B", "B>A"]);
});

test("LockOrder: taking a lock with nothing held, or another thread's hold, is no dependency", () => {
  const order = new LockOrder((s) => s);
  order.observe({ A: { holder: 0 }, B: { holder: 2 } }, { A: { holder: 1 }, B: { holder: 2 } }, 0, 0);
  assert.equal(order.edges.size, 0);
});

/** Two threads, each takes both locks in its own order and releases them; `order` "ab" or "ba" for thread 2. */
function abba(order: "ab" | "ba") {
  const steps = ["first", "second", "unlock"] as const;
  return defineSpec({
    name: `tmp/abba-${order}`,
    params: z.object({}),
    state: () =>
      z.object({
        a: lockSchema(2),
        b: lockSchema(2),
        pc: z.array(z.enum(["idle", ...steps, "done"])).length(2),
      }),
    init: () => ({ a: { holder: 0 }, b: { holder: 0 }, pc: ["idle", "idle"] as ("idle" | "done")[] }),
    actions: () => ({
      Step: {
        each: { t: [0, 1] },
        when: (s, { t }) => {
          const [x, y] = t === 1 && order === "ba" ? [s.b, s.a] : [s.a, s.b];
          const pc = s.pc[t];
          return pc === "idle" ? isFree(x) : pc === "first" ? isFree(y) : pc === "second";
        },
        then: (s, { t }) => {
          const [x, y, nx, ny] = t === 1 && order === "ba" ? [s.b, s.a, "b", "a"] : [s.a, s.b, "a", "b"];
          const pc = s.pc[t];
          if (pc === "idle") {
            acquire(x, t + 1, nx);
            s.pc[t] = "first";
          } else if (pc === "first") {
            acquire(y, t + 1, ny);
            s.pc[t] = "second";
          } else {
            release(y, t + 1, ny);
            release(x, t + 1, nx);
            s.pc[t] = "done";
          }
        },
      },
    }),
    locks: (s) => ({ a: s.a, b: s.b }),
    busy: (s) => (s.pc.some((p) => p === "first" || p === "second") ? "a thread" : undefined),
  });
}

test("a consistent order holds; an ABBA order is a possible circular dependency", () => {
  const ok = check(abba("ab"));
  assert.equal(ok.properties.find((p) => p.name === "lockOrder")!.status, "holds");
  const bad = check(abba("ba"));
  const p = bad.properties.find((x) => x.name === "lockOrder")!;
  assert.equal(p.status, "violated");
  assert.match(p.message!, /^possible circular locking dependency detected: /);
  assert.match(p.message!, /b taken while holding a \(thread 1/);
  assert.match(p.message!, /a taken while holding b \(thread 2/);
  assert.equal(p.trace!.length, 2, "the shortest path to the step that closes the cycle");
  // This model can deadlock too; lockdep says so without needing the deadlock.
  assert.equal(bad.properties.find((x) => x.name === "noDeadlock")!.status, "violated");
});

test("lockdep reports the seed-003 order on a model that never deadlocks", () => {
  const v = check(lockOrderSpec, { design: "invalidate-lock-first-current-unbind" });
  assert.equal(v.properties.find((x) => x.name === "noDeadlock")!.status, "holds");
  assert.equal(v.properties.find((x) => x.name === "lockOrder")!.status, "violated");
  assert.equal(check(lockOrderSpec, { design: "slots-lock-first" }).properties.find((x) => x.name === "lockOrder")!.status, "holds");
});

test("lock dependencies found by workers give the same verdict", async () => {
  const specUrl = pathToFileURL(path.join(here, "..", "specs", "guest-memfd", "lock-order.ts")).href;
  for (const design of ["slots-lock-first", "invalidate-lock-first-current-unbind"]) {
    const one = check(lockOrderSpec, { design });
    const two = await checkAsync(lockOrderSpec, { design }, { workers: 2, specUrl, parallelLevel: 1 });
    const p1 = one.properties.find((x) => x.name === "lockOrder")!, p2 = two.properties.find((x) => x.name === "lockOrder")!;
    assert.equal(p2.status, p1.status, design);
    assert.equal(p2.message, p1.message, design);
  }
});

test("locks that are not locks are a spec error", () => {
  const spec = abba("ab");
  // One class is enough (a thread's steps may take just one); none is a slip.
  assert.throws(() => check({ ...spec, locks: () => ({}) } as any), (e: unknown) => e instanceof SpecError && /one or more lock classes/.test(e.message));
  assert.throws(() => check({ ...spec, locks: (s: any) => ({ a: s.a, pc: s.pc }) } as any), (e: unknown) => e instanceof SpecError && /not a lock: pc/.test(e.message));
});
