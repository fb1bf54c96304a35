// Checks native/ and bench/c/ (the C programs the benchmarks build) against .clang-format
// when clang-format is installed (.ci/run installs it); says so and passes when it is not,
// so that `npm run lint` works on a bare machine.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
if (spawnSync('clang-format', ['--version']).status !== 0) {
  console.log('clang-format not installed: native/ and bench/c/ formatting not checked');
  process.exit(0);
}
const files = ['native', 'bench/c'].flatMap((dir) =>
  readdirSync(`${root}${dir}`)
    .filter((f) => /\.(cc|c|h)$/.test(f))
    .map((f) => `${dir}/${f}`),
);
execFileSync('clang-format', ['--dry-run', '--Werror', ...files], { cwd: root, stdio: 'inherit' });
console.log(`clang-format: ${files.length} files clean`);
