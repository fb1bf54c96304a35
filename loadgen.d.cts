// Types for CommonJS consumers of `rawio/loadgen` (loadgen.cjs); see index.d.cts for the comment below.
// eslint-disable-next-line @typescript-eslint/ban-ts-comment -- @ts-expect-error would fail where there is no error (nodenext)
// @ts-ignore TS1479: require(esm) is supported by every Node that rawio supports
export * from './dist/src/loadgen/index.js';
