// The checker's public surface: compile a spec, explore it, and turn the result into a
// Verdict (with traces rebuilt by replaying actions from the initial state).
import { compile, designAssignments, designParamOf, paramDefaults, type Model } from "./compile.ts";
import { judge } from "./expect.ts";
import { exploreParallel } from "./parallel.ts";
import { explore, hitKey, type ExploreOptions, type ExploreResult, type Hit } from "./explore.ts";
import type { Spec } from "./spec.ts";
import { rebuildTrace } from "./trace.ts";
import { leastInterleaved } from "./interleave.ts";
import { describeCycle, LockOrder } from "./lockdep.ts";
import { lockClassesOf, ownershipOf } from "./objects.ts";
import { checkLiveness, type LivenessOutcome } from "./liveness.ts";
import { Verdict, type Coverage, type PropertyResult, type Simulation } from "./verdict.ts";
import { TraceLinks } from "./store.ts";

export { defineSpec, action, range, Fault, SpecError, isSpec, type Spec } from "./spec.ts";
export type { ActionDef, ActionProperty, ActionRef, ExpectedEntry, FairActions, FairItem, Fairness, Footprint, Invariant, Liveness, SpecDef, Witness } from "./spec.ts";
export { call } from "./threads.ts";
export type { CallDef, LockNames, StepDef, ThreadDef } from "./threads.ts";
export type { Owned } from "./ownership.ts";
export { compile, designAssignments, designsOf, designParamOf, resolveParams, formatParams } from "./compile.ts";
export { Verdict, exitCodeOf, withoutExpectation } from "./verdict.ts";
export type { Change, Coverage, PropertyKind, PropertyResult, PropertyStatus, Simulation, Stats, Step, StopReason, Trace } from "./verdict.ts";

/** What a simulation adds to its verdict. */
export type SimulationSummary = Simulation;

export interface CheckOptions extends ExploreOptions {
  /** Spec file path shown in reports. */
  file?: string;
  /** Validate the verdict against its schema (tests and debug runs). */
  validate?: boolean;
  /** Worker threads for `checkAsync` (needs `specUrl`); 1 searches on this thread. */
  workers?: number;
  /** URL of the spec module, for workers to import. */
  specUrl?: string;
  /** Levels with fewer states than this stay on the main thread (tests lower it). */
  parallelLevel?: number;
  /** Whether workers drop the candidates they find in the visited set (see ParallelOptions). */
  workerFilter?: boolean;
  /** Random walks instead of the exhaustive search (simulate.ts; the search worker dispatches on it). */
  simulate?: { runs: number; depth: number; seed: number; first?: boolean };
}

/** Checks one spec under one parameter assignment, on this thread. */
export function check(spec: Spec, params: Record<string, unknown> = {}, opts: CheckOptions = {}): Verdict {
  const model = compile(spec, params);
  return finish(model, explore(model, opts), opts);
}

/** Like `check`, with `opts.workers` worker threads when there is more than one. */
export async function checkAsync(spec: Spec, params: Record<string, unknown> = {}, opts: CheckOptions = {}): Promise<Verdict> {
  const model = compile(spec, params);
  const workers = opts.workers ?? 1;
  // The reduction's cycle proviso reads the visited set as the search goes: one thread.
  if (workers <= 1 || !opts.specUrl || opts.por) return finish(model, explore(model, opts), opts);
  return finish(model, await exploreParallel(model, { ...opts, workers, specUrl: opts.specUrl }), opts);
}

/** The least-interleaved shortest trace of a hit, replayed and validated. */
function traceOf(model: Model, r: ExploreResult, h: Hit, opts: CheckOptions) {
  return rebuildTrace(model, r, h, opts.symmetry, leastInterleaved(model, r, h, opts.symmetry));
}

function finish(model: Model, r: ExploreResult, opts: CheckOptions): Verdict {
  // Liveness needs the whole graph: decided only after a complete safety search.
  const live = model.liveness.length && r.complete ? checkLiveness(model, opts, r.seconds, !!(opts.symmetry && model.symmetryLeaves), r.por) : undefined;
  const verdict = toVerdict(model, r, opts, undefined, live);
  return opts.validate ? Verdict.parse(verdict) : verdict;
}

/** "modules=two" for a run under one of the spec's configurations. */
function configurationLabel(spec: Spec, params: Record<string, unknown>): string | undefined {
  const c = spec.configurations?.find((x) => Object.entries(x).every(([k, v]) => params[k] === v));
  return c ? Object.entries(c).map(([k, v]) => `${k}=${String(v)}`).join(" ") : undefined;
}

/** Checks a spec under every design (or once, when it has no design parameter). */
export function checkAllDesigns(spec: Spec, params: Record<string, unknown> = {}, opts: CheckOptions = {}): Verdict[] {
  return designAssignments(spec, params).map((a) => check(spec, a, opts));
}


