// Makes sure the addons and dist/ are current before tests or benchmarks run: rebuilds
// rawio.node and the benchmark's rawio_loadgen.node when either is missing or older than a
// file in native/ or binding.gyp (unless a prebuild or RAWIO_ADDON's build is in use),
// then compiles the TypeScript and runs the postbuild step (bin mode, bench/c into dist)
// unless dist/ was built from the sources as they are (scripts/build-stamp.mjs).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { distCurrent, removeStamp } from './build-stamp.mjs';

const root = new URL('..', import.meta.url).pathname;
const addons = ['rawio.node', 'rawio_loadgen.node'].map((f) => join(root, 'build/Release', f));
const prebuilt = existsSync(join(root, 'prebuilds')) && !existsSync(join(root, 'binding.gyp'));
const newest = Math.max(
  ...['binding.gyp', ...readdirSync(join(root, 'native')).map((f) => join('native', f))].map(
    (f) => statSync(join(root, f)).mtimeMs,
  ),
);
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });
const stale = addons.some((f) => !existsSync(f) || statSync(f).mtimeMs < newest);
if (!prebuilt && !process.env.RAWIO_ADDON && stale) {
  run('npx', ['--no-install', 'node-gyp', 'rebuild', '-j', 'max']);
}
if (distCurrent()) {
  console.log('dist/ is current: built from src/ and bench/ as they are (scripts/build-stamp.mjs)');
} else {
  removeStamp(); // until postbuild writes the new one: a build cut short leaves none
  run('npx', ['--no-install', 'tsc', '-p', 'tsconfig.build.json']);
  await import('./postbuild.mjs');
}
