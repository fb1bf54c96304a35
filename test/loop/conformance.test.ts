/**
 * One conformance suite over every Poller backend (select, poll, epoll, epoll-et): readiness
 * on socketpairs and pipes, peer close, remove and modify, 1000 fds at once (select: what
 * FD_SETSIZE allows), the registration errors, select's RangeError at FD_SETSIZE, what a
 * closed poller answers (the same as a closed epoll fd) and what happens to a watched fd
 * closed behind the poller's back (alone and under a running Reactor), fairness when more
 * fds stay ready than a wait holds, and a Reactor's dispatch on every backend: no stale
 * event for an fd watched mid-batch, the rest of a batch after a handler throws, an fd
 * Node's loop refuses when attached, rewatch's ENOENT.
 */
import { closeSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ErrnoError,
  POLLNVAL,
  type Poller,
  Reactor,
  constants as c,
  createPoller,
  pollerNames,
  sys,
} from '../helpers/rawio.js';
import { leakedSince, openFds } from '../helpers/fds.js';
import { native } from '../../dist/src/sys/native.js';

const IN = c.EPOLLIN;
const OUT = c.EPOLLOUT;

/** The fired pairs of one wait, as a Map fd → revents. */
function waitMap(p: Poller, timeoutMs: number, capacity = 64): Map<number, number> {
  const out = new Int32Array(2 * capacity);
  const n = p.wait(out, timeoutMs);
  expect(n).toBeGreaterThanOrEqual(0);
  const m = new Map<number, number>();
  for (let i = 0; i < n; i++) m.set(out[2 * i]!, out[2 * i + 1]!);
  return m;
}

