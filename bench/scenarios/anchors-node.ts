/**
 * Anchors: Node's own servers (node:http hello, node:net echo) under rawio's load
 * generator at 1 and 50 connections, servers in a child pinned to the server CPU — the
 * figures every other server is compared with. Where wrk is installed it measures the same
 * HTTP target, interleaved with the load generator, as a cross-check of the tool itself
 * (the two should agree within 15%). The load generator's counts are also checked against
 * what the server saw.
 */
import { loadgen, type LoadgenResult } from '../loadgen.js';
import { compare, ratio, type Comparison } from '../runner.js';
import type { BenchContext, Chart, Scenario, ScenarioResult, Table } from '../scenario.js';
import { startServer, type PinnedServer } from '../server.js';
import { fmt, formatRatio } from '../stats.js';
import { runWrk, which } from '../tools.js';

const serversModule = new URL('../servers/node.js', import.meta.url).href;

interface Case {
  server: 'node:http' | 'node:net echo';
  protocol: 'http' | 'echo';
  connections: number;
  comparison: Comparison;
  latency: Record<string, { p50: number; p99: number }>;
  countsMatch: boolean;
  errors: number;
}

export interface AnchorsNodeData {
  cases: {
    server: string;
    connections: number;
    samples: Record<string, number[]>;
    latency: Case['latency'];
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

async function measureCase(
  ctx: BenchContext,
  server: PinnedServer,
  c: Pick<Case, 'server' | 'protocol' | 'connections'>,
  report: (label: string) => void,
): Promise<Case> {
  const s = settings(ctx);
  const latency: Case['latency'] = {};
  let countsMatch = true;
  let errors = 0;
  const useWrk = c.protocol === 'http' && which('wrk') !== null;
  const last: Record<string, LoadgenResult> = {};
  const contenders = [
    {
      name: 'rawio loadgen',
      run: async () => {
        const before = await server.stats();
        const r = await loadgen({
          port: server.port,
          protocol: c.protocol,
          connections: c.connections,
          durationMs: s.seconds * 1000,
          warmupMs: 300,
          cpus: ctx.clientCpus,
        });
        const after = await server.stats();
        const seen = c.protocol === 'http' ? after.requests! - before.requests! : (after.bytes! - before.bytes!) / 64;
        if (seen !== r.received) countsMatch = false;
        errors += r.errors.connect + r.errors.reset + r.errors.badReply + r.errors.errorReply;
        last.loadgen = r;
        latency['rawio loadgen'] = { p50: r.latencyUs.p50, p99: r.latencyUs.p99 };
        return r.rps;
      },
    },
  ];
  if (useWrk) {
    contenders.push({
      name: 'wrk',
      run: async () => {
        const w = await runWrk({
          url: `http://127.0.0.1:${server.port}/`,
          connections: c.connections,
          seconds: s.seconds,
          cpus: ctx.clientCpus,
        });
        errors += w.errors;
        latency.wrk = { p50: w.latencyUs.p50, p99: w.latencyUs.p99 };
        return w.rps;
      },
    });
  }
  const comparison = await compare(contenders, {
    warmup: s.warmup,
    repeats: s.repeats,
    onRun: (_d, _t, name) => report(`${c.server} c=${c.connections} ${name}`),
  });
  return { ...c, comparison, latency, countsMatch, errors };
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const s = settings(ctx);
  const targets = [
    { server: 'node:http', protocol: 'http', fn: 'nodeHttp' },
    { server: 'node:net echo', protocol: 'echo', fn: 'nodeNetEcho' },
  ] as const;
  const hasWrk = which('wrk') !== null;
  if (!hasWrk) ctx.log('wrk is not installed: no cross-check of the load generator');
  const perRun = s.seconds + 0.6;
  const runsPerCase = (s.warmup + s.repeats) * 2;
  const totalRuns = targets.length * s.conns.length * runsPerCase;
  let runsDone = 0;
  const cases: Case[] = [];
  for (const t of targets) {
    const server = await startServer({ module: serversModule, export: t.fn, cpus: ctx.serverCpus });
    try {
      for (const connections of s.conns) {
        const c = await measureCase(ctx, server, { server: t.server, protocol: t.protocol, connections }, (l) =>
          ctx.progress(runsDone++ / totalRuns, l),
        );
        if (t.protocol === 'echo' || !hasWrk) runsDone += runsPerCase / 2; // no wrk run here
        cases.push(c);
        void perRun;
      }
    } finally {
      await server.close();
    }
  }
  return report(cases, hasWrk);
}

function report(cases: Case[], hasWrk: boolean): ScenarioResult {
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
        tool === 'wrk' && wrkRatio ? formatRatio(wrkRatio) : '',
      ]);
    }
    data.cases.push({
      server: c.server,
      connections: c.connections,
      samples: c.comparison.samples,
      latency: c.latency,
      countsMatch: c.countsMatch,
      errors: c.errors,
      ...(wrkRatio ? { wrkRatio: { median: wrkRatio.median, min: wrkRatio.min, max: wrkRatio.max } } : {}),
    });
  }
  const table: Table = {
    title: 'Node anchors: requests per second (median of the measured runs)',
    columns: ['server', 'conns', 'client', 'req/s', 'min–max', 'p50 µs', 'p99 µs', 'loadgen / wrk'],
    rows,
    note:
      'Server in a child process pinned to the server CPU, client pinned to the other; ' +
      'loadgen and wrk interleaved, warm-up run discarded. Echo: 64-byte messages, one in flight. ' +
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
    const own = c.comparison.summary['rawio loadgen'];
    if (own) m[`anchors.${key}.c${c.connections}.rps`] = own.median;
    const lat = c.latency['rawio loadgen'];
    if (lat) m[`anchors.${key}.c${c.connections}.p99us`] = lat.p99;
    const wrk = c.comparison.summary.wrk;
    if (wrk) m[`anchors.wrk.${key}.c${c.connections}.rps`] = wrk.median;
    if (wrk)
      m[`anchors.loadgen-over-wrk.${key}.c${c.connections}`] = ratio(c.comparison, 'rawio loadgen', 'wrk').median;
  }
  return m;
}

function seriesOf(cases: Case[]): Chart['series'] {
  const by = new Map<string, [number, number][]>();
  for (const c of cases)
    for (const [tool, sum] of Object.entries(c.comparison.summary)) {
      const name = `${c.server} (${tool})`;
      by.set(name, [...(by.get(name) ?? []), [c.connections, sum.median]]);
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
  estimate: { quick: 2 * 2 * 4 * 2.6 + 4, full: 2 * 3 * 6 * 5.6 + 6 },
  run,
};
