/**
 * loadgen() against servers that answer wrongly on purpose (node:net on loopback, writing
 * bytes by hand): replies that never end, lengths that lie, RESP values of every shape, a
 * server that stalls once, and an IPv6 target. The run must end in its window, count what
 * it could not frame as a bad reply ('EPROTO') instead of as an answer, give percentiles
 * by the nearest rank, and leave no fd or thread behind. Deadlines are stall guards: a run
 * that would not end fails by the test's own timeout; no timing is asserted.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadgen, percentile, type LoadgenOptions, type LoadgenResult } from '../dist/src/loadgen/index.js';
import { leakedSince, openFds } from './helpers/fds.js';
import { eventually } from './helpers/wait.js';
import { sys } from './helpers/rawio.js';
import { titled, why } from './helpers/skips.js';

const threads = () => readdirSync('/proc/self/task').length;
let fdsBefore: Map<number, string>;
let threadsBefore: number;
beforeEach(() => {
  fdsBefore = openFds();
  threadsBefore = threads();
});
afterEach(async () => {
  expect(leakedSince(fdsBefore)).toEqual([]);
  // the run's native threads have ended (a pool thread of Node's may come and go: <=)
  expect(await eventually(() => threads() <= threadsBefore)).toBe(true);
});

interface Hostile {
  port: number;
  /** Requests the server saw. */
  seen: () => number;
  close(): Promise<void>;
}

/**
 * A server that calls `answer(socket, n)` for the n-th request of each connection (an HTTP
 * request ends at its blank line, a RESP command of ours at its last CRLF).
 */
async function hostile(
  protocol: 'http' | 'resp',
  answer: (s: Socket, n: number) => void,
  host = '127.0.0.1',
): Promise<Hostile> {
  const sockets = new Set<Socket>();
  let seen = 0;
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    let buf = '';
    let n = 0;
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        // PING is the command these tests send: *1\r\n$4\r\nPING\r\n
        const end = protocol === 'http' ? buf.indexOf('\r\n\r\n') + 4 : buf.indexOf('PING\r\n') + 6;
        if (end < 6) break;
        buf = buf.slice(end);
        seen++;
        answer(s, n++);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen: () => seen,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Writes `chunk` for as long as the socket takes it, then again at each drain, until it closes. */
function endless(s: Socket, chunk: string): void {
  const b = Buffer.from(chunk);
  const more = () => {
    while (!s.destroyed && s.write(b));
  };
  s.on('drain', more);
  more();
}

async function run(h: Hostile, o: Partial<LoadgenOptions> & Pick<LoadgenOptions, 'protocol'>): Promise<LoadgenResult> {
  try {
    return await loadgen({ port: h.port, ...(o.requests ? {} : { durationMs: 500, drainMs: 200 }), ...o });
  } finally {
    await h.close();
  }
}

/** Every request sent was answered or lost: nothing in flight slips out of the counts. */
function accounted(r: LoadgenResult): void {
  expect(r.sent).toBe(r.received + r.errors.lost);
  expect(r.latencyUs.count).toBe(r.requests);
}

const CHUNKED = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

describe('replies that never end are cut off, not buffered for ever', () => {
  it.each([
    ['a chunk-size line', CHUNKED, 'a'],
    ['a trailer line', `${CHUNKED}0\r\nX-Trailer: `, 'a'],
  ])(
    '%s without its CRLF ends the run in its window as a bad reply',
    async (_name, head, fill) => {
      for (const rate of [0, 200]) {
        const h = await hostile('http', (s) => {
          s.write(head);
          endless(s, fill.repeat(1 << 16));
        });
        const r = await run(h, { protocol: 'http', rate });
        expect(r.received).toBe(0);
        expect(r.errors.badReply).toBeGreaterThan(0);
        expect(r.lastError).toBe('EPROTO');
        accounted(r);
      }
    },
    30_000,
  );

  it('an endless RESP array is a bad reply', async () => {
    for (const rate of [0, 200]) {
      const h = await hostile('resp', (s) => {
        s.write('*2000000000\r\n');
        endless(s, '+a\r\n'.repeat(16_384));
      });
      const r = await run(h, { protocol: 'resp', rate });
      expect(r.received).toBe(0);
      expect(r.errors.badReply).toBeGreaterThan(0);
      expect(r.lastError).toBe('EPROTO');
      accounted(r);
    }
  }, 30_000);
});

/** Peak RSS in MiB since `resetPeak()` (VmHWM; writing 5 to clear_refs resets it). */
function status(field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'latin1'));
  return Number(m![1]) / 1024;
}
function resetPeak(): number {
  writeFileSync('/proc/self/clear_refs', '5');
  return status('VmRSS');
}

