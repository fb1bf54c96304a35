/**
 * External servers and tools the server scenarios stand beside rawio, each only when
 * installed: nginx (one worker, a hello-world `return 200`, config in a temp dir), and
 * redis-server (no persistence), both pinned with taskset to the server CPU and bound to
 * loopback on a free port; `strace -c -f` attached to a running process to count its
 * syscalls; and /proc/<pid>/status (VmRSS, Threads) for the C10K scenario.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, createConnection, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { which } from '../tools.js';

export interface External {
  name: string;
  port: number;
  /** The process doing the serving (nginx: its worker). */
  pid: number;
  close(): Promise<void>;
}

/** A free loopback port (bound, read, released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function pinned(cmd: string, args: string[], cpus: number[]): ChildProcess {
  const ts = which('taskset');
  return ts
    ? spawn(ts, ['-c', cpus.join(','), cmd, ...args], { stdio: 'ignore' })
    : spawn(cmd, args, { stdio: 'ignore' });
}

/** Resolves once something accepts on the port (or rejects after `ms`). */
async function waitListening(port: number, child: ChildProcess, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((r) => {
      const c = createConnection(port, '127.0.0.1', () => (c.destroy(), r(true)));
      c.once('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('did not start listening');
}

function stopper(child: ChildProcess, signal: NodeJS.Signals): () => Promise<void> {
  return () =>
    new Promise((res) => {
      if (child.exitCode !== null || child.signalCode !== null) return res();
      child.once('exit', () => res());
      child.kill(signal);
      setTimeout(() => child.kill('SIGKILL'), 3000).unref();
    });
}

/** The children of a process (nginx master → worker). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** nginx with one worker answering `return 200 "hello world\n"`, or null when not installed. */
export async function startNginx(dir: string, cpus: number[]): Promise<External | null> {
  const nginx = which('nginx');
  if (!nginx) return null;
  const port = await freePort();
  const prefix = join(dir, `nginx-${port}`);
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  const conf = join(prefix, 'nginx.conf');
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  writeFileSync(
    conf,
    `${user}worker_processes 1;\ndaemon off;\nerror_log ${prefix}/logs/error.log crit;\npid ${prefix}/nginx.pid;\n` +
      `events { worker_connections 4096; }\n` +
      `http { access_log off; keepalive_requests 100000000; keepalive_timeout 60s;\n` +
      `  client_body_temp_path ${prefix}; proxy_temp_path ${prefix}; fastcgi_temp_path ${prefix};\n` +
      `  uwsgi_temp_path ${prefix}; scgi_temp_path ${prefix};\n` +
      `  server { listen 127.0.0.1:${port}; location / { default_type text/plain; return 200 "hello world\\n"; } } }\n`,
  );
  const child = pinned(nginx, ['-p', prefix, '-c', conf], cpus);
  const close = stopper(child, 'SIGQUIT');
  try {
    await waitListening(port, child);
  } catch (e) {
    await close();
    throw new Error(`nginx: ${(e as Error).message}`);
  }
  const worker = childrenOf(child.pid!)[0] ?? child.pid!;
  return { name: 'nginx', port, pid: worker, close };
}

/** redis-server without persistence, or null when not installed. */
export async function startRedis(cpus: number[]): Promise<External | null> {
  const redis = which('redis-server');
  if (!redis) return null;
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const child = pinned(redis, [...args, '--daemonize', 'no', '--protected-mode', 'no'], cpus);
  const close = stopper(child, 'SIGTERM');
  try {
    await waitListening(port, child);
  } catch (e) {
    await close();
    throw new Error(`redis-server: ${(e as Error).message}`);
  }
  return { name: 'redis-server', port, pid: child.pid!, close };
}

/** Clock ticks per second of /proc's CPU times: USER_HZ, 100 on every Linux ABI. */
export const TICKS_PER_SECOND = 100;

/** CPU time (clock ticks) of a process and all its descendants, user and system apart, from /proc. */
export function treeCpu(pid: number): { user: number; system: number } {
  let user = 0;
  let system = 0;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    user = Number(f[11]); // utime
    system = Number(f[12]); // stime
  } catch {
    return { user: 0, system: 0 }; // gone
  }
  for (const child of childrenOf(pid)) {
    const c = treeCpu(child);
    user += c.user;
    system += c.system;
  }
  return { user, system };
}

/** CPU time (clock ticks, user + system) of a process and all its descendants. */
export function treeCpuTicks(pid: number): number {
  const c = treeCpu(pid);
  return c.user + c.system;
}

/**
 * Waits until the processes `pids` (and their children) are quiet — at most one clock tick
 * of CPU in a 100 ms window — or `maxMs` has passed; returns the ms waited. Servers on the
 * same CPU can be busy after their own run (thread-per-connection tears down hundreds of
 * threads for seconds after its clients leave), which would be charged to the next server
 * measured.
 */
export async function settle(pids: readonly number[], maxMs = 5000): Promise<number> {
  const t0 = performance.now();
  const total = () => pids.reduce((sum, pid) => sum + treeCpuTicks(pid), 0);
  let before = total();
  while (performance.now() - t0 < maxMs) {
    await new Promise((r) => setTimeout(r, 100));
    const now = total();
    if (now - before <= 1) break;
    before = now;
  }
  return performance.now() - t0;
}

/** VmRSS (KiB) and Threads of a process, from /proc/<pid>/status. */
export function procStatus(pid: number): { rssKiB: number; threads: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const num = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
  return { rssKiB: num('VmRSS'), threads: num('Threads') };
}

export interface SyscallCounts {
  total: number;
  bySyscall: Record<string, number>;
}

/** Parses the summary `strace -c` writes. */
export function parseStraceSummary(text: string): SyscallCounts {
  const bySyscall: Record<string, number> = {};
  let total = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || !/^[\d.]+$/.test(f[0]!)) continue;
    const name = f[f.length - 1]!;
    const calls = Number(f[3]);
    if (name === 'total') total = calls;
    else if (Number.isFinite(calls)) bySyscall[name] = calls;
  }
  return { total, bySyscall };
}

/**
 * Attaches `strace -c -f` to every thread of `pid` while `fn` runs; null when strace is not
 * installed or cannot attach (ptrace denied).
 */
export async function straceDuring<T>(
  pid: number,
  dir: string,
  fn: () => Promise<T>,
): Promise<{ result: T; counts: SyscallCounts | null }> {
  const strace = which('strace');
  if (!strace) return { result: await fn(), counts: null };
  const out = join(dir, `strace-${pid}-${Date.now()}.txt`);
  const child = spawn(strace, ['-c', '-f', '-o', out, '-p', String(pid)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500)); // attaching to every thread takes a moment
  const result = await fn();
  await new Promise<void>((res) => {
    if (child.exitCode !== null) return res();
    child.once('exit', () => res());
    child.kill('SIGINT');
  });
  try {
    return { result, counts: parseStraceSummary(readFileSync(out, 'utf8')) };
  } catch {
    return { result, counts: null };
  }
}
