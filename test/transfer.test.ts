import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leakedSince, openFds } from './helpers/fds.js';
import { closeFiles, openRandomFiles } from './helpers/files.js';
import { sha256, tcpPeer } from './helpers/peer.js';
import { eventually } from './helpers/wait.js';
import { POOL_BUFFER_MAX, readwritePoolStats } from '../dist/src/transfer/readwrite.js';
import {
  closePipePool,
  constants,
  pooledPipes,
  registerTransferMethod,
  sys,
  transferFile,
  transferMethodNames,
  transferMethods,
  waitWritable,
  type TransferMethodName,
} from './helpers/rawio.js';

const METHODS: TransferMethodName[] = ['readwrite', 'mmap', 'sendfile', 'splice'];
const SIZES = [0, 1, 4095, 4096, 4097, (1 << 20) + 1];
const BIG = 64 << 20;

let dir: string;
const files = new Map<number, { fd: number; data: Buffer }>();
let fdsBefore: Map<number, string>;

function file(size: number) {
  return files.get(size)!;
}

beforeAll(() => {
  fdsBefore = openFds();
  dir = mkdtempSync(join(tmpdir(), 'rawio-transfer-'));
  openRandomFiles(dir, [...SIZES, BIG], files);
});

afterAll(() => {
  closeFiles(files);
  closePipePool();
  rmSync(dir, { recursive: true, force: true });
  expect(leakedSince(fdsBefore)).toEqual([]);
});

/** Sends via transferFile to a fresh loopback peer; returns the count and what arrived. */
async function send(size: number, opts: Parameters<typeof transferFile>[2], peerOpts = {}) {
  const peer = await tcpPeer(peerOpts);
  let n: number;
  try {
    n = await transferFile(peer.sockFd, file(size).fd, opts);
  } finally {
    sys.close(peer.sockFd);
  }
  return { n, got: await peer.received };
}

/** (offset, length) cases for a file of `size` bytes, with what must arrive. */
function cases(size: number): { offset?: number; length?: number; from: number; to: number }[] {
  const half = size >> 1;
  return [
    { from: 0, to: size },
    { offset: Math.min(7, size), from: Math.min(7, size), to: size },
    { offset: half, length: (size >> 2) + 1, from: half, to: Math.min(size, half + (size >> 2) + 1) },
    { length: size + 100, from: 0, to: size }, // beyond EOF: what exists
    { offset: size + 10, length: 5, from: size, to: size }, // past the end: nothing
  ];
}

