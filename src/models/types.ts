/**
 * What `serve()` hands a model and what a model hands back. Each model is one file under
 * src/models/ exporting a `ModelStarter`; serve.ts validates the options once and picks
 * the model by name.
 */
import type { PollerName } from './poller-name.js';
import type { ProtocolKind, ProtocolName, ProtocolOptions } from '../protocols/protocol.js';
import type { ProtocolModuleSpec } from '../protocols/module.js';
import type { StatsSnapshot } from './stats.js';
import type { TransferMethodName } from '../transfer/names.js';
import type { MmapTransferOptions } from '../transfer/mmap-options.js';
import type { CloseOptions } from './drain.js';

export type { CloseOptions };

/**
 * Every server model's name, the one list {@link ModelName} is derived from: `iterative` (one connection at a time), `thread-per-connection`
 * (blocking I/O, a thread each), `single` (one reactor), `worker-pool` (one reactor, handlers
 * on a thread pool), `multi-reactor` (a reactor per thread), `multi-reactor-pool`
 * (sub-reactors plus a handler pool), `multi-process` (a reactor per process) and
 * `proactor` (io_uring completions) and `multi-proactor` (a main ring accepting, handing each
 * connection to a sub-ring thread with IORING_OP_MSG_RING).
 */
export const modelNames = [
  'iterative',
  'thread-per-connection',
  'single',
  'worker-pool',
  'multi-reactor',
  'multi-reactor-pool',
  'multi-process',
  'proactor',
  'multi-proactor',
] as const;
/** The ring setup options of the proactor models (`ServeOptions.ring`). */
export interface RingSetup {
  /** Completion queue entries (IORING_SETUP_CQSIZE); default: twice the submission queue. */
  cqEntries?: number;
  /** Keep submitting a batch past a failed entry (IORING_SETUP_SUBMIT_ALL); default: on. */
  submitAll?: boolean;
  /** Register the ring's fd and enter by its index (IORING_REGISTER_RING_FDS); default: off. */
  registerRingFd?: boolean;
  /** One recv completion may fill several provided buffers (IORING_RECVSEND_BUNDLE, 6.10); default: off. */
  recvBundle?: boolean;
  /** Provided buffers filled bit by bit (IOU_PBUF_RING_INC, 6.12); not with `recvBundle`; default: off. */
  incrementalBuffers?: boolean;
}

/** A server model (see {@link modelNames}). */
export type ModelName = (typeof modelNames)[number];

/**
 * How the multi-process model's processes share the port: `reuseport` (a socket each,
 * SO_REUSEPORT, the kernel spreading connections by hash; the master opens them and keeps
 * them, so what waits on a dead worker's socket is served by its replacement), `exclusive` (one inherited socket
 * that every worker's epoll watches with EPOLLEXCLUSIVE) or `mutex` (one inherited socket,
 * watched only by the worker holding the accept mutex, as nginx's accept_mutex).
 */
export type AcceptStrategy = 'reuseport' | 'exclusive' | 'mutex';

export type { ProtocolModuleSpec };

/**
 * Options of {@link serve}. Only `model` and `protocol` are required; any other key is a
 * TypeError, and so is an option the chosen model or protocol does not use (see the model
 * table in README.md).
 */
