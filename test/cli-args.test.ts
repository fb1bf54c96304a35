/**
 * Every `rawio` subcommand parses its flags with one parser (node:util parseArgs): unknown
 * flags are refused naming the known ones, numbers must be whole numbers, each command has
 * --help, and `rawio serve` reports bad values as serve() does (ENOENT root, CPUs beyond
 * the machine, unknown transfer methods).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from '../dist/bench/main.js';
import { parseServeArgs } from '../dist/src/serve-cli.js';
import { serveOptionTable } from '../dist/src/models/serve-options.js';
import { getAffinity } from '../dist/src/sys/process.js';
import { serveOptionNames } from './helpers/rawio.js';

const cli = new URL('../dist/src/cli.js', import.meta.url).pathname;

function run(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('rawio subcommands', () => {
  it('probe refuses an unknown flag, naming the known ones', () => {
    const r = run('probe', '--jsn');
    expect(r.code).toBe(2);
    expect(r.err).toContain("unknown option '--jsn'");
    expect(r.err).toContain('--json');
    expect(r.err).toContain('--path');
    expect(r.out).toBe('');
  });

  it('probe --json --path still work', () => {
    const r = run('probe', '--json', '--path', '.');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).directIo.path).toBe('.');
  });

  it('--version, -v and version print the package version', () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    for (const flag of ['--version', '-v', 'version'])
      expect(run(flag)).toMatchObject({ code: 0, out: `${version}\n` });
  });

  it('every subcommand has --help', () => {
    for (const cmd of ['probe', 'serve', 'bench']) {
      const r = run(cmd, '--help');
      expect(r.code).toBe(0);
      expect(r.out).toContain(`rawio ${cmd}`);
    }
  });

  it('serve: a number flag wants a whole number', () => {
    for (const [flag, value] of [
      ['--workers', 'abc'],
      ['--port', '80x'],
      ['--cpus', '0,x'],
      ['--max-queue', '1.5'],
      ['--max-connections', 'many'],
      ['--max-connections-per-client', '2.5'],
      ['--min-request-rate', 'fast'],
    ]) {
      const r = run('serve', '--model', 'multi-reactor', '--protocol', 'http', flag!, value!);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`${flag} wants a whole number, got`);
      expect(r.err).not.toContain('NaN');
    }
  });

  it('serve: unknown flags, CPUs beyond the machine, a missing root, a bad transfer', () => {
    let r = run('serve', '--model', 'single', '--protocol', 'http', '--prot', 'x');
    expect(r.err).toContain("unknown option '--prot'");
    expect(r.err).toContain('--idle-timeout');
    // Past the CPUs it may use (their count would name one under a cpuset not starting at 0).
    r = run('serve', '--model', 'single', '--protocol', 'http', '--cpus', String(Math.max(...getAffinity()) + 5));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--cpus wants a CPU this process may use/);
    r = run('serve', '--model', 'single', '--protocol', 'static', '--root', '/nonexistent-rawio');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--root wants a directory: ENOENT/);
    r = run('serve', '--model', 'single', '--protocol', 'static', '--root', '.', '--transfer', 'teleport');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--transfer wants one of .*got 'teleport'/);
  });

  it('serve --help names the flag of every serve() option', () => {
    const help = run('serve', '--help').out;
    for (const key of serveOptionNames) {
      if (serveOptionTable[key].cli === 'none') continue; // execArgv: `node --opt rawio serve`
      expect(help).toContain(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} `);
    }
  });

  it('serve: every serve() option has its flag', () => {
    const opts = parseServeArgs([
      '--model=multi-reactor-pool',
      '--protocol=http',
      '--max-queue=1000',
      '--idle-timeout=500',
      '--backlog=10',
      '--pool=1',
      '--cpus=0',
      '--max-connections=100',
      '--max-connections-per-client=8',
      '--min-request-rate=4096',
    ]);
    expect(opts).toEqual({
      model: 'multi-reactor-pool',
      protocol: 'http',
      maxQueue: 1000,
      idleTimeout: 500,
      backlog: 10,
      pool: 1,
      cpus: [0],
      maxConnections: 100,
      maxConnectionsPerClient: 8,
      minRequestRate: 4096,
    });
  });

  it('serve --min-request-rate: a whole number of bytes a second, at least 1, or Infinity', () => {
    const base = ['--model=single', '--protocol=http'];
    expect(parseServeArgs([...base, '--min-request-rate=1']).minRequestRate).toBe(1);
    expect(parseServeArgs([...base, '--min-request-rate', 'Infinity']).minRequestRate).toBe(Infinity);
    for (const value of ['0', '-5']) {
      const r = run('serve', ...base, '--min-request-rate', value);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`--min-request-rate wants an integer >= 1, or Infinity, got '${value}'`);
    }
  });

  it('serve --keyspace-size: the resp keyspace in bytes, 65536 and up, resp only', () => {
    expect(parseServeArgs(['--model=single', '--protocol=resp', '--keyspace-size=1048576'])).toEqual({
      model: 'single',
      protocol: 'resp',
      keyspaceSize: 1 << 20,
    });
    let r = run('serve', '--model', 'single', '--protocol', 'resp', '--keyspace-size', '1000');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--keyspace-size wants an integer >= 65536/);
    r = run('serve', '--model', 'single', '--protocol', 'resp', '--keyspace-size', 'big');
    expect(r.code).toBe(2);
    expect(r.err).toContain('--keyspace-size wants a whole number');
    r = run('serve', '--model', 'single', '--protocol', 'http', '--keyspace-size', '65536');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/keyspace-size.*not used by the http protocol/);
  });

  it('serve --max-connections and --max-connections-per-client want a whole number of at least 1', () => {
    for (const flag of ['--max-connections', '--max-connections-per-client']) {
      for (const value of ['0', '-3']) {
        const r = run('serve', '--model', 'single', '--protocol', 'http', flag, value);
        expect(r.code).toBe(2);
        expect(r.err).toContain(`${flag} wants an integer >= 1`);
      }
    }
  });

  it('serve --mmap takes comma-separated words, and refuses others', () => {
    const base = ['--model=single', '--protocol=static', '--transfer=mmap'];
    expect(parseServeArgs([...base, '--mmap=populate,reuse,sequential']).mmap).toEqual({
      populate: true,
      reuse: true,
      advice: 'sequential',
    });
    expect(parseServeArgs([...base, '--mmap', 'willneed']).mmap).toEqual({ advice: 'willneed' });
    expect(() => parseServeArgs([...base, '--mmap=hugepage'])).toThrow(/--mmap takes populate, reuse/);
  });

  it('bench parses with the same parser', () => {
    expect(parseBenchArgs(['--full', '--only', 'copy,read', '--out=x', '--json'])).toEqual({
      profile: 'full',
      only: ['copy', 'read'],
      out: 'x',
      json: true,
    });
    expect(() => parseBenchArgs(['--fast'])).toThrow(/unknown option '--fast'.*--only/);
    expect(() => parseBenchArgs(['--out'])).toThrow(/--out needs a value/);
    expect(() => parseBenchArgs(['--json=yes'])).toThrow(/--json takes no value/);
  });
});
