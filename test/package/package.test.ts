/**
 * The package as users get it: `npm pack`'s file list (what ships, what must not), then the
 * tarball installed into a fresh project with no compiler, make or python on PATH, so the
 * prebuilt addon is the only way it can load; a small program (smoke.mjs) does real I/O
 * through the installed package, `require('rawio')` works from CommonJS, and TypeScript
 * resolves the package's types from both ESM and CommonJS consumers.
 * Run by `npm run test:package`, which builds dist/ and the prebuild first.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = realpathSync(new URL('../..', import.meta.url));
const arch = process.arch === 'arm64' ? 'linux-arm64' : 'linux-x64';
const work = mkdtempSync(join(tmpdir(), 'rawio-pack-'));
const project = join(work, 'project');

/** npm's own CLI script, run by this node, so that PATH can be cut down to node alone. */
function npmCli(): string {
  const fromNpm = process.env.npm_execpath;
  if (fromNpm && fromNpm.endsWith('.js')) return fromNpm;
  const which = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim();
  return join(realpathSync(which), '..', 'npm-cli.js');
}

/** An environment whose PATH holds node and nothing else (no cc, g++, make, python). */
function bareEnv(): NodeJS.ProcessEnv {
  const bin = join(work, 'bin');
  mkdirSync(bin, { recursive: true });
  if (!existsSync(join(bin, 'node'))) symlinkSync(process.execPath, join(bin, 'node'));
  return {
    PATH: bin,
    HOME: process.env.HOME ?? work,
    TMPDIR: tmpdir(),
    // npm runs lifecycle scripts through `sh`, which is not on this PATH.
    npm_config_script_shell: '/bin/sh',
    npm_config_update_notifier: 'false',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
  };
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): SpawnSyncReturns<string> {
  const res = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 120_000 });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${res.status}:\n${res.stdout}\n${res.stderr}`);
  return res;
}

interface PackEntry {
  filename: string;
  files: { path: string }[];
}

function pack(extra: string[]): PackEntry {
  const res = run(process.execPath, [npmCli(), 'pack', '--json', '--ignore-scripts', ...extra], root);
  return (JSON.parse(res.stdout) as PackEntry[])[0];
}

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('npm pack --dry-run', () => {
  const files = pack(['--dry-run']).files.map((f) => f.path);

  it('ships the built library, the native sources, the prebuilds and the docs', () => {
    for (const f of [
      'package.json',
      'README.md',
      'LICENSE',
      'CHANGELOG.md',
      'index.cjs',
      'index.d.cts',
      'binding.gyp',
      'CMakeLists.txt',
      'native/addon.cc',
      'native/errors.h',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/bench/main.js',
      // the C baseline copy-c compiles at bench time (bench/c, copied by the build)
      'dist/bench/c/transfer.c',
      `prebuilds/${arch}/rawio.node`,
    ]) {
      expect(files, f).toContain(f);
    }
  });

  it('ships no tests, benchmark results, source maps, build trees or tooling', () => {
    const junk =
      /^(test|src|bench|build|build-cmake|bench-out|docs|coverage|scripts|\.cache|\.ci|\.github|node_modules)\/|\.map$|\.tsbuildinfo$|\.tgz$|\.test\.|^dist\/test\//;
    expect(files.filter((f) => junk.test(f))).toEqual([]);
    const top = new Set(files.map((f) => f.split('/')[0]));
    const allowed = [
      'package.json',
      'README.md',
      'LICENSE',
      'CHANGELOG.md',
      'index.cjs',
      'index.d.cts',
      'binding.gyp',
      'CMakeLists.txt',
    ];
    expect([...top].sort()).toEqual([...allowed, 'dist', 'native', 'prebuilds'].sort());
  });
});

describe('the tarball installed with no build tools', () => {
  let env: NodeJS.ProcessEnv;
  let installLog = '';

  beforeAll(() => {
    const { filename } = pack(['--pack-destination', work]);
    env = bareEnv();
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    const res = run(process.execPath, [npmCli(), 'install', '--prefer-offline', join(work, filename)], project, env);
    installLog = res.stdout + res.stderr;
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

  it('runs a program over sockets, pipes, eventfd and what else the API has', () => {
    copyFileSync(join(root, 'test/package/smoke.mjs'), join(project, 'smoke.mjs'));
    const res = run(process.execPath, ['smoke.mjs'], project, env);
    const report = JSON.parse(res.stdout) as { ok: boolean; port: number; ran: string[] };
    console.log(`smoke.mjs ran: ${report.ran.join(', ')}`);
    expect(report.ok).toBe(true);
    expect(report.port).toBeGreaterThan(0);
    expect(report.ran).toEqual(expect.arrayContaining(['listenTcp', 'pipe', 'eventfd']));
  });

  it("finds copy-c's C source in the install and, with no compiler, says so instead of failing", () => {
    const lib = join(project, 'node_modules/rawio/dist/bench/lib/c-driver.js');
    const code = `const d = await import(${JSON.stringify(lib)}); console.log(JSON.stringify({ src: d.transferSource(), r: d.buildTransferDriver() }));`;
    const res = run(process.execPath, ['--input-type=module', '-e', code], project, env);
    const { src, r } = JSON.parse(res.stdout) as { src: string | null; r: { ok: boolean; code?: string } };
    expect(src).toBe(join(realpathSync(project), 'node_modules/rawio/dist/bench/c/transfer.c'));
    expect(r).toMatchObject({ ok: false, code: 'no-compiler' });
  });

  it('loads through require() from CommonJS', () => {
    const code =
      "const r = require('rawio'); console.log(typeof r.sys.pipe, typeof r.errnoError, r.constants.EPOLLIN);";
    const res = run(process.execPath, ['-e', code], project, env);
    expect(res.stdout.trim()).toBe('function function 1');
  });

  it('gives TypeScript types to ESM and CommonJS consumers', () => {
    writeFileSync(
      join(project, 'esm.mts'),
      "import { sys, ErrnoError } from 'rawio';\nexport const fd: number = sys.eventfd(0);\nexport const E: typeof ErrnoError = ErrnoError;\n",
    );
    writeFileSync(
      join(project, 'cjs.cts'),
      "import rawio = require('rawio');\nexport const fds: [number, number] = rawio.sys.pipe();\nexport const e: InstanceType<typeof rawio.ErrnoError> | null = null;\n",
    );
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const base = [
      '--noEmit',
      '--strict',
      '--typeRoots',
      join(root, 'node_modules/@types'),
      '--types',
      'node',
      'esm.mts',
      'cjs.cts',
    ];
    // bad.cts holds one deliberate type error: the nodenext run must report it and nothing
    // else, or the check would prove nothing (a package without types passes as `any`).
    writeFileSync(
      join(project, 'bad.cts'),
      "import rawio = require('rawio');\nexport const s: string = rawio.sys.eventfd(0);\n",
    );
    const strict = spawnSync(
      process.execPath,
      [tsc, ...base, 'bad.cts', '--module', 'nodenext', '--moduleResolution', 'nodenext'],
      { cwd: project, env, encoding: 'utf8' },
    );
    const errors = strict.stdout.split('\n').filter((l) => /error TS/.test(l));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^bad\.cts.*TS2322/);
    run(
      process.execPath,
      [tsc, ...base, '--module', 'node16', '--moduleResolution', 'node16', '--skipLibCheck'],
      project,
      env,
    );
  });
});
