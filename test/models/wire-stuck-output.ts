/**
 * Clients whose output is stuck, for every model (called by wire.ts): the connection
 * contract's idle timeout and `maxQueue` hold while rawio waits for a client to take its
 * replies, on every model alike.
 *   - a client that sends requests with large replies (echo, resp) and stops reading is
 *     closed at the idle timeout, and another client is served meanwhile (iterative: as
 *     soon as the stuck one is closed) and after;
 *   - `maxQueue`: a reply that leaves more than it unsent drops the connection however long
 *     the idle timeout, and replies within it wait for a client that reads late;
 *   - a client that stops reading a large file body (sendfile, and io_uring's `uring` and
 *     `direct`, whose sends the kernel holds with the socket) is closed at the idle timeout,
 *     and the server's fds come back; one that reads a `uring` or `direct` body steadily is
 *     not, however long the body takes.
 * The replies asked for are far larger than the kernel's socket buffers on both sides (a
 * client that reads nothing keeps its receive buffer at its first size). "Closed" is read from the kernel: the server's end of the connection leaves
 * ESTABLISHED (/proc/net/tcp), which a close(2) of an fd whose socket an io_uring send still
 * holds does not do. Deadlines are generous stall guards; nothing asserts speed.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { constants, sys, type ModelName, type ServeOptions, type Server } from '../helpers/rawio.js';
import { titled, why } from '../helpers/skips.js';
import { exchange, resp, respReplies } from '../helpers/clients.js';
import { serverFdsTo } from '../helpers/server-proc.js';
import { ESTABLISHED, SYN_RECV, SYN_SENT, tcpSocket } from '../helpers/tcp.js';
import { eventually } from '../helpers/wait.js';
import { wmemMax } from './wire-limits.js';

type Start = (protocol: ServeOptions['protocol'], opts?: Partial<ServeOptions>) => Promise<Server>;

const KiB = 1 << 10;
const MiB = 1 << 20;
const IDLE_MS = 400;
const DEADLINE_MS = 20_000;
const TEST_MS = 30_000;
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The TCP state (hex, as /proc/net/tcp writes it) of the socket at `localPort` connected to `remotePort`; undefined when none is. */
const tcpState = (localPort: number, remotePort: number) => tcpSocket(localPort, remotePort)?.state;

/** A client that sends and never reads until told to (a raw socket: nothing reads it behind the test's back). */
class StuckClient {
  readonly fd: number;
  readonly port: number;
  #open = true;
  #pump: Promise<number> = Promise.resolve(0);

  constructor(readonly serverPort: number) {
    this.fd = sys.connectTcp('127.0.0.1', serverPort);
    this.port = sys.localPort(this.fd);
  }

  /** Writes `data` in the background as the kernel takes it, until all is sent or the connection fails. */
  send(data: Buffer): void {
    this.#pump = (async () => {
      let off = 0;
      while (off < data.length && this.#open) {
        const w = sys.write(this.fd, data, off, data.length - off);
        if (w > 0) off += w;
        else if (w === -constants.EAGAIN) await delay(5);
        else break;
      }
      return off;
    })();
  }

  /** Bytes sent, once the writes have stopped. */
  sent(): Promise<number> {
    return this.#pump;
  }

  /**
   * Whether the server closed its end of this connection (shut it down, closed it or reset
   * it) within the deadline. The server's end may go before the test first looks (maxQueue
   * drops at once), so its state is judged against the client's own: once the client is
   * connected, a server end that is neither ESTABLISHED nor still in the handshake
   * (SYN_RECV), or gone, was closed; a client socket gone from the table was reset.
   */
  async closedByServer(): Promise<boolean> {
    return eventually(() => {
      const mine = tcpState(this.port, this.serverPort);
      if (mine === undefined) return true;
      if (mine === SYN_SENT) return false;
      const theirs = tcpState(this.serverPort, this.port);
      return theirs !== ESTABLISHED && theirs !== SYN_RECV;
    });
  }

  /** Reads at speed until the server's close arrives: the bytes read and whether it ended (EOF or reset). */
  async readToEnd(): Promise<{ got: number; ended: boolean }> {
    return this.read(Infinity);
  }

  /** Reads at speed until `want` bytes came or the connection ended. */
  async read(want: number): Promise<{ got: number; ended: boolean }> {
    const buf = Buffer.allocUnsafe(256 * KiB);
    let got = 0;
    const end = Date.now() + DEADLINE_MS;
    while (got < want && Date.now() < end) {
      const r = sys.read(this.fd, buf, 0, buf.length);
      if (r > 0) got += r;
      else if (r === -constants.EAGAIN) await delay(1);
      else return { got, ended: true };
    }
    return { got, ended: false };
  }

  /**
   * Reads at most `per` bytes every `everyMs` until `want` bytes came or the connection
   * ended: a client that takes its bytes steadily, never faster than that.
   */
  async readSteadily(want: number, per: number, everyMs: number): Promise<{ got: number; ended: boolean }> {
    const buf = Buffer.allocUnsafe(per);
    let got = 0;
    const end = Date.now() + 3 * DEADLINE_MS;
    while (got < want && Date.now() < end) {
      const r = sys.read(this.fd, buf, 0, Math.min(per, want - got));
      if (r > 0) got += r;
      else if (r !== -constants.EAGAIN) return { got, ended: true };
      await delay(everyMs);
    }
    return { got, ended: false };
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    sys.close(this.fd);
  }
}

