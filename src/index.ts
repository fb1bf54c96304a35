/**
 * rawio: Linux I/O system calls and the classic server models, for Node.js.
 * Everything public is exported from here.
 */
export { constants, constantNames, type ConstantName } from './sys/constants.js';
export { ErrnoError, errnoError, check, errnoName } from './sys/errors.js';
export * as sys from './sys/index.js';
export { Ring } from './sys/ring.js';
export type {
  RingOptions,
  OpOptions,
  FileOptions,
  SocketOptions,
  RingStat,
  RingProbe,
  CompletionHandler,
  SendZcResult,
} from './sys/ring.js';
export { Proactor } from './loop/proactor.js';
export type { ProactorOptions, CompletionCallback, RecvCallback } from './loop/proactor.js';
export * from './protocols/index.js';
export { Keyspace, type KeyspaceLike, type KeyspaceOptions } from './sys/keyspace.js';
export {
  transferFile,
  sendBuffer,
  type SendBufferOptions,
  type SendBufferResult,
  registerTransferMethod,
  methods as transferMethods,
  transferMethodNames,
  closePipePool,
  pooledPipes,
  closeMmapCache,
  mmapCacheStats,
  type MmapCacheStats,
  type MmapTransferOptions,
  waitWritable,
  writableWaiter,
  type TransferJob,
  type TransferMethod,
  type TransferMethodName,
  type TransferOptions,
  type Waiter,
  type SocketLike,
} from './transfer/index.js';
export { POLLNVAL, createPoller, pollerNames, type Poller, type PollerName } from './loop/poller.js';
export { Epoll, type EpollOptions } from './loop/backends/epoll.js';
export { PollSet } from './loop/backends/poll.js';
export { SelectSet } from './loop/backends/select.js';
export { Reactor, type ReactorOptions, type Handler } from './loop/reactor.js';
export { Connection, type ConnectionOptions } from './loop/connection.js';
export { probe, type ProbeResult, type Limit } from './probe.js';
export { ringOptionNames, type RingOptionName, type RingOptionSupport } from './sys/ring-options.js';
export { serve, modelNames, resolveServeOptions, serveOptionNames } from './models/serve.js';
export type {
  ServeOptions,
  ResolvedServeOptions,
  Server,
  CloseOptions,
  ModelName,
  AcceptStrategy,
  RingSetup,
  ProtocolModuleSpec,
} from './models/types.js';
export type { StatsSnapshot } from './models/stats.js';
export type { WorkerCrashError } from './models/multi-process.js';
export type { WorkerStartError } from './models/worker-failure.js';
