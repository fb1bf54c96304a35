import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { leakedSince, openFds } from './helpers/fds.js';
import { ErrnoError, Ring, constants, sys } from './helpers/rawio.js';
import { titled, why } from './helpers/skips.js';
import { alignedView, pattern, scratchFile } from './helpers/uring.js';

const refusal = `io_uring refused here: ${JSON.stringify(Ring.probe())}`;
const F_MORE = 2;

describe.skipIf(why.ring)(titled('Ring (io_uring) promise API', why.ring), () => {
  let before: Map<number, string>;
  let ring: Ring;
  const data = pattern(256 * 1024, 7);
  const scratch = scratchFile(data);

  beforeEach(() => {
    before = openFds();
    ring = new Ring({ entries: 64 });
  });
  afterEach(() => {
    ring.close();
    expect(leakedSince(before)).toEqual([]);
  });

  it('probes opcodes, features and the sysctl', () => {
    const p = Ring.probe();
    expect(p.supported).toBe(true);
    expect(p.opcodes).toEqual(expect.arrayContaining(['NOP', 'READ', 'WRITE', 'ACCEPT', 'ASYNC_CANCEL', 'SPLICE']));
    expect(p.features).toEqual(expect.arrayContaining(['SINGLE_MMAP', 'NODROP']));
    expect([0, 1, null]).toContain(p.ioUringDisabled);
    expect(ring.fd).toBeGreaterThan(2);
    expect(ring.sqEntries).toBe(64);
    expect(ring.cqEntries).toBe(128);
  });

  it('openat, read, statx and close a file, byte-exact', async () => {
    const fd = await ring.openat(-100, scratch.path, constants.O_RDONLY);
    const st = await ring.statx(fd, '');
    expect(st.size).toBe(data.length);
    expect((await ring.statx(-100, scratch.path)).ino).toBe(st.ino);
    const buf = Buffer.alloc(10000);
    expect(await ring.read(fd, buf, 12345)).toBe(10000);
    expect(buf.equals(data.subarray(12345, 22345))).toBe(true);
    const vs = [Buffer.alloc(100), Buffer.alloc(5000), Buffer.alloc(1)];
    expect(await ring.readv(fd, vs, 999)).toBe(5101);
    expect(Buffer.concat(vs).equals(data.subarray(999, 6100))).toBe(true);
    expect(await ring.read(fd, buf, data.length - 10)).toBe(10); // short read at EOF
    expect(await ring.close(fd)).toBe(0);
    await expect(ring.openat(-100, join(scratch.dir, 'nope'), 0)).rejects.toMatchObject({
      code: 'ENOENT',
      syscall: 'openat',
    });
  });

  it('write, writev and fsync to a file, byte-exact', async () => {
    const p = join(scratch.dir, 'out');
    const fd = await ring.openat(-100, p, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC, 0o600);
    const a = data.subarray(0, 70000);
    expect(await ring.write(fd, a, 0)).toBe(70000);
    expect(await ring.writev(fd, [data.subarray(70000, 70010), data.subarray(70010, 80000)], 70000)).toBe(10000);
    expect(await ring.fsync(fd)).toBe(0);
    expect(await ring.fsync(fd, { datasync: true })).toBe(0);
    expect(readFileSync(p).equals(data.subarray(0, 80000))).toBe(true);
    await ring.close(fd);
  });

  it('reads and writes pipes and splices a file into a pipe', async () => {
    const [r, w] = sys.pipe();
    const got = Buffer.alloc(4096);
    const pending = ring.read(r, got, -1); // waits for data
    expect(await ring.write(w, data.subarray(0, 3000), -1)).toBe(3000);
    expect(await pending).toBe(3000);
    expect(got.subarray(0, 3000).equals(data.subarray(0, 3000))).toBe(true);
    const fd = openSync(scratch.path, 'r');
    expect(await ring.splice(fd, 4096, w, null, 8192)).toBe(8192);
    const out = Buffer.alloc(8192);
    expect(await ring.read(r, out, -1)).toBe(8192);
    expect(out.equals(data.subarray(4096, 12288))).toBe(true);
    closeSync(fd);
    sys.close(r);
    sys.close(w);
  });

  it('accepts, sends and receives over loopback TCP and a socketpair', async () => {
    const lfd = sys.listenTcp('127.0.0.1', 0);
    const accepting = ring.accept(lfd);
    const c = sys.connectTcp('127.0.0.1', sys.localPort(lfd));
    const s = await accepting;
    expect(s).toBeGreaterThan(2);
    const msg = data.subarray(0, 50000);
    const got = Buffer.alloc(50000);
    let n = 0;
    const sent = ring.send(c, msg);
    while (n < msg.length) n += await ring.recv(s, got, { offset: n });
    expect(await sent).toBe(50000);
    expect(got.equals(msg)).toBe(true);
    const [a, b] = sys.socketpair();
    expect(await ring.send(a, Buffer.from('ping'))).toBe(4);
    const four = Buffer.alloc(4);
    expect(await ring.recv(b, four)).toBe(4);
    expect(four.toString()).toBe('ping');
    for (const fd of [lfd, c, s, a, b]) sys.close(fd);
  });

  it('nop, timeout and cancel by user data', async () => {
    expect(await ring.nop()).toBe(0);
    const t0 = performance.now();
    expect(await ring.timeout(30)).toBe(0);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
    const [a, b] = sys.socketpair();
    const seen: number[][] = [];
    ring.onCompletion = (ud, res) => seen.push([ud, res]); // an attached ring reaps batch ops too
    expect(ring.prepRecv(a, Buffer.alloc(8), 0, 8, 77)).toBe(true);
    ring.submit();
    expect(await ring.cancel(77)).toBe(0);
    expect(seen).toEqual([[77, -constants.ECANCELED]]);
    await expect(ring.cancel(78)).rejects.toMatchObject({ code: 'ENOENT' });
    sys.close(a);
    sys.close(b);
  });

  it('surfaces EBADF on a closed fd and EINVAL on misaligned O_DIRECT', async () => {
    const [r, w] = sys.pipe();
    sys.close(r);
    sys.close(w);
    const e = await ring.read(r, Buffer.alloc(8), -1).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ErrnoError);
    expect(e).toMatchObject({ code: 'EBADF', errno: -constants.EBADF, syscall: 'read' });
    const fd = await ring.openat(-100, scratch.path, constants.O_RDONLY | constants.O_DIRECT);
    const aligned = alignedView(8192);
    expect(await ring.read(fd, aligned, 4096, 4096)).toBe(4096);
    expect(aligned.subarray(0, 4096).equals(data.subarray(4096, 8192))).toBe(true);
    await expect(ring.read(fd, aligned.subarray(1), 4096, 4096)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(ring.read(fd, aligned, 100, 4096)).rejects.toMatchObject({ code: 'EINVAL' });
    await ring.close(fd);
  });

  it('cancels in the kernel on AbortSignal', async () => {
    const [a, b] = sys.socketpair();
    const ac = new AbortController();
    const p = ring.recv(a, Buffer.alloc(8), { signal: ac.signal });
    setTimeout(() => ac.abort(), 10);
    await expect(p).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    await expect(ring.timeout(10, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    const t = new AbortController();
    const slow = ring.timeout(60_000, { signal: t.signal });
    t.abort();
    await expect(slow).rejects.toMatchObject({ name: 'AbortError' });
    // the cancelled recv consumed nothing: the socket still delivers
    sys.write(b, Buffer.from('x'));
    const one = Buffer.alloc(1);
    expect(await ring.recv(a, one)).toBe(1);
    expect(ring.inflight).toBe(0);
    sys.close(a);
    sys.close(b);
  });

  it('registered buffers and registered files', async () => {
    const fd = openSync(scratch.path, 'r');
    const bufs = [Buffer.alloc(4096), Buffer.alloc(65536)];
    ring.registerBuffers(bufs);
    expect(await ring.readFixed(fd, 1, 8192, 65536)).toBe(65536);
    expect(bufs[1]!.equals(data.subarray(8192, 8192 + 65536))).toBe(true);
    expect(await ring.readFixed(fd, 0, 0)).toBe(4096);
    expect(bufs[0]!.equals(data.subarray(0, 4096))).toBe(true);
    expect(() => ring.readFixed(fd, 2, 0)).toThrow(RangeError);
    ring.registerFiles([fd]);
    const b = Buffer.alloc(100);
    expect(await ring.read(0, b, 500, 100, { fixedFile: true })).toBe(100);
    expect(b.equals(data.subarray(500, 600))).toBe(true);
    closeSync(fd);
  });

  it('throws TypeError / RangeError before any syscall', () => {
    expect(() => ring.read(-1, Buffer.alloc(1), 0)).toThrow(RangeError);
    expect(() => ring.read(0, 'x' as unknown as Buffer, 0)).toThrow(TypeError);
    expect(() => ring.read(0, Buffer.alloc(1), 0, 2)).toThrow(RangeError);
    expect(() => ring.prepRead(0, Buffer.alloc(1), 0, 1, -5)).toThrow(RangeError);
    expect(() => new Ring({ entries: 0 })).toThrow(RangeError);
  });
});

describe.skipIf(why.ring)(titled('Ring batch API, full queues, overflow and close', why.ring), () => {
  let before: Map<number, string>;
  beforeEach(() => {
    before = openFds();
  });
  afterEach(() => expect(leakedSince(before)).toEqual([]));

  it('prep* returns false on a full SQ; reap returns (userData, res, flags) triples', () => {
    const ring = new Ring({ entries: 4, attach: false });
    let n = 0;
    while (ring.prepNop(n)) n++;
    expect(n).toBe(4);
    expect(ring.submit()).toBe(4);
    const out = new Int32Array(3 * 8);
    expect(ring.reap(out, 4)).toBe(4);
    expect([...out.subarray(0, 12)]).toEqual([0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0]);
    ring.close();
  });

  it('keeps completions the CQ had no room for (IORING_FEAT_NODROP)', () => {
    const ring = new Ring({ entries: 4, cqEntries: 4, attach: false });
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 4; i++) expect(ring.prepNop(round * 4 + i)).toBe(true);
      expect(ring.submit()).toBe(4);
    }
    const out = new Int32Array(3 * 64);
    const got: number[] = [];
    let n: number;
    while ((n = ring.reap(out, 0)) > 0) for (let i = 0; i < n; i++) got.push(out[3 * i]!);
    expect(got.sort((a, b) => a - b)).toEqual([...Array(20).keys()]);
    ring.close();
  });

  it('a full SQ never loses a promise operation', async () => {
    const ring = new Ring({ entries: 2, cqEntries: 2 });
    const [r, w] = sys.pipe();
    const payload = pattern(600, 3);
    const reads = Array.from({ length: 600 }, () => {
      const b = Buffer.alloc(1);
      return ring.read(r, b, -1).then((n) => (n === 1 ? b[0]! : -1));
    });
    const nops = Array.from({ length: 500 }, () => ring.nop());
    sys.write(w, payload);
    const got = await Promise.all(reads);
    expect(await Promise.all(nops)).toEqual(Array(500).fill(0));
    // every byte comes back once; in what order is the kernel's (600 reads armed on one pipe
    // at once: io_uring orders nothing between requests that are not linked)
    expect(Buffer.from(got).sort().equals(Buffer.from(payload).sort())).toBe(true);
    ring.close();
    sys.close(r);
    sys.close(w);
  });

  it('multishot accept posts one completion per connection with IORING_CQE_F_MORE', () => {
    const ring = new Ring({ entries: 8, attach: false });
    const lfd = sys.listenTcp('127.0.0.1', 0);
    expect(ring.prepAccept(lfd, 5, { multishot: true })).toBe(true);
    ring.submit();
    const clients = [0, 1, 2].map(() => sys.connectTcp('127.0.0.1', sys.localPort(lfd)));
    const out = new Int32Array(3 * 8);
    const fds: number[] = [];
    while (fds.length < 3) {
      const n = ring.reap(out, 1);
      for (let i = 0; i < n; i++) {
        expect(out[3 * i]).toBe(5);
        expect(out[3 * i + 2]! & F_MORE).toBe(F_MORE);
        fds.push(out[3 * i + 1]!);
      }
    }
    expect(fds.every((fd) => fd > 2)).toBe(true);
    ring.close(); // cancels the armed accept and waits for its final completion
    for (const fd of [...fds, ...clients, lfd]) sys.close(fd);
  });

  it('close() with operations in flight cancels them, waits, and rejects with ECANCELED', async () => {
    const ring = new Ring({ entries: 8 });
    const [a, b] = sys.socketpair();
    const bufs = Array.from({ length: 20 }, () => Buffer.alloc(64));
    const recvs = bufs.map((buf) => ring.recv(a, buf));
    const timer = ring.timeout(60_000);
    await Promise.resolve(); // let the microtask submit them
    expect(ring.inflight).toBeGreaterThan(0);
    ring.close();
    expect(ring.inflight).toBe(0);
    for (const p of [...recvs, timer]) await expect(p).rejects.toMatchObject({ code: 'ECANCELED' });
    await expect(ring.nop()).rejects.toMatchObject({ code: 'EBADF' });
    sys.write(b, Buffer.from('after')); // the kernel no longer holds the buffers: nothing lands
    expect(bufs.every((buf) => buf.every((x) => x === 0))).toBe(true);
    sys.close(a);
    sys.close(b);
  });

  it('sqpoll: a kernel thread polls the SQ; reads still arrive byte-exact', async () => {
    const ring = new Ring({ entries: 8, sqpoll: true });
    const [r, w] = sys.pipe();
    const got = Buffer.alloc(5);
    const p = ring.read(r, got, -1);
    sys.write(w, Buffer.from('sqpol'));
    expect(await p).toBe(5);
    expect(got.toString()).toBe('sqpol');
    await new Promise((res) => setTimeout(res, 1100)); // past sq_thread_idle: the thread sleeps
    expect(await ring.nop()).toBe(0); // ...and is woken (IORING_SQ_NEED_WAKEUP)
    ring.close();
    sys.close(r);
    sys.close(w);
  });

  it('deferTaskrun (SINGLE_ISSUER | DEFER_TASKRUN): completions arrive through submit, reap and wait', async () => {
    expect(() => new Ring({ deferTaskrun: true })).toThrow(TypeError); // needs attach: false
    const ring = new Ring({ entries: 8, attach: false, deferTaskrun: true });
    const fd = openSync(new URL('../package.json', import.meta.url), 'r');
    const bufs = [0, 1, 2].map(() => Buffer.alloc(10));
    bufs.forEach((b, i) => expect(ring.prepRead(fd, b, i * 10, 10, i)).toBe(true));
    ring.submit();
    const out = new Int32Array(9);
    let n = 0;
    while (n < 3) n += ring.reap(out.subarray(3 * n), 0);
    const want = readFileSync(new URL('../package.json', import.meta.url));
    bufs.forEach((b, i) => expect(b.equals(want.subarray(i * 10, i * 10 + 10))).toBe(true));
    const p = ring.read(fd, Buffer.alloc(4), 0);
    await Promise.resolve();
    expect(ring.wait(1)).toBe(1);
    expect(await p).toBe(4);
    ring.close();
    closeSync(fd);
  });

  it('attach: false registers the eventfd only when asked for, then wakes its reader once', async () => {
    const before = openFds();
    const ring = new Ring({ attach: false });
    expect(leakedSince(before).length).toBe(1); // the ring's own fd: no eventfd yet
    const p = ring.nop();
    await Promise.resolve();
    expect(ring.wait(1)).toBe(1); // reaped through io_uring_enter(GETEVENTS) alone
    expect(await p).toBe(0);
    ring.prepNop(3);
    ring.submit(); // completes before the eventfd exists ...
    const efd = ring.eventFd;
    expect(leakedSince(before).length).toBe(2);
    const v = Buffer.alloc(8);
    expect(sys.read(efd, v)).toBe(8); // ... so the first read of eventFd makes it readable
    expect(sys.read(efd, v)).toBe(-constants.EAGAIN);
    const seen: number[] = [];
    ring.onCompletion = (ud) => seen.push(ud);
    expect(ring.drain()).toBe(1);
    expect(seen).toEqual([3]);
    ring.prepNop(4);
    ring.submit();
    expect(sys.read(efd, v)).toBe(8); // registered now: the kernel signals it
    ring.close();
    expect(leakedSince(before)).toEqual([]);
  });

  it('deferTaskrun: reap() also runs completions still waiting as task work (IORING_SQ_TASKRUN)', () => {
    const ring = new Ring({ entries: 8, attach: false, deferTaskrun: true });
    expect(ring.setupFlags & (1 << 9)).not.toBe(0); // IORING_SETUP_TASKRUN_FLAG
    const [a, b] = sys.socketpair();
    const buf = Buffer.alloc(4);
    ring.prepRecv(a, buf, 0, 4, 1);
    ring.submit(); // the recv waits for data
    ring.prepNop(2);
    ring.submit(); // the NOP's completion is in the CQ now
    sys.write(b, Buffer.from('ping')); // the recv's completion is queued as task work
    const out = new Int32Array(3 * 8);
    expect(ring.reap(out)).toBe(2); // not just the NOP: the task work is run too
    expect([out[0], out[3]].sort()).toEqual([1, 2]);
    expect(buf.toString()).toBe('ping');
    ring.close();
    sys.close(a);
    sys.close(b);
  });

  it('coopTaskrun (COOP_TASKRUN | TASKRUN_FLAG) works attached', async () => {
    const ring = new Ring({ entries: 8, coopTaskrun: true });
    expect(ring.setupFlags & (1 << 8)).not.toBe(0);
    const [a, b] = sys.socketpair();
    const buf = Buffer.alloc(4);
    const p = ring.recv(a, buf);
    setTimeout(() => sys.write(b, Buffer.from('coop')), 5);
    expect(await p).toBe(4);
    expect(buf.toString()).toBe('coop');
    ring.close();
    sys.close(a);
    sys.close(b);
  });

  it('close(): an onCompletion that throws leaves no completion unhanded and the ring closed', async () => {
    const before = openFds();
    const seen: number[] = [];
    const ring = new Ring({
      entries: 8,
      attach: false,
      onCompletion: (ud) => {
        seen.push(ud);
        if (ud === 2 || ud === 4) throw new Error(`boom ${ud}`);
      },
    });
    const [a, b] = sys.socketpair();
    const waiting = ring.recv(a, Buffer.alloc(4)).then(
      () => 'resolved',
      (e: NodeJS.ErrnoException) => e.code,
    );
    for (let ud = 1; ud <= 5; ud++) ring.prepNop(ud);
    ring.submit(); // five completions posted, none reaped yet
    expect(() => ring.close()).toThrow('boom 2'); // the first throw, once every one was handed out
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(ring.eventFd).toBe(-1);
    expect(await waiting).toBe('ECANCELED'); // the close went on past the throws
    await expect(ring.nop()).rejects.toMatchObject({ code: 'EBADF' });
    ring.close(); // closed already: nothing more
    expect(seen.length).toBe(5);
    sys.close(a);
    sys.close(b);
    expect(leakedSince(before)).toEqual([]);
  });

  it('attach: false exposes eventFd, drain() and a blocking wait()', async () => {
    const ring = new Ring({ attach: false });
    expect(ring.eventFd).toBeGreaterThan(2);
    const p = ring.nop();
    await Promise.resolve();
    expect(ring.wait(1)).toBe(1);
    expect(await p).toBe(0);
    const seen: number[] = [];
    ring.onCompletion = (ud) => seen.push(ud);
    ring.prepNop(9);
    ring.submit();
    expect(ring.wait(1)).toBe(1);
    expect(seen).toEqual([9]);
    expect(ring.drain()).toBe(0);
    ring.close();
  });
});

