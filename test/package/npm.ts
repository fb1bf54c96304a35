/**
 * npm as the package tests drive it: npm's own CLI script run by this node (so that PATH can
 * be cut down to node alone), `npm pack`, and what an install leaves in node_modules
 * (packages and their size on disk, as `du` counts it).
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, realpathSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** npm's CLI script, from npm's own environment or beside the `npm` on PATH. */
export function npmCli(): string {
  const fromNpm = process.env.npm_execpath;
  if (fromNpm && fromNpm.endsWith('.js')) return fromNpm;
  const which = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim();
  return join(realpathSync(which), '..', 'npm-cli.js');
}

/** An environment whose PATH holds node and nothing else (no cc, g++, make, python). */
export function bareEnv(work: string): NodeJS.ProcessEnv {
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

export function run(
  cmd: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = process.env,
): SpawnSyncReturns<string> {
  const res = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 120_000 });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${res.status}:\n${res.stdout}\n${res.stderr}`);
  return res;
}

export interface PackEntry {
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string }[];
}

/**
 * `npm pack --json` with its lifecycle scripts, as `npm publish` runs them: prepack builds and
 * prunes the declarations no entry point reaches (scripts/prune-types.mjs), postpack builds
 * again. The scripts write their own words to stderr, so stdout is JSON alone, as tools that
 * read `npm pack --json` expect (a parse error here means one of them wrote to stdout).
 */
export function pack(root: string, extra: string[]): PackEntry {
  const res = run(process.execPath, [npmCli(), 'pack', '--json', ...extra], root);
  return (JSON.parse(res.stdout) as PackEntry[])[0]!;
}

/** Every package under a node_modules, nested and scoped ones included, by name. */
export function installedPackages(nodeModules: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(nodeModules)) {
    if (name.startsWith('.')) continue;
    const dirs = name.startsWith('@') ? readdirSync(join(nodeModules, name)).map((n) => `${name}/${n}`) : [name];
    for (const d of dirs) {
      out.push(d);
      const nested = join(nodeModules, d, 'node_modules');
      if (existsSync(nested)) out.push(...installedPackages(nested));
    }
  }
  return out.sort();
}

/** Bytes on disk (allocated blocks, as `du` counts them) and bytes of content under a path. */
export function diskUsage(path: string): { disk: number; apparent: number } {
  const st = lstatSync(path);
  const own = { disk: st.blocks * 512, apparent: st.isFile() ? st.size : 0 };
  if (!st.isDirectory()) return own;
  for (const name of readdirSync(path)) {
    const sub = diskUsage(join(path, name));
    own.disk += sub.disk;
    own.apparent += sub.apparent;
  }
  return own;
}
