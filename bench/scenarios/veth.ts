/**
 * Loopback against a veth pair: the same `rawio serve` (single, HTTP) measured by the same
 * `rawio bench --target --server-info` run, once over loopback and once across a veth link
 * between two network namespaces (bench/lib/netns.ts, addresses from 198.18.0.0/15 inside
 * the namespaces only). veth still never touches a NIC, but packets leave one network stack
 * and enter another (a veth transmit, a softirq receive, two netfilter hooks, real routing),
 * the path a second machine would add to before the wire. Runs only where namespaces can
 * be made (root, iproute2); elsewhere the table says why it was skipped.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { exited, printed, withinDeadline } from '../lib/child-exit.js';
import { createVethPair, netnsUnavailable, type VethPair } from '../lib/netns.js';
import type { BenchContext, Scenario, ScenarioResult } from '../scenario.js';
import { summarize } from '../stats.js';

// dist/bench/scenarios/veth.js → dist/src/cli.js: the built command, run in each namespace.
const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const PORT = 8080;
const AGENT = 9100;
/** How long `rawio serve` may take to say it listens before it is killed. */
const READY_MS = 60_000;
type Path = 'loopback' | 'veth';

interface Run {
  rps: number;
  p50: number;
  p99: number;
  serverUs: number;
}

/**
 * `rawio serve` (with its agent) at `host`, inside `ns` when given; resolves once it says its
 * agent listens. Rejects, with what it wrote to stderr, if it ends first or has not said so
 * within a minute (then it is killed).
 */
async function startServer(ctx: BenchContext, host: string, pair?: VethPair): Promise<ChildProcess> {
  const argv = [process.execPath, CLI, 'serve', '--model', 'single', '--protocol', 'http', '--host', host];
  argv.push('--port', String(PORT), '--bench-agent', `${host}:${AGENT}`, '--cpus', ctx.serverCpus.join(','));
  const full = pair ? pair.exec(pair.serverNs, argv) : argv;
  const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += String(d)));
  const name = `rawio serve (${pair ? 'veth' : 'loopback'})`;
  try {
    await withinDeadline(child, name, 'listening', READY_MS, printed(child, 'bench agent on'));
    return child;
  } catch (e) {
    // what it wrote to stderr, read to its end unless something else holds the pipe open
    await Promise.race([exited(child), new Promise((r) => setTimeout(r, 2000).unref())]);
    throw new Error(`${(e as Error).message}${err ? `: ${err.trim()}` : ''}`);
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return; // gone, by a code or a signal
  const closed = new Promise((r) => child.once('close', r));
  child.kill('SIGTERM');
  await closed;
}

function measure(ctx: BenchContext, host: string, connections: number, ms: number, pair?: VethPair): Run {
  const argv = [process.execPath, CLI, 'bench', '--target', `${host}:${PORT}`];
  argv.push('--server-info', `http://${host}:${AGENT}/cpu`, '--connections', String(connections));
  argv.push('--duration', `${ms}ms`, '--warmup', '200ms', '--cpus', ctx.clientCpus.join(','), '--json');
  const full = pair ? pair.exec(pair.clientNs, argv) : argv;
  const r = spawnSync(full[0]!, full.slice(1), { encoding: 'utf8', timeout: ms + 30_000 });
  if (r.status !== 0) throw new Error(`rawio bench --target ${host}: ${r.stderr || r.error}`);
  const j = JSON.parse(r.stdout) as {
    rps: number;
    latencyUs: { p50: number; p99: number };
    server: { perRequestUs: number } | null;
  };
  return { rps: j.rps, p50: j.latencyUs.p50, p99: j.latencyUs.p99, serverUs: j.server?.perRequestUs ?? NaN };
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const why = netnsUnavailable();
  const columns = ['connections', 'path', 'req/s', 'p50 µs', 'p99 µs', 'server CPU µs/req', 'veth / loopback req/s'];
  if (why) {
    ctx.log(`skipped: ${why}`);
    return { tables: [{ title: 'Loopback vs veth (skipped)', columns, rows: [], note: `Not run here: ${why}.` }] };
  }
  const levels = ctx.profile === 'full' ? [1, 10, 50] : [1, 50];
  const repeats = ctx.profile === 'full' ? 5 : 3;
  const ms = ctx.profile === 'full' ? 3000 : 1500;
  const pair = createVethPair();
  const samples = new Map<string, Run[]>();
  const servers: ChildProcess[] = [];
  try {
    servers.push(await startServer(ctx, '127.0.0.1'), await startServer(ctx, pair.serverAddr, pair));
    let done = 0;
    for (const c of levels)
      for (let i = 0; i < repeats; i++) {
        // A B then B A: neither path always goes first.
        const order: Path[] = i % 2 ? ['veth', 'loopback'] : ['loopback', 'veth'];
        for (const path of order) {
          ctx.progress(done++ / (levels.length * repeats * 2), `${path}, ${c} connections`);
          const r = path === 'veth' ? measure(ctx, pair.serverAddr, c, ms, pair) : measure(ctx, '127.0.0.1', c, ms);
          const key = `${c}.${path}`;
          samples.set(key, [...(samples.get(key) ?? []), r]);
        }
      }
  } finally {
    for (const s of servers) await stop(s);
    pair.remove();
  }
  const med = (runs: Run[], k: keyof Run) => summarize(runs.map((r) => r[k])).median;
  const rows: (string | number)[][] = [];
  const metrics: Record<string, number> = {};
  for (const c of levels) {
    const lo = samples.get(`${c}.loopback`)!;
    const ve = samples.get(`${c}.veth`)!;
    for (const [path, runs] of [
      ['loopback', lo],
      ['veth', ve],
    ] as const) {
      const rps = med(runs, 'rps');
      metrics[`veth.http.c${c}.${path}.rps`] = rps;
      metrics[`veth.http.c${c}.${path}.serverUs`] = med(runs, 'serverUs');
      rows.push([
        c,
        path,
        Math.round(rps),
        med(runs, 'p50').toFixed(0),
        med(runs, 'p99').toFixed(0),
        med(runs, 'serverUs').toFixed(1),
        path === 'veth' ? `${(rps / med(lo, 'rps')).toFixed(2)}x` : '',
      ]);
    }
    metrics[`veth.http.c${c}.ratio`] = med(ve, 'rps') / med(lo, 'rps');
  }
  return {
    tables: [
      {
        title: 'Loopback vs veth: rawio single, HTTP',
        columns,
        rows,
        note:
          `rawio serve (single, HTTP) measured by rawio bench --target with its bench agent: ${repeats} runs of ` +
          `${ms} ms per path, alternating which goes first, medians shown. veth: server and load generator in two ` +
          'network namespaces joined by a veth pair (198.18.0.0/15); loopback: the same two commands in this ' +
          'namespace over 127.0.0.1. Server CPU per request from /proc, read by the agent before and after each run.',
      },
    ],
    metrics,
    data: Object.fromEntries(samples),
  };
}

export const veth: Scenario = {
  name: 'veth',
  title: 'Loopback vs veth: the same server across two network namespaces',
  description:
    'rawio single (HTTP) measured over loopback and across a veth pair between two network namespaces, by the ' +
    'same rawio bench --target run with server CPU from the bench agent; skipped where namespaces cannot be made.',
  estimate: { quick: 25, full: 70 },
  run,
};
