// Runs first at `npm pack` / `npm publish` (prepack): deletes dist/ before the build, since
// tsc writes its outputs over the old ones and never removes one whose source is gone. A
// module renamed or removed in src/ would otherwise ship in the package as its last build
// left it, reachable by a deep import and counted in the install budget.
import { rmSync } from 'node:fs';
import { join } from 'node:path';

rmSync(join(new URL('..', import.meta.url).pathname, 'dist'), { recursive: true, force: true });
