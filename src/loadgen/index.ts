/**
 * `rawio/loadgen`: rawio's native load generator as an API (and, through ./cli.ts, the
 * `rawio loadgen` command). N keep-alive TCP connections to one host:port, driven from
 * native threads with their own epoll (its own addon, loaded by ./addon.ts on first use),
 * speaking HTTP/1.1 GET, echo, RESP (one command or a weighted mix) or the caller's raw
 * bytes. Closed loop (`pipeline` requests in flight per connection, as wrk does) or fixed
 * rate, where each request's latency is measured from its *intended* send time, so a
 * stalled server shows as latency rather than as fewer samples (coordinated omission, as
 * wrk2 avoids it). Runs for a duration or a count of requests; a failing connection is
 * retried with a back-off, and a run by count gives up when every connection keeps failing
 * or no reply comes (it has no duration to end it). Percentiles come from a
 * log-linear (HDR-style) histogram: ./percentiles.ts prints the table. A run never blocks
 * Node's event loop.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { errnoName } from '../sys/errors.js';
import * as v from '../sys/validate.js';
import { loadgenAddon, type LoadgenNativeOptions, type LoadgenNativeResult } from './addon.js';
import { checkLoadgenOptions, MAX_MS } from './options.js';

/** A run's counts and latency percentiles (docs/API.md describes each field). */
export type LoadgenResult = Omit<LoadgenNativeResult, 'lastErrno'> & {
  /**
   * What ended the last failed connection, or null when none failed: the errno code of its
   * connect, read or send ('ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE' …), 'EPROTO'
   * for a reply the protocol cannot frame, 'EOF' for a close with requests unanswered.
   */
  lastError: string | null;
};
/** Why a run ended: see `LoadgenResult.ended`. */
export type LoadgenEnd = LoadgenResult['ended'];
export type LoadgenProtocol = 'http' | 'echo' | 'resp' | 'raw';
export type RespCommand = 'ping' | 'set' | 'get' | 'setget';
/** A RESP command mix: relative weights, e.g. `{ get: 9, set: 1 }`. */
export interface RespMix {
  ping?: number;
  set?: number;
  get?: number;
}
export { formatHdrTable, hdrTable, percentile, type HdrRow } from './percentiles.js';

export interface LoadgenOptions {
  /**
   * A numeric address (IPv4, or IPv6 with an optional zone: `fe80::1%eth0`); default
   * '127.0.0.1'. Names go through `resolveTarget`.
   */
  host?: string;
  port: number;
  protocol: LoadgenProtocol;
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
  /** The measured window; required unless `requests` is given. */
  durationMs?: number;
  /** Stop after this many requests (the warm-up's included) and their replies. */
  requests?: number;
  /**
   * After the window (or a stop): no new requests, replies in flight still counted; default
   * 1000 (at a fixed rate, the requests due in the window that a stalled server held back
   * are still sent). A run by count waits for its last replies by `stallMs` instead.
   */
  drainMs?: number;
  /**
   * By count: the run gives up (`ended: 'stalled'`) when no reply has come for this long
   * while requests or connects wait for the server; default 10 000.
   */
  stallMs?: number;
  /** HTTP request path; default '/'. */
  path?: string;
  /** Echo: bytes per request; default 64. */
  payloadSize?: number;
  /** Raw: the bytes of one request (e.g. read from a file). */
  payload?: Uint8Array;
  /** Raw: bytes of one reply; default: as many as the request (an echo server). */
  replySize?: number;
  /** RESP command; default 'ping'. 'setget' alternates SET and GET of one key; or a mix. */
  command?: RespCommand | RespMix;
  /** RESP: number of distinct keys; default 1000. */
  keyspace?: number;
  /** RESP SET: value bytes; default 16. */
  valueSize?: number;
  /** Pin the load generator's threads to these CPUs; default: not pinned. */
  cpus?: number[];
  /** Ends the window early. */
  signal?: AbortSignal;
}

function respCommand(c: LoadgenOptions['command']): Pick<LoadgenNativeOptions, 'command' | 'mix'> {
  if (c === undefined || typeof c === 'string') return { command: c ?? 'ping', mix: [0, 0, 0] };
  if (typeof c !== 'object' || c === null) throw v.typeError('command', 'a string or a mix object', c);
  const known = ['ping', 'set', 'get'];
  for (const k of Object.keys(c))
    if (!known.includes(k)) throw v.rangeError('command', 'a mix of ping, set and get', `a mix with '${k}'`);
  return { command: 'mix', mix: [c.ping ?? 0, c.set ?? 0, c.get ?? 0] };
}

