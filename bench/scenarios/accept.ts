/**
 * Accept strategies of the multi-process model: SO_REUSEPORT (one listening socket per
 * process, the kernel spreads connections by hash), EPOLLEXCLUSIVE (one shared socket, one
 * waiter woken per connection) and an accept mutex (nginx's accept_mutex). Many short
 * connections (connect, one 64-byte echo, close) from a client process pinned to the
 * client CPU; each process's accepts come from stats().accepted. Reports the balance
 * (max/min and coefficient of variation of accepts per process) and connections per second.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { compare } from '../runner.js';
import type { BenchContext, Scenario, ScenarioResult } from '../scenario.js';
import { fmt, median } from '../stats.js';
import { spawnOn } from '../tools.js';
import { startModel, type MeasuredServer } from '../lib/measured-servers.js';

const STRATEGIES = ['reuseport', 'exclusive', 'mutex'] as const;
export type Strategy = (typeof STRATEGIES)[number];
const client = fileURLToPath(new URL('../lib/connect-client.js', import.meta.url));

function settings(ctx: BenchContext) {
  return ctx.profile === 'full'
    ? { workers: 4, concurrency: 32, ms: 4000, repeats: 3 }
    : { workers: 4, concurrency: 16, ms: 1500, repeats: 2 };
}

function runClient(ctx: BenchContext, port: number, concurrency: number, ms: number) {
  const args = [client, String(port), String(concurrency), String(ms)];
  return new Promise<{ requests: number; errors: number; seconds: number }>((resolve, reject) =>
    spawnOn(ctx.clientCpus, process.execPath, args, (cmd, argv) =>
      execFile(cmd, argv, { timeout: ms + 30_000 }, (err, out) =>
        err ? reject(err) : resolve(JSON.parse(out) as { requests: number; errors: number; seconds: number }),
      ),
    ),
  );
}

export interface Result {
  accepted: number[];
  rate: number[];
  errors: number;
  note?: string;
}

const accepted = async (t: MeasuredServer) => ((await t.stats()) as { accepted?: number[] }).accepted ?? [];

function balance(a: number[]): { maxMin: number; cv: number } {
  const mean = a.reduce((x, y) => x + y, 0) / a.length;
  const sd = Math.sqrt(a.reduce((x, y) => x + (y - mean) ** 2, 0) / a.length);
  return { maxMin: Math.max(...a) / Math.max(1, Math.min(...a)), cv: mean > 0 ? sd / mean : NaN };
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const s = settings(ctx);
  const targets = new Map<Strategy, MeasuredServer>();
  const results = new Map<Strategy, Result>();
  try {
    for (const a of STRATEGIES) {
      const st = await startModel(ctx, a, { model: 'multi-process', protocol: 'echo', workers: s.workers, accept: a });
      results.set(a, { accepted: new Array<number>(s.workers).fill(0), rate: [], errors: 0 });
      if (st.ok) targets.set(a, st.target);
      else results.get(a)!.note = st.reason;
    }
    let n = 0;
    const total = (s.repeats + 1) * targets.size;
    await compare(
      [...targets].map(([a, t]) => ({
        name: a,
        run: async (round: number) => {
          const before = await accepted(t);
          const r = await runClient(ctx, t.port, s.concurrency, round === 0 ? 300 : s.ms);
          const after = await accepted(t);
          const res = results.get(a)!;
          if (round > 0) {
            after.forEach((v, i) => (res.accepted[i] = (res.accepted[i] ?? 0) + v - (before[i] ?? 0)));
            res.rate.push(r.requests / r.seconds);
            res.errors += r.errors;
          }
          return r.requests / r.seconds;
        },
      })),
      { warmup: 1, repeats: s.repeats, onRun: (_d, _t, name) => ctx.progress(n++ / total, name) },
    );
  } finally {
    for (const t of targets.values()) await t.close();
  }
  return report(results, s.workers);
}

/** The table and metrics of the results (exported for the tests). */
export function report(results: Map<Strategy, Result>, workers: number): ScenarioResult {
  const metrics: Record<string, number> = {};
  const rows: (string | number)[][] = [];
  for (const [a, r] of results) {
    if (r.rate.length === 0) {
      rows.push([a, r.note ?? 'not available', '', '', '', '']);
      continue;
    }
    const b = balance(r.accepted);
    const rate = median(r.rate);
    metrics[`accept.${a}.connPerSec`] = rate;
    metrics[`accept.${a}.maxOverMin`] = b.maxMin;
    metrics[`accept.${a}.cv`] = b.cv;
    rows.push([a, r.accepted.join(' / '), fmt(b.maxMin, 2), fmt(b.cv, 3), fmt(rate), r.errors]);
  }
  return {
    tables: [
      {
        title: `Accept strategies: accepts per process (${workers} processes) and connections per second`,
        columns: ['strategy', 'accepts per process', 'max/min', 'CV', 'conn/s', 'errors'],
        rows,
        note:
          'multi-process model, echo protocol, all processes pinned to the server CPU; the client (a node:net loop in ' +
          'its own process on the client CPU) opens a connection per request: connect, 64-byte echo, close. ' +
          'Accepts summed over the measured runs; CV = standard deviation / mean (0 is a perfect spread).',
      },
    ],
    metrics,
    data: Object.fromEntries(results),
  };
}

export const accept: Scenario = {
  name: 'accept',
  title: 'Accept strategies: reuseport vs EPOLLEXCLUSIVE vs accept mutex',
  description:
    'The multi-process model under many short connections with each accept strategy: how evenly the processes ' +
    'share the accepts (max/min, coefficient of variation) and how many connections per second they take.',
  estimate: { quick: 18, full: 60 },
  run,
};
