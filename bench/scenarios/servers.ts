/**
 * Servers: every rawio model × protocol (echo, http, resp) at 1, 50 and 500 keep-alive
 * connections, with the anchors side by side in the same run — node:http (http), a
 * node:net echo (echo), nginx with one worker (http) and redis-server (resp) when
 * installed. Every server runs pinned to the server CPU, the load generator to the other;
 * all servers of a protocol are up at once and measured interleaved (A B C, C B A …), so a
 * busy moment of the machine hits them all alike. Tests claims 6, 8, 9 and 11, and the HTTP and
 * RESP targets.
 */
import { answeredNothing, loadgen } from '../loadgen.js';
import { compare } from '../runner.js';
import type { BenchContext, Chart, ChartPoint, Scenario, ScenarioResult, Table } from '../scenario.js';
import { fmt, median, summarize } from '../stats.js';
import { loadgenFailure, type LoadgenRun } from '../tools.js';
import { settle } from '../lib/external.js';
import { noiseFloor } from '../verdict.js';
import { startAnchor, startModel, startNode, type Started, type MeasuredServer } from '../lib/measured-servers.js';

type Protocol = 'echo' | 'http' | 'resp';
/** One short discarded round first: JIT, TCP windows, and thread-per-connection's thread starts. */
const WARMUP = 1;
const MODELS = [
  'iterative',
  'thread-per-connection',
  'single',
  'worker-pool',
  'multi-reactor',
  'multi-reactor-1',
  'multi-reactor-pool',
  'multi-process',
  'proactor',
  'multi-proactor',
  'multi-proactor-1',
];
/** `single` measured a second time each round (the same process): the A/A noise floor of a case. */
const AA = 'single A/A';
const targetOf = (n: string) => (n === AA ? 'single' : n);
const ANCHORS: Record<Protocol, string[]> = {
  http: ['node-http', 'nginx'],
  echo: ['node-net-echo'],
  resp: ['redis'],
};

interface Case {
  protocol: Protocol;
  connections: number;
  pipeline: number;
  servers: string[];
}

interface Row {
  protocol: Protocol;
  connections: number;
  pipeline: number;
  server: string;
  rps: number[];
  p50: number[];
  p99: number[];
  errors: number;
  /** Why each round that is no figure (loadgenFailure) was not counted; its figures are NaN. */
  excluded: string[];
  note?: string;
}

/**
 * One measured round into its row: its errors always (the table shows them), its figures
 * only when the run is a measurement (loadgenFailure), else NaN in every series, so the
 * rounds stay paired (the A/A floor) and the medians leave it out. Returns why it was not
 * counted, or undefined.
 */
export function recordRound(
  row: Pick<Row, 'rps' | 'p50' | 'p99' | 'errors' | 'excluded'>,
  r: LoadgenRun & { latencyUs: { p50: number; p99: number } },
): string | undefined {
  const e = r.errors;
  row.errors += e.connect + e.reset + e.badReply + e.errorReply + e.lost;
  const why = loadgenFailure(r);
  row.rps.push(why === undefined ? r.rps : NaN);
  row.p50.push(why === undefined ? r.latencyUs.p50 : NaN);
  row.p99.push(why === undefined ? r.latencyUs.p99 : NaN);
  if (why !== undefined) row.excluded.push(why);
  return why;
}

function plan(ctx: BenchContext): { cases: Case[]; seconds: number; repeats: number } {
  const all = (p: Protocol) => [...MODELS, AA, ...ANCHORS[p]];
  if (ctx.profile === 'full') {
    const cases: Case[] = [];
    for (const protocol of ['http', 'echo', 'resp'] as const)
      for (const connections of [1, 50, 500])
        cases.push({ protocol, connections, pipeline: 1, servers: all(protocol) });
    cases.push({ protocol: 'resp', connections: 50, pipeline: 16, servers: all('resp') });
    return { cases, seconds: 3, repeats: 3 };
  }
  const main = ['single', 'multi-reactor'];
  return {
    cases: [
      { protocol: 'http', connections: 50, pipeline: 1, servers: all('http') }, // claims 9 and 11
      { protocol: 'http', connections: 1, pipeline: 1, servers: [...main, 'node-http', 'nginx'] },
      { protocol: 'http', connections: 500, pipeline: 1, servers: [...main, 'node-http', 'nginx'] },
      {
        protocol: 'echo',
        connections: 50,
        pipeline: 1,
        servers: [...main, AA, 'thread-per-connection', 'proactor', 'node-net-echo'],
      },
      { protocol: 'resp', connections: 50, pipeline: 1, servers: [...main, AA, 'proactor', 'redis'] },
      { protocol: 'resp', connections: 50, pipeline: 16, servers: ['single', 'redis'] },
    ],
    seconds: 1,
    repeats: 3,
  };
}

