/**
 * multiplex: the cost of one wait + dispatch with 1 active fd among N idle ones, for each
 * Poller backend (N = 10, 100, 1000, 10000; select only while every fd stays below
 * FD_SETSIZE). The classic claim (claim 1 in bench/claims.ts): select and poll cost grows with the
 * number of watched fds, since the kernel walks every one on every call; epoll's does not,
 * since its ready list holds only the fds that fired.
 *
 * One iteration writes a byte to the active socketpair, waits (timeout 0), dispatches the
 * fired pairs through an fd-indexed handler table, then reads the byte back (so that
 * edge-triggered epoll sees a new edge each time). Only the wait + dispatch are timed.
 */
import { createPoller, pollerNames, type Poller, type PollerName } from '../../src/loop/poller.js';
import { constants } from '../../src/sys/constants.js';
import * as sys from '../../src/sys/index.js';
import type { BenchContext, Chart, Scenario, ScenarioResult, Table } from '../scenario.js';
import { formatFloor, noiseFloor } from '../verdict.js';

const SIZES = [10, 100, 1000, 10000];
const FD_SETSIZE = constants.FD_SETSIZE as number;
const EPOLLIN = constants.EPOLLIN as number;

interface Fixture {
  active: [number, number];
  idle: number[];
  close(): void;
}

function raiseFdLimit(need: number): void {
  const lim = sys.getrlimit(constants.RLIMIT_NOFILE as number);
  if (lim.soft >= need) return;
  sys.setrlimit(constants.RLIMIT_NOFILE as number, { soft: Math.min(need, lim.hard), hard: lim.hard });
}

/** The active pair first, so that its fds are the lowest (select needs them below 1024). */
function fixture(maxIdle: number): Fixture {
  const active = sys.socketpair();
  const idle: number[] = [];
  while (idle.length < maxIdle) idle.push(...sys.socketpair());
  return {
    active,
    idle,
    close() {
      for (const fd of [...active, ...idle]) sys.close(fd);
    },
  };
}

/**
 * ns per wait + dispatch with `n` idle fds watched, or undefined if select cannot hold them.
 * Only the wait and the dispatch are inside the clock; the write that makes the fd active
 * and the read that consumes it are outside.
 */
function measure(name: PollerName, fx: Fixture, n: number, budgetMs: number): number | undefined {
  const idle = fx.idle.slice(0, n);
  const [a, b] = fx.active;
  if (name === 'select' && Math.max(a, b, ...idle) >= FD_SETSIZE) return undefined;
  const poller: Poller = createPoller(name);
  try {
    for (const fd of idle) poller.add(fd, EPOLLIN);
    poller.add(a, EPOLLIN);
    const one = Buffer.from('x');
    const sink = Buffer.alloc(16);
    let dispatched = 0;
    const handlers: ((fd: number, ev: number) => void)[] = [];
    handlers[a] = () => dispatched++;
    const out = new Int32Array(2 * 64);
    let inside = 0;
    let iterations = 0;
    const end = performance.now() + budgetMs;
    while (performance.now() < end) {
      for (let i = 0; i < 64; i++) {
        sys.write(b, one);
        const t0 = performance.now();
        const k = poller.wait(out, 0);
        for (let j = 0; j < k; j++) handlers[out[2 * j]!]?.(out[2 * j]!, out[2 * j + 1]!);
        inside += performance.now() - t0;
        sys.read(a, sink);
      }
      iterations += 64;
    }
    if (dispatched !== iterations) throw new Error(`${name}: ${dispatched} of ${iterations} waits reported the fd`);
    return (inside * 1e6) / iterations;
  } finally {
    poller.close();
  }
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const budgetMs = ctx.profile === 'full' ? 400 : 60;
  raiseFdLimit(Math.max(...SIZES) + 256);
  const fx = fixture(Math.max(...SIZES));
  const results = new Map<PollerName, (number | undefined)[]>();
  let floor: number | undefined;
  try {
    let step = 0;
    for (const name of pollerNames) {
      const row: (number | undefined)[] = [];
      for (const n of SIZES) {
        ctx.progress(step++ / (pollerNames.length * SIZES.length), `${name}, ${n} idle fds`);
        row.push(measure(name, fx, n, budgetMs));
        await new Promise((r) => setImmediate(r));
      }
      results.set(name, row);
    }
    // A/A: epoll measured a second time at every N, the floor claim 1's verdict is read against
    const again: (number | undefined)[] = [];
    for (const n of SIZES) again.push(measure('epoll', fx, n, budgetMs));
    floor = noiseFloor(
      (results.get('epoll') ?? []).map((v) => v ?? NaN),
      again.map((v) => v ?? NaN),
    );
  } finally {
    fx.close();
  }
  const table: Table = {
    title: 'Wait + dispatch with 1 active fd among N idle (ns per wait, lower is better)',
    columns: ['idle fds', ...pollerNames],
    rows: SIZES.map((n, i) => [n, ...pollerNames.map((name) => fmt(results.get(name)![i]))]),
    note:
      'Each wait uses timeout 0 and reports the one active socketpair; only the wait + dispatch are timed ' +
      `(performance.now() around them, ~30 ns of it). '—': select cannot watch fds >= FD_SETSIZE (${FD_SETSIZE}). ` +
      `Noise: epoll measured again at every N, ${formatFloor(floor)}.`,
  };
  const chart: Chart = {
    title: 'Wait + dispatch cost vs watched fds',
    xLabel: 'idle fds watched',
    yLabel: 'ns per wait',
    logX: true,
    series: pollerNames.map((name) => ({
      name,
      points: SIZES.flatMap((n, i): [number, number][] => {
        const v = results.get(name)![i];
        return v === undefined ? [] : [[n, Math.round(v)]];
      }),
    })),
  };
  // The figures claim 1's rule reads (bench/claims.ts): microseconds per wait + dispatch.
  const metrics: Record<string, number> = {};
  for (const [name, row] of results) {
    SIZES.forEach((n, i) => {
      const v = row[i];
      if (v !== undefined) metrics[`multiplex.${name}.n${n}.us`] = v / 1000;
    });
  }
  if (floor !== undefined) metrics['multiplex.floor'] = floor;
  return { tables: [table], charts: [chart], data: Object.fromEntries(results), metrics };
}

function fmt(v: number | undefined): string | number {
  return v === undefined ? '—' : Math.round(v);
}

export const multiplex: Scenario = {
  name: 'multiplex',
  title: 'select / poll / epoll: cost of a wait as watched fds grow',
  description:
    'The cost of one wait + dispatch with one active fd among N idle ones (N = 10 … 10000) for select, poll, ' +
    'epoll and edge-triggered epoll. Tests the claim that select and poll grow with N and epoll does not.',
  estimate: { quick: 5, full: 20 },
  run,
};
