/**
 * epoll(7) semantics through `Epoll`: level-triggered reports again while data is unread,
 * edge-triggered once per arrival, EPOLLONESHOT disarms until modify (a Reactor's rewatch
 * with the same mask re-arms it), EPOLLEXCLUSIVE is accepted on add and refused on modify;
 * errors carry code, errno and syscall.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Epoll, Reactor, constants as c, createPoller, sys } from './helpers/rawio.js';
import { leakedSince, openFds } from './helpers/fds.js';

const IN = c.EPOLLIN;

function events(ep: Epoll, fd: number, timeoutMs = 0): number {
  const out = new Int32Array(16);
  const n = ep.wait(out, timeoutMs);
  for (let i = 0; i < n; i++) if (out[2 * i] === fd) return out[2 * i + 1]!;
  return 0;
}

describe('Epoll', () => {
  let before: Map<number, string>;
  let ep: Epoll;
  let a: number;
  let b: number;

  beforeEach(() => {
    before = openFds();
    ep = new Epoll();
    [a, b] = sys.socketpair();
  });
  afterEach(() => {
    ep.close();
    sys.close(a);
    sys.close(b);
    expect(leakedSince(before)).toEqual([]);
  });

  it('is close-on-exec and closes its fd', () => {
    const fd = ep.fd;
    expect(openFds().get(fd)).toBe('anon_inode:[eventpoll]');
    ep.close();
    expect(ep.fd).toBe(-1);
    expect(openFds().has(fd)).toBe(false);
    expect(ep.wait(new Int32Array(2), 0)).toBe(-c.EBADF);
    ep = new Epoll();
  });

  it('level-triggered: reports again while data is unread', () => {
    ep.add(a, IN);
    sys.write(b, Buffer.from('hello'));
    expect(events(ep, a, 1000) & IN).toBe(IN);
    expect(events(ep, a) & IN).toBe(IN);
    sys.read(a, new Uint8Array(16));
    expect(events(ep, a)).toBe(0);
  });

  it('edge-triggered: reports once until new data arrives', () => {
    ep.add(a, IN | c.EPOLLET); // a negative int32 in JS: bit 31
    expect(IN | c.EPOLLET).toBeLessThan(0);
    sys.write(b, Buffer.from('hello'));
    expect(events(ep, a, 1000) & IN).toBe(IN);
    expect(events(ep, a)).toBe(0); // still unread, but no new edge
    sys.write(b, Buffer.from('more'));
    expect(events(ep, a, 1000) & IN).toBe(IN);
  });

  it("'epoll-et' adds EPOLLET to every mask", () => {
    using et = createPoller('epoll-et');
    et.add(a, IN);
    sys.write(b, Buffer.from('x'));
    const out = new Int32Array(4);
    expect(et.wait(out, 1000)).toBe(1);
    expect(et.wait(out, 0)).toBe(0);
    et.modify(a, IN); // a modify re-arms the edge while data is pending
    expect(et.wait(out, 0)).toBe(1);
  });

  it('EPOLLONESHOT disarms after one event until modify', () => {
    ep.add(a, IN | c.EPOLLONESHOT);
    sys.write(b, Buffer.from('x'));
    expect(events(ep, a, 1000) & IN).toBe(IN);
    sys.write(b, Buffer.from('y'));
    expect(events(ep, a)).toBe(0);
    ep.modify(a, IN | c.EPOLLONESHOT);
    expect(events(ep, a) & IN).toBe(IN);
    expect(events(ep, a)).toBe(0);
  });

  it.each(['epoll', 'epoll-et'] as const)(
    'under a Reactor (%s), rewatch with the same EPOLLONESHOT mask re-arms the fd',
    async (backend) => {
      const reactor = new Reactor({ backend });
      const mask = IN | c.EPOLLONESHOT;
      const one = Buffer.from('x');
      let seen = 0;
      reactor.watch(a, mask, () => {
        sys.read(a, Buffer.alloc(8));
        if (++seen === 2) return reactor.stop();
        reactor.rewatch(a, mask); // disarmed by its event: the same mask again re-arms it
        sys.write(b, one);
      });
      sys.write(b, one);
      reactor.setTimer(20_000, () => reactor.stop()); // a deadline, not a measure
      await reactor.run();
      expect(seen).toBe(2);
      reactor.close();
    },
  );

  it('EPOLLEXCLUSIVE is accepted on add and refused on modify (EINVAL)', () => {
    ep.add(a, IN | c.EPOLLEXCLUSIVE);
    sys.write(b, Buffer.from('x'));
    expect(events(ep, a, 1000) & IN).toBe(IN);
    expect(() => ep.modify(a, IN | c.EPOLLEXCLUSIVE)).toThrow(
      expect.objectContaining({ code: 'EINVAL', errno: -c.EINVAL, syscall: 'epoll_ctl' }),
    );
  });

  it('add of a closed fd: EBADF, errno -9, syscall epoll_ctl', () => {
    const [x, y] = sys.pipe();
    sys.close(x);
    sys.close(y);
    let err: unknown;
    try {
      ep.add(x, IN);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'EBADF', errno: -9, syscall: 'epoll_ctl' });
    expect((err as Error).message).toBe('EBADF: bad file descriptor, epoll_ctl');
  });

  it('double add: EEXIST; modify/remove of an unwatched fd: ENOENT', () => {
    ep.add(a, IN);
    expect(() => ep.add(a, IN)).toThrow(expect.objectContaining({ code: 'EEXIST', syscall: 'epoll_ctl' }));
    expect(() => ep.modify(b, IN)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => ep.remove(b)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('wrong argument types: TypeError; out of range: RangeError', () => {
    expect(() => ep.add('1' as unknown as number, IN)).toThrow(TypeError);
    expect(() => ep.add(a, null as unknown as number)).toThrow(TypeError);
    expect(() => ep.add(a, 2 ** 33)).toThrow(RangeError);
    expect(() => ep.add(1.5, IN)).toThrow(RangeError);
    expect(() => ep.wait([0, 0] as unknown as Int32Array, 0)).toThrow(TypeError);
    expect(() => ep.wait(new Int32Array(2), 1.5)).toThrow(RangeError);
    expect(() => new Epoll({ edgeTriggered: 'yes' as unknown as boolean })).toThrow(TypeError);
    expect(() => createPoller('kqueue' as 'epoll')).toThrow(TypeError);
  });

  it('a wait with a timeout returns 0 when nothing is ready', () => {
    ep.add(a, IN);
    const t = performance.now();
    expect(ep.wait(new Int32Array(2), 20)).toBe(0);
    expect(performance.now() - t).toBeGreaterThanOrEqual(15);
  });
});
