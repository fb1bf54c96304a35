/**
 * redis-benchmark: Redis's own load tool as a cross-check of rawio's load generator on RESP,
 * the way anchors-node.ts holds wrk beside it for HTTP. `redis-benchmark -t set,get -c 50
 * -q` (and with -P 16) runs against redis-server and against rawio's `single` model with the
 * `resp` protocol, interleaved with rawio's load generator doing the same SETs and GETs (50
 * connections, one key, 3-byte values, as redis-benchmark does without -r / -d) against the
 * same servers. Servers pinned to the server CPU, both clients (taskset) to the other.
 * redis-benchmark also runs against bench/c/bare-server.c, the least a server can do: the
 * rate it reaches, and the client CPU's busy share, show what redis-benchmark allows here.
 * Only when redis-benchmark is installed; redis-server's rows only when it is.
 */
import { loadgen } from '../loadgen.js';
import { compare } from '../runner.js';
import type { BenchContext, Chart, Scenario, ScenarioResult, Table } from '../scenario.js';
import { fmt, formatRatio, summarize, type Summary } from '../stats.js';
import { loadgenFailure, runRedisBenchmark, which, type LoadgenRun } from '../tools.js';
import { formatFloor, noiseFloor } from '../verdict.js';
import { RESP_BOUNDS } from '../targets.js';
import { busyShare, cpuTimes, ticksPerSecond, treeCpu } from '../lib/external.js';
import { startAnchor, startBare, startModel, type Started, type MeasuredServer } from '../lib/measured-servers.js';

const WARMUP = 1;
const CLIENTS = 50;
const TESTS = ['set', 'get'] as const;
type Test = (typeof TESTS)[number];
type Tool = 'redis-benchmark' | 'loadgen';

interface ServerSpec {
  /** As the table shows it and as metric keys spell it. */
  name: 'redis-server' | 'single' | 'bare' | typeof AA;
  key: string;
  start(ctx: BenchContext): Promise<Started>;
}

/** redis-server measured a second time in each round, by redis-benchmark: the noise floor. */
const AA = 'redis-server A/A';
const AA_SPEC = { name: AA, key: 'redis-aa' } as const;

export const SERVERS: ServerSpec[] = [
  { name: 'redis-server', key: 'redis', start: (ctx) => startAnchor(ctx, 'redis') },
  { name: 'single', key: 'single', start: (ctx) => startModel(ctx, 'single', { model: 'single', protocol: 'resp' }) },
  // What redis-benchmark allows: the least a server can do (bench/c/bare-server.c).
  { name: 'bare', key: 'bare', start: (ctx) => startBare(ctx, 'resp') },
];

function settings(ctx: BenchContext) {
  return ctx.profile === 'full'
    ? { seconds: 2, repeats: 3, depths: [1, 16] }
    : { seconds: 0.75, repeats: 2, depths: [1, 16] };
}

/** Samples by measured round (NaN where a run failed), so that pairs stay pairs. */
type Samples = Record<string, number[]>;
const sampleKey = (tool: Tool, server: string, depth: number, test: Test) => `${tool}|${server}|${depth}|${test}`;

/** Median of the ratios a[i] / b[i] over the rounds where both ran. */
function paired(a: number[] = [], b: number[] = []) {
  const r: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++)
    if (Number.isFinite(a[i]) && Number.isFinite(b[i]) && b[i]! > 0) r.push(a[i]! / b[i]!);
  return summarize(r);
}

/**
 * a's median over b's — the ratio the targets judge — with the min–max of the rounds' paired
 * ratios, printed with the digits that tell it from `bounds`; 'n/a' without both.
 */
function ofMedians(a: Summary, b: Summary, pairs: Summary, bounds: readonly number[] = []): string {
  if (!(b.median > 0) || !Number.isFinite(a.median) || pairs.n === 0) return 'n/a';
  return formatRatio({ ...pairs, median: a.median / b.median }, bounds);
}

interface Ctx {
  ctx: BenchContext;
  samples: Samples;
  errors: string[];
  /** The last rate redis-benchmark measured per server and depth: sizes its next -n. */
  lastRps: Map<string, number>;
}