/**
 * The lock-order violation, if the dependencies seen form a cycle: the trace ends with the
 * step that closes it; the message gives every dependency of the cycle and where it was seen.
 */
function lockOrderHit(model: Model, r: ExploreResult): Hit | undefined {
  const order = new LockOrder(model.locks!);
  order.merge(r.lockEdges ?? []);
  const cycle = order.cycle();
  if (!cycle) return undefined;
  const last = cycle[cycle.length - 1];
  const message = describeCycle(cycle, (i) => `in ${model.instances[i].label}`);
  return { property: { kind: "lock-order" }, state: last.state, instance: last.instance, message, failure: true };
}

/**
 * The verdict of a search result. With `sim` (a simulation) the result is never complete,
 * a declared violation found in more steps than declared is as expected (a shrunk walk need
 * not be the shortest).
 */
export function toVerdict(model: Model, r: ExploreResult, opts: CheckOptions, sim?: SimulationSummary, live?: LivenessOutcome): Verdict {
  const hitOf = new Map<string, Hit>();
  for (const h of r.hits) if (!hitOf.has(hitKey(h))) hitOf.set(hitKey(h), h);
  const properties: PropertyResult[] = [];
  const undecided = r.complete ? "holds" : "unknown";
  // A bound that stopped the liveness graph leaves the run incomplete too.
  const complete = r.complete && !live?.stoppedBy;
  const stoppedBy = r.stoppedBy ?? live?.stoppedBy;

  const add = (name: string, kind: PropertyResult["kind"], k: string, doc?: string) => {
    const h = hitOf.get(k);
    const res: PropertyResult = h
      ? { name, kind, status: "violated", failed: true, doc, message: h.message ?? messageFor(kind, name), trace: traceOf(model, r, h, opts) }
      : { name, kind, status: undecided, failed: false, doc };
    properties.push(res);
  };
  add("noFault", "fault", "fault:", "no kernel fault (WARN, use-after-free, call into unloaded module) in any step");
  if (model.busy) add("noDeadlock", "deadlock", "deadlock:", "no state where nothing can run while a thread is mid-call");
  if (model.locks) {
    const hit = lockOrderHit(model, r);
    if (hit) hitOf.set("lock-order:", hit);
    add("lockOrder", "lock-order", "lock-order:", "no cycle in the lock classes' order (lockdep: no possible circular locking dependency)");
  }
  model.invariants.forEach((p, i) => add(p.name, "invariant", `invariant:${i}`, p.doc));
  model.actionProperties.forEach((p, i) => add(p.name, "action", `action:${i}`, p.doc));
  model.quiescent.forEach((p, i) => add(p.name, "quiescent", `quiescent:${i}`, p.doc));
  model.witnesses.forEach((w, i) => {
    const h = hitOf.get(`reachable:${i}`);
    const status = h ? "reachable" : r.complete ? "unreachable" : "unknown";
    const failed = status !== "unknown" && status !== w.expect;
    properties.push({
      name: w.name,
      kind: "reachable",
      status,
      expect: w.expect,
      failed,
      doc: w.doc,
      message: failed ? (status === "reachable" ? `${w.name} is reachable but the spec expects it unreachable` : `${w.name} is never reached`) : undefined,
      trace: h ? traceOf(model, r, h, opts) : undefined,
    });
  });
  model.liveness.forEach((p, i) => properties.push(live?.results[i] ?? { name: p.name, kind: "liveness", status: "unknown", failed: false, doc: p.doc }));

  const coverage: Coverage[] = model.actionNames.map((name, a) => {
    const insts = model.instances.filter((x) => x.action === a);
    return {
      action: name,
      kernel: model.actionKernel[a],
      fired: insts.reduce((s, x) => s + r.fired[x.id], 0),
      instances: insts.length,
      neverFired: insts.filter((x) => r.fired[x.id] === 0).map((x) => x.label),
    };
  });

  const warnings: string[] = [];
  for (const c of coverage) {
    if (c.fired === 0) warnings.push(`action ${c.action} never fired${r.complete ? "" : sim ? " (in this simulation)" : " (search incomplete)"}`);
    else if (c.neverFired.length) warnings.push(`action instance${c.neverFired.length > 1 ? "s" : ""} ${c.neverFired.join(", ")} never fired`);
  }
  // An action whose every firing left the state as it was is almost always a replaced draft.
  model.actionNames.forEach((name, a) => {
    const insts = model.instances.filter((x) => x.action === a);
    const fired = insts.reduce((s, x) => s + r.fired[x.id], 0);
    if (fired > 0 && insts.every((x) => r.changed[x.id] === 0)) {
      warnings.push(
        `action ${name} fired ${fired} time${fired === 1 ? "" : "s"} and never changed the state (an effect must mutate the draft's fields, not replace the draft; expected only of an action that just checks for faults)`,
      );
    }
  });
  if (r.porOff) warnings.push(`partial-order reduction not applied: ${r.porOff}`);
  if (opts.symmetry && !model.symmetryLeaves) warnings.push("symmetry reduction not applied: the spec declares no symmetry (symmetry: (s) => s.someArray)");
  if (!r.complete && !sim) warnings.push(`search incomplete: stopped by ${r.stoppedBy} after ${r.distinct} states at depth ${r.depth}`);
  if (live) warnings.push(...live.warnings);

  // For the views of traces: the declared objects and locks, and each step's counts.
  const init = model.codec.read(model.codec.view(model.inits[0]!, { ro: true }));
  const objects = ownershipOf(model, properties.flatMap((p) => (p.trace ? [p.trace] : [])), init);
  const locks = lockClassesOf(model, init);

  const n = r.distinct;
  const fp = r.fingerprintBits;
  const collision = fp === 0 ? 0 : Math.min(1, (n * (n - 1)) / 2 / 2 ** fp);
  const design = model.designParam ? String(model.params[model.designParam]) : undefined;
  const anyFailed = properties.some((p) => p.failed);
  const expectation = model.expected ? judge(properties, model.expected, { atLeastSteps: !!sim }) : undefined;
  return {
    spec: model.spec.name,
    file: opts.file,
    summary: model.spec.summary,
    source: model.spec.source,
    params: model.params as Record<string, unknown>,
    defaults: paramDefaults(model.spec),
    designParam: model.designParam,
    design,
    configuration: configurationLabel(model.spec, model.params),
    properties,
    stats: {
      distinctStates: r.distinct,
      generatedStates: r.generated,
      depth: r.depth,
      seconds: r.seconds,
      statesPerSecond: sim ? sim.stepsPerSecond : r.seconds > 0 ? Math.round(r.distinct / r.seconds) : r.distinct,
      stateBits: model.codec.bits,
      fingerprintBits: fp,
      collisionProbability: collision,
      storeBytes: r.storeBytes,
      bytesPerState: n > 0 ? r.storeBytes / n : 0,
      traceBytes: r.traceBytes,
      traceBytesPerState: n > 0 ? r.traceBytes / n : 0,
      workers: r.workers,
      symmetry: !!(opts.symmetry && model.symmetryLeaves),
      por: r.por,
      ...(sim ? { stepsPerSecond: sim.stepsPerSecond } : {}),
      ...(live?.stats ? { liveness: live.stats } : {}),
    },
    coverage,
    complete,
    stoppedBy,
    warnings,
    outcome: anyFailed ? "fail" : complete ? "pass" : "incomplete",
    ...(expectation ? { expectation } : {}),
    ...(objects ? { objects } : {}),
    ...(locks ? { locks } : {}),
    ...(sim ? { mode: "simulation" as const, simulation: sim } : {}),
  };
}

