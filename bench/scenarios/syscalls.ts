/**
 * Syscalls per request for the HTTP target: the same load generator run (HTTP hello,
 * keep-alive, 50 connections) against rawio's `single`, nginx with one worker (when
 * installed) and node:http, each with `strace -c -f` attached to the serving process for
 * the run. The counts per request show where a gap to nginx comes from (reads that return
 * EAGAIN, epoll_ctl churn, writes per reply). strace slows every server alike: the speed
 * under strace is not a figure, the counts per request are.
 */
import { loadgen } from '../loadgen.js';
import type { BenchContext, Scenario, ScenarioResult } from '../scenario.js';
import { fmt } from '../stats.js';
import { which } from '../tools.js';
import { straceDuring, type SyscallCounts } from '../lib/external.js';
import { startAnchor, startModel, startNode, type Started } from '../lib/targets.js';

const SERVERS = ['single', 'nginx', 'node-http'] as const;

function start(ctx: BenchContext, name: (typeof SERVERS)[number]): Promise<Started> {
  if (name === 'nginx') return startAnchor(ctx, 'nginx');
  if (name === 'node-http') return startNode(ctx, name, 'nodeHttp');
  return startModel(ctx, name, { model: 'single', protocol: 'http' });
}

interface Row {
  server: string;
  requests: number;
  counts?: SyscallCounts;
  note?: string;
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const seconds = ctx.profile === 'full' ? 4 : 2;
  const rows: Row[] = [];
  if (!which('strace')) {
    ctx.log('strace is not installed: no syscall counts');
    return report(SERVERS.map((server) => ({ server, requests: 0, note: 'not measured: strace is not installed' })));
  }
  let i = 0;
  for (const name of SERVERS) {
    ctx.progress(i++ / SERVERS.length, name);
    const st = await start(ctx, name);
    if (!st.ok) {
      rows.push({ server: name, requests: 0, note: st.reason });
      continue;
    }
    try {
      // a short unmeasured run first: JIT and connection set-up stay out of the counts
      await loadgen({
        port: st.target.port,
        protocol: 'http',
        connections: 50,
        durationMs: 300,
        drainMs: 200,
        cpus: ctx.clientCpus,
      });
      const { result, counts } = await straceDuring(st.target.pid, ctx.tmpDir, () =>
        loadgen({
          port: st.target.port,
          protocol: 'http',
          connections: 50,
          durationMs: seconds * 1000,
          drainMs: 300,
          cpus: ctx.clientCpus,
        }),
      );
      rows.push({
        server: name,
        requests: result.requests,
        ...(counts ? { counts } : { note: 'strace could not attach' }),
      });
    } finally {
      await st.target.close();
    }
  }
  return report(rows);
}

function report(rows: Row[]): ScenarioResult {
  const metrics: Record<string, number> = {};
  const table = rows.map((r) => {
    if (!r.counts || r.requests === 0) return [r.server, r.note ?? 'not measured', '', ''];
    const per = (n: number) => n / r.requests;
    metrics[`syscalls.http.${r.server}.perReq`] = per(r.counts.total);
    const top = Object.entries(r.counts.bySyscall)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 6)
      .map(([k, v]) => `${k} ${fmt(per(v), 2)}`)
      .join(', ');
    return [r.server, fmt(r.requests), fmt(per(r.counts.total), 2), top];
  });
  return {
    tables: [
      {
        title: 'Syscalls per request: HTTP hello, 50 keep-alive connections, under strace -c -f',
        columns: ['server', 'requests', 'syscalls/request', 'most frequent (per request)'],
        rows: table,
        note:
          'strace -c -f attached to the serving process (nginx: its one worker; rawio single and node:http: the whole ' +
          'Node process, helper threads included) for one load generator run; counts divided by the replies the ' +
          'load generator received. The ratio of the counts, not the speed under strace, is the figure.',
      },
    ],
    metrics,
    data: rows,
  };
}

export const syscalls: Scenario = {
  name: 'syscalls',
  title: 'Syscalls per HTTP request: rawio single vs nginx vs node:http (strace -c)',
  description:
    'The syscall count per request behind the HTTP target, from strace -c -f on each server for the same load ' +
    'generator run; skipped when strace is not installed.',
  estimate: { quick: 15, full: 25 },
  run,
};
