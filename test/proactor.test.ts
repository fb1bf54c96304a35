import { openSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { leakedSince, openFds } from './helpers/fds.js';
import { ErrnoError, Proactor, Reactor, Ring, constants, sys } from './helpers/rawio.js';
import { titled, why } from './helpers/skips.js';
import { makeFile, pattern, scratchDir } from './helpers/uring.js';
import { expectIdleRunHearsNode } from './helpers/idle-run.js';

/** An echo server on the proactor: multishot accept, recv, send everything back, recv again. */
function echoServer(px: Proactor, lfd: number, conns: number[]): void {
  px.accept(
    lfd,
    (fd) => {
      if (fd < 0) return;
      conns.push(fd);
      const buf = Buffer.alloc(16384);
      const onRecv = (n: number): void => {
        if (n <= 0) {
          sys.close(fd);
          return;
        }
        px.send(fd, buf, 0, n, (sent) => (sent === n ? px.recv(fd, buf, onRecv) : sys.close(fd)));
      };
      px.recv(fd, buf, onRecv);
    },
    { multishot: true },
  );
}

/** A blocking client in the same thread is impossible; drive the client through a Ring. */
async function echoRoundTrip(client: Ring, fd: number, msg: Buffer): Promise<Buffer> {
  const got = Buffer.alloc(msg.length);
  const sent = client.send(fd, msg);
  let n = 0;
  while (n < msg.length) {
    const r = await client.recv(fd, got, { offset: n });
    if (r <= 0) break;
    n += r;
  }
  expect(await sent).toBe(msg.length);
  return got;
}

describe.skipIf(why.ring)(titled('Proactor', why.ring), () => {
  let before: Map<number, string>;
  let scratch: ReturnType<typeof scratchDir>;
  beforeAll(() => (scratch = scratchDir()));
  afterAll(() => scratch.remove());
  beforeEach(() => (before = openFds()));
  afterEach(() => expect(leakedSince(before)).toEqual([]));

  it('serves echo over loopback while attached to Node’s loop', async () => {
    const px = new Proactor({ entries: 64 });
    const lfd = sys.listenTcp('127.0.0.1', 0);
    const conns: number[] = [];
    echoServer(px, lfd, conns);
    px.attach();
    const client = new Ring();
    const fds = [0, 1, 2, 3].map(() => sys.connectTcp('127.0.0.1', sys.localPort(lfd)));
    const msgs = fds.map((_, i) => pattern(100_000 + i * 777, i + 1));
    const echoed = await Promise.all(fds.map((fd, i) => echoRoundTrip(client, fd, msgs[i]!)));
    echoed.forEach((e, i) => expect(e.equals(msgs[i]!)).toBe(true));
    expect(conns.length).toBe(4);
    for (const fd of fds) sys.close(fd);
    await new Promise((r) => setTimeout(r, 20)); // the server sees EOF and closes its side
    px.close();
    client.close();
    sys.close(lfd);
  });

  it('run() owns the thread, resolves after stop(), and lets promise continuations run', async () => {
    const px = new Proactor();
    const [a, b] = sys.socketpair();
    try {
      const order: string[] = [];
      px.timeout(5, () => {
        order.push('timeout');
        sys.write(b, Buffer.from('hello'));
        void Promise.resolve().then(() => order.push('continuation'));
      });
      const buf = Buffer.alloc(5);
      px.recv(a, buf, (n) => {
        order.push(`recv ${n} ${buf.toString()}`);
        px.stop();
      });
      px.timeout(60_000, () => order.push('long timeout cancelled'));
      // run() gives libuv a turn in two places only: when Node's own loop has I/O (its loop
      // fd polled ready) and when a batch left nothing to reap (a setImmediate, so that
      // promise chains run to their end). Count both, so that the bound below is exact
      // however slow the machine: a 1 ms interval fires at most once per libuv turn, and
      // would fire on every turn of a loop run() did not own.
      const internals = px as unknown as { nodeIo: boolean; enter(min: number): number };
      let nodeTurns = 0;
      let nodeIo = false;
      Object.defineProperty(px, 'nodeIo', {
        get: () => nodeIo,
        set: (v: boolean) => {
          if (v && !nodeIo) nodeTurns++;
          nodeIo = v;
        },
      });
      let idleTurns = 0;
      const enter = internals.enter.bind(px);
      internals.enter = (min: number) => {
        const n = enter(min);
        if (min === 0 && n <= 0) idleTurns++;
        return n;
      };
      let ticks = 0;
      const tick = setInterval(() => ticks++, 1);
      try {
        await px.run();
      } finally {
        clearInterval(tick);
      }
      expect(order).toEqual(['timeout', 'continuation', 'recv 5 hello']);
      // libuv ran on no turn but those run() gave it: the loop owned the thread
      expect(ticks).toBeLessThanOrEqual(nodeTurns + idleTurns);
      px.close(); // the long timeout is cancelled; its callback gets -ECANCELED
      expect(order.at(-1)).toBe('long timeout cancelled');
    } finally {
      px.close();
      sys.close(a);
      sys.close(b);
    }
  });

  it("run() waiting on a far timeout still hears Node's own I/O: posted messages, then terminate()", () =>
    expectIdleRunHearsNode({ loop: 'proactor' }));

  it("run() leaves nothing of its own in flight: its poll of Node's loop is reaped before it returns", async () => {
    const px = new Proactor();
    for (let round = 0; round < 3; round++) {
      let fired = -1;
      px.timeout(1, (r) => (fired = r));
      await px.run();
      expect(fired).toBe(0);
      expect(px.ring.inflight).toBe(0);
    }
    px.close();
  });

  it('resubmits short writes and short reads until the whole length is done', async () => {
    const px = new Proactor({ entries: 8 });
    const [r, w] = sys.pipe({ size: 4096 });
    const data = pattern(200_000, 5);
    const got = Buffer.alloc(data.length);
    let wrote = -1;
    let read = -1;
    px.write(w, data, -1, data.length, (n) => (wrote = n));
    // a pipe read returns at most what is buffered: many short reads, each resubmitted
    px.read(r, got, -1, got.length, (n) => (read = n));
    await px.run();
    expect(wrote).toBe(data.length);
    expect(read).toBe(data.length);
    expect(got.equals(data)).toBe(true);
    const file = makeFile(scratch.dir, 'px', data);
    const fd = openSync(file, 'r');
    const part = Buffer.alloc(50_000);
    px.read(fd, part, 123_456, 50_000, (n) => (read = n));
    await px.run();
    expect(read).toBe(50_000);
    expect(part.equals(data.subarray(123_456, 173_456))).toBe(true);
    px.read(fd, part, data.length - 100, 50_000, (n) => (read = n)); // EOF: fewer bytes, not an error
    await px.run();
    expect(read).toBe(100);
    px.close();
    for (const fd2 of [fd, r, w]) sys.close(fd2);
  });

  it('untaken(id): the bytes of a write in flight the kernel has not taken, down to 0 once done', async () => {
    const px = new Proactor({ entries: 8 });
    px.attach();
    const [r, w] = sys.pipe({ size: 4096 });
    const data = pattern(100_000, 7);
    let wrote = -1;
    const id = px.write(w, data, -1, data.length, (n) => (wrote = n));
    const delay = () => new Promise((res) => setTimeout(res, 10));
    // Nobody reads yet: the kernel took the pipe's worth (a short write, resubmitted) and waits.
    for (let i = 0; i < 500 && px.untaken(id) === data.length; i++) await delay();
    const first = px.untaken(id);
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(data.length);
    const got: Buffer[] = [];
    const buf = Buffer.alloc(65536);
    let last = first;
    for (let i = 0; i < 5000 && wrote < 0; i++) {
      const n = sys.read(r, buf);
      if (n > 0) got.push(Buffer.from(buf.subarray(0, n)));
      const now = px.untaken(id);
      expect(now).toBeLessThanOrEqual(last); // only ever goes down
      last = now;
      await delay();
    }
    expect(wrote).toBe(data.length);
    expect(px.untaken(id)).toBe(0); // done: no such request any more
    for (let n = sys.read(r, buf); n > 0; n = sys.read(r, buf)) got.push(Buffer.from(buf.subarray(0, n)));
    expect(Buffer.concat(got).equals(data)).toBe(true);
    for (const bad of [0, -1, 1e9, Number.NaN]) expect(px.untaken(bad)).toBe(0); // never started
    px.close();
    sys.close(r);
    sys.close(w);
  });

  it('cancel() and a full SQ: every request completes exactly once', async () => {
    const px = new Proactor({ entries: 2 });
    const [a, b] = sys.socketpair();
    const results: number[] = [];
    const id = px.recv(a, Buffer.alloc(4), (n) => results.push(n));
    for (let i = 0; i < 200; i++) px.timeout(0, (n) => results.push(n));
    px.timeout(1, () => px.cancel(id));
    await px.run();
    expect(results.length).toBe(201);
    expect(results.filter((n) => n === 0).length).toBe(200);
    expect(results).toContain(-constants.ECANCELED);
    px.close();
    sys.close(a);
    sys.close(b);
  });

  it('cancel() that finds the SQ full and a submit the kernel refuses throws that errno, and can be repeated', async () => {
    // Submits go through the ring's fd (not a registered one), which is swapped for an
    // eventfd behind the proactor's back: io_uring_enter on it fails (EOPNOTSUPP, Linux's ENOTSUP). The ring
    // stays alive through its mappings until close(), which closes the eventfd in its place.
    const px = new Proactor({ entries: 2, registerRingFd: false });
    const results: number[] = [];
    const ids = [px.timeout(60_000, (n) => results.push(n)), px.timeout(60_000, (n) => results.push(n))];
    px.timeout(60_000, (n) => results.push(n)); // the SQ is full: this one waits in the backlog
    const ringFd = px.ring.fd;
    sys.close(ringFd);
    const stand = sys.eventfd(); // the lowest free fd: the ring's number again
    try {
      expect(stand).toBe(ringFd);
      for (let i = 0; i < 2; i++) {
        let err: unknown;
        try {
          px.cancel(ids[0]!);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(ErrnoError);
        expect(err).toMatchObject({ syscall: 'io_uring_enter', code: expect.stringMatching(/^(ENOTSUP|EOPNOTSUPP)$/) });
      }
      expect(results).toEqual([]); // nothing was cancelled behind the throw
    } finally {
      px.close(); // closes `stand`, as the ring's fd
    }
    expect(results).toEqual([-constants.ECANCELED, -constants.ECANCELED, -constants.ECANCELED]);
  });

  it('reuses request records without letting an old id or completion reach the new operation', async () => {
    const px = new Proactor({ entries: 8 });
    const [a, b] = sys.socketpair();
    let first = -1;
    const idA = px.timeout(0, (n) => (first = n));
    await px.run();
    expect(first).toBe(0);
    const got: number[] = [];
    const buf = Buffer.alloc(8);
    const idB = px.recv(a, buf, (n) => {
      got.push(n);
      px.stop();
    });
    expect(idB).not.toBe(idA);
    // the same record (slot) serves B: ids are slot + generation * 2^20
    expect(idB % 2 ** 20).toBe(idA % 2 ** 20);
    px.cancel(idA); // A is finished: cancelling it must not touch B
    // A completion carrying A's user data (slot | generation << 20) must not complete B either.
    const udA = (idA % 2 ** 20) | ((Math.floor(idA / 2 ** 20) & 0x7ff) << 20);
    expect(px.ring.prepNop(udA)).toBe(true);
    px.timeout(5, () => sys.write(b, Buffer.from('hi')));
    await px.run();
    expect(got).toEqual([2]);
    expect(buf.subarray(0, 2).toString()).toBe('hi');
    const ids = new Set<number>();
    for (let i = 0; i < 50; i++) {
      ids.add(px.timeout(0, () => {}));
      await px.run();
    }
    expect(ids.size).toBe(50);
    px.close();
    sys.close(a);
    sys.close(b);
  });

  it('cancels operations still in the backlog, and close() ends every callback once', async () => {
    const px = new Proactor({ entries: 2 });
    const [a, b] = sys.socketpair();
    const results = new Map<number, number[]>();
    const ids: number[] = [];
    for (let i = 0; i < 6; i++) {
      const id = px.recv(a, Buffer.alloc(4), (n) => results.get(id)!.push(n));
      results.set(id, []);
      ids.push(id);
    }
    px.cancel(ids[5]!); // never reached the SQ (2 entries): finished at once
    expect(results.get(ids[5]!)).toEqual([-constants.ECANCELED]);
    px.cancel(ids[5]!); // twice: nothing more
    px.close(); // the rest are cancelled in the kernel, then called back
    for (const id of ids) expect(results.get(id)).toEqual([-constants.ECANCELED]);
    expect(() => px.recv(a, Buffer.alloc(4), () => {})).toThrow(/closed/);
    sys.close(a);
    sys.close(b);
  });

  it('a callback that throws rejects run(); the rest of its batch is still called back, once each', async () => {
    const px = new Proactor();
    const pairs = Array.from({ length: 4 }, () => sys.socketpair());
    const got: number[] = [];
    for (const [a, b] of pairs) {
      sys.write(b, Buffer.from('x')); // ready before the recvs are submitted: one batch
      px.recv(a, Buffer.alloc(4), (n) => {
        got.push(n);
        if (got.length === 1) throw new Error('boom');
      });
    }
    await expect(px.run()).rejects.toThrow('boom');
    await px.run(); // resolves once nothing is left: the rest has been handed out
    expect(got).toEqual([1, 1, 1, 1]);
    px.close();
    expect(got).toEqual([1, 1, 1, 1]); // close() calls none of them again
    for (const [a, b] of pairs) {
      sys.close(a);
      sys.close(b);
    }
  });

  it('close() from a completion callback: the completions reaped with it get their results, the rest -ECANCELED', async () => {
    const px = new Proactor();
    const pairs = Array.from({ length: 3 }, () => sys.socketpair());
    const got: number[] = [];
    for (const [i, [a, b]] of pairs.entries()) {
      if (i < 2) sys.write(b, Buffer.from('xy')); // the first two complete in one batch
      px.recv(a, Buffer.alloc(4), (n) => {
        got.push(n);
        if (got.length === 1) px.close();
      });
    }
    await px.run();
    expect(got).toEqual([2, 2, -constants.ECANCELED]);
    for (const [a, b] of pairs) {
      sys.close(a);
      sys.close(b);
    }
  });

  it('close(): a callback that throws, on a posted completion or on -ECANCELED, leaves no other uncalled and the proactor closed', async () => {
    const px = new Proactor({ entries: 4 });
    const pairs = Array.from({ length: 6 }, () => sys.socketpair());
    const got: string[] = [];
    for (const [i, [a, b]] of pairs.entries()) {
      if (i < 3) sys.write(b, Buffer.from('x')); // three complete before close() reaps them
      px.recv(a, Buffer.alloc(4), (n) => {
        got.push(`${i}:${n}`);
        if (i === 0 || i === 3) throw new Error(`boom ${i}`);
      });
    }
    await new Promise((resolve) => setImmediate(resolve)); // submitted (and the first three completed)
    expect(() => px.close()).toThrow('boom 0'); // the first throw, once all were called
    const e = -constants.ECANCELED;
    expect(got.sort()).toEqual(['0:1', '1:1', '2:1', `3:${e}`, `4:${e}`, `5:${e}`]);
    expect(() => px.recv(pairs[0]![0], Buffer.alloc(4), () => {})).toThrow(/closed/);
    px.close(); // closed already: nothing more
    expect(got.length).toBe(6);
    for (const [a, b] of pairs) {
      sys.close(a);
      sys.close(b);
    }
  });

  it('cancel() and untaken() ignore unknown and finished ids, and refuse a non-number (TypeError)', async () => {
    const px = new Proactor();
    const results: number[] = [];
    const id = px.timeout(1, (r) => results.push(r));
    await px.run();
    expect(results).toEqual([0]);
    for (const unknown of [id, 0, -1, 1.5, 2 ** 40]) {
      px.cancel(unknown); // finished or never started: nothing happens
      expect(px.untaken(unknown)).toBe(0);
    }
    for (const bad of ['1', undefined, null, {}]) {
      expect(() => px.cancel(bad as unknown as number)).toThrow(TypeError);
      expect(() => px.untaken(bad as unknown as number)).toThrow(TypeError);
    }
    expect(results).toEqual([0]);
    px.close();
    const reactor = new Reactor();
    reactor.clearTimer(12345); // unknown: ignored
    expect(() => reactor.clearTimer('1' as unknown as number)).toThrow(TypeError);
    reactor.close();
  });

  it('run() reaps without an eventfd; attach() registers one; the ring defers task work', async () => {
    const fds = openFds();
    const px = new Proactor();
    const [a, b] = sys.socketpair();
    // DEFER_TASKRUN (6.1) where the kernel has it, COOP_TASKRUN (5.19) before
    const defer = 1 << 13;
    const coop = 1 << 8;
    expect(px.ring.setupFlags & (defer | coop)).not.toBe(0);
    expect(leakedSince(fds).length).toBe(3); // the ring and the socketpair: no eventfd
    let got = -1;
    px.recv(a, Buffer.alloc(4), (n) => {
      got = n;
      px.stop();
    });
    px.timeout(2, () => sys.write(b, Buffer.from('run')));
    await px.run();
    expect(got).toBe(3);
    expect(leakedSince(fds).length).toBe(3);
    px.attach();
    // the eventfd, for Node's loop, and the duplicate its libuv watch polls
    expect(
      leakedSince(fds)
        .map((l) => l.replace(/^\d+ -> /, ''))
        .filter((l) => l.includes('eventfd')),
    ).toHaveLength(2);
    const n = await new Promise<number>((resolve) => {
      px.recv(a, Buffer.alloc(4), resolve);
      setTimeout(() => sys.write(b, Buffer.from('att')), 2);
    });
    expect(n).toBe(3);
    px.close();
    sys.close(a);
    sys.close(b);
  });

  it('run() ends on stop() with operations still in flight, and resumes them on the next run()', async () => {
    const px = new Proactor();
    const [a, b] = sys.socketpair();
    const buf = Buffer.alloc(4);
    let got = -1;
    px.recv(a, buf, (n) => (got = n));
    px.timeout(1, () => px.stop());
    await px.run(); // the recv stays in flight
    expect(got).toBe(-1);
    expect(px.ring.inflight).toBe(1);
    sys.write(b, Buffer.from('ok'));
    await px.run(); // nothing left after the recv: run() returns by itself
    expect(got).toBe(2);
    px.close();
    sys.close(a);
    sys.close(b);
  });
});
