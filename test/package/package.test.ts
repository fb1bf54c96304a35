/**
 * The package as users get it: `npm pack`'s file list (what ships, what must not: the
 * library, both prebuilds, the docs the README links; no benchmark suite), then the tarball
 * installed into a fresh project with no compiler, make or python on PATH, so the prebuilt
 * addon is the only way it can load. The install must keep to its budget (3 packages, 3.6 MB
 * on disk, no warning but npm's notice of rawio's install script); that script
 * (node-gyp-build) must load the prebuild and compile nothing, and, with the prebuilds taken
 * away (a machine they do not serve), compile both addons from source. A small program
 * (smoke.mjs) does real I/O through the installed package; the `rawio` commands run;
 * `require('rawio')` and `require('rawio/loadgen')` work from CommonJS; no shipped .js names
 * a source map the package lacks; and TypeScript resolves the package's types from ESM and
 * CommonJS consumers (node16, nodenext and bundler resolution) with library checks on, in
 * declarations an older TypeScript reads too.
 * Run by `npm run test:package`, which builds both prebuilds first (npm pack's prepack builds
 * dist/). The package is packed once: its file list is the tarball's.
 */
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bareEnv, diskUsage, installedPackages, npmCli, pack, run } from './npm.js';

const root = realpathSync(new URL('../..', import.meta.url));
const arch = process.arch === 'arm64' ? 'linux-arm64' : 'linux-x64';
const work = mkdtempSync(join(tmpdir(), 'rawio-pack-'));
const project = join(work, 'project');

/**
 * The install budget: what `npm install rawio` may bring into an empty project. The package
 * count keeps the lab out (no build tools, no bench dependencies); the bytes catch a stray
 * directory or data file shipped by mistake, which would cost megabytes. They are what rawio
 * itself weighs on disk (~2.9 MB of content, ~3.6 MB in 4 KiB blocks: two prebuilds, some 200
 * files of dist, the native sources, the docs but the lab's performance notes), with room for
 * a release's growth, not more.
 */
const BUDGET = { packages: 3, bytes: 3_800_000 };

afterAll(() => rmSync(work, { recursive: true, force: true }));

// `npm pack` as `npm publish` runs it (prepack builds dist/ and prunes its declarations,
// postpack builds them back): the tarball installed below, and the file list checked first.
const packed = pack(root, ['--pack-destination', work]);

/** `npm rebuild rawio` in `cwd`: rawio's install script, in the foreground, its output kept. */
function npmRebuild(cwd: string, env: NodeJS.ProcessEnv) {
  const args = [npmCli(), 'rebuild', 'rawio', '--foreground-scripts'];
  return spawnSync(process.execPath, args, { cwd, env, encoding: 'utf8', timeout: 840_000 });
}

