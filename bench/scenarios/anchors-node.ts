/**
 * Anchors: Node's own servers (node:http hello, node:net echo) under rawio's load
 * generator at 1 and 50 connections, servers in a child pinned to the server CPU — the
 * figures every other server is compared with. Where wrk is installed it measures the same
 * HTTP target, interleaved with the load generator, as a cross-check of the tool itself
 * (the two should agree within 15%). The load generator's counts are also checked against
 * what the server saw.
 */
import { loadgen } from '../loadgen.js';
import { compare, ratio, type Comparison } from '../runner.js';
import type { BenchContext, Chart, ChartPoint, Scenario, ScenarioResult, Table } from '../scenario.js';
import { startServer, type PinnedServer } from '../server.js';
import { fmt, formatRatio, summarize } from '../stats.js';
import { loadgenFailure, runWrk, which, wrkMeasured, type LoadgenRun } from '../tools.js';

const serversModule = new URL('../servers/node.js', import.meta.url).href;
const ECHO_BYTES = 64;

export interface Case {
  server: 'node:http' | 'node:net echo';
  protocol: 'http' | 'echo';
  connections: number;
  comparison: Comparison;
  latency: Record<string, { p50: number; p99: number }>;
  /** The load generator's own CPU time per reply (its threads' getrusage). */
  cpuUsPerReq: number;
  countsMatch: boolean;
  errors: number;
}

export interface AnchorsNodeData {
  cases: {
    server: string;
    connections: number;
    samples: Record<string, number[]>;
    latency: Case['latency'];
    cpuUsPerReq: number;
    countsMatch: boolean;
    errors: number;
    wrkRatio?: { median: number; min: number; max: number };
  }[];
  wrk: boolean;
}

function settings(ctx: BenchContext) {
  return ctx.profile === 'full'
    ? { seconds: 5, warmup: 1, repeats: 5, conns: [1, 50, 500] }
    : { seconds: 2, warmup: 1, repeats: 3, conns: [1, 50] };
}

type Latencies = Record<string, { p50: number[]; p99: number[] }>;

function record(lat: Latencies, tool: string, p50: number, p99: number): void {
  const l = (lat[tool] ??= { p50: [], p99: [] });
  l.p50.push(p50);
  l.p99.push(p99);
}

/**
 * One load-generator run into the accumulator: its errors always, its latency and CPU per
 * reply (a measured round) only when it is a figure (loadgenFailure), else NaN. Returns its
 * req/s for the comparison, NaN when it is no figure (the rounds stay paired with wrk's).
 */
export function recordLoadgenRound(
  acc: Pick<Accumulator, 'latency' | 'cpuUsPerReq' | 'errors' | 'excluded'>,
  r: LoadgenRun & { received: number; cpuSeconds: number; latencyUs: { p50: number; p99: number } },
  measured: boolean,
): number {
  const e = r.errors;
  acc.errors += e.connect + e.reset + e.badReply + e.errorReply + e.lost;
  const why = loadgenFailure(r);
  if (why !== undefined) acc.excluded.push(why);
  const ok = why === undefined;
  if (measured) {
    record(acc.latency, 'rawio loadgen', ok ? r.latencyUs.p50 : NaN, ok ? r.latencyUs.p99 : NaN);
    acc.cpuUsPerReq.push(ok ? (r.cpuSeconds * 1e6) / Math.max(1, r.received) : NaN);
  }
  return ok ? r.rps : NaN;
}

/** The load generator as a contender: one run, its counts checked against the server's. */
function loadgenRun(ctx: BenchContext, server: PinnedServer, c: CaseKey, acc: Accumulator) {
  const s = settings(ctx);
  return async (round: number): Promise<number> => {
    const before = await server.stats();
    const r = await loadgen(
      {
        port: server.port,
        protocol: c.protocol,
        connections: c.connections,
        durationMs: s.seconds * 1000,
        warmupMs: 300,
        payloadSize: ECHO_BYTES,
        cpus: ctx.clientCpus,
      },
      { warmup: round < s.warmup },
    );
    const after = await server.stats();
    const seen =
      c.protocol === 'http' ? after.requests! - before.requests! : (after.bytes! - before.bytes!) / ECHO_BYTES;
    if (seen !== r.received) acc.countsMatch = false;
    const rps = recordLoadgenRound(acc, r, round >= s.warmup);
    if (Number.isNaN(rps)) ctx.log(`${c.server} c=${c.connections} loadgen round ${round}: ${acc.excluded.at(-1)}`);
    return rps;
  };
}

