// Runs at `npm pack` / `npm publish` (prepack, after the build): deletes from dist/src every
// declaration file (.d.ts) that no type entry point of the package reaches. tsc declares
// every module, but most are internal (model threads, transfer drivers, …): users never see
// their types, and each one costs the installed package a 4 KiB block at least. The entry
// points are package.json's `types` and the `types` of its exports (plus index.d.cts); a
// declaration is reached through the relative specifiers of `from '…'` and `import('…')`.
// postpack runs `npm run build` again, which writes every declaration back for the
// repository's own type checks.
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { removeStamp } from './build-stamp.mjs';

const root = resolve(new URL('..', import.meta.url).pathname);
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

/** Every `types` path in package.json (the top-level field and the exports map). */
function typeEntries(node, out = [pkg.types]) {
  if (node === null || typeof node !== 'object') return out;
  for (const [k, v] of Object.entries(node)) {
    if (k === 'types' && typeof v === 'string') out.push(v);
    else typeEntries(v, out);
  }
  return out;
}

const reached = new Set();
const specifier = /(?:\bfrom\s*|\bimport\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g;

function visit(file) {
  if (reached.has(file)) return;
  if (!existsSync(file)) throw new Error(`prune-types: ${file} is referenced but does not exist`);
  reached.add(file);
  for (const [, spec] of readFileSync(file, 'utf8').matchAll(specifier)) {
    const target = resolve(dirname(file), spec);
    // A .js specifier names the declaration beside it (.d.ts for .js, .d.cts for .cjs).
    visit(target.replace(/\.js$/, '.d.ts').replace(/\.cjs$/, '.d.cts'));
  }
}

for (const entry of typeEntries(pkg.exports)) visit(resolve(root, entry));

// dist/ is no longer what the build made: the next scripts/ensure-built.mjs compiles again.
removeStamp();
let removed = 0;
(function walk(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.d.ts') && !reached.has(p)) {
      rmSync(p);
      removed++;
    }
  }
})(join(root, 'dist/src'));
// stderr: `npm pack --json` prints the lifecycle scripts' stdout in front of its JSON.
console.error(`prune-types: kept ${reached.size} declaration files, removed ${removed} no entry point reaches`);
