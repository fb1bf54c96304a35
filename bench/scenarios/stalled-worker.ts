/**
 * A stalled worker under each accept strategy of the multi-process model (the case nginx's
 * SO_REUSEPORT write-up warns about). New connections arrive at a steady rate from an
 * open-loop client pinned to the client CPU (connect, 4 bytes, first byte back, close);
 * meanwhile one of the worker processes is stopped with SIGSTOP and, a few seconds later,
 * continued with SIGCONT. For the connections opened while it was stopped the scenario
 * reports connect-to-first-byte p99 and max, how many took longer than THRESHOLD_MS, how
 * many got nothing back until SIGCONT (stranded) and how many nothing at all before the
 * run's end, and how many the healthy workers accepted meanwhile. With `reuseport` the
 * kernel hashes connections to each worker's own socket, so the stopped worker's share
 * waits in its backlog; with `exclusive` and `mutex` the listening socket is shared and a
 * stopped worker is skipped (EPOLLEXCLUSIVE wakes only a waiter in epoll_wait; the accept
 * mutex is a lease the stopped holder loses).
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { BenchContext, Scenario, ScenarioResult } from '../scenario.js';
import { fmt } from '../stats.js';
import { spawnOn } from '../tools.js';
import { startModel, type MeasuredServer } from '../lib/measured-servers.js';
import { analyse, type Arrivals, type Outcome } from '../lib/stall-outcome.js';

const STRATEGIES = ['reuseport', 'exclusive', 'mutex'] as const;
type Strategy = (typeof STRATEGIES)[number];
/** A connection answered later than this counts as delayed. */
export const THRESHOLD_MS = 200;
const client = fileURLToPath(new URL('../lib/arrival-client.js', import.meta.url));

function settings(ctx: BenchContext) {
  return ctx.profile === 'full'
    ? { workers: 4, rate: 800, preMs: 1000, stopMs: 4000, postMs: 2000, drainMs: 2000 }
    : { workers: 4, rate: 400, preMs: 600, stopMs: 1500, postMs: 800, drainMs: 1000 };
}
type Settings = ReturnType<typeof settings>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const epochMs = () => performance.timeOrigin + performance.now();

function runClient(ctx: BenchContext, port: number, s: Settings): Promise<Arrivals> {
  const args = [client, String(port), String(s.rate), String(s.preMs + s.stopMs + s.postMs), String(s.drainMs)];
  const timeout = s.preMs + s.stopMs + s.postMs + s.drainMs + 30_000;
  return new Promise((resolve, reject) =>
    spawnOn(ctx.clientCpus, process.execPath, args, (cmd, argv) =>
      execFile(cmd, argv, { timeout, maxBuffer: 64 << 20 }, (err, out) =>
        err ? reject(err) : resolve(JSON.parse(out) as Arrivals),
      ),
    ),
  );
}

/** The process state letter from /proc/<pid>/stat ('T' once stopped). */
async function stateOf(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
}

const acceptedOf = async (t: MeasuredServer) => ((await t.stats()) as { accepted?: number[] }).accepted ?? [];

/** One strategy: start, load, stop worker 0, continue it, close. Always continues it. */
async function measure(ctx: BenchContext, s: Settings, a: Strategy): Promise<Outcome | string> {
  const st = await startModel(ctx, a, { model: 'multi-process', protocol: 'echo', workers: s.workers, accept: a });
  if (!st.ok) return st.reason;
  const t = st.target;
  let victim = 0;
  try {
    victim = ((await t.stats()) as { workerPids?: number[] }).workerPids?.[0] ?? 0;
    if (victim <= 0) return 'this build does not give the worker pids (Server.workerPids)';
    const arrivals = runClient(ctx, t.port, s);
    // The phase before the stop counts from the first accepts, not from the client's spawn.
    const sum = (v: number[]) => v.reduce((x, y) => x + y, 0);
    for (let i = 0; i < 500 && sum(await acceptedOf(t)) === 0; i++) await sleep(10);
    await sleep(s.preMs);
    const before = await acceptedOf(t);
    process.kill(victim, 'SIGSTOP');
    for (let i = 0; i < 500 && (await stateOf(victim)) !== 'T'; i++) await sleep(1);
    const stopAt = epochMs();
    await sleep(s.stopMs);
    const during = await acceptedOf(t);
    const contAt = epochMs();
    process.kill(victim, 'SIGCONT');
    victim = 0;
    const healthy = during.reduce((sum, v, i) => sum + (i === 0 ? 0 : v - (before[i] ?? 0)), 0);
    return analyse(await arrivals, { stopAt, contAt, thresholdMs: THRESHOLD_MS, healthyAccepted: healthy });
  } finally {
    if (victim > 0) process.kill(victim, 'SIGCONT');
    await t.close();
  }
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const s = settings(ctx);
  const results = new Map<Strategy, Outcome | string>();
  for (const [i, a] of STRATEGIES.entries()) {
    ctx.progress(i / STRATEGIES.length, a);
    results.set(a, await measure(ctx, s, a));
    const r = results.get(a)!;
    if (typeof r === 'string') ctx.log(`${a}: ${r}`);
  }
  return report(results, s);
}

