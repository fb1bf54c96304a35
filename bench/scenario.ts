/**
 * The contract between the benchmark runner and its scenarios: one scenario a file under
 * bench/scenarios/, registered in bench/registry.ts. A scenario measures, the runner
 * schedules and reports; a scenario prints nothing itself.
 *
 * The tools a scenario has (see anchors-node.ts for all of them in use):
 * - server.ts `startServer`: a server in a child process pinned to `ctx.serverCpus`;
 * - loadgen.ts `loadgen`: the native load generator, pinned with `cpus: ctx.clientCpus`;
 * - runner.ts `compare` / `ratio`: warm-up, repeats, A B / B A interleaving, paired ratios;
 * - tools.ts `which` / `runWrk`: external anchors when installed;
 * - `metrics` in the result: the named figures the claims (claims.ts) and targets
 *   (targets.ts) read — publish the keys they list for your scenario.
 */

export type Profile = 'quick' | 'full';

export interface Table {
  title: string;
  columns: string[];
  rows: (string | number)[][];
  /** What the table shows and how it was measured, one short paragraph. */
  note?: string;
}

/** A point: x, y (the median), and optionally the min and max of y over the rounds (drawn as a whisker). */
export type ChartPoint = [number, number] | [number, number, number, number];

/**
 * A chart: one line (or bar group) per series, x and y numeric. The y axis turns
 * logarithmic by itself when the values span two orders of magnitude or more (logY forces
 * it either way). An `anchor` series (nginx, redis-server, fio …) is drawn as a dashed
 * reference line.
 */
export interface Chart {
  title: string;
  xLabel: string;
  yLabel: string;
  logX?: boolean;
  logY?: boolean;
  kind?: 'line' | 'bar';
  series: { name: string; points: ChartPoint[]; anchor?: boolean }[];
}

/** 'within noise': the ratio sits closer to the rule's threshold than the scenario's A/A floor. */
export type Verdict = 'confirmed' | 'refuted' | 'depends' | 'within noise' | 'not measured';

/** A claim about I/O models, checked against this machine's figures by a stated rule. */
export interface ClaimResult {
  id: number;
  claim: string;
  rule: string;
  figures: string;
  verdict: Verdict;
  /** The scenarios whose figures decide it. */
  scenarios?: string[];
}

export interface ScenarioResult {
  tables: Table[];
  charts?: Chart[];
  claims?: ClaimResult[];
  /** Raw figures for report.json. */
  data?: unknown;
  /**
   * Named figures the claims and targets read (bench/claims.ts lists the keys each rule
   * looks for, e.g. 'multiplex.epoll.n1000.us'); flat so that a rule never depends on a
   * scenario's private data shape.
   */
  metrics?: Record<string, number>;
}

export interface BenchContext {
  profile: Profile;
  /** CPUs for the server side and for the load generator (distinct where there are two). */
  serverCpus: number[];
  clientCpus: number[];
  /** Progress within the scenario, 0..1, with a label of what runs now. */
  progress(fraction: number, label: string): void;
  /** A line of commentary (shown under the progress bar, kept in the report). */
  log(message: string): void;
  /** A scratch directory on the project's filesystem, removed after the run. */
  tmpDir: string;
}

export interface Scenario {
  name: string;
  title: string;
  /** One paragraph: what is measured and which claim it tests. */
  description: string;
  /** Rough seconds in each profile, for the progress bar's estimate. */
  estimate: Record<Profile, number>;
  run(ctx: BenchContext): Promise<ScenarioResult>;
}
