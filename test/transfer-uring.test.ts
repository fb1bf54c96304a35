// transferFile's io_uring methods (`uring`, `direct`, `auto`), byte-exact over loopback TCP,
// in the shape of test/transfer.test.ts: sizes around the 4 KiB grid, offsets and lengths,
// 64 MiB from an odd offset, EAGAIN with a slow reader, a vanished peer; plus which path
// `direct` and `auto` really took.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directStats } from '../dist/src/transfer/direct.js';
import { transferRing } from '../dist/src/transfer/uring.js';
import { leakedSince, openFds } from './helpers/fds.js';
import { closeFiles, openRandomFiles } from './helpers/files.js';
import { sha256, tcpPeer } from './helpers/peer.js';
import { Ring, sys, transferFile, waitWritable, type TransferMethodName } from './helpers/rawio.js';
import { titled, why } from './helpers/skips.js';

const METHODS: TransferMethodName[] = ['uring', 'direct', 'auto'];
const SIZES = [1, 4095, 4097, (1 << 20) + 1];
const BIG = 64 << 20;
const DIRECTIO = 512 << 10; // auto: direct at and above this many bytes

let dir: string;
const files = new Map<number, { fd: number; data: Buffer }>();
let fdsBefore: Map<number, string>;
const file = (size: number) => files.get(size)!;

beforeAll(() => {
  if (Ring.supported()) transferRing(); // the per-thread ring lives as long as the thread
  fdsBefore = openFds();
  // on the project's disk: tmpfs refused O_DIRECT before 6.6
  dir = mkdtempSync(join(process.cwd(), '.rawio-test-transfer-uring-'));
  openRandomFiles(dir, [...SIZES, BIG], files);
});

afterAll(() => {
  closeFiles(files);
  rmSync(dir, { recursive: true, force: true });
  expect(leakedSince(fdsBefore)).toEqual([]);
});

async function send(size: number, opts: Parameters<typeof transferFile>[2], peerOpts = {}) {
  const peer = await tcpPeer(peerOpts);
  let n: number;
  try {
    n = await transferFile(peer.sockFd, file(size).fd, { directio: DIRECTIO, ...opts });
  } finally {
    sys.close(peer.sockFd);
  }
  return { n, got: await peer.received };
}

describe.skipIf(why.ring).each(METHODS)(titled('transferFile %s', why.ring), (method) => {
  it.each(SIZES)('is byte-exact for %i bytes with offsets and lengths', async (size) => {
    const half = size >> 1;
    const cases = [
      { from: 0, to: size },
      { offset: Math.min(7, size), from: Math.min(7, size), to: size },
      { offset: half, length: (size >> 2) + 1, from: half, to: Math.min(size, half + (size >> 2) + 1) },
      { length: size + 100, from: 0, to: size },
    ];
    for (const c of cases) {
      const { n, got } = await send(size, { method, offset: c.offset, length: c.length });
      const want = file(size).data.subarray(c.from, c.to);
      expect(n).toBe(want.length);
      expect(got.sha256).toBe(sha256(want));
    }
  });

  it('is byte-exact for 64 MiB from an odd offset, on the path it claims', async () => {
    const direct0 = directStats.bytes;
    const { n, got } = await send(BIG, { method, offset: 4097 });
    expect(n).toBe(BIG - 4097);
    expect(got.sha256).toBe(sha256(file(BIG).data.subarray(4097)));
    // direct (and auto above DIRECTIO) read the aligned middle [8192, BIG) with O_DIRECT
    expect(directStats.bytes - direct0).toBe(method === 'uring' ? 0 : BIG - 8192);
  });

  // io_uring's send on a full socket arms its own poll and completes when there is room,
  // so the job's `wait` is normally not called at all; the bytes must still be exact, and
  // onSent is the only progress a caller sees meanwhile.
  it('survives a tiny send buffer and a slow reader, and resumes exactly, reporting each send', async () => {
    const size = (1 << 20) + 1;
    const peer = await tcpPeer({ slow: true });
    sys.setBufferSizes(peer.sockFd, { send: 4096 });
    const sends: number[] = [];
    const n = await transferFile(peer.sockFd, file(size).fd, {
      method,
      offset: 3,
      wait: waitWritable,
      directio: DIRECTIO,
      onSent: (bytes) => sends.push(bytes),
    });
    sys.close(peer.sockFd);
    const got = await peer.received;
    expect(n).toBe(size - 3);
    expect(sends.length).toBeGreaterThan(1);
    expect(sends.every((b) => b > 0)).toBe(true);
    expect(sends.reduce((a, b) => a + b, 0)).toBe(n);
    expect(got.sha256).toBe(sha256(file(size).data.subarray(3)));
  });

  it('rejects with the socket error when the peer goes away', async () => {
    const peer = await tcpPeer();
    peer.reader.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 20));
    const err = await transferFile(peer.sockFd, file(BIG).fd, { method, directio: DIRECTIO }).catch((e: unknown) => e);
    sys.close(peer.sockFd);
    expect(err).toMatchObject({ code: expect.stringMatching(/^(EPIPE|ECONNRESET)$/) });
  });
});

describe.skipIf(why.ring)(titled('transferFile auto', why.ring), () => {
  it('uses sendfile below directio and direct at or above it', async () => {
    const size = (1 << 20) + 1;
    let direct0 = directStats.bytes;
    let r = await send(size, { method: 'auto', directio: size + 1 });
    expect(r.got.sha256).toBe(sha256(file(size).data));
    expect(directStats.bytes).toBe(direct0); // sendfile
    direct0 = directStats.bytes;
    r = await send(size, { method: 'auto', directio: size });
    expect(r.got.sha256).toBe(sha256(file(size).data));
    expect(directStats.bytes - direct0).toBe(1 << 20); // direct: the aligned part
  });
});