const ms = (v: number) => (v === Infinity ? 'never' : fmt(v, 1));

function report(results: Map<Strategy, Outcome | string>, s: Settings): ScenarioResult {
  const metrics: Record<string, number> = {};
  const rows: (string | number)[][] = [];
  for (const [a, r] of results) {
    if (typeof r === 'string') {
      rows.push([a, r, '', '', '', '', '', '', '', '']);
      continue;
    }
    const k = `stalled-worker.${a}`;
    Object.assign(metrics, {
      [`${k}.opened`]: r.opened,
      [`${k}.p99ms`]: r.p99Ms,
      [`${k}.maxms`]: r.maxMs,
      [`${k}.overThreshold`]: r.overThreshold,
      [`${k}.unserved`]: r.unservedUntilCont,
      [`${k}.neverServed`]: r.neverServed,
      [`${k}.heldAtStop`]: r.heldAtStop,
      [`${k}.healthyAccepted`]: r.healthyAccepted,
      [`${k}.baselineP99ms`]: r.baselineP99Ms,
    });
    rows.push([
      a,
      r.opened,
      ms(r.baselineP99Ms),
      ms(r.p99Ms),
      ms(r.maxMs),
      r.overThreshold,
      r.unservedUntilCont,
      r.neverServed,
      r.heldAtStop,
      r.healthyAccepted,
    ]);
  }
  const stopped = `${fmt(s.stopMs / 1000, 1)} s`;
  return {
    tables: [
      {
        title: `Stalled worker: one of ${s.workers} multi-process workers stopped (SIGSTOP) for ${stopped}`,
        columns: [
          'strategy',
          'opened while stopped',
          'p99 ms before',
          'p99 ms',
          'max ms',
          `> ${THRESHOLD_MS} ms`,
          'stranded until SIGCONT',
          'never answered',
          'held by it at SIGSTOP',
          'accepted by healthy workers',
        ],
        rows,
        note:
          `echo protocol, workers pinned to the server CPU; an open-loop client on the client CPU opens ` +
          `${s.rate} connections a second (connect, 4 bytes, first byte back, close) whatever happened to earlier ` +
          'ones. Latency is connect-to-first-byte of the connections opened while the worker was stopped ' +
          '("never": some got nothing back before the run ended); "p99 ms before" is the same before SIGSTOP. ' +
          `Stranded: opened at least ${THRESHOLD_MS} ms before SIGCONT, answered only after it. ` +
          '"held by it at SIGSTOP": opened earlier, already with the stopped worker, answered only after SIGCONT. ' +
          'Accepted by healthy workers: their accept count while the worker was stopped.',
      },
    ],
    metrics,
    data: Object.fromEntries(results),
  };
}

export const stalledWorker: Scenario = {
  name: 'stalled-worker',
  title: 'Stalled worker: SIGSTOP one multi-process worker under each accept strategy',
  description:
    'One multi-process worker is stopped (SIGSTOP) while new connections keep arriving, under reuseport, ' +
    'EPOLLEXCLUSIVE and the accept mutex: how many connections wait for it (connect-to-first-byte p99 and max, ' +
    'stranded until SIGCONT) and how many the healthy workers serve meanwhile.',
  estimate: { quick: 20, full: 40 },
  run,
};
