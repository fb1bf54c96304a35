/**
 * rawio: Linux I/O system calls and the classic server models, for Node.js.
 * Everything public is exported from here.
 */
export { constants } from './sys/constants.js';
export { ErrnoError, errnoError, check, errnoName } from './sys/errors.js';
export * as sys from './sys/index.js';
export * from './protocols/index.js';
export { Keyspace, type KeyspaceOptions } from './sys/keyspace.js';
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
