/**
 * Latency at a fixed rate: every server model, with nginx and node:http beside them (HTTP
 * hello) and redis-server (RESP SET/GET), offered the same load — half of what the anchor
 * served in a closed-loop run just before — by the load generator's fixed-rate mode, which
 * times each request from when it was due to be sent, not from when it went out, so a
 * server that stalls is charged for the requests it held up (no coordinated omission).
 * The bare C server (bench/c/bare-server.c) runs beside them: its tail is what the machine
 * and the client alone add. p50, p99 and p99.9 per server; each server measured `rounds`
 * times, interleaved, medians with the rounds' min–max as whiskers. Servers pinned to the server CPU, the load
 * generator to the other.
 */
import { loadgen } from '../loadgen.js';
import { compare } from '../runner.js';
import type { BenchContext, Chart, ChartPoint, Scenario, ScenarioResult, Table } from '../scenario.js';
import { fmt, summarize } from '../stats.js';
import { modelNames } from '../../src/models/types.js';
import { settle } from '../lib/external.js';
import { loadgenFailure, type LoadgenRun } from '../tools.js';
import {
  startAnchor,
  startBare,
  startModel,
  startNode,
  type MeasuredServer,
  type Started,
} from '../lib/measured-servers.js';

type Protocol = 'http' | 'resp';
const CONNECTIONS = 50;
/** Every model, from the one list of them. */
const MODELS = modelNames;
const ANCHOR: Record<Protocol, string> = { http: 'nginx', resp: 'redis-server' };
/** Beside the models: Node's own server, and the bare C server (what the machine and client alone do to the tail). */
const OTHERS: Record<Protocol, string[]> = { http: ['node-http', 'bare'], resp: ['bare'] };
const PCTS = ['p50', 'p99', 'p999'] as const;

function settings(ctx: BenchContext) {
  return ctx.profile === 'full' ? { seconds: 5, rounds: 3 } : { seconds: 1.5, rounds: 2 };
}

function start(ctx: BenchContext, protocol: Protocol, name: string): Promise<Started> {
  if (name === 'nginx') return startAnchor(ctx, 'nginx');
  if (name === 'redis-server') return startAnchor(ctx, 'redis');
  if (name === 'node-http') return startNode(ctx, name, 'nodeHttp');
  if (name === 'bare') return startBare(ctx, protocol);
  return startModel(ctx, name, { model: name, protocol });
}

const load = (protocol: Protocol) =>
  protocol === 'http' ? {} : { command: 'setget' as const, keyspace: 1000, valueSize: 16 };

interface Row {
  protocol: Protocol;
  server: string;
  rate: number;
  pct: Record<(typeof PCTS)[number], number[]>;
  achieved: number[];
  errors: number;
  /** Why each round that is no figure (loadgenFailure) was not counted; its figures are NaN. */
  excluded: string[];
}

/**
 * One round into its row: its errors always, its percentiles and achieved rate only when the
 * run is a measurement (loadgenFailure), else NaN (the medians leave it out). Returns why it
 * was not counted, or undefined.
 */
export function recordRound(
  row: Pick<Row, 'pct' | 'achieved' | 'errors' | 'excluded'>,
  r: LoadgenRun & { latencyUs: Record<(typeof PCTS)[number], number> & { count: number } },
): string | undefined {
  const e = r.errors;
  row.errors += e.connect + e.reset + e.badReply + e.errorReply + e.lost;
  const why = loadgenFailure(r);
  // a round with no reply has no percentiles (the histogram is empty), not a latency of 0
  for (const p of PCTS) row.pct[p].push(why === undefined && r.latencyUs.count > 0 ? r.latencyUs[p] : NaN);
  row.achieved.push(why === undefined ? r.rps : NaN);
  if (why !== undefined) row.excluded.push(why);
  return why;
}

/** The anchor's closed-loop req/s (one short run), or undefined when it is not there. */
async function anchorRps(ctx: BenchContext, protocol: Protocol, t: MeasuredServer | undefined) {
  if (!t) return undefined;
  const r = await loadgen({
    port: t.port,
    protocol,
    connections: CONNECTIONS,
    durationMs: 1000,
    warmupMs: 200,
    cpus: ctx.clientCpus,
    ...load(protocol),
  });
  // the rate offered to every server: never one the anchor reached with errors
  const why = loadgenFailure(r);
  if (why !== undefined) ctx.log(`${protocol}: the anchor's closed-loop run ${why}`);
  return why === undefined ? r.rps : undefined;
}