describe.each(METHODS)('transferFile %s', (method) => {
  it.each(SIZES)('is byte-exact for %i bytes with offsets and lengths', async (size) => {
    for (const c of cases(size)) {
      const { n, got } = await send(size, { method, offset: c.offset, length: c.length });
      const want = file(size).data.subarray(c.from, c.to);
      expect(n).toBe(want.length);
      expect(got.bytes).toBe(want.length);
      expect(got.sha256).toBe(sha256(want));
    }
  });

  it('is byte-exact for 64 MiB (from an odd offset)', async () => {
    const { n, got } = await send(BIG, { method, offset: 4097 });
    expect(n).toBe(BIG - 4097);
    expect(got.sha256).toBe(sha256(file(BIG).data.subarray(4097)));
  });

  it('waits on EAGAIN with a tiny send buffer and a slow reader, and resumes exactly, reporting each send', async () => {
    let waits = 0;
    const wait = (fd: number) => {
      waits++;
      return waitWritable(fd);
    };
    const sends: number[] = [];
    const onSent = (bytes: number) => sends.push(bytes);
    const size = (1 << 20) + 1;
    const peer = await tcpPeer({ slow: true });
    sys.setBufferSizes(peer.sockFd, { send: 4096 });
    const n = await transferFile(peer.sockFd, file(size).fd, { method, offset: 3, wait, chunkSize: 65536, onSent });
    sys.close(peer.sockFd);
    const got = await peer.received;
    expect(waits).toBeGreaterThan(0);
    // The sends the kernel took, one report each, as they went: more than one on a 4 KiB buffer.
    expect(sends.length).toBeGreaterThan(1);
    expect(sends.every((b) => b > 0)).toBe(true);
    expect(sends.reduce((a, b) => a + b, 0)).toBe(n);
    expect(n).toBe(size - 3);
    expect(got.sha256).toBe(sha256(file(size).data.subarray(3)));
  });

  it('rejects with the socket error when the peer goes away, leaking nothing', async () => {
    const before = openFds();
    const peer = await tcpPeer();
    peer.reader.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 20));
    const err = await transferFile(peer.sockFd, file(BIG).fd, { method }).catch((e: unknown) => e);
    sys.close(peer.sockFd);
    expect(err).toMatchObject({ code: expect.stringMatching(/^(EPIPE|ECONNRESET)$/) });
    // A pipe that failed while holding bytes is closed, never pooled.
    if (method === 'splice') expect(pooledPipes()).toBe(0);
    closePipePool();
    expect(leakedSince(before)).toEqual([]);
  });

  // The default wait's poll handle sees the peer's reset as EPOLLERR (libuv: UV_EBADF); the
  // transfer must reject with the socket's own error, as a syscall would have reported it.
  it("rejects with the peer's error, not the poll's, when the peer goes away during a wait", async () => {
    const full = (fd: number) => sys.write(fd, Buffer.alloc(1)) === -constants.EAGAIN;
    const peer = await tcpPeer();
    peer.reader.pause();
    sys.setBufferSizes(peer.sockFd, { send: 4096 });
    const tcp = transferFile(peer.sockFd, file(BIG).fd, { method }).catch((e: unknown) => e);
    expect(await eventually(() => full(peer.sockFd))).toBe(true); // the transfer is waiting
    peer.reader.resetAndDestroy();
    expect(await tcp).toMatchObject({ code: expect.stringMatching(/^(ECONNRESET|EPIPE)$/), syscall: 'write' });
    sys.close(peer.sockFd);

    const [r, w] = sys.pipe();
    const pipe = transferFile(w, file(BIG).fd, { method }).catch((e: unknown) => e);
    expect(await eventually(() => full(w))).toBe(true);
    sys.close(r);
    expect(await pipe).toMatchObject({ code: 'EPIPE', syscall: 'write' });
    sys.close(w);
    closePipePool();
  });
});

// transferFile sends a region of a regular file: anything else is refused, by every method
// alike, with nothing sent (a pipe or a device used to send 0 bytes and resolve 0; a directory
// failed in each method's own way).
describe.each(transferMethodNames)('transferFile %s from a file that is not regular', (method) => {
  const kinds: [string, RegExp, () => { fd: number; also: number[] }][] = [
    [
      'a pipe holding bytes',
      /a pipe \(FIFO\)/,
      () => {
        const [r, w] = sys.pipe();
        expect(sys.write(w, Buffer.from('bytes in the pipe'))).toBe(17);
        return { fd: r, also: [w] };
      },
    ],
    ['/dev/zero', /a character device/, () => ({ fd: sys.open('/dev/zero', constants.O_RDONLY), also: [] })],
    [
      'a directory',
      /a directory/,
      () => ({ fd: sys.open(tmpdir(), constants.O_RDONLY | constants.O_DIRECTORY), also: [] }),
    ],
    [
      'a socket',
      /a socket/,
      () => {
        const [a, b] = sys.socketpair();
        return { fd: a, also: [b] };
      },
    ],
  ];
  it.each(kinds)('%s: a TypeError naming its kind, nothing sent', async (_name, kind, open) => {
    const fdsAtStart = openFds();
    const { fd, also } = open();
    const [sock, peer] = sys.socketpair();
    try {
      for (const length of [undefined, 100]) {
        const e = await transferFile(sock, fd, { method, ...(length === undefined ? {} : { length }) }).catch(
          (x: unknown) => x,
        );
        expect(e).toBeInstanceOf(TypeError);
        expect(e).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
        expect(String(e)).toMatch(/"fileFd" argument must be an open regular file/);
        expect(String(e)).toMatch(kind);
      }
      expect(sys.read(peer, new Uint8Array(64))).toBe(-constants.EAGAIN);
    } finally {
      for (const f of [fd, ...also, sock, peer]) sys.close(f);
    }
    expect(leakedSince(fdsAtStart)).toEqual([]);
  });
});

