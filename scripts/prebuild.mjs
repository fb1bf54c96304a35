// Builds the prebuilds the package ships into prebuilds/linux-<arch>/: rawio.node, the addon
// users load (prebuildify --napi --strip), and beside it rawio_loadgen.node, the benchmark's
// load generator, stripped the same way. `npm run prebuilds` builds for this machine's CPU;
// `npm run prebuilds:arm64` (`--arch arm64`) cross-builds on x64 with Debian's
// g++-aarch64-linux-gnu and checks with `file` that both results are aarch64 code (they
// cannot run here, so the check is on the ELF header). The build happens in a staging copy
// of binding.gyp and native/ so that the host's own build/Release (used by the tests) is
// left untouched.
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const root = new URL('..', import.meta.url).pathname;
const { values } = parseArgs({ options: { arch: { type: 'string', default: process.arch } } });
const arch = values.arch;
const cross = arch !== process.arch;
const ELF = { x64: /ELF 64-bit.*x86-64/, arm64: /ELF 64-bit.*ARM aarch64/ };
if (!ELF[arch] || (cross && arch !== 'arm64')) {
  console.error(`prebuild: cannot build for ${arch} on ${process.arch} (cross-builds: x64 → arm64 only)`);
  process.exit(1);
}
const triple = process.env.CROSS_TRIPLE ?? 'aarch64-linux-gnu';
const tool = (name) => (cross ? `${triple}-${name}` : name);

try {
  execFileSync(tool('g++'), ['--version'], { stdio: 'ignore' });
} catch {
  console.error(`${tool('g++')} not found${cross ? `: install it with \`apt-get install g++-${triple}\`` : ''}`);
  process.exit(1);
}

/** The environment of a build: the cross tools when cross-building, this machine's otherwise. */
function buildEnv() {
  const env = { ...process.env, JOBS: process.env.JOBS ?? '2' };
  if (!cross) return env;
  Object.assign(env, { CC: tool('gcc'), CXX: tool('g++'), LINK: tool('g++'), AR: tool('ar') });
  // Node-API headers do not depend on the CPU: a distribution's /usr/include/node serves
  // the cross-build too, and spares node-gyp a download (npm config nodedir does the same).
  if (!env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h')) env.npm_config_nodedir = '/usr';
  return env;
}

const out = join(root, 'prebuilds', `linux-${arch}`);
const stage = mkdtempSync(join(tmpdir(), `rawio-prebuild-${arch}-`));
try {
  for (const entry of ['binding.gyp', 'native', 'package.json'])
    cpSync(join(root, entry), join(stage, entry), { recursive: true });
  // binding.gyp asks node-addon-api for its include dir through `node -p require(...)`.
  symlinkSync(join(root, 'node_modules'), join(stage, 'node_modules'));
  // prebuildify takes the first .node file of build/Release, rawio.node ('.' sorts before '_').
  const args = ['--napi', '--strip', '--arch', arch, '--strip-bin', tool('strip'), '--out', root, stage];
  execFileSync(join(root, 'node_modules/.bin/prebuildify'), args, { cwd: stage, env: buildEnv(), stdio: 'inherit' });
  copyFileSync(join(stage, 'build/Release/rawio_loadgen.node'), join(out, 'rawio_loadgen.node'));
  execFileSync(tool('strip'), ['--strip-all', join(out, 'rawio_loadgen.node')]);
} finally {
  rmSync(stage, { recursive: true, force: true });
}

for (const f of readdirSync(out).filter((n) => n.endsWith('.node'))) {
  const desc = execFileSync('file', ['-b', join(out, f)], { encoding: 'utf8' });
  if (!ELF[arch].test(desc)) {
    console.error(`prebuilds/linux-${arch}/${f} is not ${arch} code: ${desc}`);
    process.exit(1);
  }
  console.log(`prebuilds/linux-${arch}/${f}: ${desc.trim()}`);
}
