/**
 * The blocking session (iterative, thread-per-connection) corks a pipelined batch: the
 * replies to one read's requests leave in one write(2)/writev(2), not one each. Seen from
 * outside, with real syscalls: a child process serves one connection with serveBlocking on
 * an inherited socketpair end (fd 3, test/fixtures/blocking-serve.mjs), under strace(1)
 * where the syscalls are counted, while this process is the client. Also a batch far larger
 * than the socket buffer, the client reading only once the server has been refused
 * (EAGAIN): a partial writev, the wait, and more than writev's 1024 parts, bytes exact; and
 * a batch that mixes file bodies between small replies, in order and bytes exact; and a
 * graceful close that comes while a batch waits for the client: the batch goes out whole
 * before the write side is shut down.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { sys } from '../helpers/rawio.js';
import { eventually } from '../helpers/wait.js';
import { createProtocol } from '../../dist/src/protocols/index.js';
import { FdSlot, serveBlocking } from '../../dist/src/models/blocking-session.js';
import { CONN_DEFAULTS } from '../../dist/src/models/conn-core.js';
import { Stats } from '../../dist/src/models/stats.js';
import { leakedSince, openFds } from '../helpers/fds.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/blocking-serve.mjs', import.meta.url));
const EAGAIN_ERRNO = 11;
const hasStrace = spawnSync('strace', ['-o', '/dev/null', 'true']).status === 0;
/** Why the syscall-counting cases skip: they read strace's log of the serving process. */
const NO_STRACE =
  'strace cannot run here (not installed, or ptrace refused): the write syscalls of a batch cannot be counted';
