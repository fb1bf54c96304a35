/** The load generator's addon loader (src/loadgen/addon.ts), re-exported for bench/ and its tests. */
export * from '../src/loadgen/addon.js';
