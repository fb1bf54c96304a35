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
  thread: Omit<ReactorThreadData, 'role' | 'index' | 'listenFd' | 'inbox' | 'pool' | 'stats'>;
}

export const CONTROL_FD = 3;
export const LISTEN_FD = 4;
export const READY_FD = 5;
export const MUTEX_KEY = new TextEncoder().encode('accept-mutex');
export const statsKey = (index: number) => new TextEncoder().encode(`stats:${index}`);

/**
 * The figures a worker publishes (float64 each): accepted, connections, requests, bytesOut,
 * shortBodies, zero-copy sends, and of those the ones the kernel copied.
 */
export const FIGURES = 7;
