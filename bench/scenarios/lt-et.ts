/**
 * LT vs ET (claim 2): the same echo workload through rawio's Reactor over level-triggered
 * epoll and over edge-triggered epoll (backend 'epoll' vs 'epoll-et'). The server (a bare
 * Reactor + Connection echo, bench/servers/rawio.ts) counts its poller's wait calls — the
 * wakeups — by wrapping the Poller's `wait`; `strace -c -f`, when installed, counts every
 * syscall of a further run. Both are divided by the MiB echoed.
 *
 * Wakeups per MiB depend on how the load falls into batches, which a busy machine shifts
 * from run to run (one round can wake five times as often as the next). So each round's
 * figure stands alone: the ET/LT ratio is the median of the rounds' paired ratios, and the
 * LT server is measured twice a round (A/A) for the noise floor claim 2 is read against.
 */
import { loadgen } from '../loadgen.js';
import { compare } from '../runner.js';
import type { BenchContext, Scenario, ScenarioResult } from '../scenario.js';
import { startServer, type PinnedServer } from '../server.js';
import { fmt, formatRatio, pairedRatio, summarize } from '../stats.js';
import { formatFloor, noiseFloor } from '../verdict.js';
import { straceDuring, type SyscallCounts } from '../lib/external.js';
import { rawioServers } from '../lib/measured-servers.js';
import { loadgenFailure, type LoadgenRun } from '../tools.js';

const MiB = 1 << 20;
const BACKENDS = { lt: 'epoll', et: 'epoll-et' } as const;
type Mode = keyof typeof BACKENDS;
/** A contender of the rounds: a mode, or the LT server measured again (A/A). */
type Run = Mode | 'aa';
const RUNS: readonly Run[] = ['lt', 'et', 'aa'];

export interface Sample {
  wakeups: number;
  events: number;
  bytes: number;
  rps: number;
  /** Why the run is no figure (loadgenFailure), or undefined when it is one. */
  excluded?: string;
}

export interface Stats {
  wakeups: number;
  events: number;
  bytes: number;
}

function settings(ctx: BenchContext) {
  return ctx.profile === 'full'
    ? { seconds: 3, repeats: 5, connections: 50, payload: 16384 }
    : { seconds: 1, repeats: 3, connections: 50, payload: 16384 };
}

async function once(ctx: BenchContext, server: PinnedServer, seconds: number): Promise<Sample> {
  const s = settings(ctx);
  const before = await server.stats<Stats>();
  const r = await loadgen({
    port: server.port,
    protocol: 'echo',
    connections: s.connections,
    payloadSize: s.payload,
    durationMs: seconds * 1000,
    drainMs: 300,
    cpus: ctx.clientCpus,
  });
  const after = await server.stats<Stats>();
  return sampleOf(before, after, r);
}

/**
 * One run's sample: the server's counters over it and the load generator's rate, marked
 * `excluded` with the reason when the run is no figure (loadgenFailure): a reset or lost
 * echo changes how the load falls into wakeups, so such a round counts in no figure.
 */
