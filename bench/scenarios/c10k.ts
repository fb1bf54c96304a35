/**
 * C10K (claim 7): the memory (VmRSS) and threads (/proc/<pid>/status) of the server
 * process holding 1 000, 5 000 and 10 000 idle connections, for thread-per-connection (its
 * cap raised with `workers`), multi-reactor, and proactor when this build has it. Both
 * sides raise RLIMIT_NOFILE to the hard limit. The client (this process) opens idle TCP
 * connections in batches with sys.connectTcp and waits for the server to take them —
 * for thread-per-connection, until a thread per connection is running. A model that does
 * not get there within the time budget, or whose RSS passes the memory budget (the machine
 * is shared: it is stopped before it can hurt the others), is recorded as failing there.
 */
import { freemem } from 'node:os';
import type { BenchContext, Scenario, ScenarioResult } from '../scenario.js';
import { connectTcp, close } from '../../src/sys/socket.js';
import { fmt } from '../stats.js';
import { procStatus } from '../lib/external.js';
import { startModel, type MeasuredServer } from '../lib/measured-servers.js';
import { raiseNofile } from '../servers/rawio.js';

const MODELS = ['thread-per-connection', 'multi-reactor', 'proactor'] as const;
const BATCH = 250;
/** How a level the client could not open starts its reason: no figure of the model. */
const CLIENT_FAILED = 'client: ';
/** serve()'s upper bound on `workers`, the thread cap of thread-per-connection. */
const MAX_WORKERS = 4096;
const NONE = { ok: false, reached: 0, rssMiB: NaN, threads: NaN, seconds: NaN };
/** Why a level past the cap was not tried. */
const CAPPED = `serve() caps workers (threads) at ${MAX_WORKERS}`;

export interface Level {
  model: string;
  n: number;
  ok: boolean;
  reached: number;
  rssMiB: number;
  threads: number;
  seconds: number;
  why?: string;
  /** Not tried: past the thread cap serve() sets for thread-per-connection (MAX_WORKERS). */
  capped?: boolean;
}

