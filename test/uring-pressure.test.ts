// Ring under pressure, driven as a program drives it: submissions the kernel takes only in
// part, more operations than the CQ holds, aborts before the submit and aborts that lose the
// race with their completion. Real syscalls, no timing asserted: waits poll with generous deadlines.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { leakedSince, openFds } from './helpers/fds.js';
import { eventually } from './helpers/wait.js';
import { PollSet, Ring, sys } from './helpers/rawio.js';
import { titled, why } from './helpers/skips.js';

const POLLIN = 1;

const settle = (p: Promise<number>): Promise<{ v?: number; code?: string }> =>
  p.then(
    (v) => ({ v }),
    (e: Error & { code?: string }) => ({ code: e.code }),
  );

describe.skipIf(why.ring)(titled('Ring under pressure', why.ring), () => {
  let before: Map<number, string>;
  beforeEach(() => {
    before = openFds();
  });
  afterEach(() => {
    expect(leakedSince(before)).toEqual([]);
  });

  it('submits the entries an earlier enter left in the SQ (submitAll: false, a bad SQE ends the batch)', async () => {
    const ring = new Ring({ entries: 8, attach: false, submitAll: false });
    expect(ring.setupFlags & 0x80).toBe(0); // IORING_SETUP_SUBMIT_ALL off
    // An unknown IOSQE_* bit fails the entry at submission: the kernel stops the batch there.
    expect(ring.prepRead(0, Buffer.alloc(4), 0, 4, 1, 0x80)).toBe(true);
    expect(ring.prepNop(2)).toBe(true);
    expect(ring.submit()).toBe(1);
    const out = new Int32Array(3 * 8);
    const seen = new Map<number, number>();
    const done = await eventually(() => {
      ring.submit();
      const n = ring.reap(out);
      for (let i = 0; i < n; i++) seen.set(out[3 * i]!, out[3 * i + 1]!);
      return seen.has(2);
    }, 5_000);
    expect(done).toBe(true); // the NOP left behind is submitted, not stranded
    expect(seen.get(1)).toBe(-22); // EINVAL
    expect(seen.get(2)).toBe(0);
    expect(ring.inflight).toBe(0);
    // close() queues its cancel behind whatever is left: it must not wait forever.
    expect(ring.prepRead(0, Buffer.alloc(4), 0, 4, 3, 0x80)).toBe(true);
    expect(ring.prepNop(4)).toBe(true);
    ring.submit();
    ring.close();
  });

  // Each IORING_OP_TIMEOUT completion wakes the kernel's waiters, whatever count they asked for.
  it('reap(out, n) and wait(n) wait for n completions when timeouts complete one by one', () => {
    const ring = new Ring({ entries: 64, attach: false });
    try {
      const n = 32;
      for (let i = 0; i < n; i++) expect(ring.prepTimeout(1 + i, i)).toBe(true);
      expect(ring.submit()).toBe(n);
      const out = new Int32Array(3 * 64);
      expect(ring.reap(out, n)).toBe(n);
      expect(new Set(Array.from({ length: n }, (_, i) => out[3 * i])).size).toBe(n);
      expect(ring.inflight).toBe(0);
      let got = 0;
      ring.onCompletion = () => got++;
      for (let i = 0; i < n; i++) expect(ring.prepTimeout(1 + i, i)).toBe(true);
      expect(ring.wait(n)).toBe(n);
      expect(got).toBe(n);
      // More than the CQ holds: the overflow comes in by the same wait.
      for (let i = 0; i < 200; i++) while (!ring.prepTimeout(1 + (i % 7), i)) ring.submit();
      // reap does not submit: it waits for what the kernel has, never for entries still in the SQ.
      expect(ring.inflight).toBe(200);
      const big = new Int32Array(3 * 200);
      const early = ring.reap(big, 200); // returns, rather than wait for what was never submitted
      expect(early).toBeLessThanOrEqual(200 - (ring.sqEntries - ring.sqSpace));
      ring.submit();
      expect(ring.reap(big, 200 - early)).toBe(200 - early);
      expect(ring.inflight).toBe(0);
    } finally {
      ring.close();
    }
  });

  it('refuses IOSQE_CQE_SKIP_SUCCESS and IOSQE_BUFFER_SELECT: every entry must post its completion', () => {
    const ring = new Ring({ entries: 8, attach: false });
    const [r, w] = sys.pipe();
    try {
      expect(sys.write(w, Buffer.from('abcd'))).toBe(4);
      for (const bit of [0x40, 0x20]) {
        expect(() => ring.prepRead(r, Buffer.alloc(4), -1, 4, 1, bit)).toThrow(RangeError);
        expect(() => ring.prepWrite(w, Buffer.alloc(4), -1, 4, 1, bit | 1)).toThrow(RangeError);
      }
      expect(ring.inflight).toBe(0);
      expect(ring.prepRead(r, Buffer.alloc(4), -1, 4, 1)).toBe(true);
      ring.submit();
      const out = new Int32Array(3 * 8);
      expect(ring.reap(out, 1)).toBe(1);
      expect([out[0], out[1]]).toEqual([1, 4]);
    } finally {
      ring.close(); // with a skipped completion this waited forever
      sys.close(r);
      sys.close(w);
    }
  });

  it('aborts take effect on more operations than the CQ holds', async () => {
    const ring = new Ring({ entries: 4 });
    const [a, b] = sys.socketpair();
    try {
      const ac = new AbortController();
      const n = 3 * ring.cqEntries;
      const results: { v?: number; code?: string }[] = [];
      for (let i = 0; i < n; i++)
        void settle(ring.recv(a, Buffer.alloc(8), { signal: ac.signal })).then((r) => results.push(r));
      expect(await eventually(() => ring.inflight === n)).toBe(true);
      ac.abort();
      expect(await eventually(() => results.length === n, 10_000)).toBe(true);
      expect(results.every((r) => r.code === 'ABORT_ERR')).toBe(true);
      expect(ring.inflight).toBe(0);
    } finally {
      ring.close();
      sys.close(a);
      sys.close(b);
    }
  });

  // With IORING_FEAT_NODROP nothing holds operations back for the CQ's size: those in flight
  // may be waiting for the very ones a limit would hold back.
  it('more operations than the CQ holds, waiting on each other, all complete', async () => {
    const ring = new Ring({ entries: 4 });
    const pairs = Array.from({ length: 3 * ring.cqEntries }, () => sys.socketpair());
    try {
      const recvs = pairs.map(([a]) => ring.recv(a, Buffer.alloc(4)));
      const sends = pairs.map(([, b]) => ring.send(b, Buffer.from('ping')));
      let done = false;
      const all = Promise.all([...recvs, ...sends]).then((r) => ((done = true), r));
      expect(await eventually(() => done, 10_000)).toBe(true);
      expect(await all).toEqual(Array(2 * pairs.length).fill(4));
    } finally {
      ring.close();
      for (const [a, b] of pairs) [a, b].forEach((fd) => sys.close(fd));
    }
  });

  it('an abort before the submit drops the operation: it never runs, the data and the connection stay', async () => {
    const ring = new Ring({ entries: 8 });
    const [a, b] = sys.socketpair();
    const lfd = sys.listenTcp('127.0.0.1', 0);
    const client = sys.connectTcp('127.0.0.1', sys.localPort(lfd));
    try {
      expect(sys.write(b, Buffer.from('hello'))).toBe(5);
      // Data and a connection are waiting: each op would complete at once when submitted.
      const ac = new AbortController();
      const buf = Buffer.alloc(8);
      const ops = [
        settle(ring.recv(a, buf, { signal: ac.signal })),
        settle(ring.accept(lfd, { signal: ac.signal })),
        settle(ring.nop({ signal: ac.signal })),
      ];
      ac.abort(); // same synchronous stretch: prepared, not yet submitted
      expect(await Promise.all(ops)).toEqual([{ code: 'ABORT_ERR' }, { code: 'ABORT_ERR' }, { code: 'ABORT_ERR' }]);
      expect(buf.subarray(0, 5).toString()).not.toBe('hello');
      // What the aborted operations would have taken is still there for the next ones.
      expect(await ring.recv(a, buf)).toBe(5);
      expect(buf.subarray(0, 5).toString()).toBe('hello');
      const fd = await ring.accept(lfd);
      expect(fd).toBeGreaterThan(2);
      sys.close(fd);
      expect(ring.inflight).toBe(0);
    } finally {
      ring.close();
      for (const fd of [a, b, lfd, client]) sys.close(fd);
    }
  });

  it('cancel(userData) cancels every batch operation that carries the user data', async () => {
    const seen: number[][] = [];
    const ring = new Ring({ entries: 8, onCompletion: (ud, res) => seen.push([ud, res]) });
    const [a, b] = sys.socketpair();
    try {
      for (let i = 0; i < 3; i++) expect(ring.prepRecv(a, Buffer.alloc(8), 0, 8, 7)).toBe(true);
      expect(ring.prepRecv(a, Buffer.alloc(8), 0, 8, 8)).toBe(true);
      ring.submit();
      expect(await ring.cancel(7)).toBe(0);
      expect(await eventually(() => seen.length === 3)).toBe(true);
      expect(seen).toEqual([
        [7, -125],
        [7, -125],
        [7, -125],
      ]); // ECANCELED; ud 8 is still armed
      expect(ring.inflight).toBe(1);
    } finally {
      ring.close();
      sys.close(a);
      sys.close(b);
    }
  });

  // A ring of its own per case, so that the first completion its eventfd announces is the op's.
  it('an aborted recv that loses the race with its completion resolves with the bytes it received', async () => {
    const ring = new Ring({ entries: 8 });
    const [a, b] = sys.socketpair();
    try {
      const ac = new AbortController();
      const buf = Buffer.alloc(8);
      const recv = settle(ring.recv(a, buf, { signal: ac.signal }));
      expect(await eventually(() => ring.inflight === 1)).toBe(true);
      expect(sys.write(b, Buffer.from('hello'))).toBe(5);
      waitPosted(ring); // the CQE is in, not yet reaped: nothing reaps before this turn ends
      ac.abort();
      expect(await recv).toEqual({ v: 5 });
      expect(buf.subarray(0, 5).toString()).toBe('hello');
      expect(await eventually(() => ring.inflight === 0)).toBe(true); // the cancel's own completion
    } finally {
      ring.close();
      sys.close(a);
      sys.close(b);
    }
  });

  it('an aborted accept that loses the race with its completion resolves with the fd: none leaks', async () => {
    const ring = new Ring({ entries: 8 });
    const lfd = sys.listenTcp('127.0.0.1', 0);
    let client = -1;
    try {
      const ac = new AbortController();
      const acc = settle(ring.accept(lfd, { signal: ac.signal }));
      expect(await eventually(() => ring.inflight === 1)).toBe(true);
      client = sys.connectTcp('127.0.0.1', sys.localPort(lfd));
      waitPosted(ring);
      ac.abort();
      const r = await acc;
      expect(r.v).toBeGreaterThan(2);
      sys.close(r.v!);
    } finally {
      ring.close();
      sys.close(lfd);
      if (client >= 0) sys.close(client);
    }
  });
});

/** Blocks until the ring's eventfd says a completion was posted (poll(2): the count stays for the ring's drain). */
function waitPosted(ring: Ring): void {
  const p = new PollSet();
  try {
    p.add(ring.eventFd, POLLIN);
    expect(p.wait(new Int32Array(2), 20_000)).toBe(1);
  } finally {
    p.close();
  }
}
