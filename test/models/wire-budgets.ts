/**
 * Budgets in combination on the wire, for every model (called by wire.ts): a limit never
 * stalls a connection, whatever other limit binds with it and however slowly the client
 * reads.
 *   - maxInFlight 1 under a pipeline of 3000 requests, to a client with a small receive
 *     buffer that reads in small bursts: every reply, in order, and the connection stays;
 *   - maxOutput smaller than one reply (1 KiB against 64 KiB replies): each reply is still
 *     built and sent whole, one at a time, byte-exact;
 *   - a half-close right behind 3000 pipelined requests while maxInFlight 4 and a 4 KiB
 *     maxOutput hold all but a few of them unread: every reply owed arrives, then the close.
 * Deadlines are stall guards; nothing measures time.
 */
import net from 'node:net';
import { expect, it } from 'vitest';
import { constants, sys, type ServeOptions, type Server } from '../helpers/rawio.js';
import { exchange, Received, resp, respReplies } from '../helpers/clients.js';

type Start = (protocol: ServeOptions['protocol'], opts?: Partial<ServeOptions>) => Promise<Server>;

const KiB = 1 << 10;
const STALL_MS = 30_000;
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
const count = (hay: Buffer, needle: string) => hay.toString('latin1').split(needle).length - 1;

/** A raw client with a 64 KiB receive buffer that reads at most `per` bytes every `every` ms. */
class SlowReader {
  readonly fd: number;
  readonly #got = new Received();
  closed = false;

  constructor(port: number) {
    this.fd = sys.connectTcp('127.0.0.1', port);
    sys.setBufferSizes(this.fd, { recv: 64 * KiB });
  }

  get got(): Buffer {
    return this.#got.bytes;
  }

  /** Writes all of `data`, reading a little whenever the kernel refuses more (the server may wait for that). */
  async send(data: Buffer): Promise<void> {
    let sent = 0;
    const end = Date.now() + STALL_MS;
    while (sent < data.length && Date.now() < end) {
      const w = sys.write(this.fd, data, sent, data.length - sent);
      if (w > 0) sent += w;
      else if (w === -constants.EAGAIN) {
        this.read(4 * KiB);
        await delay(2);
      } else break;
    }
    expect(sent).toBe(data.length);
  }

  /** Reads at most `max` bytes of what has arrived; notes an end of stream or a reset. */
  read(max: number): void {
    const buf = Buffer.alloc(Math.min(max, 16 * KiB));
    for (let n = 0; n < max;) {
      const r = sys.read(this.fd, buf, 0, Math.min(buf.length, max - n));
      if (r > 0) {
        this.#got.push(buf.subarray(0, r));
        n += r;
      } else {
        if (r !== -constants.EAGAIN) this.closed = true;
        return;
      }
    }
  }

  /** Reads `per` bytes every `every` ms until `done` (true), the server closed, or the deadline. */
  async readSlowly(done: (got: Buffer) => boolean, per: number, every: number): Promise<boolean> {
    const end = Date.now() + STALL_MS;
    while (!done(this.got) && !this.closed && Date.now() < end) {
      this.read(per);
      await delay(every);
    }
    return done(this.got);
  }

  close(): void {
    sys.close(this.fd);
  }
}

export function defineBudgetTests(start: Start): void {
  it(
    'maxInFlight 1 under a deep pipeline to a slow reader: every reply, in order, the connection kept (http)',
    async () => {
      const s = await start('http', { maxInFlight: 1 });
      const n = 3000;
      const c = new SlowReader(s.port);
      try {
        await c.send(
          Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(n) + 'GET /nope HTTP/1.1\r\nHost: x\r\n\r\n'),
        );
        expect(await c.readSlowly((b) => count(b, 'HTTP/1.1 ') >= n + 1, 4 * KiB, 2)).toBe(true);
        expect(count(c.got, 'HTTP/1.1 200 OK')).toBe(n);
        expect(c.got.toString('latin1').lastIndexOf('HTTP/1.1 404')).toBeGreaterThan(c.got.lastIndexOf('Hello'));
        expect(c.closed).toBe(false);
      } finally {
        c.close();
      }
    },
    2 * STALL_MS,
  );

  it(
    'maxOutput smaller than one reply: every reply built and sent whole, byte-exact, to a slow reader (resp)',
    async () => {
      const s = await start('resp', { maxOutput: KiB });
      const value = Buffer.alloc(64 * KiB, 120);
      expect((await exchange(s.port, respReplies(resp('SET', 'v', value), 1))).toString()).toBe('+OK\r\n');
      const one = Buffer.concat([Buffer.from(`$${value.length}\r\n`), value, Buffer.from('\r\n')]);
      const n = 60;
      const want = Buffer.concat([...Array.from({ length: n }, () => one), Buffer.from('+PONG\r\n')]);
      const c = new SlowReader(s.port);
      try {
        await c.send(Buffer.concat([...Array.from({ length: n }, () => resp('GET', 'v')), resp('PING')]));
        expect(await c.readSlowly((b) => b.length >= want.length, 16 * KiB, 5)).toBe(true);
        expect(c.got.equals(want)).toBe(true);
        expect(c.closed).toBe(false);
      } finally {
        c.close();
      }
    },
    2 * STALL_MS,
  );

  it(
    'a half-close behind pipelined requests held by full budgets: every reply owed, then the close (http)',
    async () => {
      const s = await start('http', { maxInFlight: 4, maxOutput: 4 * KiB });
      const n = 3000;
      const got = await new Promise<Buffer>((resolve, reject) => {
        const r = new Received();
        const sock = net.connect(s.port, '127.0.0.1', () =>
          sock.end('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(n) + 'GET /nope HTTP/1.1\r\nHost: x\r\n\r\n'),
        );
        // Reads in bursts: the output budget fills between them.
        sock.pause();
        const bursts = setInterval(() => {
          sock.resume();
          setImmediate(() => sock.pause());
        }, 5);
        const timer = setTimeout(() => {
          clearInterval(bursts);
          sock.destroy();
          reject(new Error(`the server did not close after the half-close (${count(r.bytes, 'HTTP/1.1 ')} replies)`));
        }, STALL_MS);
        sock.on('data', (d: Buffer) => r.push(d));
        sock.on('error', reject);
        sock.on('end', () => {
          clearTimeout(timer);
          clearInterval(bursts);
          resolve(r.bytes);
        });
      });
      expect(count(got, 'HTTP/1.1 200 OK')).toBe(n);
      expect(got.toString('latin1').lastIndexOf('HTTP/1.1 404')).toBeGreaterThan(got.lastIndexOf('Hello'));
    },
    2 * STALL_MS,
  );
}