function start(ctx: BenchContext, protocol: Protocol, name: string): Promise<Started> {
  if (name === 'node-http') return startNode(ctx, name, 'nodeHttp');
  if (name === 'node-net-echo') return startNode(ctx, name, 'nodeNetEcho');
  if (name === 'nginx') return startAnchor(ctx, 'nginx');
  if (name === 'redis') return startAnchor(ctx, 'redis');
  // `<model>-1`: the main/sub models with one sub thread (claims 9 and 11)
  const one = name === 'multi-reactor-1' || name === 'multi-proactor-1';
  const model = one ? name.slice(0, -2) : name;
  const extra = one ? { workers: 1 } : {};
  // thread-per-connection: room for the 500-connection case
  const cap = name === 'thread-per-connection' ? { workers: 600 } : {};
  return startModel(ctx, name, { model, protocol, ...extra, ...cap });
}

async function measureProtocol(ctx: BenchContext, protocol: Protocol, cases: Case[], p: ReturnType<typeof plan>) {
  const names = [...new Set(cases.flatMap((c) => c.servers))].filter((n) => n !== AA);
  const targets = new Map<string, MeasuredServer>();
  const rows: Row[] = [];
  const unavailable = new Map<string, string>();
  try {
    for (const n of names) {
      const s = await start(ctx, protocol, n);
      if (s.ok) targets.set(n, s.target);
      else unavailable.set(n, s.reason);
    }
    for (const c of cases) {
      const live = c.servers.filter((n) => targets.has(targetOf(n)));
      const acc = new Map<string, Row>();
      for (const n of c.servers) {
        const row: Row = { ...c, server: n, rps: [], p50: [], p99: [], errors: 0, excluded: [] };
        if (unavailable.has(n)) row.note = unavailable.get(n);
        acc.set(n, row);
        rows.push(row);
      }
      await compare(
        live.map((n) => ({
          name: n,
          run: async (round) => {
            const warm = round < WARMUP;
            // Every server shares the server CPU: start each run with all of them quiet.
            const quietAfter = await settle([...targets.values()].map((t) => t.rootPid));
            const r = await loadgen(
              {
                port: targets.get(targetOf(n))!.port,
                protocol,
                connections: c.connections,
                pipeline: c.pipeline,
                durationMs: warm ? 400 : p.seconds * 1000,
                warmupMs: warm ? 100 : 300,
                drainMs: 300,
                command: 'setget',
                payloadSize: 64,
                cpus: ctx.clientCpus,
              },
              { warmup: warm },
            );
            const row = acc.get(n)!;
            if (warm) {
              // no figure, and no failure (bench/loadgen.ts), but the log says which server it was
              if (answeredNothing(r)) {
                const e = r.errors;
                ctx.log(
                  `${protocol} ${caseKey(row)} ${n}: the warm-up got no reply in ${r.seconds.toFixed(2)} s ` +
                    `(lost ${e.lost}, connect ${e.connect}, reset ${e.reset}; servers quiet after ${Math.round(quietAfter)} ms)`,
                );
              }
              return r.rps;
            }
            const why = recordRound(row, r);
            if (why !== undefined) ctx.log(`${protocol} ${caseKey(row)} ${n}: round ${row.rps.length} ${why}`);
            return why === undefined ? r.rps : NaN;
          },
        })),
        {
          warmup: WARMUP,
          repeats: p.repeats,
          onRun: (_d, _t, n) => ctx.progress(progressOf(), `${protocol} c${c.connections} ${n}`),
        },
      );
    }
  } finally {
    for (const t of targets.values()) await t.close();
  }
  return rows;
}

let done = 0;
let total = 1;
const progressOf = () => Math.min(1, done++ / total);

/** The median of the counted rounds (an uncounted one is NaN), NaN when none. */
const med = median;
/** Rounds that are figures. */
const counted = (r: Row) => r.rps.filter(Number.isFinite).length;
/** "2 of 3": rounds counted of those run. */
const roundsOf = (r: Row) => `${counted(r)} of ${r.rps.length}`;
/** The table's note for a row with rounds not counted: how many, and the first reason. */
const exclusionNote = (r: Row) => (r.excluded.length === 0 ? '' : `${r.excluded.length} round(s) ${r.excluded[0]}`);

const caseKey = (r: Row) => `c${r.connections}${r.pipeline > 1 ? `p${r.pipeline}` : ''}`;

export function metricsOf(rows: Row[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const r of rows) {
    if (r.rps.length > 0)
      m[`servers.${r.protocol}.${r.server === AA ? 'single-aa' : r.server}.${caseKey(r)}.errors`] = r.errors;
    // every round errored: no figure, so the claims that read it say not measured
    if (counted(r) === 0) continue;
    const base = `servers.${r.protocol}.${r.server === AA ? 'single-aa' : r.server}.${caseKey(r)}`;
    m[`${base}.rps`] = med(r.rps);
    m[`${base}.p50us`] = med(r.p50);
    m[`${base}.p99us`] = med(r.p99);
    // the anchors under the names targets.ts reads
    if (r.server === 'nginx') m[`anchors.nginx.hello.${caseKey(r)}.rps`] = med(r.rps);
    if (r.server === 'redis') m[`anchors.redis.${caseKey(r)}.rps`] = med(r.rps);
    const single =
      r.server === AA &&
      rows.find((o) => o.server === 'single' && o.protocol === r.protocol && caseKey(o) === caseKey(r));
    const floor = single ? noiseFloor(single.rps, r.rps) : undefined;
    if (floor !== undefined) m[`servers.${r.protocol}.floor.${caseKey(r)}`] = floor;
  }
  return m;
}

