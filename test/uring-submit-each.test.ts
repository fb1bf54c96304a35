// Ring's `submitEach` option: every batch prep submits its entry as it is prepared (fio's
// iodepth_batch_submit=1), the read/write preps in the same call into the addon. Each batch
// prep kind on real files and sockets: in flight when the prep returns (the SQ empty again,
// its completion reaped by `reap`, which never submits), against a plain ring that holds it
// until `submit()`; both ring setups; fio's loop byte-checked; an attached ring's completions
// arriving with no submit from the caller; promise operations submitted along.
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { leakedSince, openFds } from './helpers/fds.js';
import { Ring, constants, sys } from './helpers/rawio.js';
import { titled, why } from './helpers/skips.js';
import { alignedView, fioLoop, pattern, scratchFile } from './helpers/uring.js';
import { eventually } from './helpers/wait.js';

const BS = 4096;
const ECANCELED = 125;
const ETIME = 62;

/** The resources one prep kind needs, and the prep: returns what its completion's res must satisfy. */
interface Kind {
  name: string;
  prep(ring: Ring, ud: number): (res: number) => boolean;
}

describe.skipIf(why.ring)(titled('Ring submitEach', why.ring), () => {
  const data = pattern(256 * 1024, 5);
  const scratch = scratchFile(data);
  const blocks = data.length / BS;
  const pos = (i: number) => ((i * 29 + 3) % blocks) * BS;
  const block = (p: number) => data.subarray(p, p + BS);

  it('takes a boolean, and refuses anything else with a TypeError', () => {
    for (const bad of [1, 'yes', null, {}])
      expect(() => new Ring({ attach: false, submitEach: bad as unknown as boolean })).toThrow(
        expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }),
      );
    for (const ok of [true, false]) new Ring({ entries: 2, attach: false, submitEach: ok }).close();
  });

  it('puts every batch prep kind in flight as it returns; a plain ring holds it until submit()', () => {
    const before = openFds();
    const opened: number[] = [];
    const keep = <T extends number>(fd: T) => (opened.push(fd), fd);
    const file = keep(openSync(scratch.path, constants.O_RDONLY));
    const direct = keep(openSync(scratch.path, constants.O_RDONLY | constants.O_DIRECT));
    const outFile = keep(openSync(join(scratch.dir, 'out'), 'w+'));
    const [a, b] = sys.socketpair().map(keep) as [number, number];
    const listener = keep(sys.listenTcp('127.0.0.1', 0));
    const port = sys.localPort(listener);
    const readBuf = Buffer.alloc(BS);
    const fixed = alignedView(BS);
    const kinds: Kind[] = [
      {
        name: 'prepRead',
        prep: (r, ud) => (expect(r.prepRead(file, readBuf, pos(1), BS, ud)).toBe(true), (res) => res === BS),
      },
      {
        name: 'prepWrite',
        prep: (r, ud) => (expect(r.prepWrite(outFile, block(0), 0, BS, ud)).toBe(true), (res) => res === BS),
      },
      {
        name: 'prepReadFixed',
        prep: (r, ud) => {
          r.registerBuffers([fixed]);
          expect(r.prepReadFixed(direct, 0, pos(2), BS, ud)).toBe(true);
          return (res) => res === BS;
        },
      },
      {
        name: 'prepSend',
        prep: (r, ud) => (expect(r.prepSend(a, Buffer.from('ping'), 0, 4, ud)).toBe(true), (res) => res === 4),
      },
      {
        name: 'prepRecv',
        prep: (r, ud) => {
          sys.write(a, Buffer.from('pong'));
          expect(r.prepRecv(b, Buffer.alloc(16), 0, 16, ud)).toBe(true);
          return (res) => res === 4;
        },
      },
      {
        name: 'prepSendZc',
        // on a unix socket the kernel may refuse zero copy: any result is a completion
        prep: (r, ud) => (expect(r.prepSendZc(a, Buffer.from('zc'), 0, 2, ud)).toBe(true), () => true),
      },
      {
        name: 'prepAccept',
        prep: (r, ud) => {
          keep(sys.connectTcp('127.0.0.1', port));
          expect(r.prepAccept(listener, ud)).toBe(true);
          return (res) => res >= 0 && (keep(res), true);
        },
      },
      { name: 'prepNop', prep: (r, ud) => (expect(r.prepNop(ud)).toBe(true), (res) => res === 0) },
      { name: 'prepTimeout', prep: (r, ud) => (expect(r.prepTimeout(1, ud)).toBe(true), (res) => res === -ETIME) },
    ];
    const out = new Int32Array(3 * 8);
    /** Reaps (never submitting) until a completion of `ud` arrives, draining sys.read's socket side as it goes. */
    const reapOne = (ring: Ring, ud: number): [number, number] => {
      for (;;) {
        const n = ring.reap(out, 1);
        expect(n).toBeGreaterThan(0);
        for (let i = 0; i < n; i++) if (out[3 * i] === ud) return [out[3 * i + 1]!, out[3 * i + 2]!];
      }
    };
    for (const deferTaskrun of [false, true]) {
      for (const k of kinds) {
        const each = new Ring({ entries: 4, attach: false, deferTaskrun, submitEach: true });
        const ok = k.prep(each, 7);
        expect([k.name, deferTaskrun, each.sqSpace, each.inflight]).toEqual([k.name, deferTaskrun, 4, 1]);
        const [res] = reapOne(each, 7);
        expect([k.name, deferTaskrun, res, ok(res)]).toEqual([k.name, deferTaskrun, res, true]);
        if (k.name === 'prepSendZc') while (each.inflight > 0) each.reap(out, 1); // its notification
        each.close();

        const plain = new Ring({ entries: 4, attach: false, deferTaskrun });
        const ok2 = k.prep(plain, 8);
        // prepared, not submitted: reap finds nothing, the entry waits in the SQ
        expect([k.name, plain.sqSpace, plain.reap(out, 0)]).toEqual([k.name, 3, 0]);
        expect(plain.submit(0)).toBe(1);
        const [res2] = reapOne(plain, 8);
        expect([k.name, ok2(res2)]).toEqual([k.name, true]);
        if (k.name === 'prepSendZc') while (plain.inflight > 0) plain.reap(out, 1);
        plain.close();
        if (k.name === 'prepSend' || k.name === 'prepSendZc') {
          const sink = Buffer.alloc(64);
          sys.read(b, sink); // what the two sends left in the socket
        }
      }
    }
    expect(readBuf.equals(block(pos(1)))).toBe(true);
    expect(Buffer.from(fixed).equals(block(pos(2)))).toBe(true);
    expect(readFileSync(join(scratch.dir, 'out')).subarray(0, BS).equals(block(0))).toBe(true);
    for (const fd of opened) closeSync(fd);
    expect(leakedSince(before)).toEqual([]);
  });

  it('submits a cancel as it is prepared: the long timeout it names ends with -ECANCELED', () => {
    for (const deferTaskrun of [false, true]) {
      const ring = new Ring({ entries: 4, attach: false, deferTaskrun, submitEach: true });
      expect(ring.prepTimeout(60_000, 1)).toBe(true);
      expect(ring.prepCancel(1, 2)).toBe(true);
      expect(ring.sqSpace).toBe(4);
      const out = new Int32Array(3 * 4);
      const got = new Map<number, number>();
      while (got.size < 2) {
        const n = ring.reap(out, 1);
        for (let i = 0; i < n; i++) got.set(out[3 * i]!, out[3 * i + 1]!);
      }
      expect(got.get(1)).toBe(-ECANCELED);
      expect(got.get(2)).toBe(0);
      ring.close();
    }
  });

  it("drives fio's loop with no submit(): every read submitted as it is re-prepared, each block checked", () => {
    for (const deferTaskrun of [false, true]) {
      const ring = new Ring({ entries: 8, attach: false, deferTaskrun, submitEach: true });
      const fd = openSync(scratch.path, constants.O_RDONLY | constants.O_DIRECT);
      // each read is taken by the kernel as it is prepared; submitAndReap only waits and reaps
      fioLoop(ring, fd, {
        qd: 8,
        reads: 400,
        position: pos,
        expected: block,
        onPrep: () => expect(ring.sqSpace).toBe(8),
      });
      const out = new Int32Array(3 * 8);
      while (ring.inflight > 0) ring.reap(out, 1);
      ring.close();
      closeSync(fd);
    }
  });

  it('hands an attached ring’s completions to onCompletion with no submit from the caller', async () => {
    const seen: [number, number][] = [];
    const ring = new Ring({ entries: 4, submitEach: true, onCompletion: (ud, res) => seen.push([ud, res]) });
    const fd = openSync(scratch.path, constants.O_RDONLY);
    const buf = Buffer.alloc(BS);
    expect(ring.prepRead(fd, buf, pos(5), BS, 11)).toBe(true);
    expect(ring.prepNop(12)).toBe(true);
    // the Ring keeps Node's loop alive while they are in flight, and its watch reaps them
    expect(await eventually(() => seen.length === 2)).toBe(true);
    expect(seen.sort((x, y) => x[0] - y[0])).toEqual([
      [11, BS],
      [12, 0],
    ]);
    expect(buf.equals(block(pos(5)))).toBe(true);
    ring.close();
    closeSync(fd);
  });

  it('submits the promise operations prepared before a batch entry along with it', async () => {
    const ring = new Ring({ entries: 4, attach: false, submitEach: true });
    const fd = openSync(scratch.path, constants.O_RDONLY);
    const p = ring.nop();
    const q = ring.read(fd, Buffer.alloc(16), 0, 16, pos(9));
    const buf = Buffer.alloc(BS);
    expect(ring.prepRead(fd, buf, pos(6), BS, 3)).toBe(true);
    expect(ring.sqSpace).toBe(4); // all three went in that one enter
    const out = new Int32Array(3 * 4);
    let batch = 0;
    while (ring.inflight > 0) batch += ring.reap(out, 1); // settles the promises on the way
    expect(batch).toBe(1);
    expect([out[0], out[1]]).toEqual([3, BS]);
    expect(await p).toBe(0);
    expect(await q).toBe(16);
    expect(buf.equals(block(pos(6)))).toBe(true);
    ring.close();
    closeSync(fd);
  });

  it('refuses preps on a closed ring with EBADF, as without the option', () => {
    const ring = new Ring({ entries: 2, attach: false, submitEach: true });
    ring.close();
    expect(() => ring.prepNop(1)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(() => ring.prepRead(0, Buffer.alloc(1), 0, 1, 1)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });
});