describe.skipIf(why.ring)(titled('Ring in a worker thread (the addon is context-aware)', why.ring), () => {
  it('reads a file byte-exact from its own ring', async () => {
    const index = new URL('../dist/src/index.js', import.meta.url).href;
    const code = `
      const { Ring } = await import(${JSON.stringify(index)});
      const { parentPort } = await import('node:worker_threads');
      const r = new Ring();
      const b = Buffer.alloc(64);
      const fd = await r.openat(-100, ${JSON.stringify(new URL('../package.json', import.meta.url).pathname)}, 0);
      const n = await r.read(fd, b, 0);
      await r.close(fd);
      r.close();
      parentPort.postMessage(b.subarray(0, n));`;
    const w = new Worker(`(async () => {${code}})()`, { eval: true });
    const got = await new Promise<Uint8Array>((res, rej) => w.once('message', res).once('error', rej));
    await w.terminate();
    expect(Buffer.from(got).equals(readFileSync(new URL('../package.json', import.meta.url)).subarray(0, 64))).toBe(
      true,
    );
  });
});

// Runs only where the kernel refuses io_uring (disabled by sysctl or seccomp); here it says so.
const granted = why.ring ? undefined : 'this kernel grants io_uring, so the refusal cannot happen here';
describe.skipIf(granted)(titled('Ring where the kernel refuses io_uring', granted), () => {
  it(`new Ring() throws and says why (${refusal})`, () => {
    expect(() => new Ring()).toThrow(ErrnoError);
  });
});
