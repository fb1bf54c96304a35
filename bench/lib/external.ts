/**
 * External servers and tools the server scenarios stand beside rawio, each only when
 * installed: nginx (one worker, a hello-world `return 200` or static files with sendfile on,
 * off, or directio + aio threads; config in a temp dir), and redis-server (no persistence),
 * both pinned with taskset to the server CPU and bound to loopback on a free port, as is
 * the bench's own bare servers (bench/c/bare-server.c, bench/c/bare-uring.c);
 * `strace -c -f` attached to a running process to count its syscalls; /proc/<pid>/status
 * (VmRSS, Threads) for the C10K scenario and /proc/<pid>/stat (CPU time of a server's whole
 * process tree, reaped children included) for the scenarios that report CPU per request.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, createConnection, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { spawnOn, which } from '../tools.js';
import { describeEnd, ended, exited, hasEnded } from './child-exit.js';

export interface External {
  name: string;
  port: number;
  /** The process doing the serving (nginx: its worker). */
  pid: number;
  /** The root of the server's process tree (nginx: the master), whose CPU the scenarios count. */
  rootPid: number;
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
  return spawnOn(cpus, cmd, args, (c, a) => spawn(c, a, { stdio: 'ignore' }));
}

/** Resolves once something accepts on the port (or rejects after `ms`). */
async function waitListening(port: number, child: ChildProcess, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (hasEnded(child)) throw new Error(describeEnd({ code: child.exitCode, signal: child.signalCode }));
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
  return async () => {
    if (hasEnded(child)) return;
    const gone = ended(child);
    child.kill(signal);
    const kill = setTimeout(() => child.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(kill);
  };
}

/** The children of a process (nginx master → worker): those of every thread, not only the main one's. */
function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const tid of tasks) {
    try {
      const list = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      out.push(...list.map(Number));
    } catch {
      // the thread is gone
    }
  }
  return out;
}

/** The `location /` body of the hello-world nginx the HTTP scenarios measure. */
export const NGINX_HELLO = 'default_type text/plain; return 200 "hello world\\n";';

/**
 * nginx.conf for one worker on loopback, logs off, keep-alive without limit, every temp
 * path under `prefix`; `location` is the body of `location /`.
 */
export function nginxConf(o: { prefix: string; port: number; location: string; root: boolean }): string {
  const p = o.prefix;
  return (
    `${o.root ? 'user root;\n' : ''}worker_processes 1;\ndaemon off;\nerror_log ${p}/logs/error.log crit;\n` +
    `pid ${p}/nginx.pid;\nevents { worker_connections 4096; }\n` +
    `http { access_log off; keepalive_requests 100000000; keepalive_timeout 60s;\n` +
    `  client_body_temp_path ${p}; proxy_temp_path ${p}; fastcgi_temp_path ${p};\n` +
    `  uwsgi_temp_path ${p}; scgi_temp_path ${p};\n` +
    `  server { listen 127.0.0.1:${o.port}; location / { ${o.location} } } }\n`
  );
}

/** How nginx serves the static files: ngx_http_core_module's sendfile, directio and aio. */
export type NginxStaticMode = 'sendfile on' | 'sendfile off' | 'directio';

/**
 * The `location /` body serving the files under `root`. `sendfile on` as Debian's default
 * config has it (with tcp_nopush); `sendfile off` reads into nginx's default output buffers
 * (2 × 32 KiB); `directio`: files of 1 MiB and more read with O_DIRECT, by a thread pool
 * when `threads` (`aio threads`), into 4 × 256 KiB buffers (rawio's `direct` keeps as many
 * bytes in flight), smaller ones still by sendfile.
 */
export function nginxStaticLocation(root: string, mode: NginxStaticMode, threads: boolean): string {
  const base = `root "${root}"; default_type application/octet-stream;`;
  if (mode === 'sendfile on') return `${base} sendfile on; tcp_nopush on;`;
  if (mode === 'sendfile off') return `${base} sendfile off;`;
  return `${base} sendfile on; tcp_nopush on; directio 1m; output_buffers 4 256k;${threads ? ' aio threads;' : ''}`;
}