async function measureProtocol(ctx: BenchContext, protocol: Protocol, step: () => void): Promise<Row[]> {
  const s = settings(ctx);
  const names = [ANCHOR[protocol], ...OTHERS[protocol], ...MODELS];
  const live = new Map<string, MeasuredServer>();
  try {
    for (const n of names) {
      const st = await start(ctx, protocol, n);
      if (st.ok) live.set(n, st.target);
      else ctx.log(`${protocol} ${n}: ${st.reason}`);
    }
    const base = await anchorRps(ctx, protocol, live.get(ANCHOR[protocol]));
    if (base === undefined) {
      ctx.log(`${protocol}: ${ANCHOR[protocol]} did not run, so there is no rate to offer: not measured`);
      return [];
    }
    const rate = Math.max(100, Math.round(base / 2));
    ctx.log(`${protocol}: ${ANCHOR[protocol]} served ${fmt(base)} req/s closed loop; offering ${fmt(rate)} req/s`);
    const rows = [...live.keys()].map((server): Row => ({
      protocol,
      server,
      rate,
      pct: { p50: [], p99: [], p999: [] },
      achieved: [],
      errors: 0,
      excluded: [],
    }));
    await compare(
      rows.map((row) => ({
        name: row.server,
        run: async () => {
          step();
          await settle([...live.values()].map((t) => t.rootPid));
          const r = await loadgen({
            port: live.get(row.server)!.port,
            protocol,
            connections: CONNECTIONS,
            rate,
            durationMs: s.seconds * 1000,
            warmupMs: 300,
            drainMs: 1000,
            cpus: ctx.clientCpus,
            ...load(protocol),
          });
          const why = recordRound(row, r);
          if (why !== undefined) ctx.log(`${protocol} ${row.server}: round ${row.achieved.length} ${why}`);
          return why === undefined ? r.latencyUs.p99 : NaN;
        },
      })),
      { warmup: 0, repeats: s.rounds },
    );
    return rows;
  } finally {
    for (const t of live.values()) await t.close();
  }
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const s = settings(ctx);
  const total = (2 * MODELS.length + 2 + OTHERS.http.length + OTHERS.resp.length) * s.rounds;
  let done = 0;
  const rows: Row[] = [];
  for (const protocol of ['http', 'resp'] as const)
    rows.push(...(await measureProtocol(ctx, protocol, () => ctx.progress(Math.min(1, done++ / total), protocol))));
  for (const r of rows) if (r.errors) ctx.log(`${r.protocol} ${r.server}: ${r.errors} errors`);
  return report(rows);
}

const summary = (xs: number[]) => summarize(xs.filter(Number.isFinite));
const med = (xs: number[]) => summary(xs).median;

/** Rounds that are figures. */
const counted = (r: Row) => r.achieved.filter(Number.isFinite).length;

/** The table and metrics of the rows (exported for the tests); a row no round of which counted has no metric. */
export function report(rows: Row[]): ScenarioResult {
  const metrics: Record<string, number> = {};
  for (const r of rows)
    if (counted(r) > 0) for (const p of PCTS) metrics[`latency.${r.protocol}.${r.server}.${p}us`] = med(r.pct[p]);
  const table: Table = {
    title: `Latency at a fixed rate (half the anchor's closed-loop req/s), ${CONNECTIONS} connections, µs`,
    columns: [
      'protocol',
      'server',
      'offered req/s',
      'achieved req/s',
      'p50',
      'p99',
      'p99.9',
      'p99.9 min–max',
      'rounds',
      'errors',
      'not counted',
    ],
    rows: rows.map((r) => {
      const tail = summary(r.pct.p999);
      return [
        r.protocol,
        r.server,
        fmt(r.rate),
        fmt(med(r.achieved)),
        fmt(med(r.pct.p50)),
        fmt(med(r.pct.p99)),
        fmt(tail.median),
        `${fmt(tail.min)}–${fmt(tail.max)}`,
        `${counted(r)} of ${r.achieved.length}`,
        r.errors,
        r.excluded.length === 0 ? '' : `${r.excluded.length} round(s) ${r.excluded[0]}`,
      ];
    }),
    note:
      "The load generator's fixed-rate mode: requests due at even intervals over all connections, latency from each " +
      'due time (no coordinated omission), so a server that falls behind shows it in p50 to p99.9. Achieved req/s: ' +
      'the replies to the requests due in the window, over its length, late ones answered in the drain included; a ' +
      'server further behind than the drain loses requests, and that round is not counted. http: GET / hello; resp: ' +
      'SET/GET alternating. Medians of the rounds. iterative serves one connection at a time and thread-per-connection ' +
      'starts a thread per connection, so connections wait: their errors are requests still unanswered when the run ended. ' +
      'A round with errors (connect, reset, bad or error reply, lost) or that did not end as asked is not counted ' +
      '(bench/tools.ts loadgenFailure): its figures are left out of the medians, "rounds" says how many counted. ' +
      'bare: bench/c/bare-server.c, the least a server can do (fixed replies; its GET answers the last value SET, ' +
      'whatever the key): its tail is what this machine and the load generator alone add.',
  };
  return { tables: [table], charts: charts(rows), metrics, data: { rows } };
}

/** One chart per protocol: bars of p50, p99, p99.9 per server, the anchor a dashed line across each group. */
function charts(rows: Row[]): Chart[] {
  return (['http', 'resp'] as const)
    .map((protocol): Chart => {
      const of = rows.filter((r) => r.protocol === protocol && counted(r) > 0);
      return {
        title: `Latency at half of ${ANCHOR[protocol]}'s throughput (${protocol}; whiskers: min–max of the rounds)`,
        xLabel: 'percentile (50, 99, 99.9)',
        yLabel: 'µs',
        kind: 'bar',
        series: of.map((r) => ({
          name: r.server,
          points: PCTS.map((p, i): ChartPoint => {
            const x = summary(r.pct[p]);
            return [[50, 99, 99.9][i]!, x.median, x.min, x.max];
          }),
          ...(r.server === ANCHOR[protocol] ? { anchor: true } : {}),
        })),
      };
    })
    .filter((c) => c.series.length > 0);
}

export const latency: Scenario = {
  name: 'latency',
  title: 'Latency at a fixed rate: p50, p99, p99.9 of every model at half the anchor’s throughput',
  description:
    'Every server model, nginx and node:http (HTTP), redis-server (RESP) offered half of the anchor’s closed-loop ' +
    "throughput by the load generator's fixed-rate mode (latency from each request's due time: no coordinated " +
    'omission). p50, p99 and p99.9 per server, and of a bare C server: what the machine and client alone add.',
  // 2 protocols x (every model + anchors + the bare server) x rounds x (seconds + warm-up + drain), plus the rate probes
  estimate: { quick: 2 * 11 * 2 * 3 + 10, full: 2 * 11 * 3 * 6.5 + 10 },
  run,
};