export interface ServeOptions {
  /** How connections are served (see {@link ModelName}). */
  model: ModelName;
  /**
   * What they speak: 'echo', 'http', 'resp' (Redis) or 'static' (files under `root`), or a
   * user protocol module `{ module, options }`.
   */
  protocol: ProtocolName | ProtocolModuleSpec;
  /** http: the module (path or URL) whose `handle(request)` answers each request. */
  handler?: string | URL;
  /** An IP address, or a host name resolved with dns.lookup; default '127.0.0.1'. */
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
  /** File bodies: the transferFile method (see {@link TransferMethodName}); default 'auto'. */
  transfer?: TransferMethodName;
  /** File bodies: 'auto' switches to direct IO at this size in bytes; default 4 MiB. */
  directio?: number;
  /**
   * File bodies sent with `transfer: 'mmap'`: `populate` (MAP_POPULATE), `advice` (madvise:
   * 'sequential', 'willneed', 'random', 'normal') and `reuse` (each thread keeps whole-file
   * mappings of files up to 64 MiB and sends from them again; a changed file gets a new one).
   * Default {}: a fresh mapping per file, faulted in a page at a time. The proactor models
   * read files with their ring and ignore it, as they ignore `transfer`.
   */
  mmap?: MmapTransferOptions;
  /**
   * Reply data of at least this many bytes goes out zero-copy: MSG_ZEROCOPY in the reactor
   * models (single, worker-pool, multi-reactor, multi-reactor-pool, multi-process),
   * IORING_OP_SEND_ZC in `proactor`. Default 0: never. Pinning pages and waiting for the
   * kernel's completion costs more than copying small replies (the kernel's own advice is
   * about 10 KiB and up), and on loopback the kernel copies anyway.
   */
  zerocopyThreshold?: number;
  /**
   * Drop a connection whose unsent output exceeds this many bytes; default 64 MiB. Since a
   * request waits while `maxOutput` is spent, only one reply larger than this reaches it:
   * it is the largest reply a client that reads slowly can be sent.
   */
  maxQueue?: number;
  /**
   * http, static: the request line and header fields, in bytes, past which the client gets
   * 431 (414 when the request line alone is longer) and the connection closes; default 8 KiB
   * (at most 65 535).
   */
  maxHeader?: number;
  /**
   * http: a request body, resp: a whole command (and each argument), in bytes, past which the
   * client gets 413 / `-ERR Protocol error` and the connection closes; default 8 MiB for an
   * http body, 16 MiB for a resp command (8 MiB an argument).
   */
  maxRequest?: number;
  /**
   * resp: the keyspace's capacity in bytes (keys, values and 24 bytes an entry), 64 KiB to
   * 4 GiB - 1; default 64 MiB. Past it a write answers `-OOM`. The shared keyspace's memory
   * (or, where one thread handles every request, that thread's table) holds at most this.
   */
  keyspaceSize?: number;
  /** Requests per connection handled and not yet answered; more wait unread; default 1024. */
  maxInFlight?: number;
  /** Reply bytes per connection not yet taken by the client before its next request waits; default 1 MiB. */
  maxOutput?: number;
  /** Reply file bodies (open fds) per connection before its next request waits; default 16. */
  maxFiles?: number;
  /**
   * The ms a started request has in hand to arrive whole (every `minRequestRate` bytes of it
   * that arrive give one second back, never above this); default 10 000.
   */
  headerTimeout?: number;
  /**
   * Close a connection that makes no progress (no complete request, no reply byte taken by
   * the client) for this many ms while the server owes it nothing (every `minRequestRate`
   * bytes of the request now arriving give one second back, never above this); default 30 000.
   */
  idleTimeout?: number;
  /**
   * Bytes a second: every `minRequestRate` bytes of a request that arrive give one second back
   * to the header and idle clocks (a token bucket, never above a full `headerTimeout` /
   * `idleTimeout`), so a request sent at least this fast, a large upload included, is never
   * cut by them, while a trickle is: one arriving at r bytes a second is cut at
   * headerTimeout / (1 - r / minRequestRate), and a burst cannot be banked. A whole
   * number of at least 1, or `Infinity`: no credit, a started request must arrive whole
   * within `headerTimeout`. Default 16 384 (16 KiB/s).
   */
  minRequestRate?: number;
  /**
   * Connections open on the whole server at once (every thread, every worker process); one
   * accepted past it is closed at once, unread, and counted in `stats().refused`, and
   * accepting goes on. Default `Infinity`: no limit.
   */
  maxConnections?: number;
  /**
   * Connections open on the whole server at once from one client IP address (its port
   * aside; an IPv4-mapped IPv6 address counts as its IPv4 address), as nginx's limit_conn
   * keyed by the address: a connect from an address that already has this many open is
   * closed at once, unread, and counted in `stats().refused`, as one past `maxConnections`
   * is, and accepting goes on; when one of that client's connections closes, however it
   * ends, its slot is free again. At most 65 536 addresses (or `maxConnections`, when
   * smaller) are tracked at once: a connect from another address while that many hold
   * connections is refused too. Default `Infinity`: no limit (and no getpeername per accept).
   */
  maxConnectionsPerClient?: number;
  /** The listen(2) backlog; default 511. */
  backlog?: number;
  /**
   * proactor, multi-proactor: how each thread sets up its ring (see ProactorOptions):
   * `cqEntries`, `submitAll` (default on), `registerRingFd`, and for the provided buffers of
   * the multishot recvs `recvBundle` or `incrementalBuffers`. Default: none of the optional ones.
   */
  ring?: RingSetup;
  /** multi-reactor-pool: handler threads beside the `workers` sub-reactors; default: the CPU count. */
  pool?: number;
  /** Pin the model's I/O threads to these CPUs (round-robin; each one this process may run on); default: not pinned. */
  cpus?: number[];
  /**
   * multi-process: the Node options its worker processes start with; default: this
   * process's `process.execArgv` without `-e`/`--eval`, `-p`/`--print`, `--input-type`,
   * `--run`, `--inspect*`, `--test*`, `--watch*` and the like (with their values), which
   * would make each worker run the caller's script again instead of rawio's worker.
   */
  execArgv?: string[];
}

