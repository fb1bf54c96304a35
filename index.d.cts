// Types for CommonJS consumers (`require('rawio')`, index.cjs): the same declarations as the
// ES module, which index.cjs re-exports through require(esm), as Node 20.19 and later allow.
// TypeScript's `node16` mode (and `nodenext` before TypeScript 5.8) models a Node that cannot
// require() an ES module and reports TS1479 on the re-export below; the runtime rawio needs
// can, so that report is silenced here, where it would otherwise fail every CommonJS
// consumer's type check that does not skip library checks. The types pass through either way.
// eslint-disable-next-line @typescript-eslint/ban-ts-comment -- @ts-expect-error would fail where there is no error (nodenext)
// @ts-ignore TS1479: require(esm) is supported by every Node that rawio supports
export * from './dist/src/index.js';