function redisBenchRun(c: Ctx, server: Pick<ServerSpec, 'name'>, target: MeasuredServer, depth: number) {
  const s = settings(c.ctx);
  return async (round: number): Promise<number> => {
    const warm = round < WARMUP;
    const guess = c.lastRps.get(`${server.name}|${depth}`);
    // the warm-up is short; later runs last about `seconds` a test at the rate last seen
    const requests = warm || !guess ? 5000 * depth : Math.max(5000, Math.round(guess * s.seconds));
    let out: Awaited<ReturnType<typeof runRedisBenchmark>> = {};
    const ticks = treeCpu(target.rootPid);
    const client = cpuTimes(c.ctx.clientCpus);
    try {
      out = await runRedisBenchmark({
        port: target.port,
        tests: [...TESTS],
        clients: CLIENTS,
        requests,
        pipeline: depth,
        cpus: c.ctx.clientCpus,
      });
    } catch (e) {
      c.errors.push(`redis-benchmark → ${server.name} -P ${depth}: ${(e as Error).message.split('\n')[0]}`);
    }
    const rps = TESTS.map((t) => out[t.toUpperCase()]?.rps ?? NaN);
    // the server's CPU (every thread, from /proc) over the SETs and GETs of this run, and its kernel share
    const after = treeCpu(target.rootPid);
    const us = (t: number) => (t / ticksPerSecond()) * 1e6;
    const cpuUs = us(after.user + after.system - ticks.user - ticks.system);
    const kernelUs = us(after.system - ticks.system);
    const clientBusy = busyShare(client, cpuTimes(c.ctx.clientCpus));
    if (!warm && rps.every(Number.isFinite)) {
      (c.samples[`cpu|${server.name}|${depth}`] ??= []).push(cpuUs / (requests * TESTS.length));
      (c.samples[`kernel|${server.name}|${depth}`] ??= []).push(kernelUs / (requests * TESTS.length));
      (c.samples[`client|${server.name}|${depth}`] ??= []).push(clientBusy);
    }
    if (rps.every(Number.isFinite)) c.lastRps.set(`${server.name}|${depth}`, Math.min(...rps));
    if (!warm)
      TESTS.forEach((t, i) => (c.samples[sampleKey('redis-benchmark', server.name, depth, t)] ??= []).push(rps[i]!));
    return rps.every(Number.isFinite) ? (rps[0]! + rps[1]!) / 2 : 0;
  };
}

/**
 * One round of the load generator's tests (SET, GET) against a server: each test's req/s,
 * NaN for a run that is no figure (loadgenFailure: errors, or not ended as asked), so the
 * rounds stay paired with redis-benchmark's and the medians leave it out; and what to log.
 */
export function loadgenRound(
  server: string,
  depth: number,
  runs: readonly { command: string; r: LoadgenRun }[],
): { rps: number[]; errors: string[] } {
  const errors: string[] = [];
  const rps = runs.map(({ command, r }) => {
    const e = r.errors;
    const n = e.connect + e.reset + e.badReply + e.errorReply + e.lost;
    const why = loadgenFailure(r);
    if (n > 0 || why !== undefined)
      errors.push(`loadgen → ${server} ${command} -P ${depth}: ${n} errors, ${why ?? 'counted'}`);
    return why === undefined ? r.rps : NaN;
  });
  return { rps, errors };
}

