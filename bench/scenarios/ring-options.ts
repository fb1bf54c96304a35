/**
 * Ring options: the `proactor` model (one thread) serving HTTP hello to 50 keep-alive
 * connections with each ring setup option on and off — a registered ring fd
 * (IORING_REGISTER_RING_FDS), IORING_SETUP_SUBMIT_ALL, a larger CQ (IORING_SETUP_CQSIZE),
 * recv bundles (IORING_RECVSEND_BUNDLE) and incremental provided buffers (IOU_PBUF_RING_INC).
 * Every variant is up at once and measured interleaved (A B C …, then … C B A), medians of
 * the measured rounds, with the server CPU per request from /proc. An option the kernel
 * lacks is listed as not measured, with the probe's reason.
 */
import { ringOptionSupport, type RingOptionName } from '../../src/sys/ring-options.js';
import type { RingSetup } from '../../src/models/types.js';
import { loadgen } from '../loadgen.js';
import { compare } from '../runner.js';
import type { BenchContext, Scenario, ScenarioResult } from '../scenario.js';
import { fmt, summarize } from '../stats.js';
import { settle, ticksPerSecond, treeCpu } from '../lib/external.js';
import { startModel, type MeasuredServer } from '../lib/measured-servers.js';

interface Variant {
  /** The name in the table and metrics. */
  name: string;
  option?: RingOptionName;
  ring: RingSetup;
}

/** The baseline is the default setup (submit-all on, nothing else); each variant changes one thing. */
const VARIANTS: Variant[] = [
  { name: 'default', ring: {} },
  { name: 'registerRingFd', option: 'registerRingFd', ring: { registerRingFd: true } },
  { name: 'submitAll off', option: 'submitAll', ring: { submitAll: false } },
  { name: 'cqEntries 8192', option: 'cqSize', ring: { cqEntries: 8192 } },
  { name: 'recvBundle', option: 'recvBundle', ring: { recvBundle: true } },
  { name: 'incrementalBuffers', option: 'incrementalBuffers', ring: { incrementalBuffers: true } },
];

interface Row {
  name: string;
  rps: number[];
  cpuUs: number[];
  note?: string;
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const full = ctx.profile === 'full';
  const seconds = full ? 3 : 1;
  const support = ringOptionSupport();
  const up = new Map<string, MeasuredServer>();
  const rows = new Map<string, Row>(VARIANTS.map((v) => [v.name, { name: v.name, rps: [], cpuUs: [] }]));
  try {
    for (const v of VARIANTS) {
      if (v.option && !support[v.option].supported) {
        rows.get(v.name)!.note = `not measured: ${support[v.option].detail}`;
        continue;
      }
      const st = await startModel(ctx, v.name, { model: 'proactor', protocol: 'http', workers: 1, ring: v.ring });
      if (st.ok) up.set(v.name, st.target);
      else rows.get(v.name)!.note = st.reason;
    }
    const contenders = [...up].map(([name, t]) => ({
      name,
      run: async () => {
        await settle([t.rootPid]);
        const before = treeCpu(t.rootPid);
        const r = await loadgen({
          port: t.port,
          protocol: 'http',
          connections: 50,
          durationMs: seconds * 1000,
          drainMs: 200,
          cpus: ctx.clientCpus,
        });
        const after = treeCpu(t.rootPid);
        const ticks = after.user - before.user + (after.system - before.system);
        // the CPU is read around the whole run, drain included: so divided by every reply received
        rows.get(name)!.cpuUs.push((ticks * 1e6) / ticksPerSecond() / Math.max(1, r.received));
        return r.requests / seconds;
      },
    }));
    const c = await compare(contenders, {
      warmup: 1,
      repeats: full ? 5 : 3,
      onRun: (d, total, name) => ctx.progress(d / total, name),
    });
    for (const [name, s] of Object.entries(c.samples)) {
      const row = rows.get(name)!;
      row.rps = s;
      row.cpuUs = row.cpuUs.slice(-s.length); // the warm-up round's CPU is not a sample
    }
  } finally {
    await Promise.all([...up.values()].map((t) => t.close()));
  }
  return report([...rows.values()]);
}

function report(rows: Row[]): ScenarioResult {
  const metrics: Record<string, number> = {};
  const base = rows.find((r) => r.name === 'default');
  const baseRps = base && base.rps.length > 0 ? summarize(base.rps).median : NaN;
  const table = rows.map((r) => {
    if (r.rps.length === 0) return [r.name, r.note ?? 'not measured', '', '', ''];
    const rps = summarize(r.rps);
    const cpu = summarize(r.cpuUs).median;
    const key = r.name.replace(/ /g, '-');
    metrics[`ring-options.http.${key}.rps`] = rps.median;
    metrics[`ring-options.http.${key}.cpuUs`] = cpu;
    const vs = r === base || !Number.isFinite(baseRps) ? '' : `${(rps.median / baseRps).toFixed(2)}x`;
    return [r.name, fmt(rps.median), `${fmt(rps.min)}–${fmt(rps.max)}`, vs, fmt(cpu, 2)];
  });
  return {
    tables: [
      {
        title: 'Ring setup options: proactor (1 thread), HTTP hello, 50 keep-alive connections',
        columns: ['ring setup', 'req/s (median)', 'range', 'vs default', 'server CPU µs/req'],
        rows: table,
        note:
          'Each row changes one option from the default setup (submit-all on, the CQ twice the SQ, 256 provided ' +
          'buffers of 16 KiB, no registered ring fd). All variants up at once, measured interleaved, medians of the ' +
          'measured rounds; server CPU per request (user + system of the server process, /proc) over the same runs. ' +
          'HTTP hello requests are small: bundles and incremental buffers matter most for larger reads.',
      },
    ],
    metrics,
    data: rows,
  };
}

export const ringOptions: Scenario = {
  name: 'ring-options',
  title: 'Ring setup options on and off: proactor HTTP hello',
  description:
    'The proactor model with each io_uring setup option on and off — registered ring fd, submit-all, CQ size, recv ' +
    'bundles, incremental provided buffers — measured interleaved, with the server CPU per request.',
  estimate: { quick: 30, full: 110 },
  run,
};
