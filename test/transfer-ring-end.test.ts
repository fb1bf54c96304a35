// The per-thread transfer ring of the uring, direct and auto methods (src/transfer/uring.ts):
// a thread that stops ends it for good — a transfer asked for afterwards fails with EBADF
// instead of making a ring (an eventfd and a ring fd) that nobody would close — while a
// thread that goes on (here, the test's own) may close its ring and transfer again.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeTransferRing } from '../dist/src/transfer/uring.js';
import { leakedSince, openFds } from './helpers/fds.js';
import { sha256, tcpPeer } from './helpers/peer.js';
import { constants, sys, transferFile, transferMethods } from './helpers/rawio.js';
import { titled, why } from './helpers/skips.js';

const SIZE = (1 << 20) + 5;
const EBADF = (constants as Record<string, number>).EBADF!;
let dir: string;
let fileFd = -1;
let data: Buffer;

beforeAll(() => {
  dir = mkdtempSync(join(process.cwd(), '.rawio-test-transfer-ring-end-'));
  data = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i++) data[i] = (i * 31 + 7) & 0xff;
  writeFileSync(join(dir, 'f'), data);
  fileFd = sys.open(join(dir, 'f'), constants.O_RDONLY);
});
afterAll(() => {
  sys.close(fileFd);
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(why.ring)(titled('the per-thread transfer ring', why.ring), () => {
  it('once a stopping thread ended it, transfers fail with EBADF and no ring is made again', async () => {
    const before = openFds();
    const w = new Worker(new URL('./fixtures/transfer-ring-end-worker.mjs', import.meta.url), {
      workerData: { fileFd, size: SIZE },
    });
    // Listened for from the start: a Worker that exits right after posting emits its last
    // message and 'exit' in one go, before a listener added once the message came.
    const exited = new Promise((r) => w.once('exit', r));
    const got = await new Promise<Record<string, unknown>>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    await exited;
    const ebadf = { code: 'EBADF', errno: -EBADF, syscall: 'io_uring_setup' };
    expect(got).toEqual({
      before: { sent: SIZE },
      transferRing: { ...ebadf, message: expect.stringMatching(/^EBADF: .*io_uring_setup .*stopping/) },
      uring: ebadf,
      direct: ebadf,
      auto: ebadf,
    });
    expect(leakedSince(before)).toEqual([]);
  }, 30_000);

  it('a thread that goes on may close its ring and transfer again', async () => {
    const before = openFds();
    for (let round = 0; round < 2; round++) {
      const peer = await tcpPeer();
      let n: number;
      try {
        n = await transferFile(peer.sockFd, fileFd, { method: 'uring' });
      } finally {
        sys.close(peer.sockFd);
      }
      expect(n).toBe(SIZE);
      expect((await peer.received).sha256).toBe(sha256(data));
      closeTransferRing();
    }
    expect(leakedSince(before)).toEqual([]);
  }, 30_000);

  // uring reads the next chunk while it sends this one: a send that fails leaves that read in
  // flight, and the ring closing then cancels it. Here the "file" is a pipe holding one chunk,
  // so the second read waits until the ring's close cancels it.
  it('a read left in flight by a failed send is no unhandled rejection when the ring closes', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    const [r, w] = sys.pipe({ size: 1 << 20 });
    const [a, b] = sys.socketpair();
    try {
      expect(sys.write(w, Buffer.alloc(128 << 10, 7))).toBe(128 << 10);
      sys.close(b); // the first send fails with EPIPE
      const job = { sockFd: a, fileFd: r, offset: 0, length: 256 << 10, wait: async () => {}, directio: 0 };
      await expect(transferMethods.uring!(job)).rejects.toMatchObject({ code: 'EPIPE' });
      closeTransferRing(); // cancels the second read, which nobody awaits
      // Node reports an unhandled rejection once the microtasks of the turn it happened in ran.
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      for (const fd of [a, r, w]) sys.close(fd);
    }
  });
});