describe('large replies and requests cost no memory of their size', () => {
  it('a 256 MiB RESP bulk string is streamed, not buffered', async () => {
    const mib = Buffer.alloc(1 << 20, 'v');
    const h = await hostile('resp', (s) => {
      s.write(`$${256 << 20}\r\n`);
      for (let i = 0; i < 256; i++) s.write(mib); // one buffer, queued 256 times
      s.write('\r\n');
    });
    const before = resetPeak();
    const r = await run(h, { protocol: 'resp', requests: 2 });
    expect(r.received).toBe(2);
    expect(r.errors).toEqual({ connect: 0, reset: 0, badReply: 0, errorReply: 0, lost: 0 });
    expect(r.bytesIn).toBeGreaterThan(512 << 20);
    expect(status('VmHWM') - before).toBeLessThan(128);
  }, 60_000);

  it('a server that never reads holds a pipeline of large requests back, not copied out at once', async () => {
    // 1024 requests of 1 MiB allowed in flight: queued whole they would take 1 GiB.
    const paused = new Set<Socket>();
    const server = createServer((s) => {
      paused.add(s);
      s.pause();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const before = resetPeak();
    const r = await loadgen({
      port: (server.address() as AddressInfo).port,
      protocol: 'echo',
      payloadSize: 1 << 20,
      pipeline: 1024,
      connections: 2,
      durationMs: 500,
      drainMs: 100,
    });
    for (const s of paused) s.destroy();
    await new Promise((resolve) => server.close(resolve));
    expect(r.received).toBe(0);
    accounted(r);
    expect(status('VmHWM') - before).toBeLessThan(256);
  }, 60_000);
});

describe('a pipeline of large requests', () => {
  it.each([600_000, 2_000_000])(
    'of %i bytes is kept full: a server that answers a whole pipeline at once is answered',
    async (size) => {
      // The server echoes nothing until all 4 requests of the pipeline have come.
      const depth = 4;
      const sockets = new Set<Socket>();
      const server = createServer((s) => {
        sockets.add(s);
        s.on('error', () => s.destroy());
        let have = 0;
        s.on('data', (d) => {
          have += d.length;
          if (have < size * depth) return;
          const n = Math.floor(have / size);
          have -= n * size;
          s.write(Buffer.alloc(n * size, 'x'));
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const r = await loadgen({
        port: (server.address() as AddressInfo).port,
        protocol: 'echo',
        payloadSize: size,
        pipeline: depth,
        durationMs: 500,
        drainMs: 500,
      });
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
      expect(r.received).toBeGreaterThanOrEqual(depth);
      accounted(r);
    },
    30_000,
  );
});

describe('servers that fail part-way: every request accounted for, the run ends', () => {
  const cases: [string, (s: Socket, n: number) => void][] = [
    ['resets the connection (SO_LINGER 0) at its 4th request', (s, n) => (n === 3 ? s.resetAndDestroy() : s.write(OK))],
    [
      'closes in the middle of its 4th reply',
      (s, n) => {
        if (n !== 3) return void s.write(OK);
        s.write(OK.slice(0, 20));
        s.end();
      },
    ],
    ['answers every other request', (s, n) => n % 2 === 0 && s.write(OK)],
    ['answers the first request only', (s, n) => n === 0 && s.write(OK)],
    ['never answers', () => {}],
    ['sends a reply before any request, then one per request', (s, n) => s.write(n === 0 ? OK + OK : OK)],
  ];
  it.each(cases)(
    '%s',
    async (_name, answer) => {
      for (const o of [
        { durationMs: 300, drainMs: 200 },
        { durationMs: 300, drainMs: 200, rate: 500 },
        { requests: 200, stallMs: 500, drainMs: 200 },
        { requests: 200, stallMs: 500, drainMs: 200, rate: 2000, pipeline: 4 },
      ]) {
        const h = await hostile('http', answer);
        const r = await run(h, { protocol: 'http', connections: 3, ...o });
        accounted(r);
        expect(r.received).toBeLessThanOrEqual(h.seen() + 3); // a reply ahead of its request on each connection at most
        expect(r.requests).toBeLessThanOrEqual(r.received);
        if (r.received < r.sent) expect(r.errors.lost + r.errors.reset + r.errors.badReply).toBeGreaterThan(0);
      }
    },
    60_000,
  );

  it('a run stopped mid-flight ends stopped and leaves nothing open', async () => {
    for (const o of [{ durationMs: 60_000 }, { requests: 1_000_000 }, { durationMs: 60_000, rate: 1000 }]) {
      const h = await hostile('http', (s, n) => n % 3 !== 2 && s.write(OK));
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 300);
      const r = await run(h, { protocol: 'http', connections: 20, threads: 2, drainMs: 200, signal: ac.signal, ...o });
      expect(r.ended).toBe('stopped');
      expect(r.seconds).toBeLessThan(30);
      accounted(r);
    }
  }, 60_000);
});

describe('HTTP replies', () => {
  it.each([
    ['chunk extensions', `${CHUNKED}2;name=value\r\nok\r\n0 ; last\r\n\r\n`],
    ['a trailer', `${CHUNKED}2\r\nok\r\n0\r\nX-Sum: 1\r\n\r\n`],
    ['a 204 without a body', 'HTTP/1.1 204 No Content\r\n\r\n'],
    ['a 1xx storm before the reply', `${'HTTP/1.1 100 Continue\r\n\r\n'.repeat(200)}${OK}`],
    ['HTTP/1.0 with keep-alive', 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok'],
  ])('%s: one answer', async (_name, reply) => {
    const h = await hostile('http', (s) => s.write(reply));
    const r = await run(h, { protocol: 'http', requests: 50, pipeline: 4 });
    expect(r.received).toBe(50);
    expect(h.seen()).toBe(50);
    expect(r.errors).toEqual({ connect: 0, reset: 0, badReply: 0, errorReply: 0, lost: 0 });
  });

  it.each([
    ['chunk data longer than its size', `${CHUNKED}5\r\nhello!!3\r\nabc\r\n0\r\n\r\n`],
    ['junk after a chunk size', `${CHUNKED}2x\r\nok\r\n0\r\n\r\n`],
    ['a body longer than its Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nok'],
    ['a reply then garbage', `${OK}%garbage\r\n\r\n`],
    ['a reply sent twice', OK + OK],
    ['a reply then part of another', OK + OK.slice(0, 10)],
  ])(
    '%s is a bad reply, not an answer',
    async (_name, reply) => {
      for (const rate of [0, 200]) {
        const h = await hostile('http', (s) => s.write(reply));
        const r = await run(h, { protocol: 'http', rate });
        expect(r.errors.badReply).toBeGreaterThan(0);
        expect(r.lastError).toBe('EPROTO');
        // one write, one read: the bytes that break the reply come with it
        expect(r.received).toBe(0);
        expect(r.requests).toBe(0);
        accounted(r);
      }
    },
    30_000,
  );
});

describe('RESP replies', () => {
  it.each([
    ['a nested array', '*2\r\n*2\r\n:1\r\n$-1\r\n+OK\r\n'],
    ['a null bulk string', '$-1\r\n'],
    ['a null array', '*-1\r\n'],
    ['an empty array', '*0\r\n'],
    ['a negative integer', ':-42\r\n'],
    ['a bulk string holding CRLF', '$4\r\n\r\n\r\n\r\n'],
  ])('%s is one answer', async (_name, reply) => {
    const h = await hostile('resp', (s) => s.write(reply));
    const r = await run(h, { protocol: 'resp', requests: 50, pipeline: 4 });
    expect(r.received).toBe(50);
    expect(h.seen()).toBe(50);
    expect(r.errors).toEqual({ connect: 0, reset: 0, badReply: 0, errorReply: 0, lost: 0 });
  });

  it('an error reply is an answer, counted as an error reply', async () => {
    const h = await hostile('resp', (s) => s.write('-ERR no\r\n'));
    const r = await run(h, { protocol: 'resp', requests: 20 });
    expect(r.received).toBe(20);
    expect(r.errors.errorReply).toBe(20);
  });

  it.each([
    ['a bulk string shorter than its length says', '$2\r\nabc\r\n'],
    ['an integer with junk', ':12abc\r\n'],
    ['an empty integer', ':\r\n'],
    ['a bulk string with a negative length', '$-2\r\n'],
    ['an unknown type', '!oops\r\n'],
    ['a reply sent twice', '+PONG\r\n+PONG\r\n'],
    ['a reply then part of another', '+PONG\r\n+PO'],
  ])(
    '%s is no answer: a bad reply',
    async (_name, reply) => {
      for (const rate of [0, 200]) {
        const h = await hostile('resp', (s) => s.write(reply));
        const r = await run(h, { protocol: 'resp', rate });
        expect(r.received).toBe(0);
        expect(r.requests).toBe(0);
        expect(r.errors.badReply).toBeGreaterThan(0);
        expect(r.lastError).toBe('EPROTO');
        accounted(r);
      }
    },
    30_000,
  );
});

describe('the figures', () => {
  it('percentiles are the nearest rank, the same in latencyUs and from the histogram', async () => {
    // 16 requests, one at a time: the last two answered after 1 s, the others at once. The
    // nearest rank of p90 is ceil(0.9 * 16) = 15: a slow one.
    const h = await hostile('http', (s, n) => {
      const ok = () => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      if (n >= 14) setTimeout(ok, 1000);
      else ok();
    });
    const r = await run(h, { protocol: 'http', requests: 16 });
    expect(r.received).toBe(16);
    expect(r.latencyUs.count).toBe(16);
    // the 1 s wait less the little Node's cached loop clock may take off the server's timer
    expect(r.latencyUs.p90).toBeGreaterThanOrEqual(900_000);
    for (const [name, q] of [
      ['p50', 0.5],
      ['p90', 0.9],
      ['p99', 0.99],
      ['p999', 0.999],
    ] as const)
      expect(r.latencyUs[name]).toBe(percentile(r.histogram, q));
  }, 30_000);

  it('at a fixed rate a server that stalls once shows in p99 (no coordinated omission)', async () => {
    // 1000 requests a second on one connection; request 300 is answered after 200 ms. The
    // requests meant to go in the stall's first 100 ms (about 100 of at most ~2000) are
    // answered after it, so at least ~5% of the latencies are >= 100 ms, whenever the
    // schedule ran.
    const h = await hostile('http', (s, n) => {
      const ok = () => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      if (n === 300) setTimeout(ok, 200);
      else ok();
    });
    const r = await run(h, { protocol: 'http', rate: 1000, durationMs: 2000, drainMs: 1000 });
    expect(r.received).toBe(h.seen());
    accounted(r);
    expect(r.latencyUs.p99).toBeGreaterThanOrEqual(100_000);
    // The stalled request itself waits the 200 ms, less what the server's timer takes off:
    // Node measures a timeout from its loop's cached clock, which can lag the read by a
    // little (it measured 199.5 ms once). Half the stall still tells it from no stall.
    expect(r.latencyUs.max).toBeGreaterThanOrEqual(100_000);
  }, 30_000);
});

describe('the end of the window at a fixed rate', () => {
  it('a stall that runs past the window is latency: the requests due in it are sent and measured', async () => {
    // 1000 requests a second for 1 s on one connection; request 850 is answered after
    // 200 ms, past the window's end. The ~150 requests due after it were held back by the
    // stall: they go in the drain, and each latency runs from its due time, so at least
    // ~10% of the window's requests wait >= 100 ms.
    const h = await hostile('http', (s, n) => {
      const ok = () => s.write(OK);
      if (n === 850) setTimeout(ok, 200);
      else ok();
    });
    const r = await run(h, { protocol: 'http', rate: 1000, durationMs: 1000, drainMs: 2000 });
    expect(r.received).toBe(h.seen());
    accounted(r);
    expect(r.errors.lost).toBe(0);
    expect(r.requests).toBeGreaterThan(850);
    expect(r.latencyUs.max).toBeGreaterThanOrEqual(100_000); // half the stall: see the case above
    expect(r.latencyUs.p99).toBeGreaterThanOrEqual(100_000);
  }, 30_000);
});

describe('targets', () => {
  it('connects a full backlog never answers are connect errors, ETIMEDOUT, not "no errors"', async () => {
    // A listener that never accepts, its queue of one taken by the first connect: the
    // others' SYNs go unanswered.
    const lfd = sys.listenTcp('127.0.0.1', 0, { backlog: 0 });
    try {
      const port = sys.localPort(lfd);
      for (const o of [{ durationMs: 300 }, { durationMs: 300, rate: 100 }, { requests: 4, stallMs: 500 }]) {
        const r = await loadgen({ port, protocol: 'http', connections: 4, drainMs: 300, ...o });
        expect(r.received).toBe(0);
        expect(r.connects + r.errors.connect).toBeGreaterThanOrEqual(4);
        expect(r.errors.connect).toBeGreaterThanOrEqual(3);
        expect(r.lastError).toBe('ETIMEDOUT');
        accounted(r);
      }
    } finally {
      sys.close(lfd);
    }
  }, 30_000);

  it.skipIf(why.ipv6)(
    titled('an IPv6 address with a zone (a link-local target needs one) is taken, by name or index', why.ipv6),
    async () => {
      const server = createHttpServer((_req, res) => res.end('ok'));
      await new Promise<void>((resolve) => server.listen(0, '::1', resolve));
      const { port } = server.address() as AddressInfo;
      try {
        for (const host of ['::1%lo', '::1%1']) {
          const r = await loadgen({ host, port, protocol: 'http', requests: 3 });
          expect(r.received).toBe(3);
        }
        for (const host of ['::1%nosuchif0', '::1%', '127.0.0.1%lo'])
          await expect(loadgen({ host, port, protocol: 'http', requests: 1 })).rejects.toMatchObject({
            name: 'RangeError',
            code: 'ERR_OUT_OF_RANGE',
          });
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    },
  );

  it.skipIf(why.ipv6)(titled('an IPv6 target gets a Host of [address]:port', why.ipv6), async () => {
    const hosts: string[] = [];
    const server = createHttpServer((req, res) => {
      hosts.push(String(req.headers.host));
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '::1', resolve));
    const { port } = server.address() as AddressInfo;
    const r = await loadgen({ host: '::1', port, protocol: 'http', requests: 5 });
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    expect(r.received).toBe(5);
    expect(new Set(hosts)).toEqual(new Set([`[::1]:${port}`]));
  });
});
