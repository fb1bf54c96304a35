/**
 * The typed face of rawio's native load generator (an addon of its own, loaded by
 * ./loadgen-addon.ts): N keep-alive connections to a loopback server, driven from native
 * threads with their own epoll, for HTTP, echo or RESP. Closed loop (max throughput) or fixed rate, where latency is measured
 * from the intended send time (no coordinated omission, as in wrk2); percentiles from a
 * log-linear (HDR-style) histogram. A run never blocks Node's event loop: it resolves a
 * promise when the native threads are done.
 */
import { loadgenAddon, type LoadgenNativeOptions, type LoadgenNativeResult } from './loadgen-addon.js';

export type LoadgenResult = LoadgenNativeResult;

export interface LoadgenOptions {
  host?: string;
  port: number;
  protocol: 'http' | 'echo' | 'resp';
  /** Concurrent connections; default 1. */
  connections?: number;
  /** Native threads sharing the connections; default 1. */
  threads?: number;
  /** Requests in flight per connection; default 1. */
  pipeline?: number;
  /** Requests per second over all connections; 0 (default) is closed loop. */
  rate?: number;
  /** Replies during the warm-up are not recorded; default 0. */
  warmupMs?: number;
  durationMs: number;
  /** After the window: no new requests, replies in flight still counted; default 1000. */
  drainMs?: number;
  /** HTTP request path; default '/'. */
  path?: string;
  /** Echo: bytes per request; default 64. */
  payloadSize?: number;
  /** RESP command; default 'ping'. 'setget' alternates SET and GET of the same key. */
  command?: 'ping' | 'set' | 'get' | 'setget';
  /** RESP: number of distinct keys; default 1000. */
  keyspace?: number;
  /** RESP SET: value bytes; default 16. */
  valueSize?: number;
  /** Pin the load generator's threads to these CPUs; default: not pinned. */
  cpus?: number[];
  /** Ends the window early. */
  signal?: AbortSignal;
}

function nativeOptions(o: LoadgenOptions): LoadgenNativeOptions {
  return {
    host: o.host ?? '127.0.0.1',
    port: o.port,
    protocol: o.protocol,
    connections: o.connections ?? 1,
    threads: o.threads ?? 1,
    pipeline: o.pipeline ?? 1,
    rate: o.rate ?? 0,
    warmupMs: o.warmupMs ?? 0,
    durationMs: o.durationMs,
    drainMs: o.drainMs ?? 1000,
    path: o.path ?? '/',
    payloadSize: o.payloadSize ?? 64,
    command: o.command ?? 'ping',
    keyspace: o.keyspace ?? 1000,
    valueSize: o.valueSize ?? 16,
    cpus: o.cpus ?? [],
  };
}

/**
 * Runs the load generator once and resolves with its counts and latency percentiles.
 * Argument errors (a non-loopback host, a bad protocol) reject before any connection.
 * @example
 * const r = await loadgen({ port, protocol: 'http', connections: 50, durationMs: 2000 });
 * console.log(r.rps, r.latencyUs.p99);
 */
export function loadgen(opts: LoadgenOptions): Promise<LoadgenResult> {
  return new Promise((resolve, reject) => {
    let stop: (() => void) | undefined;
    try {
      stop = loadgenAddon().loadgen(nativeOptions(opts), (r) => {
        opts.signal?.removeEventListener('abort', onAbort);
        resolve(r);
      });
    } catch (e) {
      reject(e as Error);
      return;
    }
    const onAbort = () => stop?.();
    if (opts.signal?.aborted) stop();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