export function sampleOf(before: Stats, after: Stats, r: LoadgenRun): Sample {
  const why = loadgenFailure(r);
  return {
    wakeups: after.wakeups - before.wakeups,
    events: after.events - before.events,
    bytes: after.bytes - before.bytes,
    rps: why === undefined ? r.rps : NaN,
    ...(why === undefined ? {} : { excluded: why }),
  };
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const s = settings(ctx);
  const servers = {} as Record<Mode, PinnedServer>;
  const samples: Record<Run, Sample[]> = { lt: [], et: [], aa: [] };
  const strace: Partial<Record<Mode, { counts: SyscallCounts; bytes: number }>> = {};
  try {
    for (const m of ['lt', 'et'] as const)
      servers[m] = await startServer({
        module: rawioServers,
        export: 'reactorEcho',
        options: { backend: BACKENDS[m] },
        cpus: ctx.serverCpus,
      });
    let n = 0;
    const total = RUNS.length * (s.repeats + 1) + 2;
    await compare(
      RUNS.map((r) => ({
        name: r,
        run: async (round: number) => {
          const x = await once(ctx, servers[r === 'aa' ? 'lt' : r], round === 0 ? 0.3 : s.seconds);
          if (x.excluded !== undefined) ctx.log(`${r === 'aa' ? 'lt A/A' : r} round ${round}: ${x.excluded}`);
          if (round > 0) samples[r].push(x);
          return x.rps;
        },
      })),
      {
        warmup: 1,
        repeats: s.repeats,
        onRun: (_d, _t, name) => ctx.progress(n++ / total, `echo, ${name === 'aa' ? 'lt A/A' : name}`),
      },
    );
    for (const m of ['lt', 'et'] as const) {
      ctx.progress(n++ / total, `strace -c, ${m}`);
      const { result, counts, error } = await straceDuring(servers[m].pid, ctx.tmpDir, () => once(ctx, servers[m], 1));
      if (result.excluded !== undefined) ctx.log(`strace -c, ${m}: ${result.excluded}`);
      else if (counts) strace[m] = { counts, bytes: result.bytes };
      else ctx.log(`strace -c, ${m}: ${error}`);
    }
  } finally {
    for (const srv of Object.values(servers)) await srv.close();
  }
  if (!strace.lt) ctx.log('strace not installed or could not attach: wakeups only');
  return report(samples, strace, s.seconds);
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** Wakeups per MiB echoed, round by round; NaN for a round that is no figure (the rounds stay paired). */
const wakeupsPerMiB = (xs: readonly Sample[]) =>
  xs.map((x) => (x.excluded === undefined && x.bytes > 0 ? x.wakeups / (x.bytes / MiB) : NaN));

/** The table and metrics of the samples (exported for the tests); a mode none of whose rounds counted has no figure. */
export function report(
  samples: Record<Run, Sample[]>,
  strace: Partial<Record<Mode, { counts: SyscallCounts; bytes: number }>>,
  seconds: number,
): ScenarioResult {
  const metrics: Record<string, number> = {};
  const rows: (string | number)[][] = [];
  /** Rounds not counted (loadgenFailure), per mode, for the note. */
  const notCounted: string[] = [];
  const perRound = { lt: wakeupsPerMiB(samples.lt), et: wakeupsPerMiB(samples.et), aa: wakeupsPerMiB(samples.aa) };
  for (const r of RUNS) {
    const all = samples[r];
    const xs = all.filter((x) => x.excluded === undefined);
    const out = all.length - xs.length;
    if (out > 0)
      notCounted.push(
        `${r === 'aa' ? 'LT A/A' : r.toUpperCase()} ${out} of ${all.length} (${all.find((x) => x.excluded)!.excluded})`,
      );
    if (xs.length === 0 && all.length > 0) {
      rows.push([
        r === 'aa' ? 'LT A/A (epoll again)' : `${r.toUpperCase()} (${BACKENDS[r]})`,
        'no figure',
        '',
        '',
        '',
        '',
        '',
      ]);
      continue;
    }
    const mib = sum(xs.map((x) => x.bytes)) / MiB;
    const wakeups = sum(xs.map((x) => x.wakeups));
    const events = sum(xs.map((x) => x.events));
    // The median round, not the total: one round that woke five times as often would be most of a sum.
    const wakeupsMedian = summarize(perRound[r]).median;
    if (r === 'aa') {
      rows.push([
        'LT A/A (epoll again)',
        fmt(mib / xs.length, 1),
        fmt(wakeupsMedian, 1),
        fmt(events / Math.max(1, wakeups), 2),
        '',
        '',
        '',
      ]);
      continue;
    }
    const st = strace[r];
    const perMiB = st ? st.counts.total / (st.bytes / MiB) : NaN;
    const waitsPerMiB = st ? (st.counts.bySyscall.epoll_wait ?? 0) / (st.bytes / MiB) : NaN;
    metrics[`lt-et.${r}.wakeupsPerMiB`] = wakeupsMedian;
    metrics[`lt-et.${r}.eventsPerWakeup`] = events / Math.max(1, wakeups);
    metrics[`lt-et.${r}.MiBps`] = mib / (xs.length * seconds);
    if (st) metrics[`lt-et.${r}.syscallsPerMiB`] = perMiB;
    const top = st
      ? Object.entries(st.counts.bySyscall)
          .sort((a, b) => b[1] - a[1])
          .slice(0, 4)
          .map(([k, v]) => `${k} ${fmt(v / (st.bytes / MiB), 1)}`)
          .join(', ')
      : 'strace not available';
    rows.push([
      `${r.toUpperCase()} (${BACKENDS[r]})`,
      fmt(mib / xs.length, 1),
      fmt(wakeupsMedian, 1),
      fmt(events / Math.max(1, wakeups), 2),
      fmt(perMiB, 1),
      fmt(waitsPerMiB, 1),
      top,
    ]);
  }
  const floor = noiseFloor(perRound.lt, perRound.aa);
  const ratio = pairedRatio(perRound.et, perRound.lt);
  if (Number.isFinite(ratio.median)) metrics['lt-et.et-over-lt.wakeups'] = ratio.median;
  if (floor !== undefined) metrics['lt-et.floor'] = floor;
  return {
    tables: [
      {
        title: 'LT vs ET: wakeups and syscalls per MiB echoed',
        columns: [
          'mode',
          'MiB/run',
          'wakeups/MiB',
          'events/wakeup',
          'syscalls/MiB',
          'epoll_wait/MiB',
          'top syscalls/MiB',
        ],
        rows,
        note:
          'Echo of 16 KiB messages over 50 connections through one Reactor (attached to Node’s loop) in a child pinned ' +
          'to the server CPU; wakeups are the poller’s wait calls, counted by a wrapper around Poller.wait. ' +
          'Syscalls: strace -c -f on the server process during one further 1 s run (strace slows the server; the ' +
          'counts per MiB, not the speed, are the figure). Wakeups/MiB: the median round (how the load falls into ' +
          `batches moves from round to round); ET/LT wakeups: ${formatRatio(ratio)}, the median of the rounds' ` +
          `paired ratios. Noise: the LT server measured twice a round, ${formatFloor(floor)}. A round whose load ` +
          'generator run had errors or did not end as asked is not counted (bench/tools.ts loadgenFailure)' +
          (notCounted.length ? `: ${notCounted.join('; ')}.` : '.'),
      },
    ],
    metrics,
    data: { samples, strace },
  };
}

export const ltEt: Scenario = {
  name: 'lt-et',
  title: 'Level- vs edge-triggered epoll: wakeups and syscalls per MiB',
  description:
    'The same echo workload through the Reactor with backend epoll (level-triggered) and epoll-et (edge-triggered): ' +
    'poller wakeups per MiB (a counter around Poller.wait) and syscalls per MiB (strace -c -f, when installed). Tests claim 2.',
  estimate: { quick: 19, full: 56 },
  run,
};