function wrkRun(ctx: BenchContext, server: PinnedServer, c: CaseKey, acc: Accumulator) {
  const s = settings(ctx);
  return async (round: number): Promise<number> => {
    const w = await runWrk({
      url: `http://127.0.0.1:${server.port}/`,
      connections: c.connections,
      seconds: s.seconds,
      cpus: ctx.clientCpus,
    });
    acc.errors += w.errors;
    // as in http-wrk: a run with errors (socket errors, non-2xx replies) or no request is no
    // figure — NaN keeps the rounds paired and the medians leave it out
    const ok = wrkMeasured(w);
    if (round >= s.warmup) record(acc.latency, 'wrk', ok ? w.latencyUs.p50 : NaN, ok ? w.latencyUs.p99 : NaN);
    return ok ? w.rps : NaN;
  };
}

type CaseKey = Pick<Case, 'server' | 'protocol' | 'connections'>;
export interface Accumulator {
  latency: Latencies;
  cpuUsPerReq: number[];
  countsMatch: boolean;
  errors: number;
  /** Why each load-generator run that is no figure (loadgenFailure) was not counted. */
  excluded: string[];
}

async function measureCase(
  ctx: BenchContext,
  server: PinnedServer,
  c: CaseKey,
  onRun: (label: string) => void,
): Promise<Case> {
  const s = settings(ctx);
  const acc: Accumulator = { latency: {}, cpuUsPerReq: [], countsMatch: true, errors: 0, excluded: [] };
  const contenders = [{ name: 'rawio loadgen', run: loadgenRun(ctx, server, c, acc) }];
  if (c.protocol === 'http' && which('wrk') !== null)
    contenders.push({ name: 'wrk', run: wrkRun(ctx, server, c, acc) });
  const comparison = await compare(contenders, {
    warmup: s.warmup,
    repeats: s.repeats,
    onRun: (_d, _t, name) => onRun(`${c.server} c=${c.connections} ${name}`),
  });
  const latency: Case['latency'] = {};
  for (const [tool, l] of Object.entries(acc.latency))
    latency[tool] = { p50: summarize(l.p50).median, p99: summarize(l.p99).median };
  const cpuUsPerReq = summarize(acc.cpuUsPerReq).median;
  return { ...c, comparison, latency, cpuUsPerReq, countsMatch: acc.countsMatch, errors: acc.errors };
}

const TARGETS = [
  { server: 'node:http', protocol: 'http', fn: 'nodeHttp' },
  { server: 'node:net echo', protocol: 'echo', fn: 'nodeNetEcho' },
] as const;

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const s = settings(ctx);
  const hasWrk = which('wrk') !== null;
  if (!hasWrk) ctx.log('wrk is not installed: no cross-check of the load generator');
  const runsOf = (protocol: string) => (s.warmup + s.repeats) * (protocol === 'http' && hasWrk ? 2 : 1);
  const totalRuns = TARGETS.reduce((a, t) => a + runsOf(t.protocol) * s.conns.length, 0);
  let runsDone = 0;
  const cases: Case[] = [];
  for (const t of TARGETS) {
    const server = await startServer({ module: serversModule, export: t.fn, cpus: ctx.serverCpus });
    try {
      for (const connections of s.conns) {
        const key = { server: t.server, protocol: t.protocol, connections };
        cases.push(await measureCase(ctx, server, key, (l) => ctx.progress(runsDone++ / totalRuns, l)));
      }
    } finally {
      await server.close();
    }
  }
  for (const c of cases) if (c.errors > 0) ctx.log(`${c.server} c=${c.connections}: ${c.errors} errors`);
  return report(cases, hasWrk);
}

