/**
 * Syscalls and CPU per request for the HTTP target: the same load generator run (HTTP hello,
 * keep-alive, 50 connections) against rawio's `single` and `proactor`, nginx with one
 * worker (when installed) and node:http, each with `strace -c -f` attached to the serving
 * process for the run. The counts per request show where a gap to nginx comes from (reads
 * that return EAGAIN, epoll_ctl churn, writes per reply). strace slows every server alike:
 * the speed under strace is not a figure, the counts per request are. Where the counts are
 * equal, the server CPU per request (user and system apart, from a run without strace)
 * shows where the time goes instead.
 */
import { loadgen } from '../loadgen.js';
import type { BenchContext, Scenario, ScenarioResult } from '../scenario.js';
import { fmt } from '../stats.js';
import { which } from '../tools.js';
import { straceDuring, ticksPerSecond, treeCpu, type SyscallCounts } from '../lib/external.js';
import { startAnchor, startModel, startNode, type Started } from '../lib/measured-servers.js';

const SERVERS = ['single', 'proactor', 'nginx', 'node-http'] as const;

function start(ctx: BenchContext, name: (typeof SERVERS)[number]): Promise<Started> {
  if (name === 'nginx') return startAnchor(ctx, 'nginx');
  if (name === 'node-http') return startNode(ctx, name, 'nodeHttp');
  return startModel(ctx, name, { model: name, protocol: 'http' });
}

interface Row {
  server: string;
  requests: number;
  counts?: SyscallCounts;
  /** CPU µs per request of the server's processes, from a run without strace. */
  cpu?: { user: number; system: number };
  note?: string;
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const seconds = ctx.profile === 'full' ? 4 : 2;
  const rows: Row[] = [];
  const hasStrace = which('strace') !== null;
  if (!hasStrace) ctx.log('strace is not installed: no syscall counts (CPU per request still measured)');
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
      const cpu = await cpuPerRequest(ctx, st.target.rootPid, st.target.port, seconds);
      if (!hasStrace) {
        rows.push({ server: name, requests: 0, cpu, note: 'not measured: strace is not installed' });
        continue;
      }
      const { result, counts, error } = await straceDuring(st.target.pid, ctx.tmpDir, () =>
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
        // strace counts over the whole run, warm-up and drain too: so every reply received
        requests: result.received,
        cpu,
        ...(counts ? { counts } : { note: `not measured: ${error}` }),
      });
    } finally {
      await st.target.close();
    }
  }
  return report(rows);
}

/** Server CPU (user and system µs) per request over one load generator run, from /proc (no tracer attached). */
async function cpuPerRequest(
  ctx: BenchContext,
  pid: number,
  port: number,
  seconds: number,
): Promise<{ user: number; system: number }> {
  const before = treeCpu(pid);
  const r = await loadgen({
    port,
    protocol: 'http',
    connections: 50,
    durationMs: seconds * 1000,
    drainMs: 300,
    cpus: ctx.clientCpus,
  });
  const after = treeCpu(pid);
  // the CPU is read around the whole run, drain included: so divided by every reply received
  const us = (ticks: number) => (ticks * 1e6) / ticksPerSecond() / Math.max(1, r.received);
  return { user: us(after.user - before.user), system: us(after.system - before.system) };
}

function report(rows: Row[]): ScenarioResult {
  const metrics: Record<string, number> = {};
  const table = rows.map((r) => {
    const cpu = r.cpu ? [fmt(r.cpu.user, 2), fmt(r.cpu.system, 2)] : ['', ''];
    if (r.cpu) {
      metrics[`syscalls.http.${r.server}.userUs`] = r.cpu.user;
      metrics[`syscalls.http.${r.server}.sysUs`] = r.cpu.system;
    }
    if (!r.counts || r.requests === 0) return [r.server, r.note ?? 'not measured', '', '', ...cpu];
    const per = (n: number) => n / r.requests;
    metrics[`syscalls.http.${r.server}.perReq`] = per(r.counts.total);
    const top = Object.entries(r.counts.bySyscall)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 6)
      .map(([k, v]) => `${k} ${fmt(per(v), 2)}`)
      .join(', ');
    return [r.server, fmt(r.requests), fmt(per(r.counts.total), 2), top, ...cpu];
  });
  return {
    tables: [
      {
        title: 'Syscalls and CPU per request: HTTP hello, 50 keep-alive connections',
        columns: ['server', 'requests', 'syscalls/request', 'most frequent (per request)', 'user µs/req', 'sys µs/req'],
        rows: table,
        note:
          'strace -c -f attached to the serving process (nginx: its one worker; rawio single and node:http: the whole ' +
          'Node process, helper threads included) for one load generator run; counts divided by the replies the ' +
          'load generator received. The ratio of the counts, not the speed under strace, is the figure. CPU per ' +
          'request: user and system time of the server process tree (/proc/<pid>/stat) over a separate run with no ' +
          'tracer attached — where the syscall counts are equal, this is where a gap is.',
      },
    ],
    metrics,
    data: rows,
  };
}

export const syscalls: Scenario = {
  name: 'syscalls',
  title: 'Syscalls and CPU per HTTP request: rawio single and proactor vs nginx vs node:http',
  description:
    'The syscall count per request behind the HTTP target, from strace -c -f on each server for the same load ' +
    'generator run (skipped when strace is not installed), and the server CPU per request, user and system apart.',
  estimate: { quick: 30, full: 50 },
  run,
};
