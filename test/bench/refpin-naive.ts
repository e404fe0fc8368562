// Naive reference implementation of RefPin(N, VARIANT) (shared/conformance/RefPin.md):
// plain objects, JSON.stringify keys in a Set, BFS. Deliberately simple and
// independent of checker/, as a second opinion on state counts besides SPIN.
//
//   node --import tsx test/bench/refpin-naive.ts <N> [active|plain] [--json] [--stop]
//
// Prints distinct states; generated = initial states + successors computed (TLC's
// count, equal to SPIN's "transitions" and to perf-notes.md); transitions =
// successors only; depth = BFS levels - 1; the first violation and its shortest trace.
// --stop ends the search at the first violation (as a checker would); without it
// the whole reachable graph is counted, faulty states included.
import { fileURLToPath } from "node:url";

export type Variant = "active" | "plain";

export interface RefPinState {
  vmFd: boolean;
  vmRef: number;
  vmState: number;
  kvmUsers: number;
  kvmFreed: boolean;
  devFd: boolean;
  err: number;
  dfFd: boolean[];
  dfRef: number[];
  dfFreed: boolean[];
  kvf: boolean[];
  assoc: boolean[];
  bound: boolean[];
  pin: boolean[];
}

export function initState(n: number): RefPinState {
  return {
    vmFd: true,
    vmRef: 1,
    vmState: 0,
    kvmUsers: 2,
    kvmFreed: false,
    devFd: true,
    err: 0,
    dfFd: Array<boolean>(n).fill(true),
    dfRef: Array<number>(n).fill(1),
    dfFreed: Array<boolean>(n).fill(false),
    kvf: Array<boolean>(n).fill(false),
    assoc: Array<boolean>(n).fill(false),
    bound: Array<boolean>(n).fill(false),
    pin: Array<boolean>(n).fill(false),
  };
}

function clone(s: RefPinState): RefPinState {
  return {
    ...s,
    dfFd: [...s.dfFd],
    dfRef: [...s.dfRef],
    dfFreed: [...s.dfFreed],
    kvf: [...s.kvf],
    assoc: [...s.assoc],
    bound: [...s.bound],
    pin: [...s.pin],
  };
}

// Macros, in the order RefPin.md writes them. Devices are 0-based here.
function fault(s: RefPinState, e: number): void {
  if (s.err === 0) s.err = e;
}
function vmGet(s: RefPinState): void {
  if (s.vmState === 2) fault(s, 1);
  else if (s.vmRef === 0) fault(s, 2);
  else s.vmRef += 1;
}
function vmGetActive(s: RefPinState): boolean {
  if (s.vmRef > 0) {
    s.vmRef += 1;
    return true;
  }
  return false;
}
function vmPut(s: RefPinState): void {
  if (s.vmRef === 0) fault(s, 3);
  else {
    s.vmRef -= 1;
    if (s.vmRef === 0) s.vmState = 1;
  }
}
function kvmPut(s: RefPinState): void {
  if (s.kvmUsers === 0) fault(s, 3);
  else {
    s.kvmUsers -= 1;
    if (s.kvmUsers === 0) s.kvmFreed = true;
  }
}
function dfGet(s: RefPinState, i: number): void {
  if (s.dfFreed[i]) fault(s, 1);
  else if (s.dfRef[i] === 0) fault(s, 2);
  else s.dfRef[i] += 1;
}
function dfPut(s: RefPinState, i: number): void {
  if (s.dfRef[i] === 0) fault(s, 3);
  else {
    s.dfRef[i] -= 1;
    if (s.dfRef[i] === 0) {
      s.dfFreed[i] = true;
      if (s.bound[i]) {
        s.bound[i] = false;
        if (s.pin[i]) {
          s.pin[i] = false;
          vmPut(s);
        }
      }
    }
  }
}
function setKvm(s: RefPinState, i: number, attach: boolean, variant: Variant): void {
  let nw = false;
  if (attach) {
    if (s.kvmFreed) fault(s, 1);
    else if (variant === "active") nw = vmGetActive(s);
    else {
      vmGet(s);
      nw = true;
    }
  }
  const old = s.assoc[i];
  s.assoc[i] = nw;
  if (old) vmPut(s);
}

interface Action {
  name: string;
  when: (s: RefPinState) => boolean;
  then: (s: RefPinState) => void;
}