function settings(ctx: BenchContext) {
  return ctx.profile === 'full'
    ? { levels: [1000, 5000, 10000], budgetSeconds: 240 }
    : { levels: [1000, 5000], budgetSeconds: 30 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** RSS above which a run stops: a third of the free memory, at most 8 GiB. */
const memoryBudgetMiB = () => Math.min(8192, freemem() / 3 / 2 ** 20);

/**
 * How far the scenario is, 0..1: models before this one done, and within this one the
 * further of the time spent (out of its deadline) and the connections held (levels before
 * this one, and this one's share). The whole scenario's, so that it never falls back to 0 as
 * the next model starts (the progress bar extrapolates the time left from it).
 */
export function c10kFraction(o: {
  model: number;
  models: number;
  seconds: number;
  deadline: number;
  level: number;
  levels: number;
  got: number;
  n: number;
}): number {
  const held = (o.level + Math.min(1, o.got / o.n)) / o.levels;
  const inModel = Math.min(1, Math.max(o.seconds / o.deadline, held));
  return (o.model + inModel) / o.models;
}

async function holdLevels(
  ctx: BenchContext,
  model: string,
  t: MeasuredServer,
  levels: number[],
  deadline: number,
  modelIndex: number,
) {
  const out: Level[] = [];
  const fds: number[] = [];
  const base = procStatus(t.pid);
  const budget = memoryBudgetMiB();
  const t0 = performance.now();
  const served = async () => {
    const st = (await t.stats()) as { connections?: number };
    const conns = st.connections ?? 0;
    // thread-per-connection accepts first and starts the thread after: count the threads
    if (model !== 'thread-per-connection') return conns;
    return Math.min(conns, procStatus(t.pid).threads - base.threads);
  };
  let failed: string | undefined;
  for (const [level, n] of levels.entries()) {
    if (failed) {
      out.push({ model, n, ok: false, reached: 0, rssMiB: NaN, threads: NaN, seconds: NaN, why: failed });
      continue;
    }
    while (fds.length < n && !failed) {
      const want = Math.min(n, fds.length + BATCH);
      try {
        while (fds.length < want) fds.push(connectTcp('127.0.0.1', t.port));
      } catch (e) {
        failed = `${CLIENT_FAILED}${(e as Error).message}`;
        break;
      }
      // let the server catch up to within one batch, watching time and memory
      for (;;) {
        const got = await served();
        const rss = procStatus(t.pid).rssKiB / 1024;
        const seconds = (performance.now() - t0) / 1000;
        const at = { model: modelIndex, models: MODELS.length, seconds, deadline, level, levels: levels.length };
        ctx.progress(c10kFraction({ ...at, got, n }), `${model}: ${got}/${n} connections`);
        if (rss > budget) failed = `RSS ${fmt(rss)} MiB passed the memory budget (${fmt(budget)} MiB) at ${got}`;
        else if ((performance.now() - t0) / 1000 > deadline) failed = `only ${got} served after ${deadline} s`;
        if (failed || got >= fds.length - (fds.length >= n ? 0 : BATCH)) break;
        await sleep(100);
      }
    }
    const reached = await served();
    const st = procStatus(t.pid);
    const seconds = (performance.now() - t0) / 1000;
    out.push({
      model,
      n,
      ok: !failed && reached >= n,
      reached,
      rssMiB: st.rssKiB / 1024,
      threads: st.threads,
      seconds,
    });
    if (failed) out[out.length - 1]!.why = failed;
  }
  for (const fd of fds) close(fd);
  return out;
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const s = settings(ctx);
  const limit = raiseNofile();
  const max = Math.max(...s.levels);
  const levels = s.levels.filter((n) => n + 100 <= limit);
  if (levels.length < s.levels.length) ctx.log(`RLIMIT_NOFILE ${limit}: levels above ${limit - 100} skipped`);
  const rows: Level[] = [];
  for (const [modelIndex, model] of MODELS.entries()) {
    const tpc = model === 'thread-per-connection';
    const opts = {
      model,
      protocol: 'echo',
      idleTimeout: 3_600_000,
      ...(tpc ? { workers: Math.min(MAX_WORKERS, max + 100) } : {}),
    };
    const st = await startModel(ctx, model, opts);
    if (!st.ok) {
      for (const n of levels)
        rows.push({ model, n, ok: false, reached: 0, rssMiB: NaN, threads: NaN, seconds: NaN, why: st.reason });
      ctx.log(`${model}: ${st.reason}`);
      continue;
    }
    try {
      const reachable = tpc ? levels.filter((n) => n <= MAX_WORKERS) : levels;
      rows.push(...(await holdLevels(ctx, model, st.target, reachable, s.budgetSeconds, modelIndex)));
      for (const n of levels.filter((l) => !reachable.includes(l)))
        rows.push({ ...NONE, model, n, capped: true, why: `${CAPPED}: one thread per connection cannot hold ${n}` });
    } finally {
      await st.target.close();
    }
  }
  return c10kReport(rows);
}

/**
 * A level that says nothing of the model: its server was not available, or the client
 * failed (could not open its connections), which no model could have helped.
 */
const unmeasured = (r: Level) => r.why?.startsWith('not available') || r.why?.startsWith(CLIENT_FAILED);

/**
 * The table and metrics of the levels (`c10k.<model>.n<N>.ok|rssMiB|threads`, and per model
 * `c10k.<model>.failedAt`, the fewest connections it was tried at and failed to hold, and
 * `c10k.<model>.cappedAt`, the fewest it was not tried at for serve()'s thread cap). A level
 * past the cap is no figure of the model's: it was never tried.
 */
export function c10kReport(rows: Level[]): ScenarioResult {
  const metrics: Record<string, number> = {};
  const least = (key: string, n: number) => {
    if (!(metrics[key]! <= n)) metrics[key] = n;
  };
  for (const r of rows) {
    if (unmeasured(r)) continue;
    if (r.capped === true) {
      least(`c10k.${r.model}.cappedAt`, r.n);
      continue;
    }
    metrics[`c10k.${r.model}.n${r.n}.ok`] = r.ok ? 1 : 0;
    if (r.ok) {
      metrics[`c10k.${r.model}.n${r.n}.rssMiB`] = r.rssMiB;
      metrics[`c10k.${r.model}.n${r.n}.threads`] = r.threads;
    } else least(`c10k.${r.model}.failedAt`, r.n);
  }
  return {
    tables: [
      {
        title: 'C10K: server memory and threads at idle connections',
        columns: ['model', 'connections', 'held', 'RSS MiB', 'threads', 's to reach', 'note'],
        rows: rows.map((r) => [
          r.model,
          fmt(r.n),
          r.ok ? 'yes' : `no (${fmt(r.reached)})`,
          fmt(r.rssMiB, 0),
          fmt(r.threads, 0),
          fmt(r.seconds, 1),
          r.why ?? '',
        ]),
        note:
          'Echo servers pinned to the server CPU, RLIMIT_NOFILE raised to the hard limit on both sides; idle client ' +
          'connections opened in batches of 250. RSS and threads from /proc/<pid>/status of the server process ' +
          '(thread-per-connection runs a Node worker thread, a V8 isolate, per connection). A run stops when the ' +
          'RSS passes a third of the free memory (at most 8 GiB) or the time budget ends.',
      },
    ],
    metrics,
    data: rows,
  };
}

export const c10k: Scenario = {
  name: 'c10k',
  title: 'C10K: memory and threads at 1 000 / 5 000 / 10 000 idle connections',
  description:
    'Server RSS and thread count holding idle connections, thread-per-connection vs multi-reactor (and proactor ' +
    'when available). Tests claim 7.',
  estimate: { quick: 60, full: 300 },
  run,
};