describe('transferFile options', () => {
  it('checks arguments before any syscall', async () => {
    const { fd } = file(4096);
    await expect(transferFile(-1, fd, { method: 'sendfile' })).rejects.toThrow(RangeError);
    await expect(transferFile(1, fd, { method: 'sendfile', offset: -1 })).rejects.toThrow(RangeError);
    await expect(transferFile(1, fd, { method: 'sendfile', length: 1.5 })).rejects.toThrow(RangeError);
    await expect(transferFile(1, fd, { method: 'sendfile', offset: '1' as unknown as number })).rejects.toThrow(
      TypeError,
    );
    await expect(transferFile(1, fd, { method: 'splice', pipeSize: 0 })).rejects.toThrow(RangeError);
    await expect(
      transferFile(1, fd, { method: 'sendfile', onSent: 1 as unknown as (bytes: number) => void }),
    ).rejects.toThrow(TypeError);
    await expect(transferFile(1, fd, { method: 'nope' as TransferMethodName })).rejects.toThrow(TypeError);
    for (const method of ['toString', 'constructor', 'hasOwnProperty', '__proto__'])
      await expect(transferFile(1, fd, { method: method as TransferMethodName })).rejects.toThrow(TypeError);
    await expect(transferFile(1, fd, null as unknown as { method: 'sendfile' })).rejects.toThrow(TypeError);
  });

  it('readwrite allocates no more than the body needs, and pools no large buffer', async () => {
    const before = process.memoryUsage().arrayBuffers;
    const small = await send(4096, { method: 'readwrite', chunkSize: 512 << 20 });
    expect(small.got.sha256).toBe(sha256(file(4096).data));
    // A 4 KiB body with a 512 MiB chunkSize: a 4 KiB buffer, not a 512 MiB one kept in the pool.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 << 20);
    const big = await send(BIG, { method: 'readwrite', chunkSize: 4 << 20, length: 16 << 20 });
    expect(big.got.sha256).toBe(sha256(file(BIG).data.subarray(0, 16 << 20)));
    const pooled = readwritePoolStats();
    expect(pooled.buffers).toBeGreaterThan(0);
    expect(pooled.bytes).toBeLessThanOrEqual(pooled.buffers * POOL_BUFFER_MAX);
    // Page-aligned, each: the kernel's copies into a buffer a few bytes past a page start run
    // several times slower (store-to-load 4 KiB aliasing with the page-cache source).
    expect(pooled.pageAligned).toBe(pooled.buffers);
  });

  // Unprivileged, F_SETPIPE_SZ is EPERM over pipe-max-size (and over this user's share of
  // pipe buffers, with many transfers at once): the body still goes out, in smaller rounds.
  it('splice sends the body when the kernel refuses its pipeSize', async () => {
    const tooBig = 4 * Number(readFileSync('/proc/sys/fs/pipe-max-size', 'utf8'));
    const { n, got } = await send(BIG, { method: 'splice', pipeSize: tooBig, length: 8 << 20 });
    expect(n).toBe(8 << 20);
    expect(got.sha256).toBe(sha256(file(BIG).data.subarray(0, 8 << 20)));
    closePipePool();
  });

  it('splice honours pipeSize and pools only empty pipes', async () => {
    closePipePool();
    const sizes: number[] = [];
    registerTransferMethod('probe-pipe', async (job) => {
      sizes.push(job.pipeSize ?? 0);
      return transferMethods.splice!(job);
    });
    const { n, got } = await send(BIG, {
      method: 'probe-pipe' as TransferMethodName,
      pipeSize: 1 << 20,
      length: 8 << 20,
    });
    expect(sizes).toEqual([1 << 20]);
    expect(pooledPipes()).toBe(1); // emptied, so pooled for the next transfer
    expect(n).toBe(8 << 20);
    expect(got.sha256).toBe(sha256(file(BIG).data.subarray(0, 8 << 20)));
    const [r, w] = sys.pipe({ size: 1 << 20 });
    expect(sys.pipeSize(w)).toBe(1 << 20);
    sys.close(r);
    sys.close(w);
    delete transferMethods['probe-pipe'];
  });
});
