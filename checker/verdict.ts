// The Verdict: what a run found. One schema for the type, the JSON output and
// every renderer in reports/.
import { z } from "zod";

export const Value: z.ZodType<unknown> = z.lazy(() =>
  z.union([z.boolean(), z.number(), z.string(), z.array(Value), z.record(z.string(), Value)]),
);

export const Change = z.object({
  /** Field path, e.g. "vmFile.count" or "dev[1].bound". */
  path: z.string(),
  before: Value,
  after: Value,
});
export type Change = z.infer<typeof Change>;

/** An object of the ownership declaration in one state. */
export const OwnedState = z.object({
  count: z.number(),
  live: z.boolean(),
  /** References each holder holds (0 when it holds none). */
  holders: z.record(z.string(), z.number()),
  /** Uncounted pointers that point at the object (true) or not. */
  weak: z.record(z.string(), z.boolean()).optional(),
});
export type OwnedState = z.infer<typeof OwnedState>;

/** A counted object of the spec's ownership declaration, for the views of traces. */
export const OwnedObject = z.object({
  name: z.string(),
  doc: z.string().optional(),
  /** The state paths its count is read from (e.g. ["file.count"]). */
  count: z.array(z.string()),
  /** The state paths its live predicate reads. */
  live: z.array(z.string()),
  holders: z.array(z.string()),
  weak: z.array(z.string()).optional(),
});
export type OwnedObject = z.infer<typeof OwnedObject>;

/** A lock class of the spec's `locks`, and the state path of its lock (its holder is `<path>.holder`). */
export const LockClass = z.object({ name: z.string(), path: z.string() });
export type LockClass = z.infer<typeof LockClass>;

export const Step = z.object({
  /** 0 for the initial state. */
  index: z.number().int().min(0),
  /** null for the initial state. */
  action: z.string().nullable(),
  params: z.record(z.string(), Value),
  /** The kernel function(s) the action stands for. */
  kernel: z.string().optional(),
  /** The thread that ran the step, when the spec says (a syscall thread, task_work, an RCU callback...). */
  thread: z.string().optional(),
  /** Full state after the step (for a faulting step: as the effect left it when it faulted). */
  state: z.record(z.string(), Value),
  /** What the step changed, in field order. Empty for the initial state. */
  changes: z.array(Change),
  /** Fault message raised by this step, if it is the failing one. */
  fault: z.string().optional(),
  /** The state path of the object the fault is about (e.g. "vmFile"), when the spec names it. */
  faultAt: z.string().optional(),
  /** Per object of the spec's ownership declaration (Verdict.objects): its count and holders in this state. */
  owned: z.record(z.string(), OwnedState).optional(),
});
export type Step = z.infer<typeof Step>;

export const Trace = z.object({
  steps: z.array(Step),
  /** Number of actions (steps - 1). */
  length: z.number().int().min(0),
  /**
   * A lasso (liveness violation): the index of the step whose state the last step's equals.
   * Steps loop+1 .. length are the cycle, repeated forever; loop === length: the run stops
   * there (no action can run) and stays in that state forever.
   */
  loop: z.number().int().min(0).optional(),
});
export type Trace = z.infer<typeof Trace>;

export const PropertyKind = z.enum(["fault", "invariant", "action", "quiescent", "deadlock", "reachable", "lock-order", "liveness"]);
export type PropertyKind = z.infer<typeof PropertyKind>;

export const PropertyStatus = z.enum([
  "holds", // checked on the complete state space
  "violated", // counterexample in `trace`
  "reachable", // witness found, example in `trace`
  "unreachable", // witness never found on the complete state space
  "unknown", // search incomplete and no violation found so far
]);
export type PropertyStatus = z.infer<typeof PropertyStatus>;

export const PropertyResult = z.object({
  name: z.string(),
  kind: PropertyKind,
  status: PropertyStatus,
  /** For witnesses: the status the spec expects. */
  expect: z.enum(["reachable", "unreachable"]).optional(),
  /** True when the status is a failure (violation, or a witness not as expected). */
  failed: z.boolean(),
  doc: z.string().optional(),
  /** Line of the spec file that defines the property (1-based), when known. */
  line: z.number().int().min(1).optional(),
  /** Fault message / violated property detail. */
  message: z.string().optional(),
  trace: Trace.optional(),
  /**
   * Against the spec's `expected` declaration: true when this failure was declared and
   * matches it, false when the result differs from it; absent when it is as declared and
   * not a failure, not decided, or the spec declares nothing.
   */
  expected: z.boolean().optional(),
});
export type PropertyResult = z.infer<typeof PropertyResult>;

export const Coverage = z.object({
  action: z.string(),
  kernel: z.string().optional(),
  /** Line of the spec file that defines the action (1-based), when known. */
  line: z.number().int().min(1).optional(),
  /** Transitions taken by this action (its effect ran). */
  fired: z.number().int().min(0),
  instances: z.number().int().min(0),
  /** Parameter combinations that never fired, e.g. "FileAdd(i=1)". */
  neverFired: z.array(z.string()),
});
export type Coverage = z.infer<typeof Coverage>;

