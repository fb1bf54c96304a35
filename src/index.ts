/**
 * rawio: Linux I/O system calls and the classic server models, for Node.js.
 * Everything public is exported from here.
 */
export { constants } from './sys/constants.js';
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
} from './sys/ring.js';
export { Proactor } from './loop/proactor.js';
export type { ProactorOptions, CompletionCallback } from './loop/proactor.js';
export {
  transferFile,
  registerTransferMethod,
  methods as transferMethods,
  closePipePool,
  pooledPipes,
  waitWritable,
  writableWaiter,
  type TransferJob,
  type TransferMethod,
  type TransferMethodName,
  type TransferOptions,
} from './transfer/index.js';
