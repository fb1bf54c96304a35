// Types for CommonJS consumers (`require('rawio')`, index.cjs): the same declarations as the
// ES module, which index.cjs re-exports through require(esm). TypeScript >= 5.8 with
// `module: node18`/`nodenext` accepts this re-export as is; older `node16` setups need
// `skipLibCheck` (TS1479 here otherwise).
export * from './dist/src/index.js';
