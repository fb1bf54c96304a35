// Runs after tsc (`npm run build`, and scripts/ensure-built.mjs): makes the `rawio` bin
// executable and copies the C sources the benchmarks compile at run time (bench/c, e.g. the
// transferFile baseline of copy-c) into dist/bench/c, beside the compiled benchmarks; then
// stamps dist/ with what it was built from (scripts/build-stamp.mjs).
import { chmodSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { writeStamp } from './build-stamp.mjs';

const root = new URL('..', import.meta.url).pathname;
chmodSync(join(root, 'dist/src/cli.js'), 0o755);
cpSync(join(root, 'bench/c'), join(root, 'dist/bench/c'), { recursive: true });
writeStamp();