/** The options after defaults, as every model receives them. */
export interface ResolvedServeOptions extends Required<
  Omit<ServeOptions, 'root' | 'protocol' | 'handler' | 'cpus' | 'maxHeader' | 'maxRequest' | 'keyspaceSize'>
> {
  /** What every thread and process recreates the protocol from: a built-in name, or 'module'. */
  protocol: ProtocolKind;
  /** Pinned CPUs (empty: not pinned). */
  cpus: number[];
  /** A user protocol module: its URL (href) and options. */
  protocolModule?: {
    /** The module's URL (an href every thread and process can import). */
    module: string;
    /** What the module's protocol is created with. */
    options?: unknown;
  };
  /** http: the handler module's URL (href). */
  handler?: string;
  /** static: the directory served. */
  root?: string;
  /** Given: the protocols' head limit (protocolOptions.limits carries it); absent: theirs. */
  maxHeader?: number;
  /** Given: the protocols' request limit (protocolOptions.limits carries it); absent: theirs. */
  maxRequest?: number;
  /** Given: the resp keyspace's size (protocolOptions.keyspaceSize carries it); absent: 64 MiB. */
  keyspaceSize?: number;
  /** What the protocol is created with (root, transfer, directio, keyspaceSize). */
  protocolOptions: ProtocolOptions;
}

/**
 * A running server, as {@link serve} resolves with it. It is a node:events EventEmitter:
 * `'error'` is emitted when the server can no longer serve as configured after it started
 * (multi-process: a worker crashed more than 5 times within 30 s and is no longer
 * respawned; the error's `code` is 'ERR_RAWIO_WORKER_CRASHED', with the worker's `exitCode`
 * and `signal`). As with any EventEmitter, an `'error'` without a listener is thrown.
 */
export interface Server {
  /** Listens for `'error'` (see above). */
  on(event: 'error', listener: (err: Error) => void): this;
  /** Listens for the next `'error'`. */
  once(event: 'error', listener: (err: Error) => void): this;
  /** Removes an `'error'` listener. */
  off(event: 'error', listener: (err: Error) => void): this;
  /** The address it listens on. */
  host: string;
  /** The bound port (the one the kernel picked when `port` was 0). */
  port: number;
  /** The model serving. */
  model: ModelName;
  /** The live counters, summed over every thread and process. */
  stats(): StatsSnapshot;
  /**
   * multi-process: the pid of each worker process by index (0 where a dead worker is not yet
   * replaced); an empty array for the models that run in this process. The pids change
   * when workers are respawned: read them again rather than keeping them.
   */
  workerPids(): number[];
  /**
   * Stops accepting (a connect from now on is refused), closes every connection at once (a
   * request still in a handler and a reply being sent included), waits at most `idleTimeout`
   * for user code still running to settle, ends the model's threads or processes and
   * releases the protocol; resolves when all is done.
   *
   * With `{ drain: ms }` it closes gracefully first: the clients waiting in the listen queue
   * are taken and served as connections accepted before the drain (the connection limits
   * hold), then connects are refused (on `multi-process` once each worker has taken its
   * queue, at most a second later for one stopped or stuck), every
   * connection answers the requests it has read in full (replies, file and streamed bodies)
   * and then closes, one idle between requests at once; a request half received may still
   * arrive and be answered, and nothing after it is read. A connection whose thread has not
   * yet read what the client sent (the kernel holds it) reads it as such a request, rather
   * than being closed as idle with it unread. Once every connection has closed,
   * or `ms` have passed, it goes on as without `drain` (closing what is left at once). A
   * TypeError / RangeError (rejected) for bad options.
   *
   * Calling it again returns the same wait; a call without `drain` (or with 0) during a
   * drain ends the drain now, as its deadline would.
   */
  close(options?: CloseOptions): Promise<void>;
  /** `close()` (without drain), for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

export interface ModelHandle {
  port: number;
  stats(): StatsSnapshot;
  close(): Promise<void>;
  /**
   * A graceful close begins: take the connections waiting in the listen queue (served as
   * ones accepted before the drain), stop accepting, tell every connection to drain
   * (ConnCore.drain); resolves once none is left, or once `cut` resolves (the deadline).
   * close() follows, either way.
   */
  drain(cut: Promise<void>): Promise<void>;
  /** multi-process: the worker pids by index (see Server.workerPids). */
  workerPids?(): number[];
  /** Who hears of a failure after start (the Server's 'error'), for models that can have one. */
  onError?(fn: (e: Error) => void): void;
}

export type ModelStarter = (opts: ResolvedServeOptions) => Promise<ModelHandle>;
