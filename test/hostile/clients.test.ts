/**
 * Hostile clients against a running reactor server: a slowloris trickling a header, a
 * keep-alive client gone quiet (both closed by the idle timeout), a client that stops
 * reading (dropped past maxQueue), one that resets mid-reply and one that half-closes —
 * while each misbehaves, a well-behaved client is served on time. Also the pipelining bound
 * of Session: a client that pipelines without end is read no further than MAX_DEPTH.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { serve, type Server } from '../helpers/rawio.js';
import { echoExchange, exchange, httpGets } from '../helpers/clients.js';
import { leakedSince, openFds } from '../helpers/fds.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => resolve(c));
    c.on('error', reject);
  });
}

/** Resolves with the ms until the server closed `c` (end or reset). */
function closedAfter(c: net.Socket): Promise<number> {
  const t0 = performance.now();
  c.resume(); // 'end' comes only once what was sent has been read
  return new Promise((resolve) => {
    const done = () => resolve(performance.now() - t0);
    c.on('end', done);
    c.on('close', done);
    c.on('error', done);
  });
}

/** A healthy client's round trip must stay quick while the hostile one misbehaves. */
async function healthy(port: number, protocol = 'http'): Promise<void> {
  if (protocol === 'echo') {
    expect((await exchange(port, echoExchange(Buffer.from('ping')), 3000)).toString()).toBe('ping');
    return;
  }
  const got = await exchange(port, httpGets(3), 3000);
  expect(got.toString().split('HTTP/1.1 200 OK').length - 1).toBe(3);
}

describe.each(['single', 'multi-reactor', 'worker-pool'] as const)('hostile clients on %s', (model) => {
  let server: Server | undefined;
  let before: Map<number, string>;
  const start = async (protocol: 'http' | 'echo', extra: { maxQueue?: number } = {}) => {
    before = openFds();
    server = await serve({ model, protocol, workers: 2, idleTimeout: 400, ...extra });
    return server.port;
  };
  afterEach(async () => {
    await server?.close();
    server = undefined;
    await sleep(20);
    expect(leakedSince(before)).toEqual([]);
  });

  it('closes a slowloris client trickling a header, serving others meanwhile', async () => {
    const port = await start('http');
    const slow = await connect(port);
    const closed = closedAfter(slow);
    const head = 'GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ' + 'a'.repeat(60);
    let i = 0;
    const trickle = setInterval(() => {
      if (!slow.destroyed) slow.write(head[i++ % head.length]!);
    }, 50);
    try {
      await healthy(port);
      const ms = await Promise.race([closed, sleep(3000).then(() => -1)]);
      expect(ms).toBeGreaterThanOrEqual(350);
      expect(ms).toBeLessThan(3000);
      await healthy(port);
    } finally {
      clearInterval(trickle);
      slow.destroy();
    }
  });

  it('closes a keep-alive client that went quiet after its requests', async () => {
    const port = await start('http');
    const c = await connect(port);
    const closed = closedAfter(c);
    c.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const ms = await Promise.race([closed, sleep(3000).then(() => -1)]);
    expect(ms).toBeGreaterThanOrEqual(350);
    c.destroy();
  });

  it('drops a client that stops reading once its queue passes maxQueue', async () => {
    const port = await start('echo', { maxQueue: 256 << 10 });
    const c = await connect(port);
    c.pause(); // never reads
    const closed = closedAfter(c);
    const chunk = Buffer.alloc(64 << 10, 7);
    let stop = false;
    void (async () => {
      for (let i = 0; i < 512 && !stop && !c.destroyed; i++) {
        if (!c.write(chunk)) await Promise.race([new Promise((r) => c.once('drain', r)), sleep(200)]);
      }
    })();
    await healthy(port, 'echo');
    const ms = await Promise.race([closed, sleep(5000).then(() => -1)]);
    stop = true;
    expect(ms).toBeGreaterThan(0);
    await healthy(port, 'echo');
    c.destroy();
  });

  it('survives clients that reset mid-reply or half-close', async () => {
    const port = await start('echo');
    const big = Buffer.alloc(4 << 20, 1);
    for (let k = 0; k < 5; k++) {
      const c = await connect(port);
      c.write(big);
      await new Promise((r) => c.once('data', r));
      c.resetAndDestroy();
    }
    // Half-close: the reply still arrives in full, then the server closes.
    const got = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const c = net.connect(port, '127.0.0.1', () => c.end(Buffer.from('half-closed')));
      c.on('data', (d) => chunks.push(d));
      c.on('end', () => resolve(Buffer.concat(chunks)));
      c.on('error', reject);
    });
    expect(got.toString()).toBe('half-closed');
    expect((await exchange(port, echoExchange(Buffer.from('still here')), 3000)).toString()).toBe('still here');
  });
});

describe('header timeout', () => {
  it('closes a client that stops half-way through a chunked body, as through a Content-Length one', async () => {
    // The idle timeout is far off: only the header clock can close these in time.
    const server = await serve({ model: 'single', protocol: 'http', headerTimeout: 200, idleTimeout: 120_000 });
    try {
      for (const req of [
        'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc',
        'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n',
        'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n',
      ]) {
        const c = await connect(server.port);
        const closed = closedAfter(c);
        c.write(req);
        expect([req, await Promise.race([closed.then(() => 'closed'), sleep(20_000).then(() => 'open')])]).toEqual([
          req,
          'closed',
        ]);
        c.destroy();
      }
    } finally {
      await server.close();
    }
  }, 70_000);
});
