/**
 * The two addons: rawio.node, which every user loads, and rawio_loadgen.node, the load
 * generator, which only `rawio/loadgen` (src/loadgen/: the API, `rawio loadgen`, the bench) loads. The user's addon must carry none of the load
 * generator: its exports and its symbol table (`nm`, the full table when the file has one,
 * the dynamic one of a stripped prebuild) are checked against the load generator's own.
 * Runs against whatever build the suite uses: build/Release, a prebuild, or RAWIO_ADDON's.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadgenAddon, loadgenAddonCandidates } from '../dist/src/loadgen/addon.js';
import { native, packageRoot } from '../dist/src/sys/native.js';
import { titled, why } from './helpers/skips.js';

const require = createRequire(import.meta.url);
const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };

const mainAddon = process.env.RAWIO_ADDON ?? nodeGypBuild.path(packageRoot);
const loadgenFile = loadgenAddonCandidates().find((p) => existsSync(p));

/** What the load generator's code is called, in rawio::; none of it belongs in rawio.node. */
const LOADGEN = /loadgen|LoadConfig|LoadStats|RunLoadThread|RequestWriter/i;

interface Sym {
  type: string;
  name: string;
}

/** The defined symbols of an addon, demangled: the full table, or the dynamic one if stripped. */
function symbols(file: string): Sym[] {
  const read = (args: string[]) =>
    spawnSync('nm', ['-C', '--defined-only', ...args, file], { encoding: 'utf8' })
      .stdout.split('\n')
      .map((l) => /^[0-9a-f]*\s+(\S)\s+(.*)$/.exec(l))
      .filter((m) => m !== null)
      .map((m) => ({ type: m[1]!, name: m[2]! }));
  const full = read([]);
  return full.length > 0 ? full : read(['-D']);
}

describe('the addon users load', () => {
  it('is the one node-gyp-build picks, though rawio_loadgen.node sits beside it', () => {
    expect(basename(mainAddon)).toBe('rawio.node');
    for (const dir of ['build/Release', `prebuilds/${process.platform}-${process.arch}`]) {
      const at = join(packageRoot, dir);
      if (existsSync(join(at, 'rawio.node')))
        expect(readdirSync(at).filter((f) => f.endsWith('.node'))[0], dir).toBe('rawio.node');
    }
  });

  it('exports no load generator; the load generator exports only itself', () => {
    expect(Object.keys(native)).not.toContain('loadgen');
    expect(Object.keys(native).filter((k) => LOADGEN.test(k))).toEqual([]);
    expect(Object.keys(native)).toEqual(expect.arrayContaining(['Epoll', 'Ring', 'Keyspace']));
    expect(loadgenFile, `no rawio_loadgen.node in ${loadgenAddonCandidates().join(', ')}`).toBeDefined();
    expect(Object.keys(loadgenAddon())).toEqual(['loadgen']);
    expect(typeof loadgenAddon().loadgen).toBe('function');
  });

  it.skipIf(why.nm)(titled('holds none of the load generator symbols (nm)', why.nm), () => {
    const ours = symbols(mainAddon);
    const theirs = symbols(loadgenFile!);
    expect(ours.length).toBeGreaterThan(0);
    // The pattern is known to find the load generator where it is...
    expect(theirs.filter((s) => LOADGEN.test(s.name)).length).toBeGreaterThan(0);
    // ...and finds none of it in the user's addon.
    expect(ours.filter((s) => LOADGEN.test(s.name)).map((s) => s.name)).toEqual([]);
    // Every global function or object rawio:: defines in the load generator is absent from
    // rawio.node (weak symbols are inline helpers from shared headers, such as errors.h).
    const ourNames = new Set(ours.map((s) => s.name));
    const global = theirs.filter((s) => /^[TDBR]$/.test(s.type) && s.name.startsWith('rawio::'));
    expect(global.length).toBeGreaterThan(0);
    expect(global.filter((s) => ourNames.has(s.name)).map((s) => s.name)).toEqual([]);
  });

  it('is loaded by rawio/loadgen alone: nothing else under dist/src reaches the load generator', () => {
    // dist/src/loadgen/ is the load generator's API (`rawio/loadgen`), loadgen-cli.js and
    // bench-remote.js the commands that drive it, which cli.js imports only when `rawio
    // loadgen` or `rawio bench --target` runs. The library reaches none of them.
    const commands = ['cli.js', 'loadgen-cli.js', 'bench-remote.js'];
    const files = readdirSync(join(packageRoot, 'dist/src'), { recursive: true, encoding: 'utf8' }).filter(
      (f) => f.endsWith('.js') && !f.startsWith('loadgen/') && !commands.includes(f),
    );
    expect(files.length).toBeGreaterThan(10);
    // Code only: comments may name the load generator to say it lives elsewhere.
    const code = (f: string) =>
      readFileSync(join(packageRoot, 'dist/src', f), 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/^\s*\/\/.*$/gm, '');
    const reaching = files.filter((f) =>
      /loadgen-addon|bench\/loadgen|rawio_loadgen|\/loadgen\/|loadgen-cli|bench-remote/.test(code(f)),
    );
    expect(reaching).toEqual([]);
    expect(code('cli.js')).not.toMatch(/^import .*(loadgen|bench-remote)/m);
  });
});
