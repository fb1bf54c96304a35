// Runs at `npm publish` (prepublishOnly): refuses to publish a package without the prebuilt
// addons its install relies on. The tarball takes whatever prebuilds/ holds, and a package
// published without them would compile on every user's machine, or fail where no compiler
// is. Each must be there and be a shared object for its CPU (ELF e_machine: x86-64 62,
// AArch64 183). `node scripts/check-prebuilds.mjs [DIR]` checks DIR/prebuilds (default: the
// repository); exit status 1 names what is missing or wrong.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const WANTED = { 'linux-x64': 62, 'linux-arm64': 183 };
const root = process.argv[2] ?? new URL('..', import.meta.url).pathname;

const problems = [];
for (const [dir, machine] of Object.entries(WANTED)) {
  const file = join(root, 'prebuilds', dir, 'rawio.node');
  let head;
  try {
    head = readFileSync(file).subarray(0, 20);
  } catch (e) {
    problems.push(`${file}: ${e.code ?? e.message}`);
    continue;
  }
  const elf = head.length === 20 && head.readUInt32BE(0) === 0x7f454c46;
  // e_type (2 bytes at 16) is ET_DYN (3); e_machine (2 bytes at 18), little-endian on both CPUs
  if (!elf || head.readUInt16LE(16) !== 3) problems.push(`${file}: not an ELF shared object`);
  else if (head.readUInt16LE(18) !== machine)
    problems.push(`${file}: built for ELF machine ${head.readUInt16LE(18)}, not ${machine}`);
}
if (problems.length > 0) {
  console.error(
    `rawio: not publishing without the prebuilt addons (npm run prebuilds && npm run prebuilds:arm64):\n  ${problems.join('\n  ')}`,
  );
  process.exit(1);
}
