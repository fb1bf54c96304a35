/**
 * HTTP targets judged by nginx's own yardstick: wrk (one thread, 50 keep-alive connections,
 * GET / hello) against rawio's `single` and `proactor`, nginx with one worker and
 * node:http, each pinned to the server CPU with wrk on the other, interleaved round by
 * round. nginx is measured twice a round (nginx and "nginx A/A", the same process): the
 * spread of that pair is the scenario's noise floor, and a target ratio closer to its bound
 * than the floor reads "within noise" (bench/verdict.ts). Beside req/s, the server's CPU
 * time per request (user + system, every thread, from /proc) — far steadier than req/s on
 * a shared machine, with its kernel (system) share apart: the part of a server's cost that
 * its syscalls and the TCP stack they run take, which no JavaScript of the server's own can
 * lower (a CPU target whose bound lies below that share alone cannot be met by work in
 * user space). Beside them the bare servers (bench/c/bare-server.c on epoll,
 * bench/c/bare-uring.c on io_uring), the least a server can do, and the client CPU's busy
 * share: they show what wrk and the kernel allow here, and a target the bare server of its
 * path clearly misses too reads "client-bound" (req/s) or "kernel-bound" (CPU per request).
 */
import { compare } from '../runner.js';
import type { BenchContext, Scenario, ScenarioResult, Table } from '../scenario.js';
import { fmt, formatRatio, pairedRatio, summarize } from '../stats.js';
import { runWrk, which, wrkMeasured, type WrkResult } from '../tools.js';
import { busyShare, cpuTimes, settle, ticksPerSecond, treeCpu } from '../lib/external.js';
import {
  startAnchor,
  startBare,
  startBareUring,
  startModel,
  startNode,
  type MeasuredServer,
  type Started,
} from '../lib/measured-servers.js';
import { formatFloor, noiseFloor } from '../verdict.js';
import { WRK_BOUNDS } from '../targets.js';

const CONNECTIONS = 50;
const AA = 'nginx A/A';
const SERVERS = ['single', 'proactor', 'nginx', 'node-http', 'bare', 'bare-uring'] as const;
type Name = (typeof SERVERS)[number];

function settings(ctx: BenchContext) {
  return ctx.profile === 'full' ? { seconds: 3, repeats: 5 } : { seconds: 2, repeats: 3 };
}

function start(ctx: BenchContext, n: Name): Promise<Started> {
  if (n === 'nginx') return startAnchor(ctx, 'nginx');
  if (n === 'node-http') return startNode(ctx, n, 'nodeHttp');
  if (n === 'bare') return startBare(ctx, 'http');
  if (n === 'bare-uring') return startBareUring(ctx);
  return startModel(ctx, n, { model: n, protocol: 'http' });
}

export interface Samples {
  rps: number[];
  cpuUsPerReq: number[];
  /** The kernel's share of cpuUsPerReq: the server tree's system time per request. */
  kernelUsPerReq: number[];
  p99: number[];
  /** The client CPU's busy share (0–1) during each run. */
  clientBusy: number[];
}

/**
 * Records one measured wrk run: req/s, the server's CPU per request (its ticks over the
 * run, user and system, over the requests wrk counted) and the system share of it, p99 and
 * the client CPU's busy share. A run with
 * errors (socket errors, non-2xx replies) or no request is no figure: NaN in every series
 * but the busy share, so that the rounds stay paired and the medians leave it out.
 */
export function recordWrkRun(
  into: Samples,
  w: WrkResult,
  serverTicks: { user: number; system: number },
  clientBusy: number,
): void {
  const ok = wrkMeasured(w);
  const perRequest = (ticks: number) => (ok ? ((ticks / ticksPerSecond()) * 1e6) / w.requests : NaN);
  into.clientBusy.push(clientBusy);
  into.rps.push(ok ? w.rps : NaN);
  into.cpuUsPerReq.push(perRequest(serverTicks.user + serverTicks.system));
  into.kernelUsPerReq.push(perRequest(serverTicks.system));
  into.p99.push(ok ? w.latencyUs.p99 : NaN);
}

