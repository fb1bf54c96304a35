/**
 * static: files served over HTTP keep-alive, warm from the page cache — rawio's `static`
 * protocol on the `single` model with each transferFile method, beside nginx (one worker)
 * with `sendfile on`, `sendfile off` and `directio 1m` + `aio threads`, and Node's own
 * node:http + fs.createReadStream().pipe(res). Every server is pinned to the server CPU and
 * serves the same files; the native load generator (pinned to the other CPU) fetches one
 * file size at a time, closed loop, the servers interleaved (A B C, C B A). Reports req/s,
 * MB/s (body bytes), the server's CPU time per request (/proc/<pid>/stat) and p99 latency.
 * Each server's bytes are checked against the file before anything is measured.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { loadgen } from '../loadgen.js';
import { compare, ratio, type Comparison } from '../runner.js';
import type { BenchContext, Chart, Scenario, ScenarioResult, Table } from '../scenario.js';
import { fmt, formatRatio, summarize } from '../stats.js';
import { loadgenFailure, which, type LoadgenRun } from '../tools.js';
import { nginxHasThreads, nginxStaticLocation, treeCpuSeconds, type NginxStaticMode } from '../lib/external.js';
import { startAnchor, startModel, startNode, type Started, type MeasuredServer } from '../lib/measured-servers.js';
import { transferMethodNames } from '../../src/transfer/index.js';

const WARMUP = 1;
const DIRECTIO = 1 << 20; // nginx's `directio 1m`, and rawio's `auto` threshold beside it
const BASELINE = 'nginx sendfile on';

interface Spec {
  /** As the table shows it. */
  name: string;
  /** As metric keys spell it: static.<key>.<size>.MBps. */
  key: string;
  start(ctx: BenchContext, root: string): Promise<Started>;
}

function rawio(method: string): Spec {
  const auto = method === 'auto';
  return {
    name: auto ? 'rawio auto (directio 1m)' : `rawio ${method}`,
    key: `rawio-${method}`,
    start: (ctx, root) =>
      startModel(ctx, `rawio ${method}`, {
        model: 'single',
        protocol: 'static',
        root,
        transfer: method,
        ...(auto ? { directio: DIRECTIO } : {}),
      }),
  };
}

function nginx(mode: NginxStaticMode, threads: boolean): Spec {
  const name = mode !== 'directio' ? `nginx ${mode}` : `nginx directio 1m${threads ? ' + aio threads' : ' (no aio)'}`;
  return {
    name,
    key: `nginx-${mode.replace(' ', '-')}`,
    start: (ctx, root) => startAnchor(ctx, 'nginx', nginxStaticLocation(root, mode, threads)),
  };
}

const node: Spec = {
  name: 'node:http + fs stream',
  key: 'node',
  start: (ctx, root) => startNode(ctx, 'node', 'nodeStatic', { root }),
};

function plan(ctx: BenchContext) {
  const full = ctx.profile === 'full';
  const methods = full ? transferMethodNames : ['readwrite', 'mmap', 'sendfile', 'splice', 'auto'];
  // null: no nginx at all (its rows say so); otherwise whether `aio threads` is compiled in
  const threads = which('nginx') === null ? null : nginxHasThreads();
  const specs = [
    ...methods.map(rawio),
    ...(['sendfile on', 'sendfile off', 'directio'] as const).map((m) => nginx(m, threads !== false)),
    node,
  ];
  return {
    specs,
    threads,
    sizes: full ? [4 << 10, 64 << 10, 1 << 20, 16 << 20] : [64 << 10, 1 << 20],
    seconds: full ? 2 : 0.8,
    repeats: full ? 3 : 2,
  };
}

/** 50 connections, but not 50 × 16 MiB in flight. */
export const connectionsFor = (size: number): number => (size >= 16 << 20 ? 8 : 50);
export const sizeKey = (size: number): string => (size >= 1 << 20 ? `${size >> 20}m` : `${size >> 10}k`);
const sizeName = (size: number) => (size >= 1 << 20 ? `${size >> 20} MiB` : `${size >> 10} KiB`);
const fileName = (size: number) => `f-${sizeKey(size)}.bin`;

