// Ownership declared once: the exact count, "no holder after free" and the leak check are
// derived from who holds the references, with no escape clause to get wrong.
import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { check, defineSpec, Fault, SpecError } from "../checker/index.ts";

const designs = ["kvm_get_kvm", "no-get", "leak"] as const;

/** A VM fd and two devices that pin kvm->users_count while bound (a miniature of vm-pinning). */
const spec = defineSpec({
  name: "tmp/ownership",
  params: z.object({ design: z.enum(designs).default("kvm_get_kvm") }),
  state: () =>
    z.object({
      vmFd: z.boolean(),
      users: z.number().int().min(0).max(3),
      freed: z.boolean(),
      dev: z.array(z.object({ pin: z.boolean(), once: z.boolean() })).length(2),
    }),
  init: () => ({ vmFd: true, users: 1, freed: false, dev: [{ pin: false, once: false }, { pin: false, once: false }] }),
  actions: (p) => {
    const put = (s: { users: number; freed: boolean }) => {
      if (s.users === 0) throw new Fault("refcount_t: underflow; use-after-free.");
      s.users -= 1;
      if (s.users === 0) s.freed = true;
    };
    return {
      CloseVm: { when: (s) => s.vmFd, then: (s) => { s.vmFd = false; put(s); } },
      Bind: {
        each: { i: [0, 1] },
        // Each device binds once: enough for every order, and the count stays bounded.
        when: (s, { i }) => s.vmFd && !s.dev[i].once,
        then: (s, { i }) => {
          if (p.design !== "no-get") s.users += 1;
          s.dev[i].pin = true;
          s.dev[i].once = true;
        },
      },
      Unbind: {
        each: { i: [0, 1] },
        when: (s, { i }) => s.dev[i].pin,
        then: (s, { i }) => {
          s.dev[i].pin = false;
          if (p.design !== "leak") put(s);
        },
      },
    };
  },
  // The habit the shipped specs used to teach: the escape clause covers the broken state.
  invariants: { handWrittenExact: (s) => s.freed || s.users === (s.vmFd ? 1 : 0) + s.dev.filter((d) => d.pin).length },
  ownership: {
    kvm: {
      count: (s) => s.users,
      live: (s) => !s.freed,
      holders: { vmFd: (s) => s.vmFd, devices: (s) => s.dev.filter((d) => d.pin).length },
      doc: "struct kvm",
    },
  },
});

const status = (v: ReturnType<typeof check>, name: string) => v.properties.find((p) => p.name === name)?.status;

test("ownership: the derived properties hold on a correct design", () => {
  const v = check(spec, { design: "kvm_get_kvm" });
  for (const p of ["kvmCountExact", "kvmNoHolderAfterFree", "kvmNoLeak", "handWrittenExact"]) assert.equal(status(v, p), "holds", p);
  assert.ok(v.properties.find((p) => p.name === "kvmCountExact")!.doc!.includes("vmFd + devices"));
});

test("ownership: a VM freed while a device still holds it is named as such; the escape clause accepts that state", () => {
  const v = check(spec, { design: "no-get" });
  assert.equal(status(v, "handWrittenExact"), "violated"); // the count is short while the VM lives
  assert.equal(status(v, "kvmNoHolderAfterFree"), "violated");
  const p = v.properties.find((x) => x.name === "kvmNoHolderAfterFree")!;
  assert.deepEqual(p.trace!.steps.slice(1).map((s) => s.action), ["Bind", "CloseVm"]);
  // With the count checked only while the VM lives, the freed-while-held state passes the hand-written invariant.
  const last = p.trace!.steps.at(-1)!.state as { freed: boolean; users: number; vmFd: boolean; dev: { pin: boolean }[] };
  assert.ok(last.freed && last.dev.some((d) => d.pin));
  const handWritten = spec.invariants as Record<string, (s: typeof last) => boolean>;
  assert.equal(handWritten.handWrittenExact(last), true, "the escape clause covers the freed-while-held state");
});

test("ownership: a reference never dropped breaks the count and leaks at quiescence", () => {
  const v = check(spec, { design: "leak" });
  assert.equal(status(v, "kvmCountExact"), "violated");
  assert.equal(status(v, "kvmNoLeak"), "violated");
});

test("ownership: a bad declaration is a spec error", () => {
  const bad = (ownership: unknown) => () => check({ ...spec, ownership } as any);
  const specError = (re: RegExp) => (e: unknown) => e instanceof SpecError && re.test(e.message);
  assert.throws(bad({ kvm: { count: (s: any) => s.users } }), specError(/ownership "kvm": expected/));
  assert.throws(bad({ kvm: { count: (s: any) => s.users, holders: {} } }), specError(/names no holder/));
  assert.throws(bad({ kvm: { count: (s: any) => s.users, holders: { a: 1 } } }), specError(/holder "a" must be a function/));
  assert.throws(bad({ kvm: { count: (s: any) => s.users, holders: { a: (s: any) => s.vmFd }, owner: 1 } }), specError(/unknown key "owner"/));
  assert.throws(() => check({ ...spec, invariants: { kvmNoLeak: () => true } } as any), specError(/both declared and derived/));
});
