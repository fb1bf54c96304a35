/**
 * The request and queue limits on the wire, for every model (called by wire.ts): each limit
 * must act the same on every model and protocol.
 *   - maxQueue counts the reply bytes the kernel refuses, never the bytes it has not seen:
 *     a reply (or a pipelined batch of more replies than one writev(2) takes) larger than
 *     maxQueue to a client that reads arrives whole; a client that stops
 *     reading is dropped once what the kernel refused passes maxQueue — for one large reply
 *     and for replies written behind a send the kernel is refusing — after the kernel took
 *     what it could, and the drop shows in stats() while another client is served. (The
 *     blocking models queue nothing: their write waits for the client, which is checked to
 *     get the reply's first bytes.)
 *   - maxRequest holds an inline RESP command as it holds a multibulk one (same reply, then
 *     close), even a line whose end never comes; and `static` answers a body past it 413, as
 *     `http` does.
 * The kernel's share is made small and known rather than guessed: the client's receive
 * buffer is 4 KiB, and a reply meant to be refused is larger than the largest send buffer
 * the kernel may give the server (tcp_wmem's maximum) plus twice maxQueue.
 */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { constants, sys, type ModelName, type ServeOptions, type Server } from '../helpers/rawio.js';
import { body, exchange, httpPost, Received, resp, respReplies } from '../helpers/clients.js';
import { tcpSocket } from '../helpers/tcp.js';
import { eventually } from '../helpers/wait.js';

type Start = (protocol: ServeOptions['protocol'], opts?: Partial<ServeOptions>) => Promise<Server>;

const KiB = 1 << 10;
const MiB = 1 << 20;
const BLOCKING: readonly ModelName[] = ['iterative', 'thread-per-connection'];
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The largest send buffer TCP autotuning may give a socket (tcp_wmem's third field). */
export function wmemMax(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/tcp_wmem', 'latin1').trim().split(/\s+/)[2]) || 4 * MiB;
  } catch {
    return 4 * MiB;
  }
}

/** A raw client that reads only when asked: what it got, and whether the server closed it. */
class Hog {
  readonly fd: number;
  readonly port: number;
  readonly #got = new Received();
  closed = false;

  constructor(port: number) {
    this.fd = sys.connectTcp('127.0.0.1', port);
    this.port = sys.localPort(this.fd);
    sys.setBufferSizes(this.fd, { recv: 4 * KiB }); // little room on the client's side
  }

  /** Writes all of `data` (a few requests: the server reads them); false if the server has gone. */
  async send(data: Buffer): Promise<boolean> {
    let sent = 0;
    const end = Date.now() + 20_000;
    while (sent < data.length && Date.now() < end) {
      const w = sys.write(this.fd, data, sent, data.length - sent);
      if (w > 0) sent += w;
      else if (w === -constants.EAGAIN) await delay(5);
      else return false; // EPIPE, ECONNRESET: closed by the server
    }
    return sent === data.length;
  }

  /** What it has read. */
  get got(): Buffer {
    return this.#got.bytes;
  }

  /** Reads what has arrived; notes an end of stream or a reset. */
  read(): void {
    const buf = Buffer.alloc(64 * KiB);
    for (;;) {
      const r = sys.read(this.fd, buf);
      if (r > 0) this.#got.push(buf.subarray(0, r));
      else {
        if (r !== -constants.EAGAIN) this.closed = true;
        return;
      }
    }
  }

  /** Reads what arrives until it holds `n` bytes (true), or the deadline. */
  async readAtLeast(n: number): Promise<boolean> {
    return eventually(() => (this.read(), this.got.length >= n));
  }

  close(): void {
    sys.close(this.fd);
  }
}

