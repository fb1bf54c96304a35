// Cross-builds the linux-arm64 prebuild (prebuildify --napi --strip --arch arm64) with Debian's
// cross compiler (g++-aarch64-linux-gnu), then checks with `file` that the result is aarch64
// code. The addon cannot run on this x64 machine, so the check is on the ELF header only.
// The build happens in a staging copy of binding.gyp and native/ so that the host's own
// build/Release (used by the tests) is left untouched.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const triple = process.env.CROSS_TRIPLE ?? 'aarch64-linux-gnu';
const tool = (name) => `${triple}-${name}`;

try {
  execFileSync(tool('g++'), ['--version'], { stdio: 'ignore' });
} catch {
  console.error(`${tool('g++')} not found: install it with \`apt-get install g++-${triple}\``);
  process.exit(1);
}

const stage = mkdtempSync(join(tmpdir(), 'rawio-arm64-'));
try {
  for (const entry of ['binding.gyp', 'native', 'package.json'])
    cpSync(join(root, entry), join(stage, entry), { recursive: true });
  // binding.gyp asks node-addon-api for its include dir through `node -p require(...)`.
  symlinkSync(join(root, 'node_modules'), join(stage, 'node_modules'));
  const env = {
    ...process.env,
    CC: tool('gcc'),
    CXX: tool('g++'),
    LINK: tool('g++'),
    AR: tool('ar'),
    JOBS: process.env.JOBS ?? '2',
  };
  // Node-API headers do not depend on the CPU: a distribution's /usr/include/node serves
  // the cross-build too, and spares node-gyp a download (npm config nodedir does the same).
  if (!env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h')) env.npm_config_nodedir = '/usr';
  const args = ['--napi', '--strip', '--arch', 'arm64', '--strip-bin', tool('strip'), '--out', root, stage];
  execFileSync(join(root, 'node_modules/.bin/prebuildify'), args, { cwd: stage, env, stdio: 'inherit' });
} finally {
  rmSync(stage, { recursive: true, force: true });
}

const dir = join(root, 'prebuilds/linux-arm64');
for (const f of readdirSync(dir).filter((n) => n.endsWith('.node'))) {
  const out = execFileSync('file', ['-b', join(dir, f)], { encoding: 'utf8' });
  if (!/ELF 64-bit.*ARM aarch64/.test(out)) {
    console.error(`prebuilds/linux-arm64/${f} is not aarch64: ${out}`);
    process.exit(1);
  }
  console.log(`prebuilds/linux-arm64/${f}: ${out.trim()}`);
}
