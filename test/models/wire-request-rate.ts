/**
 * The request rate (`minRequestRate`, README "Connection limits"), the same on every model
 * (called by wire.ts): a started request has `headerTimeout` in hand, and every
 * `minRequestRate` bytes of it that arrive give one second back, never more than a full
 * `headerTimeout`; the idle clock gets the same credit (conn-clock.ts).
 *   - an HTTP body, or a RESP SET argument, sent steadily far above the rate and taking
 *     several header timeouts (and idle timeouts) in all is answered;
 *   - a trickle far below the rate is closed, nothing answered;
 *   - half the request sent at once, then nothing, is closed about a headerTimeout later: a
 *     burst buys no more than a full budget (64 KiB would be 64 s of credit uncapped);
 *   - with `minRequestRate: Infinity` the same steady upload is closed, nothing answered: a
 *     started request must arrive whole within headerTimeout.
 * Every piece of the upload, sent each 50 ms, fills the budget again (4 KiB earn 4 s, more
 * than the whole 1 s budget), so only a client delayed by a second between two pieces would
 * be late; deadlines are stall guards, nothing measures time.
 */
import net from 'node:net';
import { expect, it } from 'vitest';
import type { ServeOptions, Server } from '../helpers/rawio.js';
import { Received, resp } from '../helpers/clients.js';
import { eventually } from '../helpers/wait.js';

type Start = (protocol: ServeOptions['protocol'], opts?: Partial<ServeOptions>) => Promise<Server>;

const KiB = 1024;
const STALL_MS = 20_000;
/** Small clocks, so that the upload (64 pieces, 50 ms apart: 3.2 s) outlasts both several times. */
const CLOCKS = { headerTimeout: 1000, idleTimeout: 1500 };
const RATE = 1024; // bytes a second: each 4 KiB piece earns 4 s, a full budget
const PIECE = 4 * KiB;
const PIECES = 64;
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A raw client: what it has received, whether the server closed it. */
class Uploader {
  readonly sock: net.Socket;
  readonly #got = new Received();
  closed = false;
  readonly ready: Promise<void>;

  constructor(port: number) {
    this.sock = net.connect(port, '127.0.0.1');
    this.ready = new Promise((r) => this.sock.once('connect', () => r()));
    this.sock.on('data', (d: Buffer) => this.#got.push(d));
    this.sock.on('close', () => (this.closed = true));
    this.sock.on('error', () => undefined); // EPIPE / ECONNRESET after the server closed: expected
  }

  get got(): Buffer {
    return this.#got.bytes;
  }

  /**
   * Sends `data` in `size`-byte pieces `every` ms apart, until it is all sent or the server
   * closes; resolves with the longest time between two pieces, as this process kept it.
   */
  async sendSteadily(data: Buffer, size: number, every: number): Promise<number> {
    await this.ready;
    let last = performance.now();
    let longest = 0;
    for (let at = 0; at < data.length && !this.closed; at += size) {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
      this.sock.write(data.subarray(at, at + size));
      await delay(every);
    }
    return longest;
  }

  /** Waits until `check` holds or the server closes, at most STALL_MS; then whether `check` holds. */
  until(check: (got: Buffer) => boolean): Promise<boolean> {
    return eventually(() => check(this.got) || this.closed, STALL_MS).then(() => check(this.got));
  }
}

const httpUpload = (body: Buffer) =>
  Buffer.concat([Buffer.from(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`), body]);

/** An HTTP POST of PIECES × PIECE body bytes, and a RESP SET of as large a value. */
const uploads = {
  http: {
    send: httpUpload(Buffer.alloc(PIECES * PIECE, 97)),
    answered: (b: Buffer) => b.toString('latin1').startsWith('HTTP/1.1 200') && b.length > PIECES * PIECE,
  },
  resp: {
    send: resp('SET', 'rate-key', Buffer.alloc(PIECES * PIECE, 98)),
    answered: (b: Buffer) => b.toString('latin1') === '+OK\r\n',
  },
} as const;

/** Sends `upload` at PIECE bytes every 50 ms; true when it was answered, false when the server closed first. */
async function steadily(
  port: number,
  upload: (typeof uploads)['http' | 'resp'],
): Promise<{ ok: boolean; got: Buffer; longestGap: number }> {
  const c = new Uploader(port);
  try {
    const longestGap = await c.sendSteadily(upload.send, PIECE, 50);
    const ok = await c.until(upload.answered);
    return { ok, got: c.got, longestGap };
  } finally {
    c.sock.destroy();
  }
}

/**
 * Sends `first`, then (`trickle`) a byte every 50 ms or nothing more, until the server closes
 * the connection or STALL_MS pass; whether it closed, and what it answered.
 */
async function sendThenWait(port: number, first: Buffer, trickle: boolean): Promise<{ closed: boolean; got: Buffer }> {
  const c = new Uploader(port);
  let bytes: NodeJS.Timeout | undefined;
  try {
    await c.ready;
    c.sock.write(first);
    if (trickle) bytes = setInterval(() => !c.closed && c.sock.write('a'), 50);
    await c.until(() => false);
    return { closed: c.closed, got: c.got };
  } finally {
    clearInterval(bytes);
    c.sock.destroy();
  }
}

export function defineRequestRateTests(start: Start): void {
  for (const protocol of ['http', 'resp'] as const) {
    it(`answers a ${protocol} request arriving steadily above minRequestRate for several header and idle timeouts, and closes a trickle and a burst that stops`, async () => {
      const s = await start(protocol, { ...CLOCKS, minRequestRate: RATE });
      // The rule holds for a client that keeps its pace: an attempt in which this process was
      // itself held back for half a budget between two pieces (a loaded machine) proves
      // nothing either way and is made again, at most three times; a cut upload whose pieces
      // all came on time fails at once.
      let up = await steadily(s.port, uploads[protocol]);
      for (let again = 0; again < 2 && !up.ok && up.longestGap >= CLOCKS.headerTimeout / 2; again++) {
        up = await steadily(s.port, uploads[protocol]);
      }
      expect(up.ok, `${up.got.subarray(0, 64).toString('latin1')} (longest gap ${up.longestGap} ms)`).toBe(true);
      const slow = await sendThenWait(s.port, uploads[protocol].send.subarray(0, 64), true);
      expect(slow.closed).toBe(true);
      expect(slow.got.length).toBe(0);
      // Half the request at once, then silence: a burst buys a full budget, not a minute.
      const send = uploads[protocol].send;
      const half = await sendThenWait(s.port, send.subarray(0, send.length >> 1), false);
      expect(half.closed).toBe(true);
      expect(half.got.length).toBe(0);
    }, 60_000);

    it(`closes the same ${protocol} upload with minRequestRate Infinity: it must arrive whole within headerTimeout`, async () => {
      const s = await start(protocol, { ...CLOCKS, minRequestRate: Infinity });
      const up = await steadily(s.port, uploads[protocol]);
      expect(up.ok).toBe(false);
      expect(up.got.length).toBe(0);
    }, 60_000);
  }
}