function loadgenRun(c: Ctx, server: ServerSpec, target: MeasuredServer, depth: number) {
  const s = settings(c.ctx);
  return async (round: number): Promise<number> => {
    const warm = round < WARMUP;
    const runs: { command: string; r: LoadgenRun }[] = [];
    for (const command of TESTS) {
      const r = await loadgen(
        {
          port: target.port,
          protocol: 'resp',
          command,
          keyspace: 1,
          valueSize: 3,
          connections: CLIENTS,
          pipeline: depth,
          durationMs: warm ? 300 : s.seconds * 1000,
          warmupMs: warm ? 50 : 150,
          drainMs: 300,
          cpus: c.ctx.clientCpus,
        },
        { warmup: warm },
      );
      runs.push({ command, r });
    }
    const { rps, errors } = loadgenRound(server.name, depth, runs);
    c.errors.push(...errors);
    if (!warm) TESTS.forEach((t, i) => (c.samples[sampleKey('loadgen', server.name, depth, t)] ??= []).push(rps[i]!));
    return (rps[0]! + rps[1]!) / 2;
  };
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  if (which('redis-benchmark') === null) {
    ctx.log('redis-benchmark is not installed (apt-get install redis-tools): not measured');
    const r = redisReport({}, [], [], [{ server: 'all', reason: 'redis-benchmark is not installed' }]);
    return { ...r, metrics: { ...r.metrics, 'redisbench.no-redis-benchmark': 1 } };
  }
  const s = settings(ctx);
  const live: { spec: ServerSpec; target: MeasuredServer }[] = [];
  const missing: Missing[] = [];
  const c: Ctx = { ctx, samples: {}, errors: [], lastRps: new Map() };
  try {
    for (const spec of SERVERS) {
      const st = await spec.start(ctx);
      if (st.ok) live.push({ spec, target: st.target });
      else
        missing.push({
          server: spec.name,
          reason: st.reason === 'not installed' ? `${spec.name} is not installed` : st.reason,
        });
    }
    const runsPerRound = live.reduce(
      (n, l) => n + (l.spec.name === 'bare' ? 1 : l.spec.name === 'redis-server' ? 3 : 2),
      0,
    );
    const total = s.depths.length * runsPerRound * (WARMUP + s.repeats);
    let done = 0;
    for (const depth of s.depths)
      await compare(
        live.flatMap(({ spec, target }) => [
          { name: `redis-benchmark → ${spec.name}`, run: redisBenchRun(c, spec, target, depth) },
          // the bare server is a yardstick of redis-benchmark, not a server the load generator checks
          ...(spec.name === 'bare'
            ? []
            : [{ name: `loadgen → ${spec.name}`, run: loadgenRun(c, spec, target, depth) }]),
          ...(spec.name === 'redis-server'
            ? [{ name: `redis-benchmark → ${AA}`, run: redisBenchRun(c, AA_SPEC, target, depth) }]
            : []),
        ]),
        {
          warmup: WARMUP,
          repeats: s.repeats,
          onRun: (_d, _t, name) => ctx.progress(done++ / total, `-P ${depth} ${name}`),
        },
      );
  } finally {
    for (const { target } of live) await target.close();
  }
  for (const m of missing) ctx.log(`${m.server}: not measured: ${m.reason}`);
  for (const e of c.errors) ctx.log(e);
  const r = redisReport(
    c.samples,
    live.map((l) => l.spec),
    s.depths,
    missing,
  );
  // redis-server is every target's denominator: targets.ts names why it is missing
  const redis = missing.find((m) => m.server === 'redis-server');
  const flag =
    redis && (redis.reason.endsWith('not installed') ? 'redisbench.no-redis-server' : 'redisbench.redis-failed');
  return flag ? { ...r, metrics: { ...r.metrics, [flag]: 1 } } : r;
}

interface Missing {
  server: string;
  reason: string;
}