/** The table, chart and metrics of the cases (exported for the tests). */
export function report(cases: Case[], hasWrk: boolean): ScenarioResult {
  const rows: (string | number)[][] = [];
  const data: AnchorsNodeData = { cases: [], wrk: hasWrk };
  for (const c of cases) {
    const wrkRatio = c.comparison.samples.wrk ? ratio(c.comparison, 'rawio loadgen', 'wrk') : undefined;
    for (const [tool, sum] of Object.entries(c.comparison.summary)) {
      rows.push([
        c.server,
        c.connections,
        tool,
        fmt(sum.median),
        `${fmt(sum.min)}–${fmt(sum.max)}`,
        fmt(c.latency[tool]?.p50 ?? NaN, 0),
        fmt(c.latency[tool]?.p99 ?? NaN, 0),
        tool === 'wrk' ? '' : fmt(c.cpuUsPerReq, 1),
        tool === 'wrk' && wrkRatio ? formatRatio(wrkRatio) : '',
      ]);
    }
    data.cases.push({
      server: c.server,
      connections: c.connections,
      samples: c.comparison.samples,
      latency: c.latency,
      cpuUsPerReq: c.cpuUsPerReq,
      countsMatch: c.countsMatch,
      errors: c.errors,
      ...(wrkRatio ? { wrkRatio: { median: wrkRatio.median, min: wrkRatio.min, max: wrkRatio.max } } : {}),
    });
  }
  const table: Table = {
    title: 'Node anchors: requests per second (median of the measured runs)',
    columns: [
      'server',
      'conns',
      'client',
      'req/s',
      'min–max',
      'p50 µs',
      'p99 µs',
      'client CPU µs/req',
      'loadgen / wrk',
    ],
    rows,
    note:
      'Server in a child process pinned to the server CPU, client pinned to the other; ' +
      'loadgen and wrk interleaved, warm-up run discarded. Echo: 64-byte messages, one in flight. ' +
      'A run with errors (wrk: socket errors, non-2xx; loadgen: connect, reset, bad or error reply, lost, or not ' +
      'ended as asked: bench/tools.ts) is no figure, left out of the medians; the log says why. ' +
      "Client CPU: the load generator threads' user + system time per reply. A wide min–max means a busy machine. " +
      `Load generator counts ${cases.every((c) => c.countsMatch) ? 'matched' : 'did NOT match'} the servers' counts.`,
  };
  const charts: Chart[] = [
    {
      title: 'Node anchors: throughput vs connections',
      xLabel: 'connections',
      yLabel: 'requests/s',
      logX: true,
      series: seriesOf(cases),
    },
  ];
  return { tables: [table], charts, data, metrics: metricsOf(cases) };
}

/** anchors.node-http.c50.rps, anchors.wrk.node-http.c50.rps, anchors.node-net-echo.c1.p99us … */
function metricsOf(cases: Case[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const c of cases) {
    const key = c.server === 'node:http' ? 'node-http' : 'node-net-echo';
    // a side no run of which counted (loadgenFailure, wrkMeasured) has no figure, nor a ratio
    const counted = (tool: string) => (c.comparison.summary[tool]?.n ?? 0) > 0;
    const own = counted('rawio loadgen');
    if (own) m[`anchors.${key}.c${c.connections}.rps`] = c.comparison.summary['rawio loadgen']!.median;
    const lat = c.latency['rawio loadgen'];
    if (own && lat && Number.isFinite(lat.p99)) m[`anchors.${key}.c${c.connections}.p99us`] = lat.p99;
    const wrk = counted('wrk');
    if (wrk) m[`anchors.wrk.${key}.c${c.connections}.rps`] = c.comparison.summary.wrk!.median;
    if (own && wrk)
      m[`anchors.loadgen-over-wrk.${key}.c${c.connections}`] = ratio(c.comparison, 'rawio loadgen', 'wrk').median;
  }
  return m;
}

function seriesOf(cases: Case[]): Chart['series'] {
  const by = new Map<string, ChartPoint[]>();
  for (const c of cases)
    for (const [tool, sum] of Object.entries(c.comparison.summary)) {
      const name = `${c.server} (${tool})`;
      by.set(name, [...(by.get(name) ?? []), [c.connections, sum.median, sum.min, sum.max]]);
    }
  return [...by].map(([name, points]) => ({ name, points }));
}

export const anchorsNode: Scenario = {
  name: 'anchors-node',
  title: "Anchors: Node's http and net servers (and wrk as a cross-check)",
  description:
    'node:http hello and node:net echo at 1 and 50 connections, measured with the native load ' +
    'generator and, when installed, wrk. The baseline the server models are compared with, and ' +
    'a check that the load generator agrees with wrk within 15%.',
  // (warm-up + repeats) x (loadgen + wrk on http, loadgen on echo) x connection counts x run time
  estimate: { quick: 4 * 3 * 2 * 2.6 + 4, full: 6 * 3 * 3 * 5.6 + 6 },
  run,
};
