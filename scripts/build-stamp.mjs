// What dist/ was compiled from: a hash of the TypeScript build's inputs (every file under src/
// and bench/, the tsconfig files, package.json, the postbuild step, and the TypeScript and
// @types/node versions), written to dist/.build-stamp by scripts/postbuild.mjs after each
// successful build. scripts/ensure-built.mjs compiles only when the hash of the inputs as they
// are now differs from it (or dist/ is gone), so the steps of a CI run after the first do not
// each spend a full tsc run on sources that have not changed. Contents, not times: a tree
// copied with its dist/ and then checked out at other sources is seen as changed.
// scripts/prune-types.mjs, which deletes declarations from dist/, removes the stamp.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const stamp = join(root, 'dist/.build-stamp');

function filesUnder(dir, out = []) {
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) filesUnder(p, out);
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** The hash of the build's inputs as they are now. */
export function inputsHash() {
  const inputs = [
    ...filesUnder(join(root, 'src')),
    ...filesUnder(join(root, 'bench')),
    ...['tsconfig.json', 'tsconfig.build.json', 'package.json', 'scripts/postbuild.mjs'].map((f) => join(root, f)),
  ];
  const h = createHash('sha256');
  for (const f of inputs)
    h.update(`${relative(root, f)}\0`)
      .update(readFileSync(f))
      .update('\0');
  for (const pkg of ['typescript', '@types/node']) {
    const manifest = join(root, 'node_modules', pkg, 'package.json');
    h.update(`${pkg}@${existsSync(manifest) ? JSON.parse(readFileSync(manifest, 'utf8')).version : '?'}\0`);
  }
  return h.digest('hex');
}

/** Whether dist/ was built from the inputs as they are now. */
export function distCurrent() {
  if (!existsSync(stamp) || !existsSync(join(root, 'dist/src/index.js'))) return false;
  return readFileSync(stamp, 'utf8').trim() === inputsHash();
}

export function writeStamp() {
  writeFileSync(stamp, `${inputsHash()}\n`);
}

export function removeStamp() {
  rmSync(stamp, { force: true });
}
