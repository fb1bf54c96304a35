/**
 * Many small pipelined replies on the wire, for every model (called by wire.ts): the
 * reactor models copy small replies into one output buffer per batch (write-batch.ts), so
 * these check what that must keep — replies in request order, the output budget and the
 * kernel's partial writes — against clients that read late or a byte at a time:
 *   - a client that sends a pipeline of them and reads nothing until the server's writes
 *     have met a full socket, then reads: every byte arrives, in order;
 *   - a client with a 4 KiB receive buffer that reads one byte per read(2) while it sends a
 *     mix of SET, GET (small and large values), INCR and PING: every byte arrives in order;
 *   - a late reader of 60k pipelined GETs of a 100-byte value: every reply arrives, byte-exact,
 *     and the ring models (which count their sends in stats) merged them into few sends.
 */
import { expect, it } from 'vitest';
import { sys, constants, type ServeOptions, type Server } from '../helpers/rawio.js';
import { resp } from '../helpers/clients.js';

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
const RING_MODELS = ['proactor', 'multi-proactor'];

/** Writes `send` until the kernel has taken nothing for a while (the server stopped reading). */
async function sendUntilStalled(fd: number, send: Buffer): Promise<number> {
  let sent = 0;
  for (let idle = 0; sent < send.length && idle < 5;) {
    const w = sys.write(fd, send, sent, send.length - sent);
    if (w > 0) {
      sent += w;
      idle = 0;
    } else {
      idle++;
      await delay(20);
    }
  }
  return sent;
}

/** Reads `want.length` bytes at speed, writing the rest of `send` from `sent` meanwhile. */
async function readAll(fd: number, send: Buffer, sent: number, want: Buffer): Promise<Buffer> {
  const got = Buffer.alloc(want.length);
  let read = 0;
  while (read < want.length) {
    if (sent < send.length) {
      const w = sys.write(fd, send, sent, send.length - sent);
      if (w > 0) sent += w;
    }
    const r = sys.read(fd, got, read, want.length - read);
    if (r === -constants.EAGAIN) await delay(1);
    else if (r <= 0) break;
    else read += r;
  }
  return got.subarray(0, read);
}

type Start = (protocol: ServeOptions['protocol'], opts?: Partial<ServeOptions>) => Promise<Server>;

/** A mix of commands and the exact bytes the server must answer, in order. */
function mixedCommands(tag: string, n: number): { send: Buffer; want: Buffer } {
  const send: Buffer[] = [];
  const want: Buffer[] = [];
  const big = Buffer.alloc(3000, 98);
  send.push(resp('SET', `${tag}-big`, big));
  want.push(Buffer.from('+OK\r\n'));
  for (let i = 0; i < n; i++) {
    const key = `${tag}-${i % 37}`;
    const value = `v${i}`;
    send.push(resp('SET', key, value), resp('GET', key), resp('INCR', `${tag}-n`));
    want.push(Buffer.from(`+OK\r\n$${value.length}\r\n${value}\r\n:${i + 1}\r\n`));
    if (i % 100 === 0) {
      send.push(resp('GET', `${tag}-big`), resp('PING'));
      want.push(Buffer.from(`$3000\r\n`), big, Buffer.from('\r\n+PONG\r\n'));
    }
  }
  return { send: Buffer.concat(send), want: Buffer.concat(want) };
}

export function defineSmallReplyTests(model: string, start: Start): void {
  it('answers a client that stops reading mid-pipeline, every byte in order, once it reads (resp)', async () => {
    const s = await start('resp');
    const { send, want } = mixedCommands(`late-${model}`, 3000);
    const fd = sys.connectTcp('127.0.0.1', s.port);
    try {
      sys.setBufferSizes(fd, { recv: 4096 }); // little room on the client's side
      // What the kernel takes, reading nothing, until it has taken nothing for a while: the
      // server stops reading once its output budget is spent, its writes having met a full socket.
      const sent = await sendUntilStalled(fd, send);
      await delay(300);
      sys.setBufferSizes(fd, { recv: 1 << 20 }); // then read at speed: a 4 KiB window crawls
      const got = await readAll(fd, send, sent, want);
      expect(got.length).toBe(want.length);
      expect(got.equals(want)).toBe(true);
    } finally {
      sys.close(fd);
    }
  }, 60_000);

  it('answers a late reader of many small pipelined GETs byte-exact, in few sends (resp)', async () => {
    const s = await start('resp');
    const n = 60_000;
    const value = 'v'.repeat(100);
    const key = `many-${model}`;
    const set = sys.connectTcp('127.0.0.1', s.port);
    try {
      const ok = await readAll(set, resp('SET', key, value), 0, Buffer.from('+OK\r\n'));
      expect(ok.toString()).toBe('+OK\r\n');
    } finally {
      sys.close(set);
    }
    const send = Buffer.concat(Array.from({ length: n }, () => resp('GET', key)));
    const one = Buffer.from(`$${value.length}\r\n${value}\r\n`);
    const want = Buffer.concat(Array.from({ length: n }, () => one));
    const before = s.stats().sends;
    const fd = sys.connectTcp('127.0.0.1', s.port);
    try {
      const sent = await sendUntilStalled(fd, send);
      await delay(300);
      const got = await readAll(fd, send, sent, want);
      expect(got.length).toBe(want.length);
      expect(got.equals(want)).toBe(true);
    } finally {
      sys.close(fd);
    }
    const sends = s.stats().sends - before;
    if (!RING_MODELS.includes(model)) return void expect(sends).toBe(0); // write(2) is not counted
    // One send per read's batch or per send completion, never one per reply.
    expect(sends).toBeGreaterThan(0);
    expect(sends).toBeLessThan(n / 50);
  }, 60_000);

  it('answers a client that reads one byte at a time, every byte in order (resp)', async () => {
    const s = await start('resp');
    const { send, want } = mixedCommands(`slow-${model}`, 1500);
    const fd = sys.connectTcp('127.0.0.1', s.port);
    try {
      sys.setBufferSizes(fd, { recv: 4096 });
      const got = Buffer.alloc(want.length);
      const one = Buffer.alloc(1);
      let sent = 0;
      let read = 0;
      while (read < want.length) {
        if (sent < send.length) {
          const w = sys.write(fd, send, sent, Math.min(send.length - sent, 4096));
          if (w > 0) sent += w;
          else if (w !== -constants.EAGAIN) throw new Error(`write: ${w}`);
        }
        let r = sys.read(fd, one);
        if (r === -constants.EAGAIN) {
          await delay(1);
          continue;
        }
        for (; r === 1 && read < want.length; r = sys.read(fd, one)) got[read++] = one[0]!;
        if (r === 0) break;
      }
      expect(read).toBe(want.length);
      expect(got.equals(want)).toBe(true);
    } finally {
      sys.close(fd);
    }
  }, 60_000);
}
