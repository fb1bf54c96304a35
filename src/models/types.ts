/**
 * What `serve()` hands a model and what a model hands back. Each model is one file under
 * src/models/ exporting a `ModelStarter`; serve.ts validates the options once and picks
 * the model by name.
 */
import type { PollerName } from './poller-name.js';
import type { ProtocolName, ProtocolOptions } from '../protocols/protocol.js';
import type { StatsSnapshot } from './stats.js';

export type ModelName =
  | 'iterative'
  | 'thread-per-connection'
  | 'single'
  | 'worker-pool'
  | 'multi-reactor'
  | 'multi-reactor-pool'
  | 'multi-process'
  | 'proactor';

export type AcceptStrategy = 'reuseport' | 'exclusive' | 'mutex';

export interface ServeOptions {
  model: ModelName;
  protocol: ProtocolName;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** Threads or processes, by model; default: the CPU count (thread-per-connection: the cap, 256). */
  workers?: number;
  /** The multiplexer of the reactor models; default 'epoll'. */
  backend?: PollerName;
  /** multi-process: how processes share the port; default 'reuseport'. */
  accept?: AcceptStrategy;
  /** static: the directory served. */
  root?: string;
  /** static: the transferFile method; default 'auto'. */
  transfer?: string;
  /** static: 'auto' switches to direct IO at this size in bytes; default 4 MiB. */
  directio?: number;
  /** Drop a connection whose unsent output exceeds this many bytes; default 64 MiB. */
  maxQueue?: number;
  /** Close a connection that sends no complete request within this many ms; default 30 000. */
  idleTimeout?: number;
  /** The listen(2) backlog; default 511. */
  backlog?: number;
}

/** The options after defaults, as every model receives them. */
export interface ResolvedServeOptions extends Required<Omit<ServeOptions, 'root'>> {
  root?: string;
  protocolOptions: ProtocolOptions;
}

export interface Server {
  host: string;
  port: number;
  model: string;
  stats(): StatsSnapshot;
  close(): Promise<void>;
}

export interface ModelHandle {
  port: number;
  stats(): StatsSnapshot;
  close(): Promise<void>;
}

export type ModelStarter = (opts: ResolvedServeOptions) => Promise<ModelHandle>;