export const Stats = z.object({
  distinctStates: z.number().int().min(0),
  generatedStates: z.number().int().min(0),
  /** Number of actions on the longest shortest path (BFS levels - 1). */
  depth: z.number().int().min(0),
  seconds: z.number().min(0),
  statesPerSecond: z.number().min(0),
  /** Bits of the packed state. */
  stateBits: z.number().int().min(0),
  /** 0 when states are stored exactly (no hashing), else the fingerprint width. */
  fingerprintBits: z.number().int().min(0),
  /** Estimated probability that a fingerprint collision hid a state. */
  collisionProbability: z.number().min(0).max(1),
  /** Bytes of the visited-state table at the end of the run. */
  storeBytes: z.number().int().min(0),
  /** storeBytes per distinct state. */
  bytesPerState: z.number().min(0),
  /** Bytes of the trace links (a parent link and an action index per state). */
  traceBytes: z.number().int().min(0),
  traceBytesPerState: z.number().min(0),
  workers: z.number().int().min(1),
  symmetry: z.boolean(),
  por: z.boolean(),
  /** Simulation: steps of the random walks per second (statesPerSecond counts the same steps). */
  stepsPerSecond: z.number().min(0).optional(),
  /** The state graph the liveness properties were checked on (unreduced, edges kept). */
  liveness: z
    .object({
      states: z.number().int().min(0),
      edges: z.number().int().min(0),
      seconds: z.number().min(0),
      /** Peak bytes of the graph (index table, edges, predicate bits) and of the SCC pass. */
      bytes: z.number().int().min(0),
      bytesPerState: z.number().min(0),
    })
    .optional(),
});
export type Stats = z.infer<typeof Stats>;

/**
 * Why a search stopped early: a bound (--max-states, --max-depth, --timeout, --max-memory),
 * --first, or an interruption (SIGINT/SIGTERM).
 */
export const StopReason = z.enum(["max-states", "max-depth", "timeout", "first-violation", "max-memory", "interrupted"]);
export type StopReason = z.infer<typeof StopReason>;

/** The run compared with the outcome the spec declares for it (`expected`). */
export const Expectation = z.object({
  /** "changed": a property's result differs from the declaration (a regression, or a fix to record). */
  status: z.enum(["as-expected", "changed"]),
  /** The violations declared for this run, e.g. "noFault in 2 steps". */
  declared: z.array(z.string()),
  /** What differs, e.g. "Safe: expected to hold, violated in 2 steps"; also what was not decided. */
  differences: z.array(z.string()),
});
export type Expectation = z.infer<typeof Expectation>;

/**
 * A simulation (`refcheck simulate`): random walks, not the complete state space. Without a
 * violation it proves nothing: properties not violated are "unknown", witnesses not found
 * "unknown", and the verdict is never complete.
 */
export const Simulation = z.object({
  /** Walks run (fewer than requestedRuns when a bound or --first stopped the simulation). */
  runs: z.number().int().min(0),
  requestedRuns: z.number().int().min(1),
  /** Most steps per walk (--depth). */
  depth: z.number().int().min(0),
  /** Seeds every walk: the same seed, spec and parameters give the same verdict. */
  seed: z.number().int().min(0),
  /** Steps taken over all walks. */
  steps: z.number().int().min(0),
  stepsPerSecond: z.number().min(0),
  longestWalk: z.number().int().min(0),
  workers: z.number().int().min(1),
  /** Time of the walks, then of shrinking the traces. */
  walkSeconds: z.number().min(0),
  shrinkSeconds: z.number().min(0),
});
export type Simulation = z.infer<typeof Simulation>;

export const Verdict = z.object({
  spec: z.string(),
  /** Spec file, relative to the working directory, when loaded from a file. */
  file: z.string().optional(),
  summary: z.string().optional(),
  source: z.string().optional(),
  params: z.record(z.string(), Value),
  /**
   * The spec's default for each parameter that has one, so that outputs can name a run by
   * the parameters it changed (a parameter missing here has no default).
   */
  defaults: z.record(z.string(), Value).optional(),
  /** The design parameter's name and value, when the spec has one. */
  designParam: z.string().optional(),
  design: z.string().optional(),
  /** The spec configuration this run used (e.g. "modules=two"), when the spec declares several. */
  configuration: z.string().optional(),
  properties: z.array(PropertyResult),
  stats: Stats,
  coverage: z.array(Coverage),
  /** False when a bound stopped the search before every reachable state was seen. */
  complete: z.boolean(),
  stoppedBy: StopReason.optional(),
  /** Honest-result warnings: actions that never fired, vacuous properties, ... */
  warnings: z.array(z.string()),
  /** "pass" all hold, "fail" a property failed, "incomplete" a bound stopped the search. */
  outcome: z.enum(["pass", "fail", "incomplete"]),
  /** Present when the spec declares expected outcomes. */
  expectation: Expectation.optional(),
  /** The spec's ownership declaration; each trace step then carries `owned`. */
  objects: z.array(OwnedObject).optional(),
  /** The spec's lock classes, when it declares `locks`. */
  locks: z.array(LockClass).optional(),
  /** How the verdict was reached; absent means "exhaustive" (breadth-first search). */
  mode: z.enum(["exhaustive", "simulation"]).optional(),
  /** Present in simulation mode. */
  simulation: Simulation.optional(),
});
export type Verdict = z.infer<typeof Verdict>;

/**
 * Exit code for a list of verdicts: 1 if any failed (or, with an expectation, changed),
 * else 3 if any incomplete, else 0. A declared violation found as declared is not a failure.
 */
export function exitCodeOf(verdicts: Verdict[]): 0 | 1 | 3 {
  if (verdicts.some((v) => (v.expectation ? v.expectation.status === "changed" : v.outcome === "fail"))) return 1;
  if (verdicts.some((v) => !v.complete)) return 3;
  return 0;
}

/** The verdict as if the spec declared no expectation (--ignore-expected): every violation fails. */
export function withoutExpectation(v: Verdict): Verdict {
  if (!v.expectation && !v.properties.some((p) => p.expected !== undefined)) return v;
  const { expectation: _, ...rest } = v;
  return { ...rest, properties: v.properties.map(({ expected: _e, ...p }) => p) };
}
