/**
 * External tools the benchmarks use as cross-checks and anchors when installed (wrk,
 * redis-benchmark, fio, nginx): finding them, and running wrk and redis-benchmark pinned to
 * the client CPUs with their figures parsed from their text output.
 */
import { execFile, spawnSync } from 'node:child_process';
import { getAffinity, setAffinity } from '../src/sys/process.js';

const found = new Map<string, string | null>();

/** The path of an executable on PATH, or null. */
export function which(name: string): string | null {
  if (!found.has(name)) {
    const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    found.set(name, r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null);
  }
  return found.get(name)!;
}

/**
 * Runs `start` (a synchronous spawn, fork or execFile) with this thread pinned to `cpus`,
 * then restores its affinity: a child inherits the affinity of the thread that forks it,
 * and Node forks on the calling thread before spawn() returns, so the child and every
 * thread it starts are born on `cpus`. No pinning (and no error) where affinity cannot be set.
 */
export function bornOn<T>(cpus: readonly number[], start: () => T): T {
  let before: number[] | undefined;
  if (cpus.length > 0)
    try {
      before = getAffinity();
      setAffinity(cpus);
    } catch {
      before = undefined;
    }
  try {
    return start();
  } finally {
    if (before)
      try {
        setAffinity(before);
      } catch {
        // the old set was ours a moment ago; nothing better to do than go on
      }
  }
}

/**
 * Starts `cmd args` pinned to `cpus`: under taskset (util-linux) when installed, else born
 * on them (bornOn). `start` spawns the command and arguments it is given.
 */
export function spawnOn<T>(
  cpus: readonly number[],
  cmd: string,
  args: readonly string[],
  start: (cmd: string, args: string[]) => T,
): T {
  const ts = which('taskset');
  if (ts && cpus.length > 0) return start(ts, ['-c', cpus.join(','), cmd, ...args]);
  return bornOn(cpus, () => start(cmd, [...args]));
}

export interface WrkResult {
  rps: number;
  requests: number;
  latencyUs: { p50: number; p90: number; p99: number };
  errors: number;
}

/** "1.23ms" → 1230 (µs). */
export function parseDurationUs(s: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(s.trim());
  if (!m) return NaN;
  const k = { us: 1, ms: 1e3, s: 1e6, m: 6e7 }[m[2] as 'us' | 'ms' | 's' | 'm'];
  return Number(m[1]) * k;
}

export function parseWrk(out: string): WrkResult {
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const pct = (p: string) => parseDurationUs(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(out)?.[1] ?? '');
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = num(/Non-2xx or 3xx responses: (\d+)/);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    requests: num(/(\d+) requests in/),
    latencyUs: { p50: pct('50'), p90: pct('90'), p99: pct('99') },
    errors: (errs ? errs.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + (Number.isNaN(non2xx) ? 0 : non2xx),
  };
}

/**
 * Whether a wrk run is a figure: no errors (socket errors, non-2xx or 3xx replies) and some
 * requests. A run that is not reads NaN (the rounds stay paired, the medians leave it out),
 * never the rate of errors it measured.
 */
export function wrkMeasured(w: WrkResult): boolean {
  return w.errors === 0 && w.requests > 0 && Number.isFinite(w.rps);
}

/** What loadgenFailure reads of a load-generator run (rawio/loadgen's LoadgenResult). */
export interface LoadgenRun {
  requests: number;
  rps: number;
  ended: string;
  errors: { connect: number; reset: number; badReply: number; errorReply: number; lost: number };
}

/**
 * Why a run of rawio's load generator is no figure, or undefined when it is one: the
 * counterpart of wrkMeasured, the one rule every scenario applies before a load-generator
 * run feeds a metric. A figure has no connect error, reset, bad reply, error reply (HTTP
 * status >= 400, RESP -ERR: wrk's non-2xx) or lost request, ended as asked (`'done'`: not
 * stopped, stalled or unreachable) and measured some replies. A server that resets half its
 * connections, or answers errors fast, is not fast.
 *
 * One tolerance, only where the caller states it (`cutReplies`): the engine counts a request
 * still in flight when the drain runs out as lost (it closes its own connections then, so
 * a clean server gives no reset at the end, and one that answers within the drain loses
 * nothing). A stream of replies longer than the drain (a large file read from the device)
 * can be cut there on a clean server: at most one request per connection and pipeline slot,
 * with no reset or bad reply beside it. Any other lost request is the server's.
 */
