/**
 * Thread and process knobs: CPU affinity (sched_setaffinity(2)), resource limits
 * (getrlimit(2)/setrlimit(2)), the kernel thread id (gettid(2)) and the thread's name
 * (prctl(2) PR_SET_NAME / PR_GET_NAME: what `top -H`, `ps -L` and `perf` show).
 */
import { check } from './errors.js';
import { native } from './native.js';
import * as v from './validate.js';

/** Pins the calling thread to the given CPUs. */
export function setAffinity(cpus: readonly number[]): void {
  if (!Array.isArray(cpus) || cpus.length === 0) throw v.typeError('cpus', 'a non-empty array of CPU numbers', cpus);
  for (const c of cpus) v.int('cpu', c, 0, 1023);
  check(native.setAffinity(cpus), 'sched_setaffinity');
}

/** The CPUs the calling thread may run on. */
export function getAffinity(): number[] {
  const r = native.getAffinity();
  if (typeof r === 'number') check(r, 'sched_getaffinity');
  return r as number[];
}

/** A resource limit as `{ soft, hard }`; `Infinity` for unlimited. */
export function getrlimit(resource: number): {
  /** The limit the kernel enforces. */
  soft: number;
  /** The ceiling up to which an unprivileged process may raise `soft`. */
  hard: number;
} {
  const r = native.getrlimit(v.int('resource', resource, 0, 15));
  if (typeof r === 'number') check(r, 'getrlimit');
  const [soft, hard] = r as [number, number];
  return { soft: soft < 0 ? Infinity : soft, hard: hard < 0 ? Infinity : hard };
}

/** Sets a resource limit; `Infinity` for unlimited. */
export function setrlimit(resource: number, limit: { soft: number; hard: number }): void {
  const r = v.int('resource', resource, 0, 15);
  if (limit === null || typeof limit !== 'object') throw v.typeError('limit', 'of type object', limit);
  const conv = (name: string, x: unknown) => (x === Infinity ? -1 : v.int(name, x, 0));
  check(native.setrlimit(r, conv('limit.soft', limit.soft), conv('limit.hard', limit.hard)), 'setrlimit');
}

/** The calling thread's kernel thread id. */
export function gettid(): number {
  return native.gettid();
}

/** The kernel keeps a thread's name in 16 bytes, its NUL included. */
export const THREAD_NAME_MAX = 15;

/**
 * Names the calling thread (prctl PR_SET_NAME): at most {@link THREAD_NAME_MAX} bytes of
 * UTF-8 (RangeError past it), no NUL (TypeError). On a process's main thread it is also the
 * name `ps` shows for the process.
 */
export function setThreadName(name: string): void {
  v.cstr('name', name);
  const bytes = Buffer.byteLength(name);
  if (bytes > THREAD_NAME_MAX) throw v.rangeError('name', `at most ${THREAD_NAME_MAX} bytes of UTF-8`, name);
  check(native.setThreadName(name), 'prctl');
}

/** The calling thread's name (prctl PR_GET_NAME). */
export function getThreadName(): string {
  const r = native.getThreadName();
  if (typeof r === 'number') check(r, 'prctl');
  return r as string;
}