describe('npm pack', () => {
  const files = packed.files.map((f) => f.path);

  it('ships the built library, the native sources, the prebuilds and the docs', () => {
    for (const f of [
      'package.json',
      'README.md',
      'LICENSE',
      'CHANGELOG.md',
      'index.cjs',
      'index.d.cts',
      'loadgen.cjs',
      'loadgen.d.cts',
      'binding.gyp',
      'CMakeLists.txt',
      'native/addon.cc',
      'native/errors.h',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/cli.js',
      // both CPUs the package lists in `cpu`
      'prebuilds/linux-x64/rawio.node',
      'prebuilds/linux-arm64/rawio.node',
    ]) {
      expect(files, f).toContain(f);
    }
  });

  it('ships no compiled module whose source is gone (prepack builds dist/ afresh)', () => {
    const orphans = files
      .filter((f) => /^dist\/src\/.*\.(js|d\.ts)$/.test(f))
      .filter((f) => !existsSync(join(root, f.replace(/^dist\//, '').replace(/\.(js|d\.ts)$/, '.ts'))));
    expect(orphans).toEqual([]);
  });

  it('ships every document the README links, or the link is a URL', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!.split('#')[0]!).filter(Boolean);
    expect(links.length).toBeGreaterThan(0);
    const local = links.filter((l) => !/^[a-z]+:/.test(l));
    expect(local.filter((l) => !files.includes(l.replace(/^\.\//, '')))).toEqual([]);
    expect(links.filter((l) => /^[a-z]+:/.test(l) && !l.startsWith('https://'))).toEqual([]);
  });

  it('ships no tests, benchmark suite or prebuilt load generator, source maps, build trees or tooling', () => {
    const junk =
      /^(test|src|bench|build|build-cmake|bench-out|docs\/api|coverage|scripts|\.cache|\.ci|\.github|node_modules)\/|\.map$|\.tsbuildinfo$|\.tgz$|\.test\.|^dist\/(test|bench)\/|rawio_loadgen\.node$/;
    expect(files.filter((f) => junk.test(f))).toEqual([]);
    const top = new Set(files.map((f) => f.split('/')[0]));
    const allowed = [
      'package.json',
      'README.md',
      'LICENSE',
      'CHANGELOG.md',
      'index.cjs',
      'index.d.cts',
      'loadgen.cjs',
      'loadgen.d.cts',
      'binding.gyp',
      'CMakeLists.txt',
    ];
    expect([...top].sort()).toEqual([...allowed, 'dist', 'docs', 'native', 'prebuilds'].sort());
    expect(files.filter((f) => f.startsWith('docs/') && !/^docs\/[^/]+\.md$/.test(f))).toEqual([]);
    // the lab's notebook (profiles and traces of the bench's paths) stays in the repository
    expect(files).not.toContain('docs/PERFORMANCE.md');
    expect(files).toContain('docs/API.md');
    // Declarations only of what the type entry points reach (scripts/prune-types.mjs); the
    // consumers' type checks below prove nothing they need is missing.
    expect(files).toContain('dist/src/loop/reactor.d.ts');
    expect(
      files.filter((f) => /^dist\/src\/models\/(worker-entry|tpc-acceptor|reactor-thread)\.d\.ts$/.test(f)),
    ).toEqual([]);
  });
});

describe('the tarball installed with no build tools', () => {
  let env: NodeJS.ProcessEnv;
  let installLog = '';

  beforeAll(() => {
    const { filename, size, unpackedSize } = packed;
    console.log(`tarball: ${size} bytes, ${unpackedSize} bytes unpacked`);
    env = bareEnv(work);
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    const res = run(process.execPath, [npmCli(), 'install', '--prefer-offline', join(work, filename)], project, env);
    installLog = res.stdout + res.stderr;
  });

  it(`keeps to the install budget on Node ${process.versions.node}: ${BUDGET.packages} packages, ${BUDGET.bytes} bytes, no warning`, () => {
    const packages = installedPackages(join(project, 'node_modules'));
    const { disk, apparent } = diskUsage(join(project, 'node_modules'));
    console.log(`installed: ${packages.join(', ')}; node_modules ${disk} bytes on disk, ${apparent} of content`);
    expect(packages).toContain('rawio');
    expect(packages.length, packages.join(', ')).toBeLessThanOrEqual(BUDGET.packages);
    expect(disk).toBeLessThanOrEqual(BUDGET.bytes);
    // npm 11 lists every dependency with an install script awaiting the project's approval
    // (allowScripts); that notice may name rawio (node-gyp-build) and nothing else.
    const notice = /^npm warn install-scripts( \d+ package has install scripts| +rawio@| *$| Run `npm install-scripts)/;
    expect(installLog.split('\n').filter((l) => /\bwarn|EBADENGINE/i.test(l) && !notice.test(l))).toEqual([]);
    // Commands: rawio's own and node-gyp-build's, nothing else.
    const bins = readdirSync(join(project, 'node_modules/.bin'));
    expect(bins.filter((b) => b !== 'rawio' && !b.startsWith('node-gyp-build'))).toEqual([]);
  });

  it('names no source map it does not ship', () => {
    // tsc ends each .js with a `//# sourceMappingURL=` comment; the maps stay in the
    // repository (files: !dist/**/*.map), so prepack strips the comments
    // (scripts/strip-source-maps.mjs) rather than leave bundlers and debuggers a missing file.
    const pkg = join(project, 'node_modules/rawio');
    const js = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? js(join(dir, e.name)) : /\.[cm]?js$/.test(e.name) ? [join(dir, e.name)] : [],
      );
    const files = js(join(pkg, 'dist'));
    expect(files.length).toBeGreaterThan(50);
    const dangling = files.flatMap((f) =>
      [...readFileSync(f, 'utf8').matchAll(/^\/\/# sourceMappingURL=(.+)$/gm)]
        .map((m) => join(f, '..', m[1]!.trim()))
        .filter((map) => !existsSync(map))
        .map((map) => `${f.slice(pkg.length + 1)} → ${map.slice(pkg.length + 1)}`),
    );
    expect(dangling).toEqual([]);
  });

  it('declares no generic typed array, which TypeScript before 5.7 cannot read', () => {
    // TypeScript 5.7 made the typed arrays and Buffer generic over their buffer, and infers
    // `new Uint8Array(0)` as `Uint8Array<ArrayBuffer>`: a declaration emitted that way fails
    // an older consumer's library check (TS2315, not generic), which the check below, on the
    // repository's TypeScript, cannot see. Exported constants are annotated instead.
    const pkg = join(project, 'node_modules/rawio');
    const dts = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? dts(join(dir, e.name)) : /\.d\.c?ts$/.test(e.name) ? [join(dir, e.name)] : [],
      );
    const files = [...dts(join(pkg, 'dist')), join(pkg, 'index.d.cts'), join(pkg, 'loadgen.d.cts')];
    const generic =
      /\b(?:(?:Uint8|Uint8Clamped|Int8|Uint16|Int16|Uint32|Int32|Float32|Float64|BigInt64|BigUint64)Array|Buffer|DataView)</;
    const found = files.flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => generic.test(l))
        .map((l) => `${f.slice(pkg.length + 1)}: ${l.trim()}`),
    );
    expect(files.length).toBeGreaterThan(20);
    expect(found).toEqual([]);
  });

  it('has no compiler, make or python within reach', () => {
    const res = spawnSync('/bin/sh', ['-c', 'command -v cc gcc g++ c++ make python3 node-gyp'], {
      env,
      encoding: 'utf8',
    });
    expect(res.stdout.trim()).toBe('');
  });

  it('installed from the prebuild without compiling', () => {
    const pkg = join(project, 'node_modules/rawio');
    expect(existsSync(join(pkg, `prebuilds/${arch}/rawio.node`))).toBe(true);
    expect(existsSync(join(pkg, 'build')), `a build/ appeared; install said:\n${installLog}`).toBe(false);
    // The CLI is linked once the package ships it (package.json's bin: dist/src/cli.js).
    if (existsSync(join(pkg, 'dist/src/cli.js')))
      expect(existsSync(join(project, 'node_modules/.bin/rawio'))).toBe(true);
  });

  it('has an install script that loads the prebuild and compiles nothing (no compiler on PATH)', () => {
    const pkg = join(project, 'node_modules/rawio');
    expect(JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')).scripts.install).toBe('node-gyp-build');
    const res = npmRebuild(project, env);
    expect(res.status, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toContain('node-gyp-build'); // the script ran …
    expect(existsSync(join(pkg, 'build')), res.stdout + res.stderr).toBe(false); // … and built nothing
  });

  it('compiles from source through its install script where no prebuild serves the machine', () => {
    // The same install less the prebuilds: what a machine of another libc or CPU gets.
    const other = join(work, 'no-prebuild');
    cpSync(project, other, { recursive: true, verbatimSymlinks: true });
    rmSync(join(other, 'node_modules/rawio/prebuilds'), { recursive: true, force: true });
    // node-gyp compiles one file at a time unless JOBS says otherwise: as many as there are CPUs.
    const res = npmRebuild(other, {
      ...process.env,
      JOBS: process.env.JOBS ?? 'max',
      npm_config_update_notifier: 'false',
    });
    expect(res.status, res.stdout + res.stderr).toBe(0);
    for (const f of ['rawio.node', 'rawio_loadgen.node'])
      expect(existsSync(join(other, 'node_modules/rawio/build/Release', f)), f).toBe(true);
    const code = "const r = require('rawio'); console.log(typeof r.sys.pipe, r.constants.EPOLLIN);";
    expect(run(process.execPath, ['-e', code], other, env).stdout.trim()).toBe('function 1');
  }, 900_000);

  it('runs a program over sockets, pipes, eventfd and what else the API has', () => {
    copyFileSync(join(root, 'test/package/smoke.mjs'), join(project, 'smoke.mjs'));
    const res = run(process.execPath, ['smoke.mjs'], project, env);
    const report = JSON.parse(res.stdout) as { ok: boolean; port: number; ran: string[] };
    console.log(`smoke.mjs ran: ${report.ran.join(', ')}`);
    expect(report.ok).toBe(true);
    expect(report.port).toBeGreaterThan(0);
    expect(report.ran).toEqual(expect.arrayContaining(['listenTcp', 'pipe', 'eventfd']));
  });

  it('has no benchmark suite: `rawio bench` says how to run it from a clone, and measures a server elsewhere', () => {
    const res = spawnSync(process.execPath, [join(project, 'node_modules/.bin/rawio'), 'bench'], {
      cwd: project,
      env,
      encoding: 'utf8',
    });
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/not part of the npm package/);
    expect(res.stderr).toContain('npm run bench');
    expect(existsSync(join(project, 'node_modules/rawio/dist/bench'))).toBe(false);
    // … but `rawio bench --target` (a server elsewhere) needs only the load generator: it
    // gets as far as that, which says how to build its addon, as `rawio loadgen` does.
    const bin = join(project, 'node_modules/.bin/rawio');
    const help = spawnSync(process.execPath, [bin, 'bench', '--help'], { cwd: project, env, encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--server-info URL');
    const remote = spawnSync(process.execPath, [bin, 'bench', '--target', '127.0.0.1:9', '--requests', '1'], {
      cwd: project,
      env,
      encoding: 'utf8',
    });
    expect(remote.status).not.toBe(0);
    expect(remote.stderr).toMatch(/rawio_loadgen\.node\) is not here/);
  });

  it("has `rawio --version`, the installed package's version", () => {
    const bin = join(project, 'node_modules/.bin/rawio');
    const installed = JSON.parse(readFileSync(join(project, 'node_modules/rawio/package.json'), 'utf8')) as {
      version: string;
    };
    const res = spawnSync(process.execPath, [bin, '--version'], { cwd: project, env, encoding: 'utf8' });
    expect([res.status, res.stdout]).toEqual([0, `${installed.version}\n`]);
  });

  it('has `rawio loadgen`, which says how to build its addon, the one part not shipped prebuilt', () => {
    const bin = join(project, 'node_modules/.bin/rawio');
    const help = spawnSync(process.execPath, [bin, 'loadgen', '--help'], { cwd: project, env, encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--target HOST:PORT');
    const res = spawnSync(process.execPath, [bin, 'loadgen', '--target', '127.0.0.1:9', '--requests', '1'], {
      cwd: project,
      env,
      encoding: 'utf8',
    });
    expect(res.status).not.toBe(0);
    expect(res.stderr).toMatch(/rawio_loadgen\.node\) is not here/);
    expect(res.stderr).toContain('npx node-gyp rebuild');
  });

  it('loads through require() from CommonJS', () => {
    const code =
      "const r = require('rawio'); const l = require('rawio/loadgen');" +
      'console.log(typeof r.sys.pipe, typeof r.errnoError, r.constants.EPOLLIN, typeof l.loadgen);';
    const res = run(process.execPath, ['-e', code], project, env);
    expect(res.stdout.trim()).toBe('function function 1 function');
  });

  it('gives TypeScript types to ESM and CommonJS consumers, library checks included', () => {
    // A consumer of each kind uses both entry points, `rawio` and `rawio/loadgen`.
    writeFileSync(
      join(project, 'esm.mts'),
      "import { sys, ErrnoError, serve, type ServeOptions } from 'rawio';\n" +
        "import { loadgen } from 'rawio/loadgen';\n" +
        'export const fd: number = sys.eventfd(0);\nexport const E: typeof ErrnoError = ErrnoError;\n' +
        "export const o: ServeOptions = { model: 'single', protocol: 'echo' };\n" +
        'export const s: typeof serve = serve;\nexport const l: typeof loadgen = loadgen;\n',
    );
    writeFileSync(
      join(project, 'cjs.cts'),
      "import rawio = require('rawio');\nimport lg = require('rawio/loadgen');\n" +
        'export const fds: [number, number] = rawio.sys.pipe();\n' +
        'export const e: InstanceType<typeof rawio.ErrnoError> | null = null;\n' +
        "export const o: rawio.ServeOptions = { model: 'single', protocol: 'echo' };\n" +
        'export const l: typeof lg.loadgen = lg.loadgen;\n',
    );
    // bad.cts holds one deliberate type error in each entry point's types: each run must
    // report those and nothing else, or the check would prove nothing (a package without
    // types passes as `any`). Library checks stay on (no --skipLibCheck): the package's own
    // declarations, index.d.cts and loadgen.d.cts included, must compile as a consumer's do.
    writeFileSync(
      join(project, 'bad.cts'),
      "import rawio = require('rawio');\nimport lg = require('rawio/loadgen');\n" +
        'export const s: string = rawio.sys.eventfd(0);\nexport const n: number = lg.formatHdrTable;\n',
    );
    // …and a program over the main API (serve, Reactor, Connection, Proactor, Ring,
    // transferFile, Keyspace, loadgen): every type it takes must come with the package.
    copyFileSync(join(root, 'test/package/consumer.mts'), join(project, 'consumer.mts'));
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const base = ['--noEmit', '--strict', '--typeRoots', join(root, 'node_modules/@types'), '--types', 'node'];
    for (const mode of ['node16', 'nodenext']) {
      const res = spawnSync(
        process.execPath,
        [tsc, ...base, '--module', mode, '--moduleResolution', mode, 'esm.mts', 'cjs.cts', 'consumer.mts', 'bad.cts'],
        { cwd: project, env, encoding: 'utf8' },
      );
      const errors = res.stdout.split('\n').filter((l) => /error TS/.test(l));
      expect(errors, `${mode}:\n${res.stdout}`).toHaveLength(2);
      expect(errors[0], mode).toMatch(/^bad\.cts\(3,.*TS2322/);
      expect(errors[1], mode).toMatch(/^bad\.cts\(4,.*TS2322/);
    }
    // A bundler's resolution (the `import` conditions), ES modules only.
    run(
      process.execPath,
      [
        tsc,
        ...base,
        '--module',
        'esnext',
        '--moduleResolution',
        'bundler',
        '--target',
        'es2022',
        'esm.mts',
        'consumer.mts',
      ],
      project,
      env,
    );
  });
});