/** Whether this nginx was built with thread pools (`--with-threads`, needed by `aio threads`). */
export function nginxHasThreads(): boolean {
  const nginx = which('nginx');
  if (!nginx) return false;
  const r = spawnSync(nginx, ['-V'], { encoding: 'utf8' });
  return /--with-threads\b/.test(`${r.stdout}${r.stderr}`);
}

/** nginx with one worker (a hello-world `return 200` unless told otherwise), or null when not installed. */
export async function startNginx(dir: string, cpus: number[], location = NGINX_HELLO): Promise<External | null> {
  const nginx = which('nginx');
  if (!nginx) return null;
  const port = await freePort();
  const prefix = join(dir, `nginx-${port}`);
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(conf, nginxConf({ prefix, port, location, root: process.getuid?.() === 0 }));
  const child = pinned(nginx, ['-p', prefix, '-c', conf], cpus);
  const close = stopper(child, 'SIGQUIT');
  try {
    await waitListening(port, child);
  } catch (e) {
    await close();
    throw new Error(`nginx: ${(e as Error).message}`);
  }
  const worker = childrenOf(child.pid!)[0] ?? child.pid!;
  return { name: 'nginx', port, pid: worker, rootPid: child.pid!, close };
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
  return { name: 'redis-server', port, pid: child.pid!, rootPid: child.pid!, close };
}

/** A bare server of bench/c (built by c-driver.ts), run as `bin ...args PORT`. */
export async function startBareServer(name: string, bin: string, args: string[], cpus: number[]): Promise<External> {
  const port = await freePort();
  const child = pinned(bin, [...args, String(port)], cpus);
  const close = stopper(child, 'SIGTERM');
  try {
    await waitListening(port, child);
  } catch (e) {
    await close();
    throw new Error(`${name}: ${(e as Error).message}`);
  }
  return { name, port, pid: child.pid!, rootPid: child.pid!, close };
}

let clockTicks: number | undefined;

/** Clock ticks per second of /proc's CPU times (USER_HZ: `getconf CLK_TCK`, 100 on Linux). */
export function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    clockTicks = Number(r.stdout?.trim()) || 100;
  }
  return clockTicks;
}

/** The fields of /proc/<pid>/stat (proc(5)) the CPU accounting reads, in clock ticks. */
interface ProcStat {
  /** R, S, D, T, Z (exited, not yet waited for), X (being reaped) … */
  state: string;
  ppid: number;
  /** utime, stime: every thread's, those that exited too. */
  user: number;
  system: number;
  /**
   * cutime, cstime: the children this process has waited for, each with the children it had
   * waited for; a child's time moves here when its parent reaps it, not when it exits.
   */
  childUser: number;
  childSystem: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: count from the last ')'
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return {
      state: f[0]!,
      ppid: Number(f[1]),
      user: Number(f[11]),
      system: Number(f[12]),
      childUser: Number(f[13]),
      childSystem: Number(f[14]),
    };
  } catch {
    return undefined; // gone
  }
}

/** Readings of one process's subtree before treeCpu gives up on an exact one. */
const TREE_TRIES = 10;

/**
 * The CPU of `pid` and its descendants: own + reaped (cutime, cstime) + each child's
 * subtree, a child's time counted once, alive, exited but not waited for (a zombie's stat
 * still holds its time), or reaped (in the parent's cutime). The reads are not one atomic
 * snapshot: a child reaped between the reads of its parent and of itself would be counted
 * twice or not at all. So the parent's stat is read before and after its children, and the
 * reading taken again when its reaped time changed between the two (a child was reaped
 * meanwhile) or a listed child was gone (or being reaped, state X) when read; the listing of
 * children may also skip one while a sibling is removed, which only a reap does, so the same
 * check covers it. A child that is no longer `parent`'s (its pid reused) counts as gone.
 * Undefined when `pid` is gone (or being reaped) at either read of its own stat.
 */
