/**
 * Connection over each backend with real sockets: writes queue past the kernel's buffer and
 * drain through EPOLLOUT (writev, partial writes resumed in order), a bounded queue drops
 * the connection, a peer reset or a closed peer ends in onClose with the errno instead of a
 * throw, waitWritable resolves on EPOLLOUT, end() flushes before closing, and with `linger`
 * discards what the peer still sends until its EOF (or the bound) before it closes.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Connection, Reactor, constants as c, pollerNames, sys } from '../helpers/rawio.js';
import { leakedSince, openFds } from '../helpers/fds.js';

/** Reads everything `fd` has now. */
function drain(fd: number, into: Buffer[]): number {
  let total = 0;
  const buf = Buffer.alloc(1 << 16);
  for (let n = sys.read(fd, buf); n > 0; n = sys.read(fd, buf)) {
    into.push(Buffer.from(buf.subarray(0, n)));
    total += n;
  }
  return total;
}

describe.each(pollerNames)('Connection on %s', (backend) => {
  let before: Map<number, string>;
  let reactor: Reactor;
  beforeEach(() => {
    before = openFds();
    reactor = new Reactor({ backend });
  });
  afterEach(() => {
    reactor.close();
    expect(leakedSince(before)).toEqual([]);
  });

  it('queues what the kernel does not take, drains it in order, then end() closes', async () => {
    const [a, b] = sys.socketpair();
    let drains = 0;
    let closedWith: Error | undefined | null = null;
    const conn = new Connection(reactor, a, { onDrain: () => drains++, onClose: (e) => (closedWith = e) });
    const chunks = Array.from({ length: 64 }, (_, i) => Buffer.alloc(32 * 1024, i));
    const results = chunks.map((ch) => conn.write(ch));
    expect(results[0]).toBe(true);
    expect(results.at(-1)).toBe(false);
    expect(conn.queuedBytes).toBeGreaterThan(0);
    conn.end();
    const got: Buffer[] = [];
    reactor.setTimer(
      1,
      () => {
        drain(b, got);
        if (conn.closed) reactor.stop();
      },
      { repeat: true },
    );
    await reactor.run();
    drain(b, got);
    expect(Buffer.concat(got).equals(Buffer.concat(chunks))).toBe(true);
    expect(drains).toBe(0); // end() was called: the queue flushed into a close, not a drain
    expect(closedWith).toBeUndefined();
    expect(sys.read(b, Buffer.alloc(1))).toBe(0); // shut down and closed
    sys.close(b);
  });

  it('calls onDrain once the queue empties, and turns EPOLLOUT off', async () => {
    const [a, b] = sys.socketpair();
    const conn = new Connection(reactor, a, { onDrain: () => reactor.stop() });
    while (conn.write(Buffer.alloc(65536))) {
      /* fill the socket buffer */
    }
    expect(reactor.maskOf(a)! & c.EPOLLOUT).toBe(c.EPOLLOUT);
    let total = 0;
    const t = reactor.setTimer(1, () => (total += drain(b, [])), { repeat: true });
    await reactor.run();
    reactor.clearTimer(t);
    total += drain(b, []);
    expect(conn.queuedBytes).toBe(0);
    expect(conn.bytesWritten).toBe(total);
    expect(reactor.maskOf(a)! & c.EPOLLOUT).toBe(0);
    conn.destroy();
    sys.close(b);
  });

  it('cork() holds writes until uncork() sends them in order, in one go', () => {
    const [a, b] = sys.socketpair();
    const conn = new Connection(reactor, a);
    conn.cork();
    const parts = [Buffer.from('one '), Buffer.from('two '), Buffer.alloc(0), Buffer.from('three')];
    for (const p of parts) expect(conn.write(p)).toBe(true);
    expect(conn.bytesWritten).toBe(0); // held, not sent
    expect(drain(b, [])).toBe(0);
    expect(conn.uncork()).toBe(true);
    expect(conn.bytesWritten).toBe(13);
    const got: Buffer[] = [];
    drain(b, got);
    expect(Buffer.concat(got).toString()).toBe('one two three');
    expect(conn.uncork()).toBe(true); // nothing corked: a no-op
    conn.destroy();
    sys.close(b);
  });

  it('uncork() queues what writev could not send, and end() while corked flushes it first', async () => {
    const [a, b] = sys.socketpair();
    const conn = new Connection(reactor, a);
    conn.cork();
    const chunks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(64 * 1024, i));
    for (const ch of chunks) conn.write(ch);
    conn.write(Buffer.from('tail'));
    conn.end(); // uncorks: the held writes go out (or queue) before the shutdown
    expect(conn.bytesWritten).toBeGreaterThan(0);
    expect(conn.bytesWritten).toBeLessThan(40 * 65536);
    const got: Buffer[] = [];
    const t = reactor.setTimer(
      1,
      () => {
        drain(b, got);
        if (conn.closed) reactor.stop();
      },
      { repeat: true },
    );
    await reactor.run();
    reactor.clearTimer(t);
    drain(b, got);
    expect(Buffer.concat(got).equals(Buffer.concat([...chunks, Buffer.from('tail')]))).toBe(true);
    sys.close(b);
  });

  /** Small and large writes mixed, more small bytes than one output buffer holds. */
  function mixedWrites(seed: number): Buffer[] {
    const out: Buffer[] = [];
    for (let i = 0; i < 3000; i++) {
      const len = i % 97 === 0 ? 1025 + ((i * 131 + seed) % 9000) : 1 + ((i * 7 + seed) % 40);
      out.push(Buffer.alloc(len, (i + seed) & 0xff));
    }
    out.push(Buffer.alloc(1024, 1), Buffer.alloc(1025, 2), Buffer.from('end'));
    return out;
  }

  it('cork() sends small and large writes mixed, in order, whatever the kernel takes at once', async () => {
    const [a, b] = sys.socketpair();
    const conn = new Connection(reactor, a, { onDrain: () => reactor.stop() });
    const batches = [mixedWrites(1), mixedWrites(2), mixedWrites(3)];
    for (const w of batches) {
      conn.cork();
      for (const p of w) conn.write(p);
      conn.uncork();
    }
    expect(conn.queuedBytes).toBeGreaterThan(0); // more than a socketpair's buffer: some queued
    const got: Buffer[] = [];
    const t = reactor.setTimer(1, () => drain(b, got), { repeat: true });
    await reactor.run();
    reactor.clearTimer(t);
    drain(b, got);
    expect(Buffer.concat(got).equals(Buffer.concat(batches.flat()))).toBe(true);
    conn.destroy();
    sys.close(b);
  });

  it('two connections corked at once keep their own bytes', () => {
    const [a1, b1] = sys.socketpair();
    const [a2, b2] = sys.socketpair();
    const c1 = new Connection(reactor, a1);
    const c2 = new Connection(reactor, a2);
    c1.cork();
    c2.cork();
    for (let i = 0; i < 100; i++) {
      c1.write(Buffer.from(`a${i},`));
      c2.write(Buffer.from(`b${i},`));
    }
    c2.uncork();
    c1.cork(); // a no-op while corked
    c1.uncork();
    const want = (p: string) => Array.from({ length: 100 }, (_, i) => `${p}${i},`).join('');
    const got1: Buffer[] = [];
    const got2: Buffer[] = [];
    drain(b1, got1);
    drain(b2, got2);
    expect(Buffer.concat(got1).toString()).toBe(want('a'));
    expect(Buffer.concat(got2).toString()).toBe(want('b'));
    c1.destroy();
    c2.destroy();
    sys.close(b1);
    sys.close(b2);
  });

  it('destroy() drops what cork() held', () => {
    const [a, b] = sys.socketpair();
    const conn = new Connection(reactor, a);
    conn.cork();
    conn.write(Buffer.from('never sent'));
    conn.destroy();
    expect(conn.uncork()).toBe(false);
    expect(sys.read(b, Buffer.alloc(16))).toBe(0);
    sys.close(b);
  });

  it('drops the connection past maxQueue with ERR_RAWIO_QUEUE_FULL', () => {
    const [a, b] = sys.socketpair();
    const errors: Error[] = [];
    let closeErr: Error | undefined;
    const conn = new Connection(reactor, a, {
      maxQueue: 4096,
      onError: (e) => errors.push(e),
      onClose: (e) => (closeErr = e),
    });
    expect(conn.write(Buffer.alloc(8 << 20))).toBe(false);
    expect(conn.closed).toBe(true);
    expect(errors).toHaveLength(1);
    expect(closeErr).toMatchObject({ code: 'ERR_RAWIO_QUEUE_FULL' });
    expect(conn.write(Buffer.alloc(1))).toBe(false);
    expect(conn.queuedBytes).toBe(0);
    sys.close(b);
  });

  it('past maxQueue while uncork() queues behind a queue: dropped, and nothing more is queued', () => {
    const [a, b] = sys.socketpair();
    let closeErr: Error | undefined;
    const conn = new Connection(reactor, a, { maxQueue: 100_000, onClose: (e) => (closeErr = e) });
    while (conn.write(Buffer.alloc(65536))) {
      /* fill the socket buffer: the queue is not empty */
    }
    conn.cork();
    for (let i = 0; i < 10; i++) conn.write(Buffer.alloc(30_000)); // large parts, held by reference
    expect(conn.uncork()).toBe(false);
    expect(closeErr).toMatchObject({ code: 'ERR_RAWIO_QUEUE_FULL' });
    expect(conn.closed).toBe(true);
    expect(conn.queuedBytes).toBe(0); // the parts after the one that passed the bound are not copied
    sys.close(b);
  });

  it('end() with linger: shut down for writing, what the peer still sends is discarded, closed at its EOF', async () => {
    const [a, b] = sys.socketpair();
    let afterEnd = 0;
    let ended = false;
    let closedWith: Error | undefined | null = null;
    const conn = new Connection(reactor, a, {
      linger: 60_000, // far off: the peer's EOF is what closes it here
      onData: () => ended && afterEnd++,
      onClose: (e) => (closedWith = e),
    });
    expect(conn.linger).toBe(60_000);
    conn.write(Buffer.from('bye'));
    conn.end();
    ended = true;
    conn.pause(); // ignored while lingering
    expect(conn.lingering).toBe(true);
    expect(conn.closed).toBe(false);
    const got: Buffer[] = [];
    let sent = 0;
    let eof = false;
    reactor.setTimer(
      1,
      () => {
        drain(b, got);
        if (!eof && sys.read(b, Buffer.alloc(1)) === 0) eof = true;
        if (sent < 256 * 1024) sent += Math.max(0, sys.write(b, Buffer.alloc(16 * 1024, 122)));
        else if (sent !== Infinity) {
          sent = Infinity;
          sys.shutdown(b, 'write');
        }
        if (conn.closed) reactor.stop();
      },
      { repeat: true },
    );
    await reactor.run();
    expect(Buffer.concat(got).toString()).toBe('bye');
    expect(eof).toBe(true); // the peer saw EOF while it was still sending
    expect(afterEnd).toBe(0); // nothing read while lingering reached onData
    expect(conn.bytesRead).toBe(256 * 1024);
    expect(closedWith).toBeUndefined();
    expect(conn.lingering).toBe(true);
    sys.close(b);
  });

  it('end() with linger closes after `linger` ms when the peer never closes, and destroy() ends a linger at once', async () => {
    const [a, b] = sys.socketpair();
    const conn = new Connection(reactor, a, { linger: 20 });
    conn.end();
    expect(conn.lingering).toBe(true);
    reactor.setTimer(1, () => conn.closed && reactor.stop(), { repeat: true });
    await reactor.run();
    expect(conn.closed).toBe(true);
    sys.close(b);
    const [c2, d] = sys.socketpair();
    const other = new Connection(reactor, c2, { linger: 60_000 });
    other.end();
    expect(other.lingering).toBe(true);
    other.destroy();
    expect(other.closed).toBe(true);
    sys.close(d);
    expect(() => new Connection(reactor, d, { linger: -1 })).toThrow(RangeError);
    expect(() => new Connection(reactor, d, { linger: '5' as unknown as number })).toThrow(TypeError);
  });

  it('a peer reset (RST) ends in onClose(ECONNRESET), not a throw out of run()', async () => {
    const lfd = sys.listenTcp('127.0.0.1', 0);
    const cfd = sys.connectTcp('127.0.0.1', sys.localPort(lfd), { blocking: true });
    let sfd = -1;
    while (sfd < 0) sfd = sys.accept(lfd);
    let closeErr: (Error & { code?: string }) | undefined;
    new Connection(reactor, sfd, {
      onClose: (e) => {
        closeErr = e;
        reactor.stop();
      },
    });
    sys.write(cfd, Buffer.from('unread by nobody'));
    sys.setLingerZero(cfd);
    sys.close(cfd);
    await reactor.run();
    expect(['ECONNRESET', 'EPIPE']).toContain(closeErr?.code);
    sys.close(lfd);
  });

  it('an onError that throws still gets onClose called, and its throw reaches the caller', () => {
    const [a, b] = sys.socketpair();
    sys.close(b);
    let closeErr: Error | undefined;
    const conn = new Connection(reactor, a, {
      onError: () => {
        throw new Error('from onError');
      },
      onClose: (e) => (closeErr = e),
    });
    expect(() => conn.write(Buffer.from('x'))).toThrow('from onError'); // EPIPE at once
    expect(conn.closed).toBe(true);
    expect(closeErr).toMatchObject({ code: 'EPIPE', syscall: 'write' });
  });

  it('writing to a closed peer ends in onClose(EPIPE or ECONNRESET)', async () => {
    const [a, b] = sys.socketpair();
    let closeErr: (Error & { code?: string }) | undefined;
    const conn = new Connection(reactor, a, {
      onEnd: () => {}, // keep the connection open after the peer's FIN: keep writing
      onClose: (e) => {
        closeErr = e;
        reactor.stop();
      },
    });
    sys.close(b);
    reactor.setTimer(1, () => conn.write(Buffer.alloc(1024)), { repeat: true });
    await reactor.run();
    expect(['EPIPE', 'ECONNRESET']).toContain(closeErr?.code);
  });

  it("a pipe's write end: writes past the pipe's capacity reach the reader, and a reader gone is EPIPE from write", async () => {
    const [r, w] = sys.pipe({ size: 4096 });
    let closeErr: (Error & { code?: string; syscall?: string }) | undefined | null = null;
    const stop = () => reactor.stop();
    const conn = new Connection(reactor, w, { onDrain: stop, onClose: (e) => ((closeErr = e), stop()) });
    const data = Buffer.alloc(256 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    expect(conn.write(data)).toBe(false); // the pipe holds 4 KiB: the rest is queued
    const got: Buffer[] = [];
    const t = reactor.setTimer(1, () => drain(r, got), { repeat: true });
    await reactor.run(); // onDrain: every byte went out through EPOLLOUT
    reactor.clearTimer(t);
    drain(r, got);
    expect(closeErr).toBeNull();
    expect(Buffer.concat(got).equals(data)).toBe(true);
    conn.resume(); // nothing to read on a write end: stays write-only
    expect(reactor.maskOf(w)! & c.EPOLLIN).toBe(0);
    // The reader goes: the next write fails with the write's own errno.
    sys.close(r);
    conn.onClose = (e) => {
      closeErr = e;
      reactor.stop();
    };
    reactor.setTimer(1, () => conn.write(Buffer.alloc(1024)), { repeat: true });
    await reactor.run();
    expect(closeErr).toMatchObject({ code: 'EPIPE', syscall: expect.stringMatching(/^write/) });
    expect(conn.closed).toBe(true);
  });

  it('many small writes queued behind a full socket, and more while it drains, go out in order, every byte', async () => {
    const [a, b] = sys.socketpair();
    const conn = new Connection(reactor, a);
    while (conn.write(Buffer.alloc(65536))) {
      /* fill the socket buffer: what follows is queued */
    }
    const head = conn.queuedBytes + conn.bytesWritten;
    // Parts of 1 to 3 bytes and now and then a large one: gathered, flushed partly, many
    // times over, and written to again while the queue is part sent.
    const parts: Buffer[] = [];
    for (let i = 0; i < 40_000; i++) {
      const big = i % 5000 === 4999;
      parts.push(big ? Buffer.alloc(3000, i) : Buffer.from([i & 0xff, (i >> 8) & 0xff, 0xaa].slice(0, 1 + (i % 3))));
    }
    let next = 0;
    const writeSome = (count: number) => {
      for (const end = Math.min(parts.length, next + count); next < end;) conn.write(parts[next++]!);
    };
    writeSome(20_000);
    expect(conn.queuedBytes).toBeGreaterThan(20_000);
    const got: Buffer[] = [];
    const t = reactor.setTimer(
      1,
      () => {
        drain(b, got);
        writeSome(1000);
        if (next === parts.length && conn.queuedBytes === 0) reactor.stop();
      },
      { repeat: true },
    );
    await reactor.run();
    reactor.clearTimer(t);
    drain(b, got);
    const all = Buffer.concat(got);
    expect(all.length).toBe(head + parts.reduce((n, p) => n + p.length, 0));
    expect(all.subarray(head).equals(Buffer.concat(parts))).toBe(true);
    expect(conn.queuedBytes).toBe(0);
    conn.destroy();
    sys.close(b);
  });

  it('waitWritable resolves on EPOLLOUT and rejects when the connection closes', async () => {
    const [a, b] = sys.socketpair();
    const conn = new Connection(reactor, a);
    while (sys.write(a, Buffer.alloc(65536)) > 0) {
      /* fill the socket buffer */
    }
    let writable = false;
    void conn.waitWritable().then(() => {
      writable = true;
      reactor.stop();
    });
    reactor.setTimer(5, () => drain(b, []));
    await reactor.run();
    expect(writable).toBe(true);
    const pending = conn.waitWritable();
    conn.destroy();
    await expect(pending).rejects.toThrow(/closed/);
    await expect(conn.waitWritable()).rejects.toThrow(/closed/);
    sys.close(b);
  });

  it('reads one buffer per readiness: a peer that keeps its socket full takes turns with another', async () => {
    const [a, b] = sys.socketpair();
    const [c2, d] = sys.socketpair();
    const order: string[] = [];
    let got = 0;
    const stop = () => got === 64_000 + 10 && reactor.stop();
    const full = new Connection(reactor, a, {
      readSize: 1000,
      onData: (x) => (order.push('full'), (got += x.length), stop()),
    });
    const other = new Connection(reactor, c2, { onData: (x) => (order.push('other'), (got += x.length), stop()) });
    sys.write(b, Buffer.alloc(64_000)); // 64 full reads waiting
    sys.write(d, Buffer.alloc(10));
    await reactor.run();
    expect(got).toBe(64_000 + 10); // every byte, edge-triggered too: a full read re-arms the fd
    // The other peer's bytes were read within the first waits, not after all 64 reads.
    expect(order.indexOf('other')).toBeLessThan(3);
    full.destroy();
    other.destroy();
    sys.close(b);
    sys.close(d);
  });

  it('reads in chunks of readSize, every byte, and pause() stops reading', async () => {
    const [a, b] = sys.socketpair();
    const seen: number[] = [];
    const conn = new Connection(reactor, a, {
      readSize: 1000,
      onData: (d) => {
        seen.push(d.length);
        if (seen.reduce((s, x) => s + x, 0) >= 5000) {
          conn.pause();
          reactor.setTimer(20, () => reactor.stop());
        }
      },
    });
    sys.write(b, Buffer.alloc(5000));
    await reactor.run();
    expect(seen.reduce((s, x) => s + x, 0)).toBe(5000);
    expect(Math.max(...seen)).toBeLessThanOrEqual(1000);
    sys.write(b, Buffer.alloc(10));
    reactor.setTimer(20, () => reactor.stop());
    await reactor.run();
    expect(conn.bytesRead).toBe(5000); // paused: the new bytes wait in the kernel
    conn.destroy();
    sys.close(b);
  });

  it('a paused connection whose peer hung up is not woken on every wait, and reads the rest on resume', async () => {
    const [a, b] = sys.socketpair();
    const got: Buffer[] = [];
    let closed = false;
    const conn = new Connection(reactor, a, {
      onData: (d) => got.push(Buffer.from(d)),
      onClose: () => (closed = true),
    });
    conn.pause();
    sys.write(b, Buffer.from('kept'));
    sys.close(b);
    let busy = 0;
    const wait = reactor.poller.wait.bind(reactor.poller);
    // Only waits that report this socket count: the reactor also watches Node's own loop
    // fd, which the test runner's traffic can make ready at any time.
    reactor.poller.wait = (out, ms) => {
      const n = wait(out, ms);
      for (let i = 0; i < n; i++) if (out[2 * i] === a) busy++;
      return n;
    };
    reactor.setTimer(30, () => reactor.stop());
    await reactor.run();
    expect(busy).toBeLessThan(5); // level-triggered HUP would fire on every wait
    reactor.setTimer(0, () => conn.resume());
    reactor.setTimer(30, () => reactor.stop());
    await reactor.run();
    expect(Buffer.concat(got).toString()).toBe('kept');
    expect(closed).toBe(true);
  });
});
