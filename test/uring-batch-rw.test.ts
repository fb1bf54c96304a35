// The Ring's batch reads and writes (prepRead, prepWrite), the path the uring-read bench
// drives: every argument checked before an SQE is filled, every byte where it belongs with
// plain and O_DIRECT files, Buffers and bare Uint8Arrays mixed, and no fd left behind.
import { closeSync, openSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { leakedSince, openFds } from './helpers/fds.js';
import { Ring, constants } from './helpers/rawio.js';
import { titled, why } from './helpers/skips.js';
import { alignedView, makeFile, pattern, scratchFile } from './helpers/uring.js';

/** Waits for `count` batch completions; returns res by user data. */
function reapAll(ring: Ring, count: number): Map<number, number> {
  const out = new Int32Array(3 * count);
  const got = new Map<number, number>();
  while (got.size < count) {
    ring.submit(1);
    const n = ring.reap(out, 0);
    for (let i = 0; i < n; i++) got.set(out[3 * i]!, out[3 * i + 1]!);
  }
  return got;
}

describe.skipIf(why.ring)(titled('Ring batch prepRead / prepWrite', why.ring), () => {
  const data = pattern(1 << 20, 3);
  const scratch = scratchFile(data);

  it('rejects bad arguments with TypeError or RangeError and fills no SQE', () => {
    const ring = new Ring({ entries: 8, attach: false });
    const buf = Buffer.alloc(16);
    for (const prep of [ring.prepRead.bind(ring), ring.prepWrite.bind(ring)]) {
      expect(() => prep('3' as unknown as number, buf, 0, 16, 1)).toThrow(TypeError);
      expect(() => prep(-1, buf, 0, 16, 1)).toThrow(RangeError);
      expect(() => prep(0, 'abc' as unknown as Uint8Array, 0, 3, 1)).toThrow(TypeError);
      expect(() => prep(0, buf, 0, 17, 1)).toThrow(RangeError); // longer than the buffer
      expect(() => prep(0, buf, -2, 16, 1)).toThrow(RangeError); // -1 is "current position"
      expect(() => prep(0, buf, 0.5, 16, 1)).toThrow(RangeError);
      expect(() => prep(0, buf, 0, 16, -5)).toThrow(RangeError);
      expect(() => prep(0, buf, 0, 16, 1, 256)).toThrow(RangeError); // sqeFlags is one byte
    }
    expect(ring.sqSpace).toBe(8);
    ring.close();
  });

  it('reads every block into the right buffer, Buffers and Uint8Arrays mixed, plain and O_DIRECT', () => {
    const before = openFds();
    for (const direct of [false, true]) {
      const ring = new Ring({ entries: 32, attach: false, deferTaskrun: direct });
      const fd = openSync(scratch.path, constants.O_RDONLY | (direct ? constants.O_DIRECT : 0));
      const bufs = Array.from({ length: 64 }, (_, i) =>
        i % 2 ? alignedView(4096) : new Uint8Array(alignedView(4096).buffer, 0, 4096),
      );
      const pos = (i: number) => ((i * 97) % 256) * 4096;
      let next = 0;
      const got = new Map<number, number>();
      while (got.size < bufs.length) {
        while (next < bufs.length && ring.prepRead(fd, bufs[next]!, pos(next), 4096, next)) next++;
        for (const [ud, res] of reapAll(ring, Math.min(8, next - got.size))) got.set(ud, res);
      }
      bufs.forEach((b, i) => {
        expect(got.get(i)).toBe(4096);
        expect(Buffer.from(b).equals(data.subarray(pos(i), pos(i) + 4096))).toBe(true);
      });
      ring.close();
      closeSync(fd);
    }
    expect(leakedSince(before)).toEqual([]);
  });

  it('writes what prepWrite was given, at its position, and a partial length writes only that much', () => {
    const out = makeFile(scratch.dir, 'out', Buffer.alloc(64 * 1024));
    const ring = new Ring({ entries: 16, attach: false });
    const fd = openSync(out, constants.O_RDWR);
    const chunks = Array.from({ length: 16 }, (_, i) => data.subarray(i * 4096, (i + 1) * 4096));
    chunks.forEach((c, i) => expect(ring.prepWrite(fd, c, i * 4096, i === 15 ? 100 : 4096, i)).toBe(true));
    const res = reapAll(ring, 16);
    chunks.forEach((_, i) => expect(res.get(i)).toBe(i === 15 ? 100 : 4096));
    ring.close();
    closeSync(fd);
    const written = readFileSync(out);
    expect(written.subarray(0, 15 * 4096).equals(data.subarray(0, 15 * 4096))).toBe(true);
    expect(written.subarray(15 * 4096, 15 * 4096 + 100).equals(data.subarray(15 * 4096, 15 * 4096 + 100))).toBe(true);
    expect(written.subarray(15 * 4096 + 100).every((x) => x === 0)).toBe(true);
  });
});