/** One wrk run against a target; CPU per request from the server tree's ticks around it. */
function wrkRun(ctx: BenchContext, t: MeasuredServer, all: number[], into: Samples, seconds: number) {
  return async (round: number): Promise<number> => {
    await settle(all);
    const before = treeCpu(t.rootPid);
    const client = cpuTimes(ctx.clientCpus);
    const w = await runWrk({
      url: `http://127.0.0.1:${t.port}/`,
      connections: CONNECTIONS,
      seconds: round === 0 ? 1 : seconds,
      cpus: ctx.clientCpus,
    });
    const after = treeCpu(t.rootPid);
    const ticks = { user: after.user - before.user, system: after.system - before.system };
    const clientBusy = busyShare(client, cpuTimes(ctx.clientCpus));
    if (round === 0) return w.rps; // the warm-up round
    recordWrkRun(into, w, ticks, clientBusy);
    return w.rps;
  };
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  if (which('wrk') === null) {
    ctx.log('wrk is not installed (apt-get install wrk): the HTTP targets are not measured');
    return { tables: [], metrics: { 'http-wrk.no-wrk': 1 } };
  }
  const s = settings(ctx);
  const live = new Map<string, MeasuredServer>();
  const samples = new Map<string, Samples>();
  const flags: Record<string, number> = {};
  try {
    for (const n of SERVERS) {
      const st = await start(ctx, n);
      if (st.ok) live.set(n, st.target);
      else {
        ctx.log(`${n}: ${st.reason}`);
        // nginx is every target's denominator: targets.ts names why it is missing
        if (n === 'nginx') flags[st.reason === 'not installed' ? 'http-wrk.no-nginx' : 'http-wrk.nginx-failed'] = 1;
      }
    }
    const pids = [...live.values()].map((t) => t.rootPid);
    const names = [...live.keys(), ...(live.has('nginx') ? [AA] : [])];
    const contenders = names.map((n) => {
      const into: Samples = { rps: [], cpuUsPerReq: [], kernelUsPerReq: [], p99: [], clientBusy: [] };
      samples.set(n, into);
      return { name: n, run: wrkRun(ctx, live.get(n === AA ? 'nginx' : n)!, pids, into, s.seconds) };
    });
    await compare(contenders, {
      warmup: 1,
      repeats: s.repeats,
      onRun: (d, t, n) => ctx.progress(d / t, `wrk -c${CONNECTIONS} → ${n}`),
    });
  } finally {
    for (const t of live.values()) await t.close();
  }
  const r = wrkReport(samples);
  return { ...r, metrics: { ...r.metrics, ...flags } };
}

/**
 * The target bounds a server's ratio x nginx is read against (the bare server of a path
 * against its server's): the table prints the ratio with the digits that tell it from them,
 * as the target does.
 */
function boundsOf(n: string, figure: 'rps' | 'cpu'): number[] {
  const path = n === 'single' || n === 'bare' ? 'single' : n === 'proactor' || n === 'bare-uring' ? 'proactor' : null;
  return path === null ? [] : [WRK_BOUNDS[path][figure]];
}