function subtreeCpu(pid: number, parent?: number): { user: number; system: number } | undefined {
  const alive = (s: ProcStat | undefined): s is ProcStat =>
    s !== undefined && s.state !== 'X' && (parent === undefined || s.ppid === parent);
  for (let attempt = 1; ; attempt++) {
    const before = readStat(pid);
    if (!alive(before)) return undefined;
    const counted: { pid: number; user: number; system: number }[] = [];
    let lost = false; // a listed child gone when read: reaped after `before`, or being reaped
    for (const child of childrenOf(pid)) {
      const c = subtreeCpu(child, pid);
      if (c) counted.push({ pid: child, ...c });
      else lost = true;
    }
    const after = readStat(pid);
    if (!alive(after)) return undefined;
    const steady = !lost && after.childUser === before.childUser && after.childSystem === before.childSystem;
    if (!steady && attempt < TREE_TRIES) continue;
    // Steady: no child reaped while its parent was read, so each is counted once. Else (a
    // tree that reaps children faster than it can be read) the best of the last reading:
    // a child gone by now was most likely reaped before `after`, so is in its cutime.
    const total = { user: after.user + after.childUser, system: after.system + after.childSystem };
    for (const c of counted) {
      if (!steady && !alive(readStat(c.pid))) continue;
      total.user += c.user;
      total.system += c.system;
    }
    return total;
  }
}

/**
 * CPU time (clock ticks) of a process and all its descendants, user and system apart, from
 * /proc: every thread of every live process, and the children each has reaped, so a
 * difference of two readings counts a worker that died between them, and each child once
 * whether it is alive, exited or reaped at either reading (subtreeCpu). The kernel adds a
 * child's time to its parent's only when the parent waits for it: a parent that ignores
 * SIGCHLD (the kernel reaps for it) loses its children's time, and the children of a
 * process that died leave its tree. Zeros when `pid` is gone.
 */
export function treeCpu(pid: number): { user: number; system: number } {
  return subtreeCpu(pid) ?? { user: 0, system: 0 };
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

/** Per-CPU time counters (clock ticks) of the CPUs `cpus`, summed, from /proc/stat. */
export interface CpuTimes {
  busy: number;
  total: number;
}

/**
 * Busy and total time of the CPUs `cpus` so far: busy is user + nice + system + irq +
 * softirq, total adds idle, iowait and steal (time the hypervisor gave to someone else).
 * Zeros when /proc/stat cannot be read.
 */
export function cpuTimes(cpus: readonly number[]): CpuTimes {
  let busy = 0;
  let total = 0;
  try {
    for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
      const m = /^cpu(\d+)\s+(.*)$/.exec(line);
      if (!m || !cpus.includes(Number(m[1]))) continue;
      // user nice system idle iowait irq softirq steal (guest time is inside user)
      const [user, nice, system, idle, iowait, irq, softirq, steal] = m[2]!.split(/\s+/).map(Number);
      const b = user! + nice! + system! + irq! + softirq!;
      busy += b;
      total += b + idle! + iowait! + (steal ?? 0);
    }
  } catch {
    // not Linux, or /proc not mounted: no figure
  }
  return { busy, total };
}

/** The busy share (0–1) of the CPUs between two cpuTimes() readings; NaN when no time passed. */
export function busyShare(before: CpuTimes, after: CpuTimes): number {
  const total = after.total - before.total;
  return total > 0 ? (after.busy - before.busy) / total : NaN;
}

/** VmRSS (KiB) and Threads of a process, from /proc/<pid>/status. */
export function procStatus(pid: number): { rssKiB: number; threads: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const num = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
  return { rssKiB: num('VmRSS'), threads: num('Threads') };
}

/**
 * User + system CPU seconds a server has used so far: its process tree from `pid` (every
 * thread, the children it runs and has reaped; nginx: pass the master); NaN when `pid` is gone.
 */