export function defineStuckOutputTests(model: ModelName, start: Start, root: () => string): void {
  /**
   * A stuck client of `server` sending `send` is closed at the idle timeout while `other`
   * is answered (iterative: once the stuck client is closed), and `other` again after.
   */
  async function closesStuck(
    server: Server,
    send: Buffer,
    replies: number,
    other: { send: Buffer; want: string },
  ): Promise<void> {
    const c = new StuckClient(server.port);
    try {
      c.send(send);
      const ask = { send: other.send, complete: (b: Buffer) => b.length >= other.want.length };
      const meanwhile = exchange(server.port, ask, DEADLINE_MS);
      meanwhile.catch(() => undefined);
      expect(await c.closedByServer()).toBe(true);
      expect((await meanwhile).toString()).toBe(other.want);
      const { got, ended } = await c.readToEnd();
      expect(ended).toBe(true);
      expect(got).toBeLessThan(replies === 0 ? await c.sent() : replies);
      expect((await exchange(server.port, ask, DEADLINE_MS)).toString()).toBe(other.want);
    } finally {
      c.close();
    }
  }

  it(
    'closes a client that stops reading mid-reply at the idle timeout (echo), serving the others meanwhile and after',
    async () => {
      const s = await start('echo', { idleTimeout: IDLE_MS });
      // Far past the kernel's buffers on both sides: the server's writes meet a full socket.
      await closesStuck(s, Buffer.alloc(16 * MiB, 101), 0, { send: Buffer.from('hi'), want: 'hi' });
    },
    TEST_MS,
  );

  it(
    'closes a client that stops reading mid-reply at the idle timeout (resp large replies), serving the others meanwhile and after',
    async () => {
      const s = await start('resp', { idleTimeout: IDLE_MS });
      const value = 4 * MiB;
      // The value is stored over a connection the same short idle timeout governs: a pause of
      // this process longer than it, mid-request (a starved machine), rightly gets that
      // connection closed unanswered, and the SET is sent again.
      let set = '';
      for (let i = 0; i < 10 && set !== '+OK\r\n'; i++) {
        const sent = respReplies(resp('SET', 'stuck', Buffer.alloc(value, 120)), 1);
        set = (await exchange(s.port, sent, DEADLINE_MS)).toString();
      }
      expect(set).toBe('+OK\r\n');
      const n = 8;
      const gets = Buffer.concat(Array.from({ length: n }, () => resp('GET', 'stuck')));
      await closesStuck(s, gets, n * (value + `$${value}\r\n\r\n`.length), {
        send: resp('PING'),
        want: '+PONG\r\n',
      });
    },
    TEST_MS,
  );

  it(
    'drops a connection when one reply leaves more than maxQueue unsent, and keeps one whose replies stay within it (resp)',
    async () => {
      // The idle timeout is far off: only maxQueue can close these connections. The large
      // value is past what the kernel's buffers take of one write (about 4 MiB on loopback).
      const s = await start('resp', {
        maxQueue: 512 * KiB,
        maxOutput: 64 * KiB,
        maxRequest: 32 * MiB,
        idleTimeout: 120_000,
      });
      const big = 16 * MiB;
      const small = 48 * KiB;
      for (const [key, size] of [
        ['qbig', big],
        ['qsmall', small],
      ] as const) {
        const ok = await exchange(s.port, respReplies(resp('SET', key, Buffer.alloc(size, 120)), 1), DEADLINE_MS);
        expect(ok.toString()).toBe('+OK\r\n');
      }
      // Replies within maxQueue wait for a client that reads late, however many there are.
      const n = 256;
      const late = new StuckClient(s.port);
      try {
        late.send(Buffer.concat(Array.from({ length: n }, () => resp('GET', 'qsmall'))));
        await delay(500);
        expect(tcpState(s.port, late.port)).toBe(ESTABLISHED);
        const want = n * (small + `$${small}\r\n\r\n`.length);
        expect((await late.read(want)).got).toBe(want);
      } finally {
        late.close();
      }
      // One reply that leaves more than maxQueue unsent drops the connection.
      const c = new StuckClient(s.port);
      try {
        c.send(resp('GET', 'qbig'));
        expect(await c.closedByServer()).toBe(true);
        const { got, ended } = await c.readToEnd();
        expect(ended).toBe(true);
        expect(got).toBeLessThan(big);
      } finally {
        c.close();
      }
      expect((await exchange(s.port, respReplies(resp('PING'), 1), DEADLINE_MS)).toString()).toBe('+PONG\r\n');
    },
    TEST_MS,
  );

  for (const transfer of ['uring', 'direct'] as const) {
    it.skipIf(why.ring)(
      titled(
        `keeps a client that reads a file body steadily for longer than the idle timeout (transfer ${transfer})`,
        why.ring,
      ),
      async () => {
        // io_uring's sends wait for the client in the kernel, not in a wait of the server's:
        // the bytes each send took are the client's progress. The client reads 512 KiB every
        // 20 ms at most, 25.6 MiB/s, and the kernel holds at most the server's send buffer
        // (tcp_wmem's maximum, 4 MiB by default) and the client's receive buffer (set to
        // 1 MiB, which the kernel doubles) ahead of it. So the server's last send is taken
        // no sooner than (size - wmem - 2 MiB) / 25.6 MiB/s = 30 / 25.6 = 1.17 s after the
        // request, 1.46 idle timeouts (measured: 1.3–1.5 s). A server whose idle clock ran from
        // the request rather than from the client's progress closes the connection mid-body;
        // one that counts progress never sees 800 ms without.
        const size = wmemMax() + 32 * MiB;
        const name = `steady-${transfer}.bin`;
        writeFileSync(join(root(), name), Buffer.alloc(size, 98));
        const s = await start('static', { transfer, idleTimeout: 800 });
        const c = new StuckClient(s.port);
        try {
          sys.setBufferSizes(c.fd, { recv: MiB });
          c.send(Buffer.from(`GET /${name} HTTP/1.1\r\nHost: x\r\n\r\n`));
          const { got } = await c.readSteadily(size, 512 * KiB, 20);
          expect(got).toBe(size);
          expect(tcpState(s.port, c.port)).toBe(ESTABLISHED);
        } finally {
          c.close();
        }
      },
      4 * DEADLINE_MS,
    );
  }

  for (const transfer of ['sendfile', 'uring', 'direct'] as const) {
    const needs = transfer === 'sendfile' ? undefined : why.ring;
    it.skipIf(needs)(
      titled(
        `closes a client that stops reading a file body at the idle timeout (transfer ${transfer}), its fds returned`,
        needs,
      ),

      async () => {
        const size = 16 * MiB;
        const name = `stuck-${transfer}.bin`;
        writeFileSync(join(root(), name), Buffer.alloc(size, 97));
        const s = await start('static', { transfer, idleTimeout: IDLE_MS });
        const small = {
          send: Buffer.from('GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n'),
          complete: (b: Buffer) => b.includes('hello\n'),
        };
        await exchange(s.port, small, DEADLINE_MS);
        expect(await eventually(() => s.stats().connections === 0)).toBe(true);
        // Sockets and the file: what a connection and its body hold (a thread-per-connection
        // thread started or cached meanwhile holds neither).
        const held = () => serverFdsTo(model, (t) => t.startsWith('socket:') || t.endsWith(name));
        const base = held();
        const c = new StuckClient(s.port);
        try {
          c.send(Buffer.from(`GET /${name} HTTP/1.1\r\nHost: x\r\n\r\n`));
          expect(await c.closedByServer()).toBe(true);
          const { got, ended } = await c.readToEnd();
          expect(ended).toBe(true);
          expect(got).toBeLessThan(size);
          expect((await exchange(s.port, small, DEADLINE_MS)).toString()).toMatch(/^HTTP\/1\.1 200[^]*hello\n$/);
        } finally {
          c.close();
        }
        expect(await eventually(() => s.stats().connections === 0)).toBe(true);
        expect(await eventually(() => held() <= base)).toBe(true);
      },
      TEST_MS,
    );
  }
}