export function loadgenFailure(r: LoadgenRun, o: { cutReplies?: number } = {}): string | undefined {
  const e = r.errors;
  const lost = e.lost > (o.cutReplies ?? 0) || (e.lost > 0 && (e.reset > 0 || e.badReply > 0)) ? e.lost : 0;
  const parts = (
    [
      ['connect errors', e.connect],
      ['resets', e.reset],
      ['bad replies', e.badReply],
      ['error replies', e.errorReply],
      ['lost', lost],
    ] as const
  )
    .filter(([, n]) => n > 0)
    .map(([what, n]) => `${what} ${n}`);
  if (r.ended !== 'done') parts.push(`ended '${r.ended}'`);
  if (!(r.requests > 0) || !Number.isFinite(r.rps)) parts.push('no reply in the window');
  return parts.length === 0 ? undefined : `not counted: ${parts.join(', ')}`;
}

/** Whether a load-generator run is a figure (loadgenFailure gives no reason). */
export function loadgenMeasured(r: LoadgenRun, o: { cutReplies?: number } = {}): boolean {
  return loadgenFailure(r, o) === undefined;
}

/** Runs wrk (one thread, keep-alive GET) against a loopback URL, pinned to `cpus` (spawnOn). */
export function runWrk(o: { url: string; connections: number; seconds: number; cpus: number[] }): Promise<WrkResult> {
  const wrk = which('wrk');
  if (!wrk) return Promise.reject(new Error('wrk is not installed'));
  const args = ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--latency', o.url];
  return new Promise((resolve, reject) => {
    spawnOn(o.cpus, wrk, args, (cmd, argv) =>
      execFile(cmd, argv, { timeout: (o.seconds + 30) * 1000 }, (err, stdout) => {
        if (err) return reject(err);
        resolve(parseWrk(stdout));
      }),
    );
  });
}

/** What `redis-benchmark -q` printed for one test: requests per second and (from 6.2 on) p50. */
export interface RedisBenchTest {
  rps: number;
  /** Median latency in µs; NaN when this redis-benchmark does not print it. */
  p50us: number;
}

/**
 * Parses `redis-benchmark -q`: one "NAME: 12345.67 requests per second[, p50=0.687 msec]"
 * line per test, after progress lines that a carriage return overwrites ("SET: rps=…").
 * Keys are the test names as printed (SET, GET …).
 */
export function parseRedisBenchmark(out: string): Record<string, RedisBenchTest> {
  const tests: Record<string, RedisBenchTest> = {};
  for (const line of out.split(/[\r\n]+/)) {
    const m = /^\s*([A-Za-z][\w ()-]*?):\s+([\d.]+) requests per second(?:, p50=([\d.]+) msec)?/.exec(line);
    if (m) tests[m[1]!] = { rps: Number(m[2]), p50us: m[3] === undefined ? NaN : Number(m[3]) * 1000 };
  }
  return tests;
}

/**
 * The first error reply redis-benchmark showed (`-e`: "Error from server: …"), if any, in
 * its output (stdout and stderr). Up to 6.x redis-benchmark counts an error reply as an
 * answer and prints a rate of them; from 7.0 it exits non-zero at the first one (and says
 * `-e` has no effect). Either way a run with one is no figure.
 */
export function redisBenchmarkError(out: string): string | undefined {
  return /^Error from server(?: \S+)?: (.*)$/m.exec(out)?.[1]?.trim();
}

export interface RedisBenchOptions {
  port: number;
  /** -t: e.g. ['set', 'get']. */
  tests: string[];
  /** -c */
  clients: number;
  /** -n: requests per test. */
  requests: number;
  /** -P: requests in flight per connection. */
  pipeline: number;
  cpus: number[];
}

/**
 * Runs `redis-benchmark -q -e` against a loopback port, pinned to `cpus` (spawnOn), and
 * parses it; rejects on a non-zero exit or an error reply.
 */
export function runRedisBenchmark(o: RedisBenchOptions): Promise<Record<string, RedisBenchTest>> {
  const rb = which('redis-benchmark');
  if (!rb) return Promise.reject(new Error('redis-benchmark is not installed'));
  const args = ['-h', '127.0.0.1', '-p', String(o.port), '-t', o.tests.join(','), '-c', String(o.clients)];
  // -e: show error replies, which redis-benchmark before 7.0 would count as answers
  args.push('-n', String(o.requests), '-P', String(o.pipeline), '-q', '-e');
  return new Promise((resolve, reject) => {
    spawnOn(o.cpus, rb, args, (cmd, argv) =>
      execFile(cmd, argv, { timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        // 7.0 exits non-zero at an error reply, naming it on stderr: that is the reason to give
        const replied = redisBenchmarkError(`${stdout}\n${stderr}`);
        if (replied !== undefined) return reject(new Error(`the server replied with an error: ${replied}`));
        if (err) return reject(err);
        resolve(parseRedisBenchmark(stdout));
      }),
    );
  });
}