const dir = mkdtempSync(join(tmpdir(), 'rawio-blocking-cork-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Call {
  name: string;
  ret: number;
  err: string | undefined;
}

/** The write(2) and writev(2) calls on fd 3 in a trace of the child's main thread, in order. */
function callsOn3(trace: string): Call[] {
  const out: Call[] = [];
  for (const line of trace.split('\n')) {
    const m = /^(write|writev)\(3, .*\)\s+= (-?\d+)(?: ([A-Z]+))?/.exec(line);
    if (m) out.push({ name: m[1]!, ret: Number(m[2]), err: m[3] });
  }
  return out;
}

function readTrace(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

interface Run {
  protocol: string;
  options?: object;
  maxOutput?: number;
  /** Trace the child's writes to this file. */
  trace?: string;
  /** Read nothing until the trace so far satisfies this. */
  holdUntil?: (calls: Call[]) => boolean;
}

/** Sends `req` (and EOF) at once, serves it in a child, and returns every byte the client reads. */
async function serveOne(req: Buffer, run: Run): Promise<Buffer> {
  const [a, b] = sys.socketpair();
  expect(sys.write(b, req)).toBe(req.length); // the whole batch is there for the server's first read
  sys.shutdown(b, 'write');
  const args = [FIXTURE, JSON.stringify({ protocol: run.protocol, options: run.options, maxOutput: run.maxOutput })];
  const [cmd, argv] =
    run.trace === undefined
      ? [process.execPath, args]
      : ['strace', ['-o', run.trace, '-s', '0', '-e', 'trace=write,writev', process.execPath, ...args]];
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe', a] });
  sys.close(a);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    if (run.holdUntil) {
      const hold = run.holdUntil;
      expect(await eventually(() => hold(callsOn3(readTrace(run.trace!))))).toBe(true);
    }
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(65536);
    let eof = false;
    const done = await eventually(() => {
      for (;;) {
        const n = sys.read(b, buf);
        if (n > 0) chunks.push(Buffer.from(buf.subarray(0, n)));
        else if (n === -EAGAIN_ERRNO) return false;
        else return (eof = true);
      }
    }, 60_000);
    expect(done && eof).toBe(true);
    expect(await exited, stderr).toBe(0);
    return Buffer.concat(chunks);
  } finally {
    sys.close(b);
    if (child.exitCode === null) child.kill();
  }
}

const resp = (...args: (string | Buffer)[]): Buffer =>
  Buffer.concat([
    Buffer.from(`*${args.length}\r\n`),
    ...args.flatMap((x) => [Buffer.from(`$${x.length}\r\n`), Buffer.from(x), Buffer.from('\r\n')]),
  ]);

describe('blocking session: one write per pipelined batch', () => {
  it('16 pipelined requests in one read: one write(2)/writev(2) on the socket, bytes exact', async (ctx) => {
    if (!hasStrace) ctx.skip(NO_STRACE);
    const trace = join(dir, 'pings.trace');
    const got = await serveOne(Buffer.concat(Array.from({ length: 16 }, () => resp('PING'))), {
      protocol: 'resp',
      trace,
    });
    expect(got.toString()).toBe('+PONG\r\n'.repeat(16));
    // Per reply it would be 16 writes of 7 bytes.
    expect(callsOn3(readTrace(trace))).toEqual([
      { name: expect.stringMatching(/^writev?$/), ret: 16 * 7, err: undefined },
    ]);
  });

  it("a batch far past the socket buffer and writev's 1024 parts, unread until refused: partial writev, EAGAIN, then bytes exact", async (ctx) => {
    if (!hasStrace) ctx.skip(NO_STRACE);
    const trace = join(dir, 'big.trace');
    const value = randomBytes(1100); // larger than a copied write: each reply its own part
    const n = 1100;
    const req = Buffer.concat([resp('SET', 'k', value), ...Array.from({ length: n }, () => resp('GET', 'k'))]);
    const one = Buffer.concat([Buffer.from(`$${value.length}\r\n`), value, Buffer.from('\r\n')]);
    const want = Buffer.concat([Buffer.from('+OK\r\n'), ...Array.from({ length: n }, () => one)]);
    const got = await serveOne(req, {
      protocol: 'resp',
      maxOutput: 8 << 20, // the whole batch in one cork
      trace,
      holdUntil: (calls) => calls.some((c) => c.err === 'EAGAIN'),
    });
    expect(got.length).toBe(want.length);
    expect(got.equals(want)).toBe(true);
    const calls = callsOn3(readTrace(trace));
    // The batch was offered at once, and the kernel took part of it.
    expect(calls[0]!.name).toBe('writev');
    expect(calls[0]!.ret).toBeGreaterThan(0);
    expect(calls[0]!.ret).toBeLessThan(want.length);
    expect(calls.some((c) => c.err === 'EAGAIN')).toBe(true);
    expect(calls.filter((c) => c.ret > 0).reduce((s, c) => s + c.ret, 0)).toBe(want.length);
  });

  it('file bodies between small replies in one batch: in order, bytes exact', async () => {
    const root = mkdtempSync(join(dir, 'root-'));
    const small = Buffer.from('small file\n');
    const big = randomBytes(700 << 10); // past the socket buffer: the body waits for the client
    writeFileSync(join(root, 'small.txt'), small);
    writeFileSync(join(root, 'big.bin'), big);
    writeFileSync(join(root, 'empty'), '');
    const asks: [method: string, path: string, range: string | undefined, status: number, body: Buffer][] = [
      ['GET', '/small.txt', undefined, 200, small],
      ['GET', '/big.bin', undefined, 200, big],
      ['HEAD', '/small.txt', undefined, 200, Buffer.alloc(0)],
      ['GET', '/empty', undefined, 200, Buffer.alloc(0)],
      ['GET', '/big.bin', 'bytes=5-9', 206, big.subarray(5, 10)],
      ['GET', '/missing', undefined, 404, Buffer.alloc(0)],
      ['GET', '/big.bin', undefined, 200, big],
      ['GET', '/small.txt', undefined, 200, small],
    ];
    const req = Buffer.from(
      asks
        .map(([m, p, range]) => `${m} ${p} HTTP/1.1\r\nHost: x\r\n${range ? `Range: ${range}\r\n` : ''}\r\n`)
        .join(''),
    );
    const raw = await serveOne(req, { protocol: 'static', options: { root } });
    let at = 0;
    for (const [method, path, , status, body] of asks) {
      const end = raw.indexOf('\r\n\r\n', at);
      expect(end, `${method} ${path}: a head`).toBeGreaterThan(at);
      const head = raw.toString('latin1', at, end);
      expect(head.startsWith(`HTTP/1.1 ${status} `), `${method} ${path}: ${head}`).toBe(true);
      const len = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
      const bodyLen = method === 'HEAD' || status === 404 ? (method === 'HEAD' ? 0 : len) : len;
      if (status !== 404)
        expect(len, `${method} ${path}: Content-Length`).toBe(method === 'HEAD' ? small.length : body.length);
      const got = raw.subarray(end + 4, end + 4 + bodyLen);
      if (status !== 404) expect(got.equals(body), `${method} ${path}: body`).toBe(true);
      at = end + 4 + bodyLen;
    }
    expect(at).toBe(raw.length);
  });

  // 900 replies (~1 MB): one batch, several times the socketpair's buffer, within maxOutput;
  // 1000: past maxOutput, so requests are left for a next batch when the drain comes, which
  // answers them too, after this one.
  it.each([900, 1000])(
    'a drain seen while a batch waits for the client (%i replies): every held byte, then EOF',
    async (n) => {
      const before = openFds();
      const [a, b] = sys.socketpair();
      const value = randomBytes(1100);
      const req = Buffer.concat([resp('SET', 'k', value), ...Array.from({ length: n }, () => resp('GET', 'k'))]);
      const one = Buffer.concat([Buffer.from(`$${value.length}\r\n`), value, Buffer.from('\r\n')]);
      const want = Buffer.concat([Buffer.from('+OK\r\n'), ...Array.from({ length: n }, () => one)]);
      expect(sys.write(b, req)).toBe(req.length);
      const chunks: Buffer[] = [];
      const buf = Buffer.alloc(65536);
      const readSome = (): number => {
        const r = sys.read(b, buf);
        if (r > 0) chunks.push(Buffer.from(buf.subarray(0, r)));
        return r;
      };
      // The session and this client share the thread: the client reads at the session's ticks,
      // where it looks at the drain signal. The signal turns on at the first tick with replies
      // already in the socket: the session is then asleep in the middle of the batch (it cannot
      // finish a batch larger than the socket buffer before the client reads), and the drain
      // ends the connection from there. The client still has its write side open then, so the
      // drain finds the connection idle with nothing to read and ends it at once (after the
      // held bytes); at a later tick the client shuts its write side, so the lingering close
      // that follows the batch ends at its EOF.
      const eventFd = sys.eventfd();
      let on = false;
      let ticks = 0;
      const drain = {
        fd: eventFd,
        get on(): boolean {
          if (!on && readSome() > 0) on = true;
          if (!on) return false;
          if (++ticks === 2) sys.shutdown(b, 'write');
          while (readSome() > 0); // all there is, so that the socket polls writable again
          return true;
        },
      };
      const protocol = createProtocol('resp');
      const stats = new Stats(1);
      const opts = { protocol, stats, limits: CONN_DEFAULTS, maxQueue: 64 << 20, transfer: 'auto', directio: 0, drain };
      await serveBlocking(a, new FdSlot(FdSlot.create()), opts as never, stats.admit(0, a));
      sys.close(a);
      sys.setBlocking(b, true);
      while (readSome() > 0);
      const end = sys.read(b, buf);
      sys.close(b);
      sys.close(eventFd);
      protocol.close();
      expect(ticks).toBeGreaterThanOrEqual(2); // the drain came in the middle of the batch, which went on
      const got = Buffer.concat(chunks);
      expect(got.length).toBe(want.length);
      expect(got.equals(want)).toBe(true);
      expect(end).toBe(0); // EOF: the write side shut down after the batch, not a reset
      expect(leakedSince(before)).toEqual([]);
    },
  );
});
