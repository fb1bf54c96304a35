/**
 * The bench's handle on the load generator: the public `rawio/loadgen` API (src/loadgen/),
 * re-exported so that the scenarios keep one import path.
 */
export * from '../src/loadgen/index.js';
