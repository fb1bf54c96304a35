/** `sys`: the typed wrappers, one module per native family, gathered under one namespace. */
export * from './socket.js';
export * from './process.js';
export { OP as IORING_OP, probeRing, type RingProbe } from './uring.js';
export { Ring } from './ring.js';
export * from './keyspace.js';
export * from './file.js';
export * from './direct.js';
export * from './zerocopy.js';
export {
  send,
  zerocopyCompletions,
  ZerocopySocket,
  MSG_ZEROCOPY,
  type SendOptions,
  type ZerocopyCompletions,
  type ZerocopyCounts,
} from './msg-zerocopy.js';
export * from './netdev.js';