/** The table and metrics of the wrk runs, by server (nginx A/A under its own name). */
export function wrkReport(samples: Map<string, Samples>): ScenarioResult {
  const nginx = samples.get('nginx');
  const aa = samples.get(AA);
  const floor = nginx && aa ? noiseFloor(nginx.rps, aa.rps) : undefined;
  const cpuFloor = nginx && aa ? noiseFloor(nginx.cpuUsPerReq, aa.cpuUsPerReq) : undefined;
  const metrics: Record<string, number> = {};
  const rows: (string | number)[][] = [];
  for (const [n, x] of samples) {
    const rps = summarize(x.rps.filter(Number.isFinite));
    const cpu = summarize(x.cpuUsPerReq);
    const kernel = summarize(x.kernelUsPerReq);
    const busy = summarize(x.clientBusy.filter(Number.isFinite));
    const key = n === AA ? 'nginx-aa' : n;
    metrics[`http-wrk.${key}.c50.rps`] = rps.median;
    metrics[`http-wrk.${key}.c50.cpuUsPerReq`] = cpu.median;
    if (Number.isFinite(kernel.median)) metrics[`http-wrk.${key}.c50.kernelUsPerReq`] = kernel.median;
    if (Number.isFinite(busy.median)) metrics[`http-wrk.${key}.c50.clientBusy`] = busy.median;
    if (nginx && n !== 'nginx') {
      metrics[`http-wrk.${key}-over-nginx.c50.rps`] = pairedRatio(x.rps, nginx.rps).median;
      metrics[`http-wrk.${key}-over-nginx.c50.cpuUsPerReq`] = pairedRatio(x.cpuUsPerReq, nginx.cpuUsPerReq).median;
      // the server's kernel time alone against nginx's whole CPU per request, as the CPU targets read
      const kernelShare = pairedRatio(x.kernelUsPerReq, nginx.cpuUsPerReq).median;
      if (Number.isFinite(kernelShare)) metrics[`http-wrk.${key}-kernel-over-nginx.c50.cpuUsPerReq`] = kernelShare;
    }
    rows.push([
      n,
      fmt(rps.median),
      `${fmt(rps.min)}–${fmt(rps.max)}`,
      fmt(cpu.median, 2),
      `${fmt(cpu.min, 2)}–${fmt(cpu.max, 2)}`,
      fmt(kernel.median, 2),
      fmt(summarize(x.p99).median),
      Number.isFinite(busy.median) ? `${fmt(busy.median * 100, 0)}%` : '',
      nginx && n !== 'nginx' ? formatRatio(pairedRatio(x.rps, nginx.rps), boundsOf(n, 'rps')) : '',
      nginx && n !== 'nginx' ? formatRatio(pairedRatio(x.cpuUsPerReq, nginx.cpuUsPerReq), boundsOf(n, 'cpu')) : '',
    ]);
  }
  if (floor !== undefined) metrics['http-wrk.floor.rps'] = floor;
  if (cpuFloor !== undefined) metrics['http-wrk.floor.cpuUsPerReq'] = cpuFloor;
  const table: Table = {
    title: `HTTP hello by wrk, ${CONNECTIONS} connections: req/s and server CPU per request`,
    columns: [
      'server',
      'req/s',
      'min–max',
      'CPU µs/req',
      'min–max',
      'of it kernel µs/req',
      'p99 µs',
      'client CPU busy',
      'x nginx req/s',
      'x nginx CPU/req',
    ],
    rows,
    note:
      `wrk -t1 -c${CONNECTIONS} --latency, pinned to the client CPU; every server pinned to the server CPU; ` +
      'servers interleaved round by round after a discarded warm-up, each run started once every server is quiet. ' +
      "CPU µs/req: the server process tree's user + system time over the requests wrk counted; of it kernel: the " +
      'system time alone (syscalls, and the TCP stack they and the softirqs run on the server CPU), which the ' +
      "server's own code in user space cannot lower. Ratios are medians " +
      `of paired (same-round) ratios. Noise: req/s ${formatFloor(floor)}, CPU/req ${formatFloor(cpuFloor)} ` +
      '(nginx measured twice a round). bare: bench/c/bare-server.c, the least a server can do (one read and one ' +
      'send per ready connection, a fixed reply): the rate it reaches is what wrk allows on this machine; ' +
      'bare-uring: the same on io_uring (bench/c/bare-uring.c: multishot accept and recv, one send in flight per ' +
      "connection), the least the proactor's path costs. Client " +
      "CPU busy: the client CPU's busy share during the run (/proc/stat; near 100% wrk, not the server, sets the pace).",
  };
  return { tables: [table], metrics, data: Object.fromEntries(samples) };
}

export const httpWrk: Scenario = {
  name: 'http-wrk',
  title: 'HTTP targets by wrk: single and proactor beside nginx, with CPU per request and an A/A floor',
  description:
    "wrk, nginx's own yardstick, at 50 connections against rawio single and proactor, nginx (measured twice a " +
    'round for the noise floor), node:http and bare C servers on epoll and io_uring (what wrk and the kernel ' +
    'allow); req/s, server CPU per request ' +
    "and the client CPU's busy share. Decides the HTTP targets.",
  // (warm-up 1 s + repeats x seconds) x 7 contenders, plus settling
  estimate: { quick: 7 * (1 + 3 * 2) + 15, full: 7 * (1 + 5 * 3) + 20 },
  run,
};
