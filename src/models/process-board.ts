/**
 * What the multi-process master and its workers agree on: the settings a worker gets,
 * the fds it inherits, and the keys of the board (a small shared keyspace) through which
 * workers publish their counters and take the accept mutex.
 */
import { deserialize, serialize } from 'node:v8';
import type { ReactorThreadData } from './reactor-thread.js';
import type { AcceptStrategy } from './types.js';

export interface ProcessWorkerSettings {
  index: number;
  /** The master's pid: a worker whose parent is another process already (the master died) exits. */
  master: number;
  accept: AcceptStrategy;
  board: string;
  /** How many worker processes share the board's connection counts. */
  workers: number;
  /** The server-wide limit on connections open (ServeOptions.maxConnections); 0: none (JSON has no Infinity). */
  maxConnections: number;
  /** The per-client limit (ServeOptions.maxConnectionsPerClient); 0: none. */
  maxConnectionsPerClient: number;
  /** How many client addresses this worker may count at once on the board (clientBoard). */
  clientsPerWorker: number;
  thread: Omit<ReactorThreadData, 'role' | 'index' | 'listenFd' | 'inbox' | 'pool' | 'stats'>;
}

/**
 * The settings as the master writes them to a worker's stdin: V8's serialization (the
 * structured clone worker threads get, from the same Node binary), not JSON, which would
 * turn a limit of Infinity (none) into null.
 */
export function encodeSettings(settings: ProcessWorkerSettings): Buffer {
  return serialize(settings);
}

/** The settings a worker reads (encodeSettings's form), every value as the master had it. */
export function decodeSettings(bytes: Buffer): ProcessWorkerSettings {
  return deserialize(bytes) as ProcessWorkerSettings;
}

export const CONTROL_FD = 3;
export const LISTEN_FD = 4;
export const READY_FD = 5;
export const MUTEX_KEY = new TextEncoder().encode('accept-mutex');
export const statsKey = (index: number) => new TextEncoder().encode(`stats:${index}`);
/**
 * The connections a worker holds against maxConnections, an integer the worker INCRs (only
 * with a limit). One key per worker, so the master can drop a dead worker's share whole:
 * the kernel closed its connections.
 */
export const connsKey = (index: number) => new TextEncoder().encode(`conns:${index}`);
/**
 * The start of the keys in which a worker counts its connections per client address, under
 * maxConnectionsPerClient: `client:<index>:` and the address's 16 bytes (as peerAddress
 * writes it). Only that worker writes them; the master deletes them all by this prefix when
 * the worker dies (the kernel closed its connections).
 */
export const clientPrefix = (index: number) => new TextEncoder().encode(`client:${index}:`);
/** A per-client key's block on the board: 24 bytes of header, the key (at most 28 bytes), the count's digits. */
const CLIENT_KEY_BYTES = 64;
/**
 * A worker's room on the board for its own counters: its figures (FIGURES float64s) and its
 * count under maxConnections, each key in a block with its header, with room to spare for
 * the blocks a rewrite takes before it gives the old one back.
 */
const WORKER_BYTES = 512;

/**
 * The board's room for everything but the per-client keys: every worker's counters and the
 * accept mutex. It grows with `workers`: a board too small for them all would leave the last
 * workers without their figures, refuse every connection under maxConnections (a count that
 * cannot be written refuses), and, once full, leave the accept mutex with nowhere to be
 * taken, so that no worker accepted.
 */
export function counterBoard(workers: number): number {
  return (1 << 16) + workers * WORKER_BYTES;
}

/** The board's least room for the counters under a per-client limit. */
const BOARD_BASE = 1 << 20;

/**
 * The board's size and each worker's share of it under a per-client limit: room for
 * `clients` addresses per worker (MAX_CLIENTS, or maxConnections when smaller), within the
 * 4 GiB a keyspace can have, beside the counters' room (counterBoard). A worker tracks at
 * most `perWorker` addresses, so its keys can never fill the board and crowd out the
 * counters and the accept mutex.
 */
export function clientBoard(workers: number, clients: number): { size: number; perWorker: number } {
  const base = Math.max(BOARD_BASE, counterBoard(workers));
  const size = Math.min(base + workers * clients * CLIENT_KEY_BYTES, 0xffff0000);
  return { size, perWorker: Math.floor((size - base) / CLIENT_KEY_BYTES / workers) };
}

/**
 * The figures a worker publishes (float64 each): accepted, connections, requests, bytesOut,
 * shortBodies, errors, zero-copy sends, and of those the ones the kernel copied, refused.
 */
export const FIGURES = 9;
