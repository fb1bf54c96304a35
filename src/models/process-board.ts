/**
 * What the multi-process master and its workers agree on: the settings a worker gets,
 * the fds it inherits, and the keys of the board (a small shared keyspace) through which
 * workers publish their counters and take the accept mutex.
 */
import type { ReactorThreadData } from './reactor-thread.js';
import type { AcceptStrategy } from './types.js';

export interface ProcessWorkerSettings {
  index: number;
  host: string;
  port: number;
  backlog: number;
  accept: AcceptStrategy;
  board: string;
  /** How many worker processes share the board's connection counts. */
  workers: number;
  /** The server-wide limit on connections open (ServeOptions.maxConnections); 0: none (JSON has no Infinity). */
  maxConnections: number;
  thread: Omit<ReactorThreadData, 'role' | 'index' | 'listenFd' | 'inbox' | 'pool' | 'stats'>;
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
 * The figures a worker publishes (float64 each): accepted, connections, requests, bytesOut,
 * shortBodies, errors, zero-copy sends, and of those the ones the kernel copied, refused.
 */
export const FIGURES = 9;