export function defineWireLimitTests(model: ModelName, start: Start): void {
  const blocking = BLOCKING.includes(model);
  const concurrent = model !== 'iterative'; // iterative serves one client at a time: its flaw

  it('delivers whole a reply larger than maxQueue to a client that reads (resp GET, http POST)', async () => {
    const maxQueue = 256 * KiB; // the kernel takes 1 MiB at once on loopback: none is refused
    const value = Buffer.alloc(MiB, 120);
    const r = await start('resp', { maxQueue });
    expect((await exchange(r.port, respReplies(resp('SET', 'big', value), 1))).toString()).toBe('+OK\r\n');
    const want = Buffer.concat([Buffer.from(`$${MiB}\r\n`), value, Buffer.from('\r\n')]);
    const c = new Hog(r.port);
    try {
      sys.setBufferSizes(c.fd, { recv: MiB });
      for (let i = 0; i < 2; i++) {
        // One after the other on one connection: it stays usable.
        expect(await c.send(resp('GET', 'big'))).toBe(true);
        const from = c.got.length;
        await eventually(() => (c.read(), c.got.length - from >= want.length || c.closed));
        expect(c.closed).toBe(false);
        expect(c.got.length - from).toBe(want.length);
        expect(c.got.subarray(from).equals(want)).toBe(true);
      }
    } finally {
      c.close();
    }
    const h = await start('http', { maxQueue });
    const echoed = await exchange(h.port, httpPost(value));
    expect(echoed.toString('latin1', 0, 15)).toBe('HTTP/1.1 200 OK');
    expect(body(echoed).equals(value)).toBe(true);
  }, 30_000);

  it('delivers whole a pipelined batch of more replies than one writev takes, past maxQueue, to a client that reads', async () => {
    // 1200 replies of 1099 bytes, each kept by reference in a corked batch (write-batch.ts):
    // more parts than writev(2) takes at once (1024), 1.3 MB in all, which the kernel takes.
    const value = Buffer.alloc(1090, 119);
    const n = 1200;
    const s = await start('resp', { maxQueue: 64 * KiB, maxOutput: 8 * MiB });
    expect((await exchange(s.port, respReplies(resp('SET', 'w', value), 1))).toString()).toBe('+OK\r\n');
    const one = Buffer.concat([Buffer.from(`$${value.length}\r\n`), value, Buffer.from('\r\n')]);
    const got = await exchange(s.port, {
      send: Buffer.concat(Array.from({ length: n }, () => resp('GET', 'w'))),
      complete: (b) => b.length >= n * one.length,
    });
    expect(got.length).toBe(n * one.length);
    expect(got.equals(Buffer.concat(Array.from({ length: n }, () => one)))).toBe(true);
  }, 30_000);

  it('drops a connection for the reply bytes the kernel refuses past maxQueue, not before (one large reply)', async () => {
    const maxQueue = MiB;
    // Larger than any send buffer the server's socket may have plus twice maxQueue: the kernel
    // refuses more than maxQueue of it, whatever it takes.
    const size = wmemMax() + 2 * maxQueue + MiB;
    const s = await start('resp', { maxQueue, maxRequest: size + MiB, idleTimeout: 120_000 });
    const value = Buffer.alloc(size, 97);
    expect((await exchange(s.port, respReplies(resp('SET', 'huge', value), 1))).toString()).toBe('+OK\r\n');
    expect(await eventually(() => s.stats().connections === 0)).toBe(true);
    const hog = new Hog(s.port);
    try {
      expect(await eventually(() => s.stats().connections === 1)).toBe(true); // counted before it goes
      expect(await hog.send(resp('GET', 'huge'))).toBe(true);
      const head = `$${size}\r\n`;
      if (blocking) {
        // Nothing is queued: the write waits for the client, which gets the reply as it reads.
        expect(await eventually(() => (hog.read(), hog.got.length >= head.length || hog.closed))).toBe(true);
        expect(hog.got.toString('latin1', 0, head.length)).toBe(head);
      } else {
        expect(await eventually(() => s.stats().connections === 0)).toBe(true); // dropped, and counted
        // Not before the kernel saw the reply: the first of what it took reaches the client.
        // (The rest, with the FIN, trickles to a 4 KiB window from the closed socket: not waited for.)
        expect(await hog.readAtLeast(head.length + 1)).toBe(true);
        expect(hog.got.toString('latin1', 0, head.length)).toBe(head);
        expect(hog.got.subarray(head.length).every((b) => b === 97)).toBe(true);
      }
      if (concurrent) {
        const pong = await exchange(s.port, respReplies(resp('PING'), 1), 20_000);
        expect(pong.toString()).toBe('+PONG\r\n');
      }
    } finally {
      hog.close();
    }
  }, 30_000);

  // Only the models that queue: iterative and thread-per-connection write nothing behind a
  // refused send (their write waits for the client; the case above checks what they do with
  // a reply the kernel refuses), so the queue this case fills does not exist there.
  if (!blocking)
    it('drops a client that stops reading once the replies written behind a refused send pass maxQueue', async () => {
      const wmem = wmemMax();
      // One reply within maxQueue yet larger than the server's send buffer can be: the kernel
      // takes part and refuses the rest (up to maxQueue: kept), and the send waits for room.
      const maxQueue = wmem + MiB;
      const big = Buffer.alloc(maxQueue - 64, 97);
      const value = Buffer.alloc(128 * KiB, 98);
      const replyBytes = (v: Buffer) => `$${v.length}\r\n`.length + v.length + 2;
      // A large output budget, so that the server keeps answering while the kernel refuses:
      // the queue, not the budget, is what stops this client.
      const s = await start('resp', {
        maxQueue,
        maxRequest: maxQueue + MiB,
        maxOutput: 1 << 30,
        idleTimeout: 120_000,
      });
      expect((await exchange(s.port, respReplies(resp('SET', 'big', big), 1))).toString()).toBe('+OK\r\n');
      expect((await exchange(s.port, respReplies(resp('SET', 'v', value), 1))).toString()).toBe('+OK\r\n');
      expect(await eventually(() => s.stats().connections === 0)).toBe(true);
      const hog = new Hog(s.port);
      try {
        expect(await eventually(() => s.stats().connections === 1)).toBe(true);
        expect(await hog.send(resp('GET', 'big'))).toBe(true);
        // What the kernel took of the big reply: the bytes in the server's send queue and in
        // the client's receive queue, read from the kernel once the server has offered it.
        // How much that is varies (the server's send buffer grows with the connection, less
        // so under memory pressure), and nothing reads it, so it only grows from here.
        const taken = () => (tcpSocket(s.port, hog.port)?.txQueue ?? 0) + (tcpSocket(hog.port, s.port)?.rxQueue ?? 0);
        let took = 0;
        expect(
          await eventually(async () => {
            const before = taken();
            await delay(50);
            took = taken();
            return took > 0 && took === before;
          }),
        ).toBe(true);
        // Then one request at a time: each reply waits behind the refused rest of the big
        // one. The connection must stand until what the kernel refused passes maxQueue —
        // never before, as it would if the queue counted the bytes the kernel took or bytes
        // not yet offered to it — and go then, not later, as it would if the rest of a send
        // already under way were not counted. That is the `due`-th reply, for what the
        // kernel had taken by then.
        const dueFor = (taken: number) => Math.floor((maxQueue - (replyBytes(big) - taken)) / replyBytes(value)) + 1;
        const due = dueFor(took);
        const limit = due + Math.ceil((2 * maxQueue) / value.length);
        // The client waits for the server to have framed each request before it sends the
        // next, so it is never more than one request ahead of the server however slow the
        // server is made by other work on the machine (a pool's hop between framing and
        // queuing the reply aside, which the 20 ms between requests covers).
        let asked = 0;
        while (asked < limit && s.stats().connections > 0) {
          await delay(20);
          took = Math.max(took, taken());
          const framed = s.stats().requests;
          if (!(await hog.send(resp('GET', 'v')))) break;
          asked++;
          await eventually(() => s.stats().requests > framed || s.stats().connections === 0);
        }
        expect(await eventually(() => s.stats().connections === 0)).toBe(true); // dropped, and counted
        expect(asked).toBeGreaterThanOrEqual(due);
        // At most two more: a request sent before the client could see the close.
        expect(asked).toBeLessThanOrEqual(dueFor(took) + 2);
        const head = `$${big.length}\r\n`;
        expect(await hog.readAtLeast(head.length + 1)).toBe(true);
        expect(hog.got.toString('latin1', 0, head.length)).toBe(head);
        const pong = await exchange(s.port, respReplies(resp('PING'), 1), 20_000);
        expect(pong.toString()).toBe('+PONG\r\n');
      } finally {
        hog.close();
      }
    }, 30_000);

  it('holds an inline RESP command to maxRequest as a multibulk one: the same error, then close', async () => {
    const s = await start('resp', { maxRequest: 1024 });
    const multibulk = await exchange(s.port, {
      send: resp('MSET', 'a', 'x'.repeat(600), 'b', 'y'.repeat(600)),
      complete: () => false, // until the server closes
    });
    expect(multibulk.toString()).toBe('-ERR Protocol error: command too large\r\n');
    // A line whose end never comes is refused once it passes the limit, not buffered on.
    const endless = await exchange(s.port, { send: Buffer.from('SET k ' + 'a'.repeat(2000)), complete: () => false });
    expect(endless.toString()).toBe(multibulk.toString());
    const whole = await exchange(s.port, {
      send: Buffer.from('SET k ' + 'a'.repeat(2000) + '\r\nPING\r\n'),
      complete: () => false,
    });
    expect(whole.toString()).toBe(multibulk.toString());
    // Within the limit (its CRLF included) an inline command is served.
    const ok = await exchange(s.port, respReplies(Buffer.from('SET k ' + 'a'.repeat(1024 - 8) + '\r\nPING\r\n'), 2));
    expect(ok.toString()).toBe('+OK\r\n+PONG\r\n');
  }, 30_000);

  it('answers a request body past maxRequest 413 and closes, on static as on http', async () => {
    for (const protocol of ['http', 'static'] as const) {
      const s = await start(protocol, { maxRequest: 100 });
      const got = await exchange(s.port, {
        send: Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n' + 'x'.repeat(1000)),
        complete: () => false,
      });
      expect(got.toString('latin1')).toMatch(/^HTTP\/1\.1 413 [^]*Connection: close\r\n/);
    }
  }, 30_000);
}