/** Random files, synced (an O_DIRECT read must not wait on a writeback) and left in the page cache. */
function makeFiles(dir: string, sizes: number[]): void {
  mkdirSync(dir, { recursive: true });
  for (const size of sizes) {
    const fd = openSync(join(dir, fileName(size)), 'w');
    const chunk = randomBytes(Math.min(size, 1 << 20));
    for (let done = 0; done < size; done += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, size - done));
    fsyncSync(fd);
    closeSync(fd);
  }
}

/** One GET; resolves with the status and body. */
function fetchOnce(port: number, path: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
  });
}

/** Null when the server sends every file exactly, else what went wrong. */
async function verify(port: number, dir: string, sizes: number[]): Promise<string | null> {
  for (const size of sizes) {
    try {
      const r = await fetchOnce(port, `/${fileName(size)}`);
      if (r.status !== 200) return `answered ${r.status} for ${sizeName(size)}`;
      if (!r.body.equals(readFileSync(join(dir, fileName(size))))) return `sent wrong bytes for ${sizeName(size)}`;
    } catch (e) {
      return `failed to send ${sizeName(size)}: ${(e as Error).message}`;
    }
  }
  return null;
}

export interface Cell {
  size: number;
  server: string;
  key: string;
  connections: number;
  rps: number[];
  cpuUsPerReq: number[];
  p99us: number[];
  errors: number;
  /** connect, reset, badReply, errorReply, lost: what the errors were. */
  errorKinds: Record<string, number>;
  /** Why each round that is no figure (loadgenFailure) was not counted; its figures are NaN. */
  excluded: string[];
}

/**
 * One measured round into its cell: its errors always (the table shows them), its figures
 * only when the run is a measurement (loadgenFailure), else NaN in every series (the rounds
 * stay paired for the x column, the medians leave it out). `cpuSeconds`: the server's CPU
 * over the run. Returns the round's MB/s for the comparison (NaN when not counted) and why
 * it was not counted.
 */
export function recordRound(
  cell: Cell,
  r: LoadgenRun & { received: number; latencyUs: { p99: number } },
  cpuSeconds: number,
): { mbps: number; why: string | undefined } {
  const e = r.errors;
  cell.errors += e.connect + e.reset + e.badReply + e.errorReply + e.lost;
  for (const [kind, n] of Object.entries(e)) if (n > 0) cell.errorKinds[kind] = (cell.errorKinds[kind] ?? 0) + n;
  const why = loadgenFailure(r);
  const ok = why === undefined;
  cell.rps.push(ok ? r.rps : NaN);
  cell.p99us.push(ok ? r.latencyUs.p99 : NaN);
  // over the whole run (warm-up and drain too), so divided by every reply received
  cell.cpuUsPerReq.push(ok && Number.isFinite(cpuSeconds) && r.received > 0 ? (cpuSeconds * 1e6) / r.received : NaN);
  if (!ok) cell.excluded.push(why);
  return { mbps: ok ? (r.rps * cell.size) / 1e6 : NaN, why };
}

export interface SizeResult {
  size: number;
  cells: Cell[];
  comparison: Comparison;
}

async function measureSize(
  ctx: BenchContext,
  p: ReturnType<typeof plan>,
  live: { spec: Spec; target: MeasuredServer }[],
  size: number,
  onRun: (label: string) => void,
): Promise<SizeResult> {
  const connections = connectionsFor(size);
  const cells = new Map<string, Cell>();
  for (const { spec } of live)
    cells.set(spec.name, {
      size,
      server: spec.name,
      key: spec.key,
      connections,
      rps: [],
      cpuUsPerReq: [],
      p99us: [],
      errors: 0,
      errorKinds: {},
      excluded: [],
    });
  const comparison = await compare(
    live.map(({ spec, target }) => ({
      name: spec.name,
      run: async (round: number) => {
        const warm = round < WARMUP;
        const cpu0 = treeCpuSeconds(target.rootPid);
        const r = await loadgen(
          {
            port: target.port,
            protocol: 'http',
            path: `/${fileName(size)}`,
            connections,
            durationMs: warm ? 400 : p.seconds * 1000,
            warmupMs: warm ? 100 : 200,
            drainMs: 2000,
            cpus: ctx.clientCpus,
          },
          { warmup: warm },
        );
        const cpu = treeCpuSeconds(target.rootPid) - cpu0;
        if (warm) return (r.rps * size) / 1e6;
        const cell = cells.get(spec.name)!;
        const { mbps, why } = recordRound(cell, r, cpu);
        if (why !== undefined) ctx.log(`${sizeName(size)} ${spec.name}: round ${cell.rps.length} ${why}`);
        return mbps;
      },
    })),
    { warmup: WARMUP, repeats: p.repeats, onRun: (_d, _t, name) => onRun(`${sizeName(size)} ${name}`) },
  );
  return { size, cells: [...cells.values()], comparison };
}

