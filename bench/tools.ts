/**
 * External tools the benchmarks use as cross-checks and anchors when installed (wrk,
 * later redis-benchmark, fio, nginx): finding them, and running wrk pinned to the client
 * CPUs with its figures parsed from its text output.
 */
import { execFile, spawnSync } from 'node:child_process';

const found = new Map<string, string | null>();

/** The path of an executable on PATH, or null. */
export function which(name: string): string | null {
  if (!found.has(name)) {
    const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    found.set(name, r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null);
  }
  return found.get(name)!;
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

/** Runs wrk (one thread, keep-alive GET) against a loopback URL, pinned with taskset. */
export function runWrk(o: { url: string; connections: number; seconds: number; cpus: number[] }): Promise<WrkResult> {
  const wrk = which('wrk');
  if (!wrk) return Promise.reject(new Error('wrk is not installed'));
  const args = ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--latency', o.url];
  const ts = which('taskset');
  const [cmd, argv] = ts ? [ts, ['-c', o.cpus.join(','), wrk, ...args]] : [wrk, args];
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { timeout: (o.seconds + 30) * 1000 }, (err, stdout) => {
      if (err) return reject(err);
      resolve(parseWrk(stdout));
    });
  });
}
