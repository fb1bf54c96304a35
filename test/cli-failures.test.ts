/**
 * The `rawio` command against servers that fail it, as real processes: `rawio loadgen` (and
 * `rawio bench --target`) aimed at a server that accepts and never answers, closes or resets
 * every connection, answers garbage, or goes away in the middle of a run must end by itself
 * (a run by count too, whose window is otherwise an hour) and exit 1 with one line saying
 * what happened when nothing, or by count fewer than asked, was answered; and `rawio serve`
 * under SIGHUP, a second signal while it closes, and a signal to its whole process group.
 * Deadlines here are stall guards: a command that would hang is killed and the test fails.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { badServer, dyingServer } from './helpers/bad-servers.js';
import { expectFailure, rawio, STACK, type Run } from './helpers/cli-run.js';
import { childrenOf } from './helpers/procs.js';
import { eventually } from './helpers/wait.js';

const target = (port: number) => ['--target', `127.0.0.1:${port}`];

interface JsonResult {
  received: number;
  sent: number;
  requests: number;
  ended: string;
  lastError: string | null;
  connectionsAnswered: number;
  errors: { connect: number; reset: number; badReply: number; lost: number };
}

describe('rawio loadgen against a server that answers nothing', () => {
  it('a silent server, by time: exit 1, no request answered', async () => {
    const s = await badServer('silent');
    try {
      const r = await rawio(['loadgen', ...target(s.port), '--duration', '1s', '--connections', '3']);
      expectFailure(r, /^rawio loadgen: the server answered no request in the [\d.]+ s window/);
      expect(r.out).toMatch(/sent 3, received 0/);
    } finally {
      await s.close();
    }
  });

  it('a silent server with --json: one object on stdout, its failure said, exit 1', async () => {
    const s = await badServer('silent');
    try {
      for (const cmd of ['loadgen', 'bench']) {
        const r = await rawio([cmd, ...target(s.port), '--duration', '300ms', '--connections', '2', '--json']);
        expectFailure(r, new RegExp(`^rawio ${cmd}: the server answered no request in the [\\d.]+ s window`));
        const o = JSON.parse(r.out) as JsonResult & { failure: string | null };
        expect(o.received).toBe(0);
        expect(o.failure).toMatch(/^the server answered no request/);
      }
    } finally {
      await s.close();
    }
  });

  it('a silent server, by count: ends once no reply came for --stall, exit 1', async () => {
    const s = await badServer('silent');
    try {
      const r = await rawio(['loadgen', ...target(s.port), '--requests', '3', '--connections', '3', '--stall', '1s']);
      expectFailure(r, /^rawio loadgen: no reply for 1 s: the server answered 0 of 3 requests/);
    } finally {
      await s.close();
    }
  });

  it('a silent server, by count with the default stall: ends by itself, not after the hour-long window', async () => {
    const s = await badServer('silent');
    try {
      const r = await rawio(['loadgen', ...target(s.port), '--requests', '3', '--connections', '1'], {
        deadlineMs: 25_000,
      });
      expectFailure(r, /^rawio loadgen: no reply for 10 s: the server answered 0 of 3 requests/);
    } finally {
      await s.close();
    }
  }, 30_000);

  it.each([
    // closed at accept: the request finds it closed (EOF) or, sent after the close, is reset
    ['close', /\((EOF|ECONNRESET)\)/],
    ['reset', /\((ECONNRESET|EOF)\)/],
    ['garbage', /replies that are not http/],
  ] as const)('a server that answers each connection with %s: exit 1, by count and by time', async (kind, why) => {
    const s = await badServer(kind);
    // A reset at accept can reach the command's first connection, made before the run to
    // check the target: that fails as a target that refuses connections does.
    const refused = /^rawio loadgen: --target 127\.0\.0\.1:\d+: cannot connect: .*ECONNRESET/;
    const failed = (r: Run, text: RegExp) => {
      expectFailure(r, kind === 'reset' && refused.test(r.err) ? refused : text);
      if (!refused.test(r.err)) expect(r.err).toMatch(why);
    };
    try {
      // a count larger than the connections can use up before they give up
      failed(
        await rawio(['loadgen', ...target(s.port), '--requests', '100000', '--connections', '2']),
        /^rawio loadgen: the server answered 0 of 100000 requests: every connection failed 8 times in a row/,
      );
      failed(
        await rawio(['loadgen', ...target(s.port), '--duration', '1s', '--connections', '2']),
        /^rawio loadgen: the server answered no request in the [\d.]+ s window/,
      );
      // a count smaller than that: every request sent, none answered
      failed(
        await rawio(['loadgen', ...target(s.port), '--requests', '3', '--connections', '1']),
        /^rawio loadgen: the server answered 0 of 3 requests/,
      );
    } finally {
      await s.close();
    }
  });

  it('a server that answers some connections only: measured, exit 0, the unanswered ones said', async () => {
    for (const json of [false, true]) {
      // a new server each time: it answers the first two connections it sees, ever
      const s = await badServer('first-2');
      try {
        const args = ['loadgen', ...target(s.port), '--duration', '500ms', '--connections', '4'];
        const r = await rawio(json ? [...args, '--json'] : args);
        expect(r.code, r.err).toBe(0);
        if (!json) expect(r.out).toMatch(/answered on 2 of 4 connections/);
        else {
          const res = JSON.parse(r.out) as JsonResult;
          expect(res.connectionsAnswered).toBe(2);
          expect(res.errors.lost).toBeGreaterThan(0);
        }
      } finally {
        await s.close();
      }
    }
  });
});

describe('rawio loadgen against a server that goes away mid-run', () => {
  it('by count: ends promptly, exit 1, saying the server went away, the result still printed', async () => {
    const s = await dyingServer(50);
    try {
      const r = await rawio(['loadgen', ...target(s.port), '--requests', '1000000', '--connections', '4', '--json'], {
        deadlineMs: 25_000,
      });
      expectFailure(r, /^rawio loadgen: the server went away after answering \d+ of 1000000 requests: .*ECONNREFUSED/);
      const res = JSON.parse(r.out) as JsonResult;
      expect(res.ended).toBe('unreachable');
      expect(res.received).toBeGreaterThan(0);
      expect(res.received).toBeLessThanOrEqual(50);
      expect(res.lastError).toBe('ECONNREFUSED');
      expect(res.errors.connect).toBeGreaterThan(0);
    } finally {
      await s.close();
    }
  }, 30_000);

  it('by time: runs its window with the errors counted, exit 0 as requests were answered', async () => {
    const s = await dyingServer(50);
    try {
      const r = await rawio(['loadgen', ...target(s.port), '--duration', '1500ms', '--connections', '2', '--json']);
      expect(r.code, r.err).toBe(0);
      const res = JSON.parse(r.out) as JsonResult;
      expect(res.ended).toBe('done');
      expect(res.received).toBeGreaterThan(0);
      expect(res.errors.connect).toBeGreaterThan(0);
      expect(res.lastError).toBe('ECONNREFUSED');
    } finally {
      await s.close();
    }
  });

  it('by time, gone at the first request: exit 1', async () => {
    const s = await dyingServer(0);
    try {
      expectFailure(
        await rawio(['loadgen', ...target(s.port), '--duration', '1s']),
        /^rawio loadgen: the server answered no request in the [\d.]+ s window.*ECONNREFUSED/,
      );
    } finally {
      await s.close();
    }
  });

  it('rawio bench --target by count: exit 1, the server went away', async () => {
    const s = await dyingServer(20);
    try {
      expectFailure(
        await rawio(['bench', ...target(s.port), '--requests', '1000000', '--connections', '2'], {
          deadlineMs: 25_000,
        }),
        /^rawio bench: the server went away after answering \d+ of 1000000 requests/,
      );
    } finally {
      await s.close();
    }
  }, 30_000);
});

describe('rawio serve and SIGHUP, a second signal, a signal to the group', () => {
  const SINGLE = ['serve', '--model', 'single', '--protocol', 'http'];
  const MULTI = ['serve', '--model', 'multi-process', '--protocol', 'http', '--workers', '2'];
  let dir: string;
  let marker: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rawio-cli-failures-'));
    marker = join(dir, 'started');
    // Handlers whose request does not end for minutes, so that a graceful close cannot finish:
    // one waits on a timer (single), one blocks its worker process outright (multi-process).
    // Each leaves a file behind once it has the request.
    const mark = `writeFileSync(${JSON.stringify(marker)}, '');`;
    writeFileSync(
      join(dir, 'waits.mjs'),
      `import { writeFileSync } from 'node:fs';\nexport async function handle() { ${mark} await new Promise((r) => setTimeout(r, 120000)); return { body: 'late' }; }\n`,
    );
    writeFileSync(
      join(dir, 'blocks.mjs'),
      `import { writeFileSync } from 'node:fs';\nexport function handle() { ${mark} ` +
        'Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120000); return { body: "late" }; }\n',
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['single', SINGLE],
    ['multi-reactor', ['serve', '--model', 'multi-reactor', '--protocol', 'http', '--workers', '2']],
    ['multi-process', MULTI],
  ])('SIGHUP closes %s as SIGTERM does: exit 0, workers gone', async (_model, args) => {
    let workers: number[] = [];
    const r = await rawio(args, {
      ready: /serving on/,
      during: (pid) => {
        workers = childrenOf(pid);
        process.kill(pid, 'SIGHUP');
      },
    });
    expect(r.signal).toBeNull();
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/closed after 0 connections/);
    expect(r.err).toBe('');
    if (args === MULTI) expect(workers).toHaveLength(2);
    expect(r.left).toEqual([]);
  });

  it('SIGHUP after the terminal went away (stdout closed): exit 0, no stack trace', async () => {
    const r = await rawio(MULTI, {
      ready: /serving on/,
      onStart: (child) => child.stdout.once('data', () => setImmediate(() => child.stdout.destroy())),
      during: async (pid) => {
        await new Promise((resolve) => setTimeout(resolve, 200));
        process.kill(pid, 'SIGHUP');
      },
    });
    expect(r.signal).toBeNull();
    expect(r.code, r.err).toBe(0);
    expect(r.err).not.toMatch(STACK);
    expect(r.left).toEqual([]);
  });

  it('SIGINT to the whole process group (Ctrl-C): the master closes its workers, exit 0', async () => {
    const r = await rawio(MULTI, {
      ready: /serving on/,
      during: (pid) => {
        process.kill(-pid, 'SIGINT');
      },
    });
    expect(r.signal).toBeNull();
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/closed after 0 connections/);
    expect(r.err).toBe('');
    expect(r.left).toEqual([]);
  });

  it.each([
    ['single', 'SIGTERM', 143, [...SINGLE, '--handler', 'waits.mjs']],
    ['single', 'SIGINT', 130, [...SINGLE, '--handler', 'waits.mjs']],
    ['multi-process', 'SIGTERM', 143, [...MULTI, '--handler', 'blocks.mjs']],
    ['multi-process', 'SIGHUP', 129, [...MULTI, '--handler', 'blocks.mjs']],
  ] as const)(
    'a second signal while %s closes ends it at once: %s twice exits %i, nothing left',
    async (_model, sig, code, args) => {
      rmSync(marker, { force: true });
      const argv = args.map((a) => (a.endsWith('.mjs') ? join(dir, a) : a));
      let client: Socket | undefined;
      const r = await rawio(argv, {
        ready: /serving on 127\.0\.0\.1:\d+/,
        during: async (pid, output) => {
          // One request the handler never finishes, then the first signal: the close waits on it.
          const port = Number(/serving on 127\.0\.0\.1:(\d+)/.exec(output())![1]);
          client = connect(port, '127.0.0.1', () => client!.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
          client.on('error', () => undefined);
          await eventually(() => existsSync(marker));
          process.kill(pid, sig);
          await eventually(() => /closing/.test(output()));
          try {
            process.kill(pid, sig);
          } catch {
            // it closed after all: the exit status says so
          }
        },
        deadlineMs: 25_000,
      });
      client?.destroy();
      expect(r.signal).toBeNull();
      expect(r.code, r.err).toBe(code);
      expect(r.out).toMatch(new RegExp(`${sig}: closing`));
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(new RegExp(`^rawio serve: ${sig} again while closing: stopped at once`));
      expect(r.left).toEqual([]);
    },
    30_000,
  );
});