/** Every option; a null one is a TypeError, not its default (`durationMs: null` is not an hour). */
const optionNames = [
  'host',
  'port',
  'protocol',
  'connections',
  'threads',
  'pipeline',
  'rate',
  'warmupMs',
  'durationMs',
  'requests',
  'drainMs',
  'stallMs',
  'path',
  'payloadSize',
  'payload',
  'replySize',
  'command',
  'keyspace',
  'valueSize',
  'cpus',
  'signal',
] as const;

function nativeOptions(o: LoadgenOptions): LoadgenNativeOptions {
  if (typeof o !== 'object' || o === null) throw v.typeError('opts', 'of type object', o);
  for (const k of optionNames)
    if (o[k] === null) throw v.typeError(`opts.${k}`, 'left out for its default, not null', null);
  if (o.durationMs === undefined && o.requests === undefined)
    throw Object.assign(new TypeError('loadgen: give durationMs or requests'), { code: 'ERR_INVALID_ARG_VALUE' });
  if (o.payload !== undefined && !(o.payload instanceof Uint8Array))
    throw v.typeError('opts.payload', 'an instance of Uint8Array', o.payload);
  if (o.protocol === 'raw' && o.payload === undefined)
    throw Object.assign(new TypeError("protocol 'raw' needs a payload"), { code: 'ERR_INVALID_ARG_VALUE' });
  // Checked before the run starts: a bad signal found after it would leave it running unowned.
  v.abortSignal('opts.signal', o.signal);
  checkLoadgenOptions(o);
  const payload = o.payload ?? new Uint8Array(0);
  return {
    host: o.host ?? '127.0.0.1',
    port: o.port,
    protocol: o.protocol,
    connections: o.connections ?? 1,
    threads: o.threads ?? 1,
    pipeline: o.pipeline ?? 1,
    rate: o.rate ?? 0,
    requests: o.requests ?? 0,
    warmupMs: o.warmupMs ?? 0,
    // By count alone the window is open until the count is done (within the engine's limit).
    durationMs: o.durationMs ?? MAX_MS,
    drainMs: o.drainMs ?? 1000,
    stallMs: o.stallMs ?? 10_000,
    path: o.path ?? '/',
    payloadSize: o.payloadSize ?? 64,
    payload: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
    replySize: o.replySize ?? 0,
    ...respCommand(o.command),
    keyspace: o.keyspace ?? 1000,
    valueSize: o.valueSize ?? 16,
    cpus: o.cpus ?? [],
  };
}

/**
 * Runs the load generator once and resolves with its counts and latency percentiles, also
 * when the server failed it: a run by count gives up by itself when the server is gone or
 * silent (`ended` says why it ended), and `received`, `requests`, `connectionsAnswered` and
 * `lastError` say what was answered. Argument errors (a host that is not a numeric address,
 * a bad protocol) reject before any connection.
 * @example
 * const r = await loadgen({ port, protocol: 'http', connections: 50, durationMs: 2000 });
 * console.log(r.rps, r.latencyUs.p99);
 */
export function loadgen(opts: LoadgenOptions): Promise<LoadgenResult> {
  return new Promise((resolve, reject) => {
    let stop: (() => void) | undefined;
    try {
      stop = loadgenAddon().loadgen(nativeOptions(opts), ({ lastErrno, ...r }) => {
        opts.signal?.removeEventListener('abort', onAbort);
        resolve({ ...r, lastError: lastErrno === 0 ? null : lastErrno > 0 ? 'EOF' : errnoName(lastErrno) });
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

/**
 * `host:port` (`[v6]:port` for IPv6) as a numeric address and a port, the name looked up
 * once (getaddrinfo through `dns.lookup`) so that the native threads never resolve.
 */
export async function resolveTarget(target: string): Promise<{ host: string; port: number }> {
  if (typeof target !== 'string') throw v.typeError('target', 'a string HOST:PORT', target);
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(target);
  if (!m) throw v.rangeError('target', 'HOST:PORT or [IPv6]:PORT', `'${target}'`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw v.rangeError('target port', 'an integer >= 1 and <= 65535', port);
  const name = (m[1] ?? m[2])!;
  if (isIP(name)) return { host: name, port };
  const { address } = await lookup(name);
  return { host: address, port };
}
