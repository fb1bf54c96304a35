// transferFile's io_uring methods (`uring`, `direct`, `auto`), byte-exact over loopback TCP:
// whole files, unaligned head and tail, small files, and tmpfs.
import { mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { leakedSince, openFds } from './helpers/fds.js';
import { Ring, sys } from './helpers/rawio.js';
import { pattern, scratchDir } from './helpers/uring.js';
import type { TransferJob, TransferMethod } from '../dist/src/transfer/job.js';
import { directStats, directTransfer } from '../dist/src/transfer/direct.js';
import { uringTransfer } from '../dist/src/transfer/uring.js';

const methods: [string, TransferMethod][] = [
  ['uring', uringTransfer],
  ['direct', directTransfer],
];

/** Sends with `method` from `file` and receives on the other end of a loopback connection. */
async function roundTrip(method: TransferMethod, path: string, offset: number, length: number): Promise<Buffer> {
  const lfd = sys.listenTcp('127.0.0.1', 0);
  const c = sys.connectTcp('127.0.0.1', sys.localPort(lfd));
  let s = -1;
  while ((s = sys.accept(lfd)) < 0) await new Promise((r) => setTimeout(r, 1));
  sys.setBufferSizes(c, { send: 65536 }); // small socket buffers: EAGAIN happens
  const fd = openSync(path, 'r');
  const rx = new Ring();
  const got = Buffer.alloc(length);
  const receiving = (async () => {
    let n = 0;
    while (n < length) {
      const r = await rx.recv(s, got, { offset: n });
      if (r === 0) break;
      n += r;
    }
    return n;
  })();
  const job: TransferJob = {
    sockFd: c,
    fileFd: fd,
    offset,
    length,
    wait: () => new Promise((r) => setTimeout(r, 1)),
    directio: 1 << 20,
  };
  try {
    expect(await method(job)).toBe(length);
    expect(await receiving).toBe(length);
  } finally {
    rx.close();
    for (const f of [fd, c, s, lfd]) closeSync(f);
  }
  return got;
}

describe.skipIf(!Ring.supported())('transfer methods over io_uring', () => {
  let scratch: ReturnType<typeof scratchDir>;
  let before: Map<number, string>;
  const data = pattern(3 * (1 << 20) + 12345, 21);
  let file: string;
  beforeAll(() => {
    scratch = scratchDir();
    file = join(scratch.dir, 'big');
    writeFileSync(file, data);
  });
  afterAll(() => scratch.remove());
  beforeEach(() => (before = openFds()));
  afterEach(() =>
    expect(leakedSince(before).filter((l) => !l.includes('anon_inode:[io_uring]') && !l.includes('eventfd'))).toEqual(
      [],
    ),
  );

  for (const [name, method] of methods) {
    it(`${name}: a whole file, byte-exact`, async () => {
      const direct0 = directStats.bytes;
      const got = await roundTrip(method, file, 0, data.length);
      expect(got.equals(data)).toBe(true);
      // direct reads the aligned middle with O_DIRECT; uring never does
      expect(directStats.bytes - direct0).toBe(name === 'direct' ? Math.floor(data.length / 4096) * 4096 : 0);
    });
    it(`${name}: an unaligned range (head and tail outside the 4 KiB grid)`, async () => {
      const got = await roundTrip(method, file, 1001, 2_000_003);
      expect(got.equals(data.subarray(1001, 2_001_004))).toBe(true);
    });
    it(`${name}: a small range`, async () => {
      const got = await roundTrip(method, file, 5, 100);
      expect(got.equals(data.subarray(5, 105))).toBe(true);
    });
  }

  // tmpfs refused O_DIRECT before 6.6 (direct then falls back to `uring`); either way the
  // bytes must be exact.
  it('direct from tmpfs (/dev/shm), byte-exact whether or not O_DIRECT is taken', async () => {
    const dir = mkdtempSync('/dev/shm/rawio-uring-');
    try {
      const p = join(dir, 'f');
      writeFileSync(p, data.subarray(0, 1 << 20));
      const got = await roundTrip(directTransfer, p, 7, (1 << 20) - 7);
      expect(got.equals(data.subarray(7, 1 << 20))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