export function actions(n: number, variant: Variant): Action[] {
  const acts: Action[] = [
    { name: "CloseVm", when: (s) => s.vmFd, then: (s) => { s.vmFd = false; vmPut(s); } },
    { name: "ReleaseVm", when: (s) => s.vmState === 1, then: (s) => { s.vmState = 2; kvmPut(s); } },
    {
      name: "CloseDev",
      when: (s) => s.devFd,
      then: (s) => {
        s.devFd = false;
        for (let i = 0; i < n; i++) {
          if (s.kvf[i]) {
            setKvm(s, i, false, variant);
            s.kvf[i] = false;
            dfPut(s, i);
          }
        }
        kvmPut(s);
      },
    },
  ];
  for (let i = 0; i < n; i++) {
    const d = `(${i + 1})`;
    acts.push(
      {
        name: "FileAdd" + d,
        when: (s) => s.devFd && s.dfFd[i]! && !s.kvf[i],
        then: (s) => { dfGet(s, i); s.kvf[i] = true; setKvm(s, i, true, variant); },
      },
      {
        name: "FileDel" + d,
        when: (s) => s.devFd && s.dfFd[i]! && s.kvf[i]!,
        then: (s) => { setKvm(s, i, false, variant); s.kvf[i] = false; dfPut(s, i); },
      },
      {
        name: "Bind" + d,
        when: (s) => s.dfFd[i]! && !s.bound[i],
        then: (s) => {
          s.bound[i] = true;
          if (s.assoc[i]) { s.pin[i] = true; vmGet(s); }
        },
      },
      {
        name: "Unbind" + d,
        when: (s) => s.dfFd[i]! && s.bound[i]!,
        then: (s) => {
          s.bound[i] = false;
          if (s.pin[i]) { s.pin[i] = false; vmPut(s); }
        },
      },
      { name: "CloseDf" + d, when: (s) => s.dfFd[i]!, then: (s) => { s.dfFd[i] = false; dfPut(s, i); } },
    );
  }
  return acts;
}

const count = (a: boolean[]): number => a.filter(Boolean).length;

/** Name of the first invariant the state breaks, or null. */
export function violated(s: RefPinState): string | null {
  if (s.err !== 0) return "Safe";
  if (s.vmState === 0 && s.vmRef !== (s.vmFd ? 1 : 0) + count(s.assoc) + count(s.pin)) return "VmRefExact";
  const quiet = !s.vmFd && !s.devFd && s.dfFd.every((x) => !x) && s.vmState !== 1;
  if (quiet && !(s.kvmFreed && s.vmState === 2 && s.dfFreed.every((x) => x))) return "NoLeak";
  return null;
}

export interface NaiveResult {
  n: number;
  variant: Variant;
  distinct: number;
  generated: number;
  transitions: number;
  depth: number;
  seconds: number;
  terminal: number;
  violation: { invariant: string; err: number; trace: string[] } | null;
}

export function explore(n: number, variant: Variant, stopAtViolation = false): NaiveResult {
  const t0 = performance.now();
  const acts = actions(n, variant);
  const init = initState(n);
  const initKey = JSON.stringify(init);
  // key -> [parent key, action] for trace rebuilding
  const parent = new Map<string, [string, string] | null>([[initKey, null]]);
  let frontier: RefPinState[] = [init];
  let transitions = 0;
  let depth = 0;
  let terminal = 0;
  let violation: NaiveResult["violation"] = null;
  const traceOf = (key: string): string[] => {
    const out: string[] = [];
    for (let p = parent.get(key); p; p = parent.get(p[0])) out.push(p[1]);
    return out.reverse();
  };
  const check = (s: RefPinState, key: string): void => {
    if (violation) return;
    const inv = violated(s);
    if (inv) violation = { invariant: inv, err: s.err, trace: traceOf(key) };
  };
  check(init, initKey);
  search: while (frontier.length > 0) {
    const next: RefPinState[] = [];
    for (const s of frontier) {
      const sKey = JSON.stringify(s);
      let enabled = 0;
      for (const a of acts) {
        if (!a.when(s)) continue;
        enabled++;
        const t = clone(s);
        a.then(t);
        transitions++;
        const key = JSON.stringify(t);
        if (parent.has(key)) continue;
        parent.set(key, [sKey, a.name]);
        next.push(t);
        check(t, key);
        if (violation && stopAtViolation) break search;
      }
      if (enabled === 0) terminal++;
    }
    if (next.length > 0) depth++;
    frontier = next;
  }
  return {
    n, variant, distinct: parent.size, generated: transitions + 1, transitions, depth, terminal,
    seconds: (performance.now() - t0) / 1000, violation,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const n = Number(args.find((a) => /^\d+$/.test(a)) ?? "3");
  const variant: Variant = args.includes("plain") ? "plain" : "active";
  const r = explore(n, variant, args.includes("--stop"));
  if (args.includes("--json")) console.log(JSON.stringify(r));
  else {
    console.log(`RefPin N=${n} ${variant}: distinct ${r.distinct}, generated ${r.generated}, transitions ${r.transitions}, depth ${r.depth}, ` +
      `terminal ${r.terminal}, ${r.seconds.toFixed(2)} s`);
    if (r.violation) {
      console.log(`  ${r.violation.invariant} violated (err = ${r.violation.err}) after ${r.violation.trace.length} actions: ` +
        r.violation.trace.join(", "));
    } else console.log("  all invariants hold");
  }
}