/** The table, chart and metrics from the samples (`<tool>|<server>|<depth>|<test>` keys, NaN where a run failed). */
export function redisReport(
  samples: Samples,
  live: Pick<ServerSpec, 'name' | 'key'>[],
  depths: number[],
  missing: Missing[],
): ScenarioResult {
  const rows: (string | number)[][] = [];
  const metrics: Record<string, number> = {};
  const chart: Chart = {
    title: 'RESP SET/GET at 50 connections: redis-benchmark beside the load generator',
    xLabel: 'pipeline depth',
    yLabel: 'requests/s',
    kind: 'bar',
    series: [],
  };
  const series = new Map<string, [number, number][]>();
  for (const depth of depths)
    for (const test of TESTS)
      for (const spec of live) {
        const get = (tool: Tool, server = spec.name) => samples[sampleKey(tool, server, depth, test)] ?? [];
        const rb = summarize(get('redis-benchmark').filter(Number.isFinite));
        const lg = summarize(get('loadgen').filter(Number.isFinite));
        const redis = summarize(get('redis-benchmark', 'redis-server').filter(Number.isFinite));
        // the ratio the RESP targets judge (of the medians), with the digits that tell it from their bound
        const vsRedis =
          spec.name === 'redis-server'
            ? ''
            : ofMedians(rb, redis, paired(get('redis-benchmark'), get('redis-benchmark', 'redis-server')), [
                RESP_BOUNDS[depth] ?? NaN,
              ]);
        // the bare server is measured by redis-benchmark alone
        const byLoadgen = spec.name !== 'bare';
        rows.push([
          depth,
          test.toUpperCase(),
          spec.name,
          fmt(rb.median),
          `${fmt(rb.min)}–${fmt(rb.max)}`,
          byLoadgen ? fmt(lg.median) : '',
          byLoadgen ? `${fmt(lg.min)}–${fmt(lg.max)}` : '',
          byLoadgen ? ofMedians(lg, rb, paired(get('loadgen'), get('redis-benchmark'))) : '',
          vsRedis,
        ]);
        const base = `${spec.key}.${test}.p${depth}.rps`;
        if (Number.isFinite(rb.median)) metrics[`redisbench.${base}`] = rb.median;
        if (Number.isFinite(lg.median)) metrics[`redisbench.loadgen.${base}`] = lg.median;
        for (const [tool, sum] of [
          ['redis-benchmark', rb],
          ['loadgen', lg],
        ] as const) {
          if (!Number.isFinite(sum.median)) continue;
          const name = `${spec.name} ${test.toUpperCase()} (${tool})`;
          series.set(name, [...(series.get(name) ?? []), [depth, sum.median]]);
        }
      }
  for (const depth of depths)
    for (const spec of live) {
      const cpu = summarize(samples[`cpu|${spec.name}|${depth}`] ?? []);
      if (!Number.isFinite(cpu.median)) continue;
      metrics[`redisbench.${spec.key}.p${depth}.cpuUsPerReq`] = cpu.median;
      const kernel = summarize(samples[`kernel|${spec.name}|${depth}`] ?? []);
      if (Number.isFinite(kernel.median)) metrics[`redisbench.${spec.key}.p${depth}.kernelUsPerReq`] = kernel.median;
      const ofIt = Number.isFinite(kernel.median) ? ` (kernel ${fmt(kernel.median, 2)})` : '';
      const busy = summarize((samples[`client|${spec.name}|${depth}`] ?? []).filter(Number.isFinite));
      if (Number.isFinite(busy.median)) metrics[`redisbench.${spec.key}.p${depth}.clientBusy`] = busy.median;
      const client = Number.isFinite(busy.median) ? `, client CPU ${fmt(busy.median * 100, 0)}% busy` : '';
      rows.push([
        depth,
        'SET+GET',
        spec.name,
        `server CPU ${fmt(cpu.median, 2)} µs/req${ofIt}${client}`,
        '',
        '',
        '',
        '',
        '',
      ]);
    }
  for (const depth of depths) {
    const get = (server: string) => TESTS.flatMap((t) => samples[sampleKey('redis-benchmark', server, depth, t)] ?? []);
    const floor = noiseFloor(get('redis-server'), get(AA));
    if (floor !== undefined) metrics[`redisbench.floor.p${depth}.rps`] = floor;
    rows.push([depth, 'SET+GET', AA, formatFloor(floor), '', '', '', '', '']);
  }
  for (const m of missing) rows.push(['', '', m.server, `not measured: ${m.reason}`, '', '', '', '', '']);
  chart.series = [...series].map(([name, points]) => ({ name, points }));
  const table: Table = {
    title: 'redis-benchmark beside the load generator: RESP SET and GET, 50 connections',
    columns: [
      '-P',
      'test',
      'server',
      'redis-benchmark req/s',
      'min–max',
      'loadgen req/s',
      'min–max',
      'loadgen / redis-benchmark',
      'x redis-server (redis-benchmark)',
    ],
    rows,
    note:
      'redis-benchmark -t set,get -c 50 -q -e (a run with an error reply is no figure; -P 16: 16 in flight per connection), -n sized to about the run time at ' +
      'the rate last measured; the load generator sends the same SETs, then GETs, of one key with 3-byte values (a run ' +
      'with errors, or not ended as asked, is no figure either: bench/tools.ts loadgenFailure, the reason in the log). ' +
      'Servers pinned to the server CPU (single: rawio serve({ model: "single", protocol: "resp" })), both clients ' +
      'to the other with taskset; every (tool, server) pair interleaved, warm-up run discarded, medians; ratios ' +
      'are of the medians (what the targets judge), with the min–max of the paired (same-round) ratios. bare: bench/c/bare-server.c, the least a server can do (one ' +
      'read and one send per ready connection, fixed replies), by redis-benchmark only: the rate it reaches is ' +
      "what redis-benchmark allows on this machine. Server CPU: the server process tree's user + system time per " +
      'request (/proc), and as "kernel" the system time alone (syscalls and the TCP stack), which the ' +
      "server's own code in user space cannot lower. Client CPU busy: the client CPU's busy share during the run " +
      '(/proc/stat; near 100% the client, not the server, sets the pace).',
  };
  return { tables: [table], charts: live.length ? [chart] : [], metrics, data: { samples, missing } };
}

export const redisBenchmark: Scenario = {
  name: 'redis-benchmark',
  title:
    "redis-benchmark: Redis's own tool beside the load generator, on redis-server, rawio single and a bare C server",
  description:
    'redis-benchmark SET/GET at 50 connections, without and with 16-deep pipelining, against redis-server and ' +
    "rawio's single model (resp), interleaved with rawio's load generator doing the same: a cross-check of the " +
    'load generator on RESP, and a second opinion on the RESP targets. A bare C server (the least a server can do) ' +
    'shows what redis-benchmark itself allows. Only when redis-benchmark is installed.',
  // depths x (2 tools x 2 servers + the bare server) x (short warm-up + repeats x 2 tests x ~0.9 s)
  estimate: { quick: 2 * 5 * (0.6 + 2 * 1.8) + 3, full: 2 * 5 * (0.6 + 3 * 4.4) + 3 },
  run,
};
