// Runs at `npm pack` / `npm publish` (prepack, after scripts/prune-types.mjs): removes the
// `//# sourceMappingURL=…` comment from every .js file under dist/src. The package ships no
// source maps (package.json `files` excludes dist/**/*.map, and the TypeScript sources they
// would point into stay in the repository), so each comment would name a file that is not
// there: bundlers and source-map loaders warn about every one of them, and debuggers look for
// it in vain. postpack runs `npm run build` again, which writes the comments and the maps back
// for the repository's own use.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { removeStamp } from './build-stamp.mjs';

const root = resolve(new URL('..', import.meta.url).pathname);
const comment = /\n?\/\/# sourceMappingURL=[^\n]*\n?$/;

// dist/ is no longer what the build made: the next scripts/ensure-built.mjs compiles again.
removeStamp();
let stripped = 0;
(function walk(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (/\.[cm]?js$/.test(e.name)) {
      const text = readFileSync(p, 'utf8');
      if (!comment.test(text)) continue;
      writeFileSync(p, `${text.replace(comment, '')}\n`);
      stripped++;
    }
  }
})(join(root, 'dist/src'));
// stderr: `npm pack --json` prints the lifecycle scripts' stdout in front of its JSON.
console.error(`strip-source-maps: removed the source map comment from ${stripped} files`);
