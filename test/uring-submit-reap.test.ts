// Ring.submitAndReap: submit, wait and reap in one call, the batch loop's turnaround. Real
// reads through io_uring (plain and O_DIRECT, default and DEFER_TASKRUN rings, registered
// buffers), each byte checked; the count in flight that the ring keeps without a native call
// (`inflight`) checked at every step; bad arguments refused before anything is submitted.
import { closeSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { leakedSince, openFds } from './helpers/fds.js';
import { Ring, constants } from './helpers/rawio.js';
import { titled, why } from './helpers/skips.js';
import { alignedView, fioLoop, pattern, scratchFile } from './helpers/uring.js';

const EBADF = 9;
const BS = 4096;

describe.skipIf(why.ring)(titled('Ring.submitAndReap', why.ring), () => {
  const data = pattern(1 << 20, 11);
  const scratch = scratchFile(data);
  const blocks = data.length / BS;
  const pos = (i: number) => ((i * 37 + 5) % blocks) * BS;
  const block = (p: number) => data.subarray(p, p + BS);

  it('refuses a wrong type with a TypeError and a bad count with a RangeError, submitting nothing', () => {
    const ring = new Ring({ entries: 8, attach: false });
    const fd = openSync(scratch.path, constants.O_RDONLY);
    expect(ring.prepRead(fd, Buffer.alloc(BS), 0, BS, 1)).toBe(true);
    const out = new Int32Array(3 * 8);
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return [(e as Error).constructor.name, (e as { code?: string }).code];
      }
      return ['no error'];
    };
    expect(code(() => ring.submitAndReap(new Uint32Array(24) as unknown as Int32Array))).toEqual([
      'TypeError',
      'ERR_INVALID_ARG_TYPE',
    ]);
    expect(code(() => ring.submitAndReap([] as unknown as Int32Array))).toEqual(['TypeError', 'ERR_INVALID_ARG_TYPE']);
    expect(code(() => ring.submitAndReap(out, '1' as unknown as number))).toEqual([
      'TypeError',
      'ERR_INVALID_ARG_TYPE',
    ]);
    for (const bad of [-1, 0.5, 2 ** 31, NaN])
      expect(code(() => ring.submitAndReap(out, bad))).toEqual(['RangeError', 'ERR_OUT_OF_RANGE']);
    // nothing was submitted by the refused calls: the read still waits in the SQ
    expect(ring.sqSpace).toBe(7);
    expect(ring.inflight).toBe(1);
    expect(ring.submitAndReap(out)).toBe(1);
    expect([out[0], out[1]]).toEqual([1, BS]);
    ring.close();
    expect(ring.submitAndReap(out)).toBe(-EBADF);
    closeSync(fd);
  });

  it('submits, waits for minComplete and reaps: every block in its buffer, plain and O_DIRECT, both ring setups', () => {
    const before = openFds();
    for (const direct of [false, true]) {
      for (const deferTaskrun of [false, true]) {
        const ring = new Ring({ entries: 16, attach: false, deferTaskrun });
        const fd = openSync(scratch.path, constants.O_RDONLY | (direct ? constants.O_DIRECT : 0));
        const bufs = Array.from({ length: 16 }, () => alignedView(BS));
        bufs.forEach((b, i) => expect(ring.prepRead(fd, b, pos(i), BS, 100 + i)).toBe(true));
        expect(ring.inflight).toBe(16);
        const out = new Int32Array(3 * 16);
        // all sixteen: the call returns only once that many have completed
        expect(ring.submitAndReap(out, 16)).toBe(16);
        expect(ring.inflight).toBe(0);
        const seen = new Set<number>();
        for (let i = 0; i < 16; i++) {
          const ud = out[3 * i]!;
          expect(out[3 * i + 1]).toBe(BS);
          seen.add(ud);
          const k = ud - 100;
          expect(Buffer.from(bufs[k]!).equals(block(pos(k)))).toBe(true);
        }
        expect(seen.size).toBe(16);
        ring.close();
        closeSync(fd);
      }
    }
    expect(leakedSince(before)).toEqual([]);
  });

  it("drives fio's loop: each read re-prepared and submitted alone, one submitAndReap per turn", () => {
    const ring = new Ring({ entries: 8, attach: false, deferTaskrun: true });
    const fd = openSync(scratch.path, constants.O_RDONLY | constants.O_DIRECT);
    const qd = 8;
    fioLoop(ring, fd, {
      qd,
      reads: 500,
      position: pos,
      expected: block,
      onPrep: (i, n) => {
        if (i + 1 < n) expect(ring.submit(0)).toBe(1); // the last goes with the next wait
      },
    });
    const out = new Int32Array(3 * qd);
    expect(ring.inflight).toBe(qd);
    // the rest: waiting for more than is in flight waits for what is, and no more
    let left = qd;
    while (left > 0) {
      const n = ring.submitAndReap(out, 100);
      expect(n).toBeGreaterThan(0);
      left -= n;
    }
    expect(left).toBe(0);
    expect(ring.inflight).toBe(0);
    // nothing prepared, nothing in flight: returns at once
    expect(ring.submitAndReap(out, 1)).toBe(0);
    ring.close();
    closeSync(fd);
  });

  it('reads into registered buffers (prepReadFixed) by index, the index above zero included', () => {
    const ring = new Ring({ entries: 8, attach: false });
    const fd = openSync(scratch.path, constants.O_RDONLY | constants.O_DIRECT);
    const bufs = Array.from({ length: 4 }, () => alignedView(BS));
    ring.registerBuffers(bufs);
    for (let k = 0; k < 4; k++) expect(ring.prepReadFixed(fd, k, pos(40 + k), BS, k)).toBe(true);
    const out = new Int32Array(3 * 4);
    let got = 0;
    while (got < 4) got += ring.submitAndReap(out.subarray(3 * got), 1);
    for (let k = 0; k < 4; k++) expect(Buffer.from(bufs[k]!).equals(block(pos(40 + k)))).toBe(true);
    ring.close();
    closeSync(fd);
  });

  it('leaves the promise operations it reaps out of `out`, settled, and counts them toward minComplete', async () => {
    const ring = new Ring({ entries: 8, attach: false });
    const fd = openSync(scratch.path, constants.O_RDONLY);
    const p = ring.nop();
    const buf = Buffer.alloc(BS);
    expect(ring.prepRead(fd, buf, pos(3), BS, 42)).toBe(true);
    const out = new Int32Array(3 * 8);
    let batch = 0;
    while (ring.inflight > 0) batch += ring.submitAndReap(out, 2);
    expect(batch).toBe(1);
    expect([out[0], out[1]]).toEqual([42, BS]);
    expect(await p).toBe(0);
    expect(buf.equals(block(pos(3)))).toBe(true);
    ring.close();
    closeSync(fd);
  });

  it('works on the ring it is called on when several are open, an earlier one closed', () => {
    const a = new Ring({ entries: 4, attach: false });
    const b = new Ring({ entries: 4, attach: false });
    const c = new Ring({ entries: 4, attach: false });
    a.close();
    const fd = openSync(scratch.path, constants.O_RDONLY);
    const bb = Buffer.alloc(BS);
    const cb = Buffer.alloc(BS);
    expect(b.prepRead(fd, bb, pos(7), BS, 7)).toBe(true);
    expect(c.prepRead(fd, cb, pos(8), BS, 8)).toBe(true);
    expect([b.inflight, c.inflight]).toEqual([1, 1]);
    const out = new Int32Array(3 * 4);
    expect(c.submitAndReap(out, 1)).toBe(1);
    expect([out[0], out[1]]).toEqual([8, BS]);
    expect(cb.equals(block(pos(8)))).toBe(true);
    expect([b.inflight, c.inflight]).toEqual([1, 0]);
    expect(b.submitAndReap(out, 1)).toBe(1);
    expect([out[0], out[1]]).toEqual([7, BS]);
    expect(bb.equals(block(pos(7)))).toBe(true);
    b.close();
    c.close();
    closeSync(fd);
  });
});