/** startAnchor's 'not installed' (only nginx says it here) and the others' reasons, as a table cell. */
function notMeasured(reason: string): string {
  if (reason === 'not installed') return 'not measured: nginx is not installed';
  return reason.startsWith('not ') ? reason : `not measured: ${reason}`;
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const p = plan(ctx);
  const dir = join(ctx.tmpDir, 'static');
  makeFiles(dir, p.sizes);
  const live: { spec: Spec; target: MeasuredServer }[] = [];
  const missing: { spec: Spec; reason: string }[] = [];
  const results: SizeResult[] = [];
  try {
    for (const spec of p.specs) {
      ctx.progress(0, `starting ${spec.name}`);
      const s = await spec.start(ctx, dir);
      if (!s.ok) {
        missing.push({ spec, reason: notMeasured(s.reason) });
        continue;
      }
      const bad = await verify(s.target.port, dir, p.sizes);
      if (bad === null) live.push({ spec, target: s.target });
      else {
        missing.push({ spec, reason: `not measured: ${bad}` });
        await s.target.close();
      }
    }
    const total = p.sizes.length * live.length * (WARMUP + p.repeats);
    let done = 0;
    for (const size of p.sizes)
      results.push(await measureSize(ctx, p, live, size, (label) => ctx.progress(done++ / total, label)));
  } finally {
    for (const { target } of live) await target.close();
  }
  for (const m of missing) ctx.log(`${m.spec.name}: ${m.reason}`);
  for (const r of results)
    for (const c of r.cells)
      if (c.errors > 0) ctx.log(`${sizeName(r.size)} ${c.server}: errors ${JSON.stringify(c.errorKinds)}`);
  return report(results, missing, p.threads);
}

const med = (xs: number[]) => summarize(xs).median;
/** Rounds that are figures. */
const counted = (c: Cell) => c.rps.filter(Number.isFinite).length;

