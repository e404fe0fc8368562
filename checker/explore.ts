// Exhaustive breadth-first exploration over packed states.
//
// States are stored once, as keys in the visited set; each state also gets a parent link
// and the id of the action instance that first reached it, so a trace is rebuilt by
// replaying actions from the initial state. The frontier holds packed words of the
// current and next BFS levels only. Level order plus a fixed action order make runs
// deterministic and counterexamples shortest.
import type { Model } from "./compile.ts";
import { Fault, SpecError } from "./spec.ts";
import { GrowU16, GrowU32, VisitedSet } from "./store.ts";
import { makeCanonicalizer } from "./symmetry.ts";

export interface ExploreOptions {
  maxStates?: number;
  maxDepth?: number;
  timeoutSeconds?: number;
  symmetry?: boolean;
  /** Stop at the first failed property. */
  stopAtFirst?: boolean;
  /** Called about once a second with the running counts. */
  progress?: (p: { distinct: number; generated: number; depth: number; seconds: number }) => void;
}

export type PropertyRef =
  | { kind: "fault" }
  | { kind: "deadlock" }
  | { kind: "invariant" | "action" | "quiescent" | "reachable"; index: number };

/** Where a property failed (or a witness was found): the state, and for transition
 * properties the action instance taken from it. */
export interface Hit {
  property: PropertyRef;
  state: number;
  instance?: number;
  message?: string;
}

export interface ExploreResult {
  hits: Hit[];
  distinct: number;
  generated: number;
  depth: number;
  seconds: number;
  complete: boolean;
  stoppedBy?: "max-states" | "max-depth" | "timeout" | "first-violation";
  fired: Float64Array;
  parent: Uint32Array;
  via: Uint16Array;
  storeBytes: number;
  fingerprintBits: number;
}

export const NO_PARENT = 0xffffffff;

/** Wraps an exception thrown by spec code into a SpecError naming where it happened. */
export function specFailure(model: Model, where: string, e: unknown): Error {
  const head = `spec "${model.spec.name}", ${where}`;
  if (e instanceof SpecError) return new SpecError(`${head}: ${e.message}`);
  const msg = e instanceof Error ? e.message : String(e);
  return new SpecError(`${head} threw ${e instanceof Error ? e.name : "an exception"}: ${msg}`);
}

