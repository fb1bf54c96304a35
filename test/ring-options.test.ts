/**
 * The ring setup options, each on and off, checked for correctness with real I/O: a
 * registered ring fd, IORING_SETUP_SUBMIT_ALL, IORING_SETUP_CQSIZE (on a Ring and on a
 * Proactor), recv bundles and incremental provided buffers (a Proactor echoing byte-exact
 * through its multishot recv, with few small buffers so that they are reused, bundled and
 * split). An option the kernel lacks skips with the probe's reason.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ringOptionSupport } from '../dist/src/sys/ring-options.js';
import { leakedSince, openFds } from './helpers/fds.js';
import { Proactor, Ring, probe, sys, type ProactorOptions } from './helpers/rawio.js';
import { titled, why } from './helpers/skips.js';

const support = Ring.supported() ? ringOptionSupport() : undefined;
const skipWhy = (o: keyof NonNullable<typeof support>) =>
  support === undefined ? why.ring : support[o].supported ? undefined : `not supported here: ${support[o].detail}`;

/** Echoes every byte back through a Proactor's multishot recv; resolves with what the client got. */
async function echoThrough(opts: ProactorOptions, payload: Buffer, chunk: number): Promise<Buffer> {
  const px = new Proactor(opts);
  const lfd = sys.listenTcp('127.0.0.1', 0);
  px.accept(
    lfd,
    (fd) => {
      if (fd < 0) return;
      px.recvMultishot(fd, (n, data) => {
        if (n <= 0) return void sys.close(fd);
        const copy = Buffer.from(data); // lent only during the call
        px.send(fd, copy, 0, copy.length, () => {});
      });
    },
    { multishot: true },
  );
  px.attach();
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const got: Buffer[] = [];
      let have = 0;
      const s = net.connect(sys.localPort(lfd), '127.0.0.1', () => {
        for (let at = 0; at < payload.length; at += chunk) s.write(payload.subarray(at, at + chunk));
      });
      s.on('data', (d) => {
        got.push(d);
        have += d.length;
        if (have >= payload.length) s.end();
      });
      s.on('close', () => resolve(Buffer.concat(got)));
      s.on('error', reject);
    });
  } finally {
    px.close();
    sys.close(lfd);
  }
}

describe.skipIf(why.ring)(titled('ring setup options', why.ring), () => {
  let before: Map<number, string>;
  beforeEach(() => (before = openFds()));
  afterEach(() => expect(leakedSince(before)).toEqual([]));

  it('rawio probe shows each option as supported or not', () => {
    const o = probe().ioUring.options!;
    for (const name of ['registerRingFd', 'submitAll', 'cqSize', 'recvBundle', 'incrementalBuffers'] as const) {
      expect(typeof o[name].supported).toBe('boolean');
      expect(o[name].detail).toMatch(/IORING|IOU_/);
    }
  });

  it.skipIf(skipWhy('registerRingFd'))(
    titled('registered ring fd: reads the same on and off', skipWhy('registerRingFd')),
    async () => {
      const data = randomBytes(100_000);
      const fds = sys.socketpair({ blocking: true });
      for (const registerRingFd of [true, false]) {
        const ring = new Ring({ registerRingFd });
        const got = Buffer.alloc(data.length);
        const w = ring.write(fds[0]!, data, -1);
        let n = 0;
        while (n < data.length) n += await ring.read(fds[1]!, got.subarray(n), -1);
        expect(await w).toBe(data.length);
        expect(got.equals(data)).toBe(true);
        ring.close();
      }
      fds.forEach((fd) => sys.close(fd));
    },
  );

  it.skipIf(skipWhy('submitAll'))(
    titled('submit-all: on by default, off when asked, a failing entry alone fails', skipWhy('submitAll')),
    async () => {
      for (const submitAll of [true, false]) {
        const ring = new Ring({ submitAll });
        expect((ring.setupFlags & (1 << 7)) !== 0).toBe(submitAll);
        const bad = ring.read(999_999, Buffer.alloc(8), 0).catch((e: { code: string }) => e.code);
        const good = ring.nop();
        expect(await bad).toBe('EBADF');
        expect(await good).toBe(0);
        ring.close();
      }
    },
  );

  it.skipIf(skipWhy('cqSize'))(
    titled('CQ sizing: the ring has the CQ asked for, and a small CQ loses nothing', skipWhy('cqSize')),
    async () => {
      const ring = new Ring({ entries: 8, cqEntries: 16 });
      expect(ring.cqEntries).toBe(16);
      const n = await Promise.all(Array.from({ length: 200 }, () => ring.nop()));
      expect(n).toEqual(new Array(200).fill(0));
      ring.close();
      const payload = randomBytes(1 << 20);
      for (const cqEntries of [8, 4096]) {
        const got = await echoThrough({ entries: 8, cqEntries, recvBuffers: { count: 8, size: 4096 } }, payload, 65536);
        expect(got.equals(payload)).toBe(true);
      }
    },
  );

  it.skipIf(skipWhy('registerRingFd'))(
    titled('a Proactor with a registered ring fd echoes byte-exact', skipWhy('registerRingFd')),
    async () => {
      const payload = randomBytes(1 << 20);
      for (const registerRingFd of [true, false])
        expect((await echoThrough({ registerRingFd }, payload, 65536)).equals(payload)).toBe(true);
    },
  );

  it.skipIf(skipWhy('recvBundle'))(
    titled('recv bundles: byte-exact on and off, with buffers reused many times', skipWhy('recvBundle')),
    async () => {
      const payload = randomBytes(4 << 20);
      for (const bundle of [true, false]) {
        const got = await echoThrough({ recvBuffers: { count: 8, size: 4096, bundle } }, payload, 200_000);
        expect(got.length).toBe(payload.length);
        expect(got.equals(payload)).toBe(true);
      }
    },
  );

  it.skipIf(skipWhy('incrementalBuffers'))(
    titled('incremental buffers: byte-exact on and off, small and large writes', skipWhy('incrementalBuffers')),
    async () => {
      for (const chunk of [7, 1500, 100_000]) {
        const payload = randomBytes(chunk < 100 ? 20_000 : 2 << 20);
        for (const incremental of [true, false]) {
          const got = await echoThrough({ recvBuffers: { count: 4, size: 16384, incremental } }, payload, chunk);
          expect(got.equals(payload)).toBe(true);
        }
      }
    },
  );

  it('checks the options', () => {
    expect(() => new Ring({ submitAll: 1 as never })).toThrow(TypeError);
    expect(() => new Ring({ registerRingFd: 'yes' as never })).toThrow(TypeError);
    expect(() => new Proactor({ cqEntries: 0 })).toThrow(RangeError);
    // A CQ smaller than the SQ, once the kernel has rounded both up to powers of two, is said
    // before io_uring_setup, whose EINVAL would not say why.
    expect(() => new Ring({ entries: 256, cqEntries: 128 })).toThrow(
      /"cqEntries" is out of range\. It must be >= entries \(256/,
    );
    expect(() => new Proactor({ entries: 256, cqEntries: 64 })).toThrow(RangeError);
    expect(() => new Proactor({ recvBuffers: { bundle: true, incremental: true } })).toThrow(RangeError);
    expect(() => new Proactor({ recvBuffers: { bundle: 1 as never } })).toThrow(TypeError);
  });
});
