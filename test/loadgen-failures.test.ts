/**
 * loadgen() against servers that fail it: the run ends by itself (a run by count too, whose
 * window is otherwise the engine's hour) and its result says how it ended (`ended`), which
 * connections were ever answered (`connectionsAnswered`) and the last failure
 * (`lastError`), so that a caller can tell a measurement from a server that went away.
 * Deadlines are stall guards: on a run that would not end the test fails by its own timeout.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadgen } from '../dist/src/loadgen/index.js';
import { runSession } from '../dist/bench/main.js';
import { loadgen as benchLoadgen } from '../dist/bench/loadgen.js';
import { badServer, dyingServer } from './helpers/bad-servers.js';
import { leakedSince, openFds } from './helpers/fds.js';
import { eventually } from './helpers/wait.js';

let fdsBefore: Map<number, string>;
beforeEach(() => {
  fdsBefore = openFds();
});
afterEach(() => {
  expect(leakedSince(fdsBefore)).toEqual([]);
});

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

describe('a run by count ends when the server cannot answer', () => {
  it('a closed port: ended unreachable, ECONNREFUSED, nothing answered', async () => {
    const r = await loadgen({ port: await closedPort(), protocol: 'http', connections: 3, requests: 100 });
    expect(r.ended).toBe('unreachable');
    expect(r.lastError).toBe('ECONNREFUSED');
    expect(r.received).toBe(0);
    expect(r.connectionsAnswered).toBe(0);
    expect(r.errors.connect).toBeGreaterThanOrEqual(3 * 8);
  }, 30_000);

  it('a server that goes away mid-run: ended unreachable after what it answered', async () => {
    const s = await dyingServer(40);
    const r = await loadgen({ port: s.port, protocol: 'http', connections: 4, threads: 2, requests: 1_000_000 });
    await s.close();
    expect(r.ended).toBe('unreachable');
    expect(r.received).toBe(s.answered());
    expect(r.received).toBeGreaterThan(0);
    expect(r.sent).toBeLessThan(1_000_000);
    expect(r.lastError).toBe('ECONNREFUSED');
    expect(r.connectionsAnswered).toBeGreaterThan(0);
  }, 30_000);

  it.each([
    // closed at accept: the request finds it closed (EOF) or, sent after the close, is reset
    ['close', /^(EOF|ECONNRESET)$/],
    ['garbage', /^EPROTO$/],
  ] as const)(
    'a server that answers each connection with %s: ended unreachable, lastError %s',
    async (kind, code) => {
      const s = await badServer(kind);
      const r = await loadgen({ port: s.port, protocol: 'resp', connections: 2, requests: 1_000_000 });
      await s.close();
      expect(r.ended).toBe('unreachable');
      expect(r.lastError).toMatch(code);
      expect(r.received).toBe(0);
      if (kind === 'garbage') expect(r.errors.badReply).toBeGreaterThan(0);
    },
    30_000,
  );

  it('a silent server: ended stalled after stallMs without a reply, the requests lost', async () => {
    const s = await badServer('silent');
    const r = await loadgen({ port: s.port, protocol: 'http', connections: 2, requests: 10, stallMs: 300 });
    await s.close();
    expect(r.ended).toBe('stalled');
    expect(r.received).toBe(0);
    expect(r.errors.lost).toBe(r.sent);
    expect(r.sent).toBe(2);
  }, 30_000);

  it('a slow server is waited for past drainMs: a count waits for its replies, bounded by stallMs', async () => {
    const server = createHttpServer((_req, res) => setTimeout(() => res.end('late'), 1500));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const r = await loadgen({ port, protocol: 'http', connections: 2, requests: 2, drainMs: 100 });
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    expect(r.ended).toBe('done');
    expect(r.received).toBe(2);
    expect(r.errors.lost).toBe(0);
  }, 30_000);

  it('stallMs is checked like the other options', async () => {
    await expect(loadgen({ port: 9, protocol: 'http', requests: 1, stallMs: 0 })).rejects.toThrow(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: expect.stringMatching(/"stallMs"/) }),
    );
    await expect(loadgen({ port: 9, protocol: 'http', requests: 1, stallMs: '1' as never })).rejects.toThrow(TypeError);
  });
});

describe('a run by time against a failing server', () => {
  it('runs its window against a closed port, and backs off between refused connects', async () => {
    const r = await loadgen({ port: await closedPort(), protocol: 'http', connections: 1, durationMs: 1000 });
    expect(r.ended).toBe('done');
    expect(r.requests).toBe(0);
    expect(r.lastError).toBe('ECONNREFUSED');
    expect(r.errors.connect).toBeGreaterThan(1);
    // 10 ms doubling to 500 ms between refusals: a handful in a second, not one every 10 ms
    expect(r.errors.connect).toBeLessThan(20);
  });

  it('says which connections the server answered', async () => {
    const s = await badServer('first-2');
    const r = await loadgen({ port: s.port, protocol: 'http', connections: 5, durationMs: 500, drainMs: 100 });
    await s.close();
    expect(r.ended).toBe('done');
    expect(r.connectionsAnswered).toBe(2);
    expect(r.received).toBe(s.answered());
    expect(r.lastError).toBeNull();
    expect(r.errors.lost).toBe(3);
  });

  it('a run stopped by its signal says so', async () => {
    const s = await badServer('silent');
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const r = await loadgen({ port: s.port, protocol: 'http', requests: 5, signal: ac.signal, drainMs: 0 });
    await s.close();
    expect(r.ended).toBe('stopped');
  });
});

describe("the bench's load generator off its CPU", () => {
  it('rejects a run it could not pin where the report says the client ran', async () => {
    const server = createHttpServer((_q, res) => res.end('hi'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const base = { port, protocol: 'http' as const, connections: 1, durationMs: 100, drainMs: 100 };
      // CPU 1023 is in no machine's allowed set here: sched_setaffinity fails, the engine runs on
      await expect(benchLoadgen({ ...base, cpus: [1023] })).rejects.toThrow(/could not pin .* CPU 1023 .*errno 22/);
      const unpinned = await loadgen({ ...base, cpus: [1023] }); // the library reports it, as before
      expect(unpinned.affinityErrno).toBe(-22);
    } finally {
      server.close();
    }
  });
});

describe('a stop while a count waits for its last replies', () => {
  it('ends after drainMs, though stallMs would wait a minute', async () => {
    // Silent, counting the requests it read: every one of the count is sent and waits.
    let seen = 0;
    const socks = new Set<Socket>();
    const server = createServer((sock) => {
      socks.add(sock);
      sock.on('data', (d) => (seen += d.toString('latin1').split('GET ').length - 1));
      sock.on('error', () => sock.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const ac = new AbortController();
    const run = loadgen({
      port,
      protocol: 'http',
      connections: 5,
      requests: 5,
      stallMs: 60_000,
      drainMs: 0,
      signal: ac.signal,
    });
    // Every request read by the server before the stop: were it sooner, fewer would be sent.
    expect(await eventually(() => seen === 5)).toBe(true);
    ac.abort();
    const r = await run;
    for (const sock of socks) sock.destroy();
    await new Promise((resolve) => server.close(resolve));
    expect(r.ended).toBe('stopped');
    expect(r.sent).toBe(5);
    expect(r.errors.lost).toBe(5);
  });
});

describe('the bench when a server dies mid-scenario', () => {
  it("fails that scenario with the load generator's reason and runs the next", async () => {
    const s = await dyingServer(30);
    const runs: number[] = [];
    const records = await runSession(
      [
        {
          name: 'dies',
          title: 'A server that dies',
          description: 'answers 30 requests, then goes away',
          estimate: { quick: 1, full: 1 },
          run: async () => {
            for (let i = 0; i < 3; i++)
              runs.push((await benchLoadgen({ port: s.port, protocol: 'http', durationMs: 300 })).received);
            return { tables: [] };
          },
        },
        {
          name: 'after',
          title: 'The next scenario',
          description: 'runs regardless',
          estimate: { quick: 1, full: 1 },
          run: async () => ({ tables: [] }),
        },
      ],
      { profile: 'quick', out: 'unused', json: false },
      { serverCpus: [0], clientCpus: [0], separate: false },
      '',
    );
    await s.close();
    expect(runs[0]).toBeGreaterThan(0);
    expect(records.map((r) => r.status)).toEqual(['failed', 'ok']);
    expect(records[0]!.error).toMatch(/^loadgen → 127\.0\.0\.1:\d+: the server answered nothing.*ECONNREFUSED/);
  }, 30_000);
});

describe("the bench's load generator on a server that answers nothing", () => {
  it('rejects a measured run, and takes a warm-up run as it came: nothing of it is published', async () => {
    for (const kind of ['silent', 'close', 'reset'] as const) {
      const s = await badServer(kind);
      try {
        const opts = { port: s.port, protocol: 'http' as const, connections: 4, durationMs: 200, warmupMs: 50 };
        await expect(benchLoadgen(opts), kind).rejects.toThrow(/the server answered nothing/);
        await expect(benchLoadgen(opts, { warmup: false }), kind).rejects.toThrow(/the server answered nothing/);
        const warm = await benchLoadgen(opts, { warmup: true });
        expect(warm.received, kind).toBe(0);
        expect(warm.bytesIn, kind).toBe(0);
      } finally {
        await s.close();
      }
    }
  }, 30_000);
});