export function explore(model: Model, opts: ExploreOptions = {}): ExploreResult {
  const t0 = performance.now();
  const W = model.words;
  const maxStates = opts.maxStates ?? Infinity;
  const maxDepth = opts.maxDepth ?? Infinity;
  const deadline = opts.timeoutSeconds !== undefined ? t0 + opts.timeoutSeconds * 1000 : Infinity;
  const canon = opts.symmetry && model.symmetryLeaves ? makeCanonicalizer(model.symmetryLeaves) : null;
  const { instances, invariants, actionProperties, quiescent, witnesses } = model;
  const busy = model.busy;
  const nInst = instances.length;

  const visited = new VisitedSet(W, model.codec.lastWordBits);
  const parent = new GrowU32(1 << 16);
  const via = new GrowU16(1 << 16);
  const fired = new Float64Array(nInst);
  const key = new Uint32Array(2);

  const A = new Uint32Array(W);
  const D = new Uint32Array(W);
  const cur = model.codec.view(A, { ro: true });
  const draftCtx = { ro: false };
  const draft = model.codec.view(D, draftCtx);

  // Which properties are still undecided; a property is reported once, at its first
  // (hence shortest) failure.
  const hits: Hit[] = [];
  let faultHit = false, deadlockHit = false;
  const invHit = new Array<boolean>(invariants.length).fill(false);
  const actHit = new Array<boolean>(actionProperties.length).fill(false);
  const quiHit = new Array<boolean>(quiescent.length).fill(false);
  const witHit = new Array<boolean>(witnesses.length).fill(false);
  let failures = 0;
  const failed = () => opts.stopAtFirst === true && failures > 0;
  const record = (h: Hit, isFailure: boolean) => {
    hits.push(h);
    if (isFailure) failures++;
  };

  let frontier = new GrowU32(1 << 12);
  let next = new GrowU32(1 << 12);
  const stride = W + 1;
  let distinct = 0;
  let generated = 0;
  let depth = 0;
  let stoppedBy: ExploreResult["stoppedBy"];

  // Checks the state properties of the state in D (just discovered, id `id`).
  const checkNew = (id: number) => {
    for (let p = 0; p < invariants.length; p++) {
      if (invHit[p]) continue;
      let ok: boolean;
      try {
        ok = invariants[p].fn(draft);
      } catch (e) {
        throw specFailure(model, `invariant "${invariants[p].name}"`, e);
      }
      if (!ok) {
        invHit[p] = true;
        record({ property: { kind: "invariant", index: p }, state: id }, true);
      }
    }
    for (let p = 0; p < witnesses.length; p++) {
      if (witHit[p]) continue;
      let ok: boolean;
      try {
        ok = witnesses[p].fn(draft);
      } catch (e) {
        throw specFailure(model, `witness "${witnesses[p].name}"`, e);
      }
      if (ok) {
        witHit[p] = true;
        record({ property: { kind: "reachable", index: p }, state: id }, witnesses[p].expect === "unreachable");
      }
    }
  };

  // Successors wait in a batch (packed words, parent id, action instance) and are
  // inserted together: hash all, touch their home slots, then insert in order. Order is
  // unchanged, so ids, traces and verdicts are the same as one-at-a-time insertion.
  const BATCH = 512;
  const bStride = W + 2;
  const batch = new Uint32Array(BATCH * bStride);
  const batchKeys = new Uint32Array(BATCH * 2);
  let nb = 0;
  let sink = 0;
  const flush = () => {
    for (let j = 0; j < nb; j++) {
      visited.key(batch, j * bStride, key);
      batchKeys[2 * j] = key[0];
      batchKeys[2 * j + 1] = key[1];
    }
    sink ^= visited.touch(batchKeys, nb);
    for (let j = 0; j < nb; j++) {
      const k0 = batchKeys[2 * j], k1 = batchKeys[2 * j + 1];
      if (distinct >= maxStates) {
        if (!visited.hasKey(k0, k1)) stoppedBy = "max-states";
        continue;
      }
      if (!visited.addKey(k0, k1)) continue;
      const off = j * bStride;
      const id = distinct++;
      parent.push(batch[off + W]);
      via.push(batch[off + W + 1]);
      const at = next.reserve(stride);
      const na = next.a;
      for (let w = 0; w < W; w++) D[w] = na[at + w] = batch[off + w];
      na[at + W] = id;
      draftCtx.ro = true;
      checkNew(id);
    }
    nb = 0;
  };
  // Queues the state in D, reached from `parentId` by instance `inst`.
  const enqueue = (parentId: number, inst: number) => {
    if (canon) canon(D);
    const off = nb * bStride;
    for (let w = 0; w < W; w++) batch[off + w] = D[w];
    batch[off + W] = parentId;
    batch[off + W + 1] = inst;
    if (++nb === BATCH) flush();
  };

  // Like TLC, initial states count as generated.
  for (let i = 0; i < model.inits.length; i++) {
    generated++;
    D.set(model.inits[i]);
    enqueue(NO_PARENT, i);
  }
  flush();

  let lastProgress = t0;
  let expanded = 0;
  outer: while (next.n > 0) {
    [frontier, next] = [next, frontier];
    next.n = 0;
    const atBound = depth >= maxDepth;
    const count = frontier.n / stride;
    for (let k = 0; k < count; k++) {
      if (failed()) {
        stoppedBy = "first-violation";
        break outer;
      }
      if ((++expanded & 1023) === 0) {
        const now = performance.now();
        if (now > deadline) {
          stoppedBy = "timeout";
          break outer;
        }
        if (opts.progress && now - lastProgress > 1000) {
          lastProgress = now;
          opts.progress({ distinct, generated, depth, seconds: (now - t0) / 1000 });
        }
      }
      const off = k * stride;
      for (let w = 0; w < W; w++) A[w] = frontier.a[off + w];
      const id = frontier.a[off + W];
      let enabled = false;
      for (let i = 0; i < nInst; i++) {
        const inst = instances[i];
        if (inst.guard !== undefined) {
          let g: boolean;
          try {
            g = inst.guard(cur, inst.params);
          } catch (e) {
            throw specFailure(model, `guard of action ${inst.label}`, e);
          }
          if (!g) continue;
        }
        enabled = true;
        if (atBound) {
          // Only ask whether the bound hides anything: a successor not seen yet.
          for (let w = 0; w < W; w++) D[w] = A[w];
          draftCtx.ro = false;
          try {
            inst.effect(draft, inst.params);
          } catch {
            stoppedBy = "max-depth";
            continue;
          }
          if (canon) canon(D);
          visited.key(D, 0, key);
          if (!visited.hasKey(key[0], key[1])) stoppedBy = "max-depth";
          continue;
        }
        generated++;
        for (let w = 0; w < W; w++) D[w] = A[w];
        draftCtx.ro = false;
        try {
          inst.effect(draft, inst.params);
        } catch (e) {
          if (e instanceof Fault) {
            fired[i]++;
            if (!faultHit) {
              faultHit = true;
              record({ property: { kind: "fault" }, state: id, instance: i, message: e.message }, true);
            }
            continue;
          }
          throw specFailure(model, `action ${inst.label}`, e);
        }
        fired[i]++;
        draftCtx.ro = true;
        for (let p = 0; p < actionProperties.length; p++) {
          if (actHit[p]) continue;
          let ok: boolean;
          try {
            ok = actionProperties[p].fn(cur, draft, { name: inst.name, params: inst.params });
          } catch (e) {
            throw specFailure(model, `action property "${actionProperties[p].name}"`, e);
          }
          if (!ok) {
            actHit[p] = true;
            record({ property: { kind: "action", index: p }, state: id, instance: i }, true);
          }
        }
        enqueue(id, i);
      }
      if (!enabled) {
        let who: unknown;
        try {
          who = busy ? busy(cur) : undefined;
        } catch (e) {
          throw specFailure(model, "busy", e);
        }
        if (who) {
          if (!deadlockHit) {
            deadlockHit = true;
            record({ property: { kind: "deadlock" }, state: id, message: `deadlock: no action can run while ${String(who)} is blocked` }, true);
          }
        } else {
          for (let p = 0; p < quiescent.length; p++) {
            if (quiHit[p]) continue;
            let ok: boolean;
            try {
              ok = quiescent[p].fn(cur);
            } catch (e) {
              throw specFailure(model, `quiescent property "${quiescent[p].name}"`, e);
            }
            if (!ok) {
              quiHit[p] = true;
              record({ property: { kind: "quiescent", index: p }, state: id }, true);
            }
          }
        }
      }
    }
    flush();
    if (atBound || stoppedBy) break;
    if (next.n > 0) depth++;
  }
  if (!stoppedBy && failed()) stoppedBy = "first-violation";

  if (nb > 0) flush();
  void sink;
  const seconds = (performance.now() - t0) / 1000;
  return {
    hits,
    distinct,
    generated,
    depth,
    seconds,
    complete: stoppedBy === undefined,
    stoppedBy,
    fired,
    parent: parent.a.subarray(0, parent.n),
    via: via.a.subarray(0, via.n),
    storeBytes: visited.bytes + parent.n * 4 + via.n * 2,
    fingerprintBits: visited.fingerprintBits,
  };
}
