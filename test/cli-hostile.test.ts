/**
 * The `rawio` command under hostile command lines, as real processes: every wrong flag or
 * value is one line on stderr naming the flag, exit status 2 and no stack trace; a command
 * that fails while running (a port in use, a handler that throws, a closed target) exits 1
 * the same way; a signal ends `rawio serve` with 0, also during startup, and a master that
 * gives up on crashing workers exits 1 — and in every case nothing of the command's process
 * group is left running.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadgen } from '../dist/src/loadgen/index.js';
import { resolveServeOptions } from '../dist/src/models/serve-options.js';
import { expectFailure, rawio, STACK, type Run } from './helpers/cli-run.js';
import { childrenOf } from './helpers/procs.js';
import { eventually } from './helpers/wait.js';

/** One line (the message) before the usage, naming `flag`; no stack, nothing left. */
function expectUsage(r: Run, flag: RegExp | string): void {
  expect(r.code, r.err).toBe(2);
  expect(r.signal).toBeNull();
  const first = r.err.split('\n')[0]!;
  expect(first).toMatch(/^rawio( \w+)?: /);
  expect(first).toMatch(typeof flag === 'string' ? new RegExp(flag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : flag);
  expect(r.err).not.toMatch(STACK);
  expect(r.err).not.toContain('NaN');
  expect(r.out).toBe('');
  expect(r.left).toEqual([]);
}

const HTTP = ['serve', '--model', 'single', '--protocol', 'http'];
/** multi-process HTTP with two worker processes. */
const MULTI = ['serve', '--model', 'multi-process', '--protocol', 'http', '--workers', '2'];
const TARGET = ['loadgen', '--target', '127.0.0.1:9'];

/** [what, argv, what the first line of stderr names] — each exits 2. */
const usageCases: [string, string[], RegExp | string][] = [
  ['no command', [], 'no command given'],
  ['an unknown command', ['serv'], "unknown command 'serv'; known: probe, serve, loadgen, bench"],
  ['an inherited property as a command', ['constructor'], "unknown command 'constructor'"],
  ['an unknown flag', ['probe', '--jsn'], "unknown option '--jsn'"],
  ['a stray word', [...HTTP, 'extra'], "unexpected argument 'extra'"],
  ['a stray word after --', ['probe', '--', 'x'], "unexpected argument 'x'"],
  ['a flag after --, as written', [...HTTP, '--', '--port', '1'], "unexpected argument '--port'"],
  ['a value flag alone after --', [...HTTP, '--', '--port'], "unexpected argument '--port'"],
  ['a flag missing its value at the end', [...HTTP, '--port'], '--port needs a value'],
  ['a flag followed by another flag', [...HTTP, '--port', '--workers', '2'], '--port needs a value'],
  ['a flag given twice', [...HTTP, '--port', '0', '--port=0'], '--port is given more than once'],
  ['a boolean given twice', ['probe', '--json', '--json'], '--json is given more than once'],
  ['a boolean given a value', ['probe', '--json=yes'], '--json takes no value'],
  ['--port -1', [...HTTP, '--port', '-1'], /--port wants an integer >= 0 and <= 65535, got '-1'/],
  ['--port 65536', [...HTTP, '--port', '65536'], /--port wants an integer .* got '65536'/],
  ['--port 1.5', [...HTTP, '--port', '1.5'], "--port wants a whole number, got '1.5'"],
  ['--port abc', [...HTTP, '--port', 'abc'], "--port wants a whole number, got 'abc'"],
  ["--port ''", [...HTTP, '--port', ''], "--port wants a whole number, got ''"],
  ["--port ' 80'", [...HTTP, '--port', ' 80'], "--port wants a whole number, got ' 80'"],
  ['--port 2^70', [...HTTP, '--port', '1180591620717411303424'], '--port wants a whole number below 2^53'],
  ['--workers 0', ['serve', '--model', 'multi-reactor', '--protocol', 'http', '--workers', '0'], /--workers wants/],
  ['--workers -3', ['serve', '--model', 'multi-reactor', '--protocol', 'http', '--workers', '-3'], /--workers wants/],
  ['--workers 1e9', [...HTTP, '--workers', '1e9'], "--workers wants a whole number, got '1e9'"],
  ['--cpus 99', [...HTTP, '--cpus', '99'], /--cpus wants a CPU this process may use .*got '99'/],
  ['--cpus a,b', [...HTTP, '--cpus', 'a,b'], "--cpus wants a whole number, got 'a'"],
  ["--cpus ''", [...HTTP, '--cpus', ''], "--cpus wants a whole number, got ''"],
  ['--model missing', ['serve', '--protocol', 'http'], /--model is required: one of 'iterative'/],
  ['--model nope', ['serve', '--model', 'nope', '--protocol', 'http'], /--model wants one of .*got 'nope'/],
  ['--protocol nope', ['serve', '--model', 'single', '--protocol', 'nope'], /--protocol wants one of .*got 'nope'/],
  ['--backend nope', [...HTTP, '--backend', 'nope'], /--backend wants one of 'select'.*got 'nope'/],
  ['--accept on a model without it', [...HTTP, '--accept', 'mutex'], /--accept is not used by the single model/],
  ['--host empty', [...HTTP, '--host', ''], "--host wants an address or a host name, got ''"],
  ['--root missing', ['serve', '--model', 'single', '--protocol', 'static'], /--root is required: a directory/],
  [
    '--root nonexistent',
    ['serve', '--model', 'single', '--protocol', 'static', '--root', '/nonexistent-rawio'],
    /--root wants a directory: ENOENT/,
  ],
  [
    '--root a file',
    ['serve', '--model', 'single', '--protocol', 'static', '--root', '/proc/self/stat'],
    /--root wants a directory: ENOTDIR/,
  ],
  ['--transfer nope', [...HTTP, '--transfer', 'nope'], /--transfer wants one of .*got 'nope'/],
  [
    '--mmap bogus',
    [...HTTP, '--mmap', 'bogus,words'],
    "--mmap takes populate, reuse, normal, random, sequential, willneed; got 'bogus'",
  ],
  [
    '--mmap two advices',
    [...HTTP, '--mmap', 'random,sequential'],
    "--mmap takes one madvise advice, got 'random' and 'sequential'",
  ],
  ['--max-queue 0', [...HTTP, '--max-queue', '0'], /--max-queue wants an integer >= 1 .*got '0'/],
  ['--max-in-flight -1', [...HTTP, '--max-in-flight', '-1'], /--max-in-flight wants an integer >= 1 .*got '-1'/],
  ['--max-header 0.5', [...HTTP, '--max-header', '0.5'], "--max-header wants a whole number, got '0.5'"],
  [
    '--idle-timeout 2^40',
    [...HTTP, '--idle-timeout', String(2 ** 40)],
    /--idle-timeout wants an integer >= 1 and <= 2147483647/,
  ],
  ['--bench-agent bad', [...HTTP, '--bench-agent', 'bad'], "--bench-agent wants PORT or HOST:PORT, got 'bad'"],
  ['--bench-agent -1', [...HTTP, '--bench-agent', '-1'], "--bench-agent wants PORT or HOST:PORT, got '-1'"],
  ['--bench-agent without a value', [...HTTP, '--bench-agent'], '--bench-agent needs a value'],
  ['loadgen without --target', ['loadgen'], '--target HOST:PORT is required'],
  ['--target garbage', ['loadgen', '--target', 'garbage'], "--target wants HOST:PORT or [IPv6]:PORT, got 'garbage'"],
  ['--connections 0', [...TARGET, '--connections', '0'], /--connections wants an integer >= 1 .*got '0'/],
  ['--requests 0', [...TARGET, '--requests', '0'], /--requests wants an integer >= 1 .*got '0'/],
  ['--duration 0', [...TARGET, '--duration', '0'], "--duration wants a time from 1ms to 60m, got '0'"],
  ['--duration 0.1ms', [...TARGET, '--duration', '0.1ms'], "--duration wants a time from 1ms to 60m, got '0.1ms'"],
  ['--duration 61m', [...TARGET, '--duration', '61m'], "--duration wants a time from 1ms to 60m, got '61m'"],
  ['--warmup 2^70 s', [...TARGET, '--warmup', '1180591620717411303424'], /--warmup wants a time from 0ms to 60m/],
  ['--stall 0', [...TARGET, '--requests', '5', '--stall', '0'], "--stall wants a time from 1ms to 60m, got '0'"],
  ['--stall without --requests', [...TARGET, '--stall', '1s'], '--stall goes with --requests'],
  ['--threads 1e6', [...TARGET, '--threads', '1000000'], /--threads wants an integer >= 1 and <= 64/],
  ['loadgen --protocol nope', [...TARGET, '--protocol', 'nope'], /--protocol wants one of 'http'.*got 'nope'/],
  [
    '--command nope',
    [...TARGET, '--protocol', 'resp', '--command', 'nope'],
    /--command wants one of 'ping'.*got 'nope'/,
  ],
  ['--command with http', [...TARGET, '--command', 'ping'], '--command goes with --protocol resp'],
  [
    '--keyspace with echo',
    [...TARGET, '--protocol', 'echo', '--keyspace', '5'],
    '--keyspace goes with --protocol resp',
  ],
  ['--path with resp', [...TARGET, '--protocol', 'resp', '--path', '/x'], '--path goes with --protocol http'],
  ['--payload-size with http', [...TARGET, '--payload-size', '9'], '--payload-size goes with --protocol echo'],
  [
    '--reply-size with echo',
    [...TARGET, '--protocol', 'echo', '--reply-size', '9'],
    '--reply-size goes with --protocol raw',
  ],
  [
    'a mix of all 0',
    [...TARGET, '--protocol', 'resp', '--command', 'get:0,set:0'],
    "--command mix: the weights are all 0, got 'get:0,set:0'",
  ],
  [
    'a mix weight past 1e6',
    [...TARGET, '--protocol', 'resp', '--command', 'get:2000000'],
    /--command mix: a weight is a whole number from 0 to 1000000, got 'get:2000000'/,
  ],
  [
    'a mix naming get twice',
    [...TARGET, '--protocol', 'resp', '--command', 'get:1,get:2'],
    "--command mix: 'get' is given more than once",
  ],
  [
    '--file empty',
    [...TARGET, '--protocol', 'raw', '--file', '/dev/null'],
    '--file /dev/null: a request is 1 byte to 16 MiB, the file holds 0',
  ],
  ['--path without a slash', [...TARGET, '--path', 'x'], /--path wants a path that starts with \//],
  [
    "--rate ''",
    [...TARGET, '--rate', ''],
    "--rate wants requests per second, e.g. 1000 or 0.5 (0: closed loop), got ''",
  ],
  ['--rate -5', [...TARGET, '--rate', '-5'], /--rate wants requests per second.*got '-5'/],
  ['loadgen --cpus 99', [...TARGET, '--cpus', '99'], /--cpus wants CPUs this process may use .*got '99'/],
  ['--file a directory', [...TARGET, '--protocol', 'raw', '--file', '/proc'], /--file \/proc: EISDIR/],
  ['bench --only nonexistent', ['bench', '--only', 'nonexistent'], '--only: no scenario named nonexistent; known:'],
  ['bench --only with no names', ['bench', '--only', ','], '--only wants scenario names'],
  ['bench --quick --full', ['bench', '--quick', '--full'], '--quick and --full are one or the other'],
  ['bench --repeat 0', ['bench', '--repeat', '0'], '--repeat wants a whole number from 1 to 100, got 0'],
  ['bench --repeat -1', ['bench', '--repeat', '-1'], '--repeat wants a whole number from 1 to 100, got -1'],
  ['bench --repeat x', ['bench', '--repeat', 'x'], "--repeat wants a whole number, got 'x'"],
  [
    'bench --target garbage',
    ['bench', '--target', 'garbage'],
    "--target wants HOST:PORT or [IPv6]:PORT, got 'garbage'",
  ],
  [
    'bench --server-info without a URL',
    ['bench', '--target', '127.0.0.1:9', '--server-info'],
    '--server-info needs a URL',
  ],
  [
    'bench --server-info not a URL',
    ['bench', '--target', '127.0.0.1:9', '--server-info', 'x'],
    "--server-info wants an http:// URL, got 'x'",
  ],
  [
    'bench --target with a bad loadgen flag',
    ['bench', '--target', '127.0.0.1:9', '--connections', '-1'],
    /--connections wants/,
  ],
];

describe('a wrong command line: one line naming the flag, exit 2, nothing started', () => {
  it.each(usageCases)('%s', async (_what, args, names) => {
    expectUsage(await rawio(args), names);
  });
});

describe('more connections than the open-file limit holds', () => {
  it('loadgen and bench --target say so before connecting, exit 2, rather than measure the ones that fit', async () => {
    for (const cmd of ['loadgen', 'bench'])
      expectUsage(
        await rawio([cmd, '--target', '127.0.0.1:9', '--connections', '1000', '--duration', '1s'], { nofile: 64 }),
        /--connections 1000 needs as many file descriptors; the open-file limit \(ulimit -n 64\) leaves room for \d+/,
      );
  });
});

describe('a command that fails while running: one line, exit 1, nothing left', () => {
  let dir: string;
  let busy: Server;
  let busyPort: number;
  let closedPort: number;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rawio-cli-hostile-'));
    writeFileSync(join(dir, 'throws.mjs'), 'throw new Error("boom at import");\n');
    busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    busyPort = (busy.address() as AddressInfo).port;
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    closedPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => busy.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('a port in use names the address', async () => {
    expectFailure(
      await rawio([...HTTP, '--port', String(busyPort)]),
      /^rawio serve: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/,
    );
  });

  it('a --bench-agent port in use names the flag, and no server is left', async () => {
    expectFailure(
      await rawio([...HTTP, '--bench-agent', String(busyPort)]),
      /^rawio serve: --bench-agent \d+: .*EADDRINUSE/,
    );
  });

  it('a handler that is missing or throws at import names --handler', async () => {
    expectFailure(
      await rawio([...HTTP, '--handler', join(dir, 'missing.mjs')]),
      /^rawio serve: --handler .*missing\.mjs: cannot load it/,
    );
    expectFailure(
      await rawio([...MULTI, '--handler', join(dir, 'throws.mjs')]),
      /^rawio serve: --handler .*throws\.mjs: cannot load it: boom at import/,
    );
  });

  it('loadgen and bench --target against a closed port fail at once, whether by count or by time', async () => {
    const target = `127.0.0.1:${closedPort}`;
    for (const args of [
      ['loadgen', '--target', target, '--requests', '5'],
      ['loadgen', '--target', target, '--duration', '10s'],
      ['bench', '--target', target, '--requests', '5'],
    ]) {
      expectFailure(
        await rawio(args, { deadlineMs: 15_000 }),
        /--target 127\.0\.0\.1:\d+: cannot connect: .*ECONNREFUSED/,
      );
    }
  });

  it('with --json, a command that fails before its run still prints one object: the target and the error', async () => {
    for (const [cmd, args] of [
      ['loadgen', ['--target', `127.0.0.1:${closedPort}`, '--requests', '5']],
      ['bench', ['--target', `127.0.0.1:${closedPort}`]],
      ['loadgen', ['--target=nonexistent.invalid:80']],
    ] as const) {
      const r = await rawio([cmd, ...args, '--json'], { deadlineMs: 15_000 });
      expectFailure(r, /--target \S+: (cannot connect: .*ECONNREFUSED|getaddrinfo)/);
      const o = JSON.parse(r.out) as { target: string; error: string };
      expect(o.error).toBe(r.err.trim());
      expect(o.target).toMatch(/^(127\.0\.0\.1:\d+|nonexistent\.invalid:80)$/);
    }
  });
});

describe('rawio serve and signals: exit 0, workers gone', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)('%s to the master alone ends its worker processes too', async (sig) => {
    let workers: number[] = [];
    const r = await rawio(MULTI, {
      ready: /serving on/,
      during: (pid) => {
        workers = childrenOf(pid);
        process.kill(pid, sig);
      },
    });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/closed after 0 connections/);
    expect(r.err).toBe('');
    expect(workers).toHaveLength(2);
    expect(r.left).toEqual([]);
  });

  it('a signal while the server starts closes it once up, and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rawio-cli-slow-'));
    try {
      // Imported by the command first (it says so on stderr), then by each worker.
      writeFileSync(
        join(dir, 'slow.mjs'),
        'if (process.env.RAWIO_SLOW_SAID !== "1") { process.env.RAWIO_SLOW_SAID = "1"; process.stderr.write("loading\\n"); }\n' +
          'await new Promise((r) => setTimeout(r, 500));\nexport function handle() { return { body: "hi" }; }\n',
      );
      const r = await rawio([...MULTI, '--handler', join(dir, 'slow.mjs')], {
        ready: /loading/,
        during: (pid) => {
          process.kill(pid, 'SIGTERM');
        },
      });
      expect(r.code, r.err).toBe(0);
      // It never says 'serving on' an address it is about to close.
      expect(r.out).toMatch(
        /started on \S+ and closes \(the signal came while it started\)[^]*closed after 0 connections/,
      );
      expect(r.out).not.toMatch(/serving on/);
      expect(r.left).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a master that gives up on crashing workers exits 1 with one line, not a stack trace', async () => {
    const r = await rawio(['serve', '--model', 'multi-process', '--protocol', 'http', '--workers', '1'], {
      ready: /serving on/,
      during: async (pid) => {
        // Kill each worker as it appears until the master stops respawning and exits.
        await eventually(() => {
          for (const w of childrenOf(pid)) {
            try {
              process.kill(w, 'SIGKILL');
            } catch {
              // gone meanwhile
            }
          }
          try {
            process.kill(pid, 0);
            return false;
          } catch {
            return true;
          }
        }, 20_000);
      },
      deadlineMs: 25_000,
    });
    expect(r.code, r.err).toBe(1);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/^rawio serve: multi-process: worker 0 exited on SIGKILL; \d+ crashes/);
    expect(r.err).not.toMatch(STACK);
    expect(r.left).toEqual([]);
  }, 30_000);
});

describe('the API checks behind the flags', () => {
  it("serve() refuses host '' before dns.lookup('') could answer null", () => {
    expect(() => resolveServeOptions({ model: 'single', protocol: 'http', host: '' })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/"host"/) }),
    );
  });

  it("loadgen() says each range with the option's name, and a count starts at 1", async () => {
    for (const [opts, text] of [
      [{ requests: 0 }, /"requests" is out of range. It must be an integer >= 1/],
      [{ durationMs: 10, connections: 0 }, /"connections" is out of range. It must be an integer >= 1 and <= 100000/],
      [{ durationMs: 10, rate: 0.001 }, /"rate" is out of range. It must be 0 \(closed loop\) or >= 0.01/],
      [{ durationMs: 10, path: 'x' }, /"path" is out of range/],
    ] as const) {
      await expect(loadgen({ port: 9, protocol: 'http', ...opts })).rejects.toThrow(
        expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: expect.stringMatching(text) }),
      );
    }
  });
});
