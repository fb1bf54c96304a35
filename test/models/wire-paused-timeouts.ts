/**
 * Timeouts against rawio's own pauses, for every model (called by wire.ts): a header or
 * idle timeout measures the client's slowness only. A client pipelines enough requests to
 * fill a budget (output: large RESP values; files: static file bodies), sends half of the
 * next request, then reads nothing for several header timeouts and then reads slowly: every
 * reply arrives, then the completed request's. (Output already in the kernel's socket
 * buffers when rawio reads again is invisible to rawio: that last part is read at once.) The header timeout still closes a client
 * that stalls mid-request while rawio reads. The margins are generous (a timeout fires
 * within 10× its value); nothing here asserts speed.
 * The idle timeout does not run while the server itself makes a reply: a streamed body whose
 * producer waits longer than it between chunks (a handler's async iterable) is sent whole,
 * as a promise reply that takes as long is.
 */
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { ServeOptions, Server } from '../helpers/rawio.js';
import { exchange, resp, respReplies } from '../helpers/clients.js';

type Start = (protocol: ServeOptions['protocol'], opts?: Partial<ServeOptions>) => Promise<Server>;

const MiB = 1 << 20;
const APP = new URL('../fixtures/user/app.mjs', import.meta.url).href;
// Wide enough for the client to drain what the kernel holds (up to ~10 MiB on loopback)
// between rawio reading again and the rest of the request arriving, on a loaded machine.
const HEADER_MS = 600;
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A client that reads nothing, then bursts of what has arrived with pauses between. */
class SlowReader {
  readonly sock: net.Socket;
  got = 0;
  tail = Buffer.alloc(0);
  closed = false;

  constructor(port: number) {
    this.sock = net.connect(port, '127.0.0.1');
    this.sock.pause();
    this.sock.on('data', (d: Buffer) => {
      this.got += d.length;
      this.tail = Buffer.concat([this.tail, d]).subarray(-256);
    });
    this.sock.on('close', () => (this.closed = true));
    this.sock.on('error', () => undefined);
  }

  /** Reads one burst every `every` ms until `want` bytes came (true) or the server closed. */
  async readSlowly(want: number, every = 60, ms = 60_000): Promise<boolean> {
    const end = Date.now() + ms;
    while (this.got < want && !this.closed && Date.now() < end) {
      this.sock.resume();
      await new Promise((r) => setImmediate(r));
      this.sock.pause();
      await delay(every);
    }
    this.sock.resume();
    return this.got >= want;
  }
}

async function closedWithin(c: SlowReader, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!c.closed && Date.now() < end) await delay(20);
  return c.closed;
}

export function definePausedTimeoutTests(start: Start, root: () => string): void {
  it('never times out a request left half-read because a budget paused reading (resp output, static files)', async () => {
    const value = MiB;
    writeFileSync(join(root(), 'mib.bin'), Buffer.alloc(value, 97));
    const [r, s] = await Promise.all([
      start('resp', { headerTimeout: HEADER_MS, maxOutput: 64 << 10 }),
      start('static', { headerTimeout: HEADER_MS, maxFiles: 2 }),
    ]);
    expect((await exchange(r.port, respReplies(resp('SET', 'big', Buffer.alloc(value, 120)), 1))).toString()).toBe(
      '+OK\r\n',
    );
    const n = 24; // 24 MiB, far past the kernel's socket buffers: the budget is full while the client waits
    const cases = [
      {
        port: r.port,
        head: Buffer.concat(Array.from({ length: n }, () => resp('GET', 'big'))),
        half: '*1\r\n$4\r\nPI',
        rest: 'NG\r\n',
        reply: `$${value}\r\n`.length + value + 2,
        last: '+PONG\r\n',
      },
      {
        port: s.port,
        head: Buffer.from('GET /mib.bin HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(n)),
        half: 'GET /a.txt HTTP/1.1\r\nHo',
        rest: 'st: x\r\n\r\n',
        reply: 0, // measured below: the head's length is the server's
        last: 'hello\n',
      },
    ];
    // The two servers are independent: their cases run at once, so their pauses overlap.
    const run = async (k: (typeof cases)[number]) => {
      const c = new SlowReader(k.port);
      c.sock.write(Buffer.concat([k.head, Buffer.from(k.half)]));
      await delay(3 * HEADER_MS); // reads nothing: rawio stops reading, not the client
      expect(c.closed).toBe(false);
      const want = k.reply > 0 ? n * k.reply : n * value;
      // Slowly while rawio still has most of the output to send; the last of it may sit in
      // the kernel's socket buffers once rawio reads again, where rawio cannot see it being
      // drained, so that part is read at once and the request completed.
      expect(await c.readSlowly(want / 2)).toBe(true);
      expect(c.closed).toBe(false);
      c.sock.resume();
      while (c.got < want && !c.closed) await delay(5);
      c.sock.write(k.rest);
      const end = Date.now() + 20_000;
      while (!c.tail.toString('latin1').endsWith(k.last) && !c.closed && Date.now() < end) await delay(20);
      expect(c.tail.toString('latin1').endsWith(k.last)).toBe(true);
      expect(c.closed).toBe(false);
      // Reading again, rawio still times out a client that stalls mid-request.
      c.sock.write(k.half);
      expect(await closedWithin(c, 10 * HEADER_MS)).toBe(true);
      c.sock.destroy();
    };
    await Promise.all(cases.map(run));
  });

  it('never times out a client while a streamed body is made more slowly than the idle timeout (http handler)', async () => {
    const idle = 200;
    const s = await start('http', { handler: APP, idleTimeout: idle });
    const c = new SlowReader(s.port);
    c.sock.resume(); // reads everything at once: only the producer is slow
    // Two events, each 4 idle timeouts after the last, then a reply behind them.
    c.sock.write(`GET /gaps?n=2&ms=${4 * idle} HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n`);
    const end = Date.now() + 20_000;
    while (!c.tail.toString('latin1').endsWith('hi GET') && !c.closed && Date.now() < end) await delay(20);
    expect(c.closed).toBe(false);
    expect(c.tail.toString('latin1')).toMatch(/data: 1\n\n\r\n0\r\n\r\n[^]*hi GET$/);
    // Idle after that, it is closed by the idle timeout as ever.
    expect(await closedWithin(c, 50 * idle)).toBe(true);
    c.sock.destroy();
  });
}
