// Makes sure the addon and dist/ are current before tests or benchmarks run: rebuilds the
// addon when it is missing or older than a file in native/ (unless a prebuild is in use),
// then compiles the TypeScript and runs the postbuild step (bin mode, bench/c into dist).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const addon = join(root, 'build/Release/rawio.node');
const prebuilt = existsSync(join(root, 'prebuilds')) && !existsSync(join(root, 'binding.gyp'));
const newest = Math.max(
  ...['binding.gyp', ...readdirSync(join(root, 'native')).map((f) => join('native', f))].map(
    (f) => statSync(join(root, f)).mtimeMs,
  ),
);
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });
if (!prebuilt && !process.env.RAWIO_ADDON && (!existsSync(addon) || statSync(addon).mtimeMs < newest)) {
  run('npx', ['--no-install', 'node-gyp', 'rebuild', '-j', 'max']);
}
run('npx', ['--no-install', 'tsc', '-p', 'tsconfig.build.json']);
await import('./postbuild.mjs');