describe.each(pollerNames)('Poller %s', (name) => {
  let before: Map<number, string>;
  let p: Poller;
  const fds: number[] = [];
  const pair = (kind: 'socketpair' | 'pipe') => {
    const fdsNew = kind === 'pipe' ? sys.pipe() : sys.socketpair();
    fds.push(...fdsNew);
    return fdsNew;
  };
  /**
   * Two eventfds watched by `reactor` with `handler` (closed after the test); `fire()` makes
   * both readable, so that they come in one batch.
   */
  const twoInOneBatch = (reactor: Reactor, handler: (fd: number) => void) => {
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    const e1 = sys.eventfd();
    const e2 = sys.eventfd();
    fds.push(e1, e2);
    reactor.watch(e1, IN, handler);
    reactor.watch(e2, IN, handler);
    return {
      e1,
      e2,
      fire: () => {
        sys.write(e1, one);
        sys.write(e2, one);
      },
    };
  };

  beforeEach(() => {
    const lim = sys.getrlimit(c.RLIMIT_NOFILE);
    if (lim.soft < 4096) sys.setrlimit(c.RLIMIT_NOFILE, { soft: Math.min(4096, lim.hard), hard: lim.hard });
    before = openFds();
    p = createPoller(name);
  });
  afterEach(() => {
    p.close();
    for (const fd of fds.splice(0)) sys.close(fd);
    expect(leakedSince(before)).toEqual([]);
  });

  it('has its name and an fd only for epoll', () => {
    expect(p.name).toBe(name);
    if (name.startsWith('epoll')) expect(p.fd).toBeGreaterThan(2);
    else expect(p.fd).toBe(-1);
  });

  it('reports a socket readable once data arrives, writable when asked', () => {
    const [a, b] = pair('socketpair');
    p.add(a, IN);
    expect(waitMap(p, 0).size).toBe(0);
    sys.write(b, Buffer.from('x'));
    expect(waitMap(p, 1000).get(a)! & IN).toBe(IN);
    p.add(b, OUT);
    expect(waitMap(p, 1000).get(b)! & OUT).toBe(OUT);
  });

  it('reports pipes: the read end readable, the write end writable', () => {
    const [r, w] = pair('pipe');
    p.add(r, IN);
    p.add(w, OUT);
    let m = waitMap(p, 1000);
    expect(m.has(r)).toBe(false);
    expect(m.get(w)! & OUT).toBe(OUT);
    sys.write(w, Buffer.from('abc'));
    m = waitMap(p, 1000);
    expect(m.get(r)! & IN).toBe(IN);
  });

  it('reports a peer close (HUP/RDHUP, or readable for select) and read then gives 0', () => {
    const [a, b] = pair('socketpair');
    p.add(a, IN | c.EPOLLRDHUP);
    sys.close(b);
    fds.splice(fds.indexOf(b), 1);
    const ev = waitMap(p, 1000).get(a)!;
    expect(ev).toBeDefined();
    if (name === 'select') expect(ev & IN).toBe(IN);
    else expect(ev & (c.EPOLLHUP | c.EPOLLRDHUP)).not.toBe(0);
    expect(sys.read(a, new Uint8Array(8))).toBe(0);
  });

  it('reports POLLHUP on a pipe whose writer closed', () => {
    const [r, w] = pair('pipe');
    p.add(r, IN);
    sys.close(w);
    fds.splice(fds.indexOf(w), 1);
    const ev = waitMap(p, 1000).get(r)!;
    expect(ev & (name === 'select' ? IN : c.EPOLLHUP)).not.toBe(0);
  });

  it('stops reporting after remove', () => {
    const [a, b] = pair('socketpair');
    p.add(a, IN);
    sys.write(b, Buffer.from('x'));
    expect(waitMap(p, 1000).has(a)).toBe(true);
    p.remove(a);
    expect(waitMap(p, 0).has(a)).toBe(false);
  });

  it('modify changes the interest', () => {
    const [a, b] = pair('socketpair');
    p.add(a, IN);
    expect(waitMap(p, 0).has(a)).toBe(false); // no data, and OUT not asked for
    p.modify(a, OUT);
    expect(waitMap(p, 1000).get(a)! & OUT).toBe(OUT);
    p.modify(a, IN);
    expect(waitMap(p, 0).has(a)).toBe(false);
    sys.write(b, Buffer.from('x'));
    expect(waitMap(p, 1000).get(a)! & IN).toBe(IN);
  });

  it('watches many fds at once and reports only the ready ones', () => {
    // select cannot go past FD_SETSIZE: keep every fd below it.
    const pairs = name === 'select' ? Math.floor((c.FD_SETSIZE - 64 - fds.length) / 2) - 40 : 500;
    const ends: [number, number][] = [];
    for (let i = 0; i < pairs; i++) ends.push(pair('socketpair'));
    for (const [a, b] of ends) {
      p.add(a, IN);
      p.add(b, IN);
    }
    const ready = [ends[3]!, ends[pairs - 1]!, ends[Math.floor(pairs / 2)]!];
    for (const [, b] of ready) sys.write(b, Buffer.from('!'));
    const m = waitMap(p, 1000, 2048);
    expect([...m.keys()].sort((x, y) => x - y)).toEqual(ready.map(([a]) => a).sort((x, y) => x - y));
    expect(2 * pairs).toBeGreaterThanOrEqual(name === 'select' ? 800 : 1000);
  });

  it('reports no more pairs than out holds, and the rest next time', () => {
    const ends = Array.from({ length: 5 }, () => pair('socketpair'));
    for (const [a, b] of ends) {
      p.add(a, IN);
      sys.write(b, Buffer.from('x'));
    }
    const seen = new Set<number>();
    const out = new Int32Array(4);
    for (let k = 0; k < 5 && seen.size < 5; k++) {
      const n = p.wait(out, 1000);
      expect(n).toBeLessThanOrEqual(2);
      for (let i = 0; i < n; i++) {
        seen.add(out[2 * i]!);
        p.remove(out[2 * i]!); // level-triggered backends would report it again
      }
    }
    expect(seen.size).toBe(5);
  });

  it('while more fds stay ready than out holds, each is reported within a few waits (none starves)', () => {
    const ends = Array.from({ length: 5 }, () => pair('socketpair'));
    for (const [a, b] of ends) {
      p.add(a, IN);
      sys.write(b, Buffer.from('x')); // never read: level-triggered backends report it on every wait
    }
    const seen = new Set<number>();
    const out = new Int32Array(4); // two pairs
    for (let k = 0; k < 3; k++) {
      const n = p.wait(out, 1000);
      for (let i = 0; i < n; i++) seen.add(out[2 * i]!);
    }
    expect(seen).toEqual(new Set(ends.map(([a]) => a)));
  });

  it('throws EBADF for a closed fd, EEXIST for a double add, ENOENT for an unknown fd', () => {
    const [a, b] = pair('socketpair');
    sys.close(b);
    fds.splice(fds.indexOf(b), 1);
    expect(() => p.add(b, IN)).toThrow(expect.objectContaining({ code: 'EBADF', errno: -c.EBADF }));
    p.add(a, IN);
    expect(() => p.add(a, IN)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    p.remove(a);
    expect(() => p.modify(a, IN)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => p.remove(a)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('checks its arguments', () => {
    expect(() => p.add('3' as unknown as number, IN)).toThrow(TypeError);
    expect(() => p.add(-1, IN)).toThrow(RangeError);
    expect(() => p.add(0, 'x' as unknown as number)).toThrow(TypeError);
    expect(() => p.wait(new Uint32Array(4) as unknown as Int32Array, 0)).toThrow(TypeError);
    expect(() => p.wait(new Int32Array(1), 0)).toThrow(RangeError);
    expect(() => p.wait(new Int32Array(2), -2)).toThrow(RangeError);
  });

  it(name === 'select' ? 'refuses fd >= FD_SETSIZE with RangeError' : 'has no FD_SETSIZE limit', () => {
    expect(c.FD_SETSIZE).toBe(1024);
    if (name !== 'select') {
      // An fd number past 1024 is only a number to poll and epoll: the kernel says EBADF.
      expect(() => p.add(5000, IN)).toThrow(expect.objectContaining({ code: 'EBADF' }));
      return;
    }
    expect(() => p.add(1024, IN)).toThrow(RangeError);
    expect(() => p.add(100000, IN)).toThrow(RangeError);
    expect(() => p.modify(1024, IN)).toThrow(RangeError);
    expect(() => p.remove(5000)).toThrow(RangeError);
    // The native set checks again, for callers that skip the TypeScript layer.
    expect(() => new native.SelectSet().add(1024, IN)).toThrow(RangeError);
  });
  it('once closed, answers as a closed epoll fd does: EBADF from every call', () => {
    const [a] = pair('socketpair');
    p.add(a, IN);
    p.close();
    const ebadf = expect.objectContaining({ code: 'EBADF', errno: -c.EBADF });
    expect(() => p.add(a, IN)).toThrow(ebadf);
    expect(() => p.modify(a, OUT)).toThrow(ebadf);
    expect(() => p.remove(a)).toThrow(ebadf);
    expect(p.wait(new Int32Array(8), 0)).toBe(-c.EBADF);
    expect(p.wait(new Int32Array(8), -1)).toBe(-c.EBADF); // never blocks
    // Arguments are still checked first, and closing again is harmless.
    expect(() => p.add(-1, IN)).toThrow(RangeError);
    expect(() => p.wait(new Int32Array(1), 0)).toThrow(RangeError);
    p.close();
  });

  it('reports a watched fd closed behind its back (POLLNVAL), or drops it (epoll); never fails the wait', () => {
    const [r, w] = pair('pipe');
    const [r2, w2] = pair('pipe');
    p.add(r, IN);
    p.add(r2, IN);
    sys.close(r);
    fds.splice(fds.indexOf(r), 1);
    sys.write(w2, Buffer.from('x'));
    // Edge-triggered reports the pipe once; the others report it until it is read.
    for (let round = 0; round < (name === 'epoll-et' ? 1 : 2); round++) {
      const m = waitMap(p, 1000);
      expect(m.get(r2)! & IN).toBe(IN); // the other fds are still served
      if (name.startsWith('epoll')) expect(m.has(r)).toBe(false);
      else expect(m.get(r)).toBe(POLLNVAL);
    }
    if (!name.startsWith('epoll')) p.remove(r);
    expect(waitMap(p, 0).has(r)).toBe(false);
    void w;
  });

  it.each(['run', 'attach'] as const)(
    'under a Reactor (%s), a dead fd reaches its handler and is unwatched; the loop goes on',
    async (mode) => {
      p.close(); // this test makes its own, inside the reactor
      const reactor = new Reactor({ backend: name });
      const [r, w] = pair('pipe');
      const [r2, w2] = pair('pipe');
      const seen: number[] = [];
      reactor.watch(r, IN, (_fd, ev) => seen.push(ev));
      let wakes = 0;
      let woken!: () => void;
      const thrice = new Promise<void>((resolve) => (woken = resolve));
      reactor.watch(r2, IN, () => {
        sys.read(r2, Buffer.alloc(8));
        if (++wakes < 3) return void sys.write(w2, Buffer.from('x'));
        reactor.stop();
        woken();
      });
      sys.write(w, Buffer.from('y')); // readable when it dies
      if (mode === 'attach') reactor.attach();
      sys.close(r);
      fds.splice(fds.indexOf(r), 1);
      sys.write(w2, Buffer.from('x'));
      if (mode === 'run') await reactor.run(); // resolves: never rejects with EBADF
      await thrice;
      expect(wakes).toBe(3);
      if (name.startsWith('epoll')) {
        expect(seen).toEqual([]); // the kernel dropped it with the fd, silently
      } else {
        expect(seen).toEqual([POLLNVAL]); // told once, then unwatched
        expect(reactor.maskOf(r)).toBeUndefined();
      }
      reactor.close();
    },
  );

  it('under an attached Reactor, an fd Node cannot poll (a regular file) is refused and left unwatched', () => {
    p.close(); // this test makes its own, inside the reactor
    const reactor = new Reactor({ backend: name });
    const file = openSync(fileURLToPath(import.meta.url), 'r');
    try {
      reactor.attach();
      const refused = (call: () => unknown) => {
        try {
          call();
        } catch (e) {
          return e;
        }
        return expect.fail('not refused');
      };
      const e = refused(() => reactor.watch(file, IN, () => {}));
      expect(e).toBeInstanceOf(ErrnoError);
      expect(e).toMatchObject({ code: 'EPERM' }); // epoll_ctl's, or (select, poll) uv_poll_init's
      expect(reactor.maskOf(file)).toBeUndefined();
      reactor.stop();
      if (!name.startsWith('epoll')) {
        // select and poll take it (always ready); attaching then cannot, and is undone.
        reactor.watch(file, IN, () => {});
        const a = refused(() => reactor.attach());
        expect(a).toBeInstanceOf(ErrnoError);
        expect(a).toMatchObject({ code: 'EPERM' });
        expect(reactor.running).toBe(false);
        reactor.unwatch(file);
      }
      reactor.attach(); // nothing left behind: attaches as before
      expect(reactor.running).toBe(true);
    } finally {
      reactor.close();
      closeSync(file);
    }
  });

  it('under a Reactor, rewatch of an unwatched fd: ENOENT named as the backend names it', () => {
    const reactor = new Reactor({ backend: name });
    const syscall = name.startsWith('epoll') ? 'epoll_ctl' : name;
    expect(() => reactor.rewatch(0, IN)).toThrow(expect.objectContaining({ code: 'ENOENT', syscall }));
    const [a] = pair('socketpair');
    expect(() => reactor.poller.modify(a, IN)).toThrow(expect.objectContaining({ code: 'ENOENT', syscall }));
    reactor.close();
  });

  it.each(['run', 'attach'] as const)(
    'under a Reactor (%s), a handler that closes a later fd of the batch and watches a new fd of its number: the new fd gets no stale event',
    async (mode) => {
      p.close(); // this test makes its own, inside the reactor
      const reactor = new Reactor({ backend: name });
      const [a, a2] = pair('socketpair');
      const [b, b2] = pair('socketpair');
      const calls: string[] = [];
      let reused = -1;
      let written = false;
      let stopped!: () => void;
      const done = new Promise<void>((resolve) => (stopped = resolve));
      const one = Buffer.alloc(8);
      one.writeBigUInt64LE(1n);
      // Both are readable in one batch; whichever the backend reports first closes the
      // other and gives its number to a fresh eventfd, not readable until a timer (run after
      // the batch) writes it.
      const handler = (fd: number) => {
        if (fd === reused) {
          calls.push(written ? 'new' : 'stale');
          if (!written) return;
          sys.read(fd, Buffer.alloc(8));
          reactor.stop();
          return stopped();
        }
        calls.push('old');
        sys.read(fd, Buffer.alloc(8));
        if (reused >= 0) return;
        const other = fd === a ? b : a;
        reactor.unwatch(other);
        sys.close(other);
        fds.splice(fds.indexOf(other), 1);
        const spare: number[] = [];
        for (let e = sys.eventfd(); ; e = sys.eventfd()) {
          if (e === other) break;
          spare.push(e); // a lower free number: fill it and try again
        }
        for (const e of spare) sys.close(e);
        reused = other;
        fds.push(reused);
        reactor.watch(reused, IN, handler);
        reactor.setTimer(0, () => {
          written = true;
          sys.write(reused, one); // now it is ready: served on a later wait (epoll-et too)
        });
      };
      reactor.watch(a, IN, handler);
      reactor.watch(b, IN, handler);
      sys.write(a2, Buffer.from('x'));
      sys.write(b2, Buffer.from('y'));
      if (mode === 'run') await reactor.run();
      else reactor.attach();
      await done;
      // The closed fd's event never reaches the fd that took its number.
      expect(calls).toEqual(['old', 'new']);
      reactor.close();
    },
  );

  it.each(['run', 'attach'] as const)(
    'under a Reactor (%s), close() from a handler: the rest of the batch and the due timers are dropped, nothing throws',
    async (mode) => {
      p.close(); // this test makes its own, inside the reactor
      const reactor = new Reactor({ backend: name });
      const served: number[] = [];
      let closed!: () => void;
      const done = new Promise<void>((resolve) => (closed = resolve));
      // Whichever comes first closes the reactor; the other would change its interest,
      // which a closed poller refuses (EBADF).
      const handler = (fd: number) => {
        served.push(fd);
        if (served.length > 1) return reactor.rewatch(fd, IN | OUT);
        reactor.close();
        closed();
      };
      const batch = twoInOneBatch(reactor, handler);
      let timerRan = false;
      reactor.setTimer(0, () => (timerRan = true));
      batch.fire();
      if (mode === 'run')
        await reactor.run(); // resolves: no EBADF from the rest of the batch
      else reactor.attach(); // an uncaught exception would fail the test
      await done;
      await new Promise((resolve) => setImmediate(resolve));
      expect(served.length).toBe(1);
      expect(timerRan).toBe(false);
      expect(reactor.running).toBe(false);
    },
  );

  it.each(['run', 'attach'] as const)(
    'under a Reactor (%s), stop() from a timer ends the pass: the other timers due with it wait for the next run',
    async (mode) => {
      p.close(); // this test makes its own, inside the reactor
      const reactor = new Reactor({ backend: name });
      try {
        const ran: string[] = [];
        let stopped!: () => void;
        const done = new Promise<void>((resolve) => (stopped = resolve));
        reactor.setTimer(0, () => {
          ran.push('first');
          reactor.stop();
          stopped();
        });
        reactor.setTimer(0, () => ran.push('second')); // due in the same pass
        if (mode === 'run') await reactor.run();
        else reactor.attach();
        await done;
        await new Promise((resolve) => setImmediate(resolve));
        expect(ran).toEqual(['first']);
        expect(reactor.running).toBe(false);
        // Not dropped: it runs once the reactor runs again.
        const again = new Promise<void>((resolve) => reactor.setTimer(0, resolve));
        if (mode === 'run') {
          const running = reactor.run();
          await again;
          reactor.stop();
          await running;
        } else {
          reactor.attach();
          await again;
          reactor.stop();
        }
        expect(ran).toEqual(['first', 'second']);
      } finally {
        reactor.close();
      }
    },
  );

  it.each(['run', 'attach'] as const)(
    'under a Reactor, a handler that throws mid-batch rejects run(); the rest of the batch is served next (%s)',
    async (mode) => {
      p.close(); // this test makes its own, inside the reactor
      const reactor = new Reactor({ backend: name });
      const served: number[] = [];
      let stopped!: () => void;
      const done = new Promise<void>((resolve) => (stopped = resolve));
      const handler = (fd: number) => {
        sys.read(fd, Buffer.alloc(8));
        served.push(fd);
        if (served.length === 1) throw new Error('boom');
        reactor.stop();
        stopped();
      };
      const batch = twoInOneBatch(reactor, handler);
      batch.fire();
      await expect(reactor.run()).rejects.toThrow('boom');
      expect(served.length).toBe(1);
      // A deadline, not a measure: without the rest of the batch, epoll-et would wait forever.
      reactor.setTimer(20_000, () => {
        reactor.stop();
        stopped();
      });
      if (mode === 'run') await reactor.run();
      else reactor.attach();
      await done;
      expect(served.sort()).toEqual([batch.e1, batch.e2].sort());
      reactor.close();
    },
  );
});