function messageFor(kind: PropertyResult["kind"], name: string): string {
  switch (kind) {
    case "invariant":
      return `invariant ${name} is violated`;
    case "action":
      return `action property ${name} is violated by the last step`;
    case "quiescent":
      return `quiescent property ${name} is violated in a state where no action is enabled`;
    default:
      return `${name} is violated`;
  }
}

/**
 * The verdict of a search abandoned while spec code was running (it never returned within
 * the grace period after a stop request): incomplete, with the last counts the search
 * reported and what it was running. Coverage and traces are unknown.
 */
export function abandonedVerdict(
  model: Model,
  progress: { distinct: number; generated: number; depth: number; seconds: number },
  why: "interrupted" | "timeout",
  running: string | undefined,
  opts: CheckOptions,
): Verdict {
  const r: ExploreResult = {
    hits: [],
    distinct: progress.distinct,
    generated: progress.generated,
    depth: progress.depth,
    seconds: progress.seconds,
    complete: false,
    stoppedBy: why,
    fired: new Float64Array(model.instances.length),
    changed: new Float64Array(model.instances.length),
    links: new TraceLinks(0),
    storeBytes: 0,
    traceBytes: 0,
    fingerprintBits: 0,
    workers: 1,
    por: false,
  };
  const sim: SimulationSummary | undefined = opts.simulate && {
    runs: progress.distinct, requestedRuns: opts.simulate.runs, depth: opts.simulate.depth, seed: opts.simulate.seed, steps: progress.generated,
    stepsPerSecond: progress.seconds > 0 ? Math.round(progress.generated / progress.seconds) : 0, longestWalk: progress.depth,
    workers: opts.workers ?? 1, walkSeconds: progress.seconds, shrinkSeconds: 0,
  };
  const v = toVerdict(model, r, opts, sim);
  v.warnings = [
    `stopped (${why}) while ${running ?? "spec code"} was running and did not return within a second: ` +
      "the counts are the last ones reported and action coverage is unknown",
    ...v.warnings.filter((w) => !w.startsWith("action ")),
  ];
  v.coverage = [];
  return v;
}