export function tableOf(rows: Row[]): Table {
  return {
    title: 'Servers: requests per second by model, protocol and connections',
    columns: ['protocol', 'conns', 'server', 'req/s', 'min–max', 'p50 µs', 'p99 µs', 'rounds', 'errors', 'not counted'],
    rows: rows.map((r) => {
      if (r.rps.length === 0)
        return [r.protocol, caseKey(r), r.server, r.note ?? 'not available', '', '', '', '', '', ''];
      if (counted(r) === 0)
        return [r.protocol, caseKey(r), r.server, 'no figure', '', '', '', roundsOf(r), r.errors, exclusionNote(r)];
      const s = summarize(r.rps);
      return [
        r.protocol,
        caseKey(r),
        r.server,
        fmt(s.median),
        `${fmt(s.min)}–${fmt(s.max)}`,
        fmt(med(r.p50)),
        fmt(med(r.p99)),
        roundsOf(r),
        r.errors,
        exclusionNote(r),
      ];
    }),
    note:
      'Each server in its own process pinned to the server CPU (rawio models with serve({ cpus })), the native load ' +
      'generator pinned to the other CPU; keep-alive, closed loop; servers of one protocol measured interleaved, ' +
      'each run started once every server process is quiet (thread-per-connection tears down its threads for ' +
      'seconds after its clients leave), medians of the measured runs. echo: 64-byte messages; resp: SET/GET alternating (p16: 16 in flight per ' +
      'connection); http: GET / hello. multi-reactor-1 and multi-proactor-1: the main/sub models with one sub thread (claims 9 and 11). Errors: connect, reset, bad ' +
      'or error replies, replies lost; a round with any of them (or that did not end as asked) is not counted ' +
      '(bench/tools.ts loadgenFailure): its figures are left out of the medians, "rounds" says how many counted, ' +
      'and a row none counted has no figure. iterative serves one connection at a time, so beyond 1 connection the others wait. ' +
      'Every run opens its connections anew, so thread-per-connection starts a Node worker thread per connection inside ' +
      'the window (tens of ms each on a busy CPU): at 50+ connections most of a short run is thread start-up.',
  };
}

function chartsOf(rows: Row[]): Chart[] {
  return (['http', 'echo', 'resp'] as const).map((protocol) => {
    const by = new Map<string, ChartPoint[]>();
    for (const r of rows)
      if (r.protocol === protocol && r.pipeline === 1 && counted(r) > 0 && r.server !== AA) {
        const s = summarize(r.rps);
        const point: ChartPoint = [r.connections, s.median, s.min, s.max];
        by.set(r.server, [...(by.get(r.server) ?? []), point]);
      }
    return {
      title: `Servers (${protocol}): throughput vs connections (whiskers: min–max of the rounds)`,
      xLabel: 'connections',
      yLabel: 'requests/s',
      logX: true,
      series: [...by].map(([name, points]) => ({
        name,
        points: points.sort((a, b) => a[0] - b[0]),
        ...(ANCHORS[protocol].includes(name) ? { anchor: true } : {}),
      })),
    };
  });
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const p = plan(ctx);
  done = 0;
  total = p.cases.reduce((a, c) => a + c.servers.length * (p.repeats + WARMUP), 0);
  const rows: Row[] = [];
  for (const protocol of ['http', 'echo', 'resp'] as const) {
    const cases = p.cases.filter((c) => c.protocol === protocol);
    if (cases.length) rows.push(...(await measureProtocol(ctx, protocol, cases, p)));
  }
  for (const r of rows) if (r.note) ctx.log(`${r.protocol} ${r.server}: ${r.note}`);
  for (const r of rows) if (r.errors > 0) ctx.log(`${r.protocol} ${caseKey(r)} ${r.server}: ${r.errors} errors`);
  return { tables: [tableOf(rows)], charts: chartsOf(rows), metrics: metricsOf(rows), data: { rows } };
}

export const servers: Scenario = {
  name: 'servers',
  title: 'Servers: every model × protocol, with nginx, redis-server and Node beside them',
  description:
    'Every server model with the echo, HTTP and RESP protocols at 1, 50 and 500 keep-alive connections (quick: ' +
    'every model at 50 connections for HTTP, the main ones elsewhere), measured interleaved with node:http, a ' +
    'node:net echo, nginx and redis-server when installed. Tests claims 6, 8, 9 and 11 and the HTTP and RESP targets.',
  estimate: { quick: 150, full: 9 * 3 * 11 * 3.8 + 30 },
  run,
};