export function treeCpuSeconds(pid: number): number {
  const c = subtreeCpu(pid);
  return c === undefined ? NaN : (c.user + c.system) / ticksPerSecond();
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

/** What straceDuring gives: `fn`'s result, and the counts or the reason there are none. */
export type StraceRun<T> =
  { result: T; counts: SyscallCounts; error?: undefined } | { result: T; counts: null; error: string };

/** Whether every thread of `pid` now has a tracer (TracerPid in its status); false once `pid` is gone. */
function everyThreadTraced(pid: number): boolean {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return false;
  }
  return tasks.every((tid) => {
    try {
      return !/^TracerPid:\s+0$/m.test(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'));
    } catch {
      return true; // the thread ended meanwhile
    }
  });
}

/** Ends `child` with `signal`, then SIGKILL if it has not ended within `ms`; resolves once it has ended. */
/** How long strace's stderr may stay open after strace ended before attaching (its reason, read to the end). */
const STDERR_GRACE_MS = 3000;

async function endChild(child: ChildProcess, signal: NodeJS.Signals, ms: number): Promise<void> {
  if (hasEnded(child)) return;
  const gone = ended(child);
  child.kill(signal);
  const kill = setTimeout(() => child.kill('SIGKILL'), ms);
  await gone;
  clearTimeout(kill);
}

/**
 * Attaches `strace -c -f` to every thread of `pid` (and the threads and children it starts)
 * and runs `fn` once strace has attached: once it has said so on stderr ("Process PID
 * attached", after it seized every thread) and every thread shows a tracer, so the counts
 * hold all of `fn`'s syscalls and none from before however long attaching takes. strace is
 * interrupted (SIGINT: it detaches and writes its summary) when `fn` settles, or throws.
 * When strace is not installed, ends before attaching (no such process, ptrace refused …) or
 * has not attached within `attachMs`, `fn` runs all the same and `error` says why there are
 * no counts. `o.strace`: the strace command to run (default: strace on the PATH).
 */
export async function straceDuring<T>(
  pid: number,
  dir: string,
  fn: () => Promise<T>,
  o: { attachMs?: number; strace?: string } = {},
): Promise<StraceRun<T>> {
  const strace = o.strace ?? which('strace');
  if (!strace) return { result: await fn(), counts: null, error: 'strace is not installed' };
  const attachMs = o.attachMs ?? 30_000;
  const out = join(dir, `strace-${pid}-${Date.now()}.txt`);
  const child = spawn(strace, ['-c', '-f', '-o', out, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let spawnError: Error | undefined;
  child.once('error', (e) => (spawnError = e));
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  // "strace: Process 123 attached with 7 threads", prefixed by strace's argv[0] as invoked
  const said = new RegExp(`(?:^|: )Process ${pid} attached`, 'm');
  const failed = async (why: string): Promise<StraceRun<T>> => {
    await endChild(child, 'SIGKILL', 0);
    // All it wrote to stderr read (its own reason), unless a child of a wrapper holds the
    // pipe open past its end: then what came within a few seconds, and the pipe let go.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited(child), new Promise((r) => (timer = setTimeout(r, STDERR_GRACE_MS)))]);
    clearTimeout(timer);
    child.stderr!.destroy();
    const text = stderr.trim().split('\n').slice(0, 3).join(' ');
    return { result: await fn(), counts: null, error: `strace -p ${pid}: ${why}${text ? `: ${text}` : ''}` };
  };
  for (const until = performance.now() + attachMs; ;) {
    if (spawnError) return failed(spawnError.message);
    if (hasEnded(child))
      return failed(`${describeEnd({ code: child.exitCode, signal: child.signalCode })} before attaching`);
    if (said.test(stderr) && everyThreadTraced(pid)) break;
    if (performance.now() > until) return failed(`not attached within ${attachMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 20));
  }
  let result: T;
  try {
    result = await fn();
  } finally {
    await endChild(child, 'SIGINT', 10_000);
  }
  if (child.signalCode === 'SIGKILL')
    return { result, counts: null, error: `strace -p ${pid}: did not end within 10 s of SIGINT` };
  try {
    return { result, counts: parseStraceSummary(readFileSync(out, 'utf8')) };
  } catch (e) {
    return { result, counts: null, error: `strace -p ${pid}: no summary: ${(e as Error).message}` };
  }
}