function tableOf(results: SizeResult[], missing: { spec: Spec; reason: string }[], threads: boolean | null): Table {
  const rows: (string | number)[][] = [];
  for (const r of results)
    for (const c of r.cells) {
      const mb = r.comparison.summary[c.server]!;
      const vs = r.comparison.samples[BASELINE] ? formatRatio(ratio(r.comparison, c.server, BASELINE)) : 'n/a';
      const rounds = `${counted(c)} of ${c.rps.length}`;
      const why = c.excluded.length === 0 ? '' : `${c.excluded.length} round(s) ${c.excluded[0]}`;
      if (counted(c) === 0) {
        rows.push([sizeName(r.size), c.server, c.connections, 'no figure', '', '', '', '', '', rounds, c.errors, why]);
        continue;
      }
      rows.push([
        sizeName(r.size),
        c.server,
        c.connections,
        fmt(med(c.rps)),
        fmt(mb.median),
        `${fmt(mb.min)}–${fmt(mb.max)}`,
        c.server === BASELINE ? '1' : vs,
        fmt(med(c.cpuUsPerReq), 1),
        fmt(med(c.p99us) / 1000, 2),
        rounds,
        c.errors,
        why,
      ]);
    }
  for (const m of missing) rows.push(['all', m.spec.name, '', m.reason, '', '', '', '', '', '', '', '']);
  return {
    title: 'Static files over HTTP keep-alive: rawio transfer methods, nginx and Node',
    columns: [
      'file',
      'server',
      'conns',
      'req/s',
      'MB/s',
      'min–max MB/s',
      `x ${BASELINE}`,
      'server CPU µs/req',
      'p99 ms',
      'rounds',
      'errors',
      'not counted',
    ],
    rows,
    note:
      'Each server in its own process pinned to the server CPU (rawio: the single model with the static protocol and ' +
      'the transfer method named; nginx: one worker), the native load generator pinned to the other CPU, closed loop, ' +
      'keep-alive GETs of one file; servers interleaved per file size, warm-up run discarded, medians of the measured ' +
      'runs; MB/s counts body bytes (10^6 B). Files are read from the page cache, except where O_DIRECT reads them from ' +
      'the device: rawio direct (at 256 KiB and more; below that it is uring), rawio auto and nginx directio at 1 MiB ' +
      'and more. nginx: sendfile on with tcp_nopush; sendfile off reads into 2 × 32 KiB buffers; directio 1m with 4 × ' +
      `256 KiB buffers${threads === false ? ' — no aio threads: this nginx has no thread pools (--with-threads), so its O_DIRECT reads block the worker' : ' and aio threads'}. ` +
      'Node: fs.stat, then fs.createReadStream(file).pipe(res). Server CPU: user + system time of the whole server ' +
      'process (/proc/<pid>/stat, clock ticks) per reply. The x column is the median of paired (same-round) MB/s ratios. ' +
      'A round with errors (connect, reset, bad or error reply, a reply lost after the 2 s drain) or that did not end as ' +
      'asked is not counted (bench/tools.ts loadgenFailure): its figures are left out, "rounds" says how many counted.',
  };
}

/** The table, chart and metrics of the measured sizes (exported for the tests); a cell no round of which counted has no figure. */
export function report(
  results: SizeResult[],
  missing: { spec: Spec; reason: string }[],
  threads: boolean | null,
): ScenarioResult {
  const metrics: Record<string, number> = {};
  const series = new Map<string, [number, number][]>();
  for (const r of results)
    for (const c of r.cells) {
      const base = `static.${c.key}.${sizeKey(r.size)}`;
      metrics[`${base}.errors`] = c.errors;
      if (counted(c) === 0) continue;
      const mbps = r.comparison.summary[c.server]!.median;
      metrics[`${base}.MBps`] = mbps;
      metrics[`${base}.rps`] = med(c.rps);
      metrics[`${base}.cpuUsPerReq`] = med(c.cpuUsPerReq);
      metrics[`${base}.p99us`] = med(c.p99us);
      series.set(c.server, [...(series.get(c.server) ?? []), [r.size >> 10, mbps]]);
    }
  const chart: Chart = {
    title: 'Static files: throughput per server and file size',
    xLabel: 'file size (KiB)',
    yLabel: 'MB/s',
    kind: 'bar',
    series: [...series].map(([name, points]) => ({ name, points })),
  };
  const data = {
    sizes: results.map((r) => r.size),
    cells: results.flatMap((r) => r.cells.map((c) => ({ ...c, mbps: r.comparison.samples[c.server] }))),
    missing: missing.map((m) => ({ server: m.spec.name, reason: m.reason })),
    nginxThreads: threads,
  };
  return { tables: [tableOf(results, missing, threads)], charts: [chart], metrics, data };
}

export const staticFiles: Scenario = {
  name: 'static',
  title: 'Static files: rawio transfer methods vs nginx (sendfile on/off, directio + aio) and Node',
  description:
    "Files of 64 KiB and 1 MiB (full: 4 KiB to 16 MiB) served over keep-alive HTTP from the page cache by rawio's " +
    'static protocol with each transfer method, nginx with sendfile on, off, and directio + aio threads, and ' +
    'node:http with fs streams, at 50 connections (8 for 16 MiB), interleaved. Req/s, MB/s and server CPU per request.',
  // servers x sizes x (warm-up 0.6 s + repeats x ~1.1 s), plus starting and checking the servers
  estimate: { quick: 9 * 2 * (0.6 + 2 * 1.1) + 6, full: 11 * 4 * (0.6 + 3 * 2.3) + 10 },
  run,
};
