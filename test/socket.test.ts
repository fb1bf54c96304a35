/**
 * The sys socket, pipe and eventfd functions over real kernel objects: TCP listen/connect/
 * accept on loopback, read/write/writev/shutdown, socket options, socketpair, pipe sizes,
 * eventfd; the flags every fd gets (non-blocking, close-on-exec); the -errno results of the
 * hot path and the TypeError/RangeError of bad input.
 */
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { constants as c, sys } from './helpers/rawio.js';
import { leakedSince, openFds } from './helpers/fds.js';

const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

function flags(fd: number): number {
  const m = /flags:\s*([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  return parseInt(m![1]!, 8);
}

/** Retries a non-blocking call while it says EAGAIN (the peer is in this same thread). */
function retry(f: () => number): number {
  for (let i = 0; i < 10000; i++) {
    const r = f();
    if (r !== -c.EAGAIN) return r;
  }
  throw new Error('still EAGAIN');
}

describe('sys sockets', () => {
  let before: Map<number, string>;
  const fds: number[] = [];
  const keep = (...xs: number[]) => (fds.push(...xs), xs);
  beforeEach(() => {
    before = openFds();
  });
  afterEach(() => {
    for (const fd of fds.splice(0)) sys.close(fd);
    expect(leakedSince(before)).toEqual([]);
  });

  it('listens, connects and accepts on loopback; fds are non-blocking and close-on-exec', () => {
    const [l] = keep(sys.listenTcp('127.0.0.1', 0));
    const port = sys.localPort(l!);
    expect(port).toBeGreaterThan(0);
    expect(sys.accept(l!)).toBe(-c.EAGAIN);
    const [cl] = keep(sys.connectTcp('127.0.0.1', port));
    const [s] = keep(retry(() => sys.accept(l!)));
    for (const fd of [l!, cl!, s!]) {
      expect(flags(fd) & O_NONBLOCK).toBe(O_NONBLOCK);
      expect(flags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);
    }
    expect(sys.socketError(cl!)).toBe(0);
    sys.setNoDelay(s!, true);
    sys.setCork(s!, true);
    sys.setCork(s!, false);
    expect(sys.write(cl!, Buffer.from('hello world'), 6)).toBe(5);
    const buf = Buffer.alloc(16);
    expect(retry(() => sys.read(s!, buf, 2, 10))).toBe(5);
    expect(buf.subarray(2, 7).toString()).toBe('world');
    expect(sys.writev(s!, [Buffer.from('ab'), Buffer.from('cd')])).toBe(4);
    expect(retry(() => sys.read(cl!, buf))).toBe(4);
    expect(buf.subarray(0, 4).toString()).toBe('abcd');
    expect(sys.shutdown(s!, 'write')).toBe(0);
    expect(retry(() => sys.read(cl!, buf))).toBe(0);
  });

  it('blocking sockets on request', () => {
    const [l] = keep(sys.listenTcp('127.0.0.1', 0, { blocking: true, backlog: 4, reusePort: true }));
    expect(flags(l!) & O_NONBLOCK).toBe(0);
    const [a] = keep(...sys.socketpair({ blocking: true }));
    expect(flags(a!) & O_NONBLOCK).toBe(0);
  });

  it('a refused connect ends in ECONNREFUSED (SO_ERROR), synchronously when blocking', () => {
    const [l] = keep(sys.listenTcp('127.0.0.1', 0));
    const port = sys.localPort(l!);
    sys.close(fds.pop()!);
    expect(() => sys.connectTcp('127.0.0.1', port, { blocking: true })).toThrow(
      expect.objectContaining({ code: 'ECONNREFUSED', syscall: 'connect' }),
    );
  });

  it('socketpair, pipe and eventfd', () => {
    const [a, b] = keep(...sys.socketpair());
    expect(sys.write(a!, Buffer.from('x'))).toBe(1);
    expect(sys.read(b!, Buffer.alloc(4))).toBe(1);
    expect(sys.read(b!, Buffer.alloc(4))).toBe(-c.EAGAIN);
    const [r, w] = keep(...sys.pipe({ size: 1 << 16 }));
    expect(sys.pipeSize(r!)).toBeGreaterThanOrEqual(1 << 16);
    expect(flags(r!) & (O_NONBLOCK | O_CLOEXEC)).toBe(O_NONBLOCK | O_CLOEXEC);
    expect(sys.write(w!, Buffer.from('abc'))).toBe(3);
    expect(sys.read(r!, Buffer.alloc(8))).toBe(3);
    const [e] = keep(sys.eventfd(3));
    const eb = Buffer.alloc(8);
    expect(sys.read(e!, eb)).toBe(8);
    expect(eb.readBigUInt64LE()).toBe(3n);
    expect(sys.read(e!, eb)).toBe(-c.EAGAIN);
  });

  it('localPort of a socket with no port (AF_UNIX) is EAFNOSUPPORT, of a pipe ENOTSOCK', () => {
    const [a] = keep(...sys.socketpair());
    expect(() => sys.localPort(a!)).toThrow(
      expect.objectContaining({ code: 'EAFNOSUPPORT', errno: -97, syscall: 'getsockname' }), // Linux's EAFNOSUPPORT
    );
    const [r] = keep(...sys.pipe());
    expect(() => sys.localPort(r!)).toThrow(expect.objectContaining({ code: 'ENOTSOCK', syscall: 'getsockname' }));
  });

  it('a pipe size the kernel refuses is an ErrnoError named fcntl (F_SETPIPE_SZ), not pipe2, with no fd left open', (ctx) => {
    const max = Number(readFileSync('/proc/sys/fs/pipe-max-size', 'utf8'));
    // CAP_SYS_RESOURCE (bit 24 of the effective set) lets a pipe grow past pipe-max-size.
    const capEff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]}`);
    if ((capEff >> 24n) & 1n)
      ctx.skip('this process has CAP_SYS_RESOURCE: the kernel lets a pipe grow past pipe-max-size');
    let err: unknown;
    try {
      keep(...sys.pipe({ size: max * 2 }));
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: expect.stringMatching(/^(EPERM|EBUSY)$/), syscall: 'fcntl' });
  });

  it('a write to a closed peer is EPIPE, not a signal', () => {
    const [a, b] = sys.socketpair();
    sys.close(b);
    keep(a);
    expect(sys.write(a, Buffer.from('x'))).toBe(-c.EPIPE);
  });

  it('hot-path calls return -errno for a closed fd', () => {
    const [a, b] = sys.socketpair();
    sys.close(a);
    sys.close(b);
    expect(sys.read(a, Buffer.alloc(1))).toBe(-c.EBADF);
    expect(sys.write(a, Buffer.alloc(1))).toBe(-c.EBADF);
    expect(sys.writev(a, [Buffer.alloc(1)])).toBe(-c.EBADF);
    expect(sys.close(a)).toBe(-c.EBADF);
    expect(sys.accept(a)).toBe(-c.EBADF);
    expect(sys.shutdown(a, 'both')).toBe(-c.EBADF);
    expect(() => sys.localPort(a)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'getsockname' }));
    expect(() => sys.setNoDelay(a, true)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('rejects bad input with TypeError / RangeError before any syscall', () => {
    const bad = <T>(x: unknown) => x as T;
    expect(() => sys.listenTcp(bad<string>(1), 0)).toThrow(TypeError);
    expect(() => sys.listenTcp('127.0.0.1', 70000)).toThrow(RangeError);
    expect(() => sys.listenTcp('127.0.0.1', 0, { backlog: -1 })).toThrow(RangeError);
    expect(() => sys.connectTcp('127.0.0.1', -1)).toThrow(RangeError);
    expect(() => sys.read(bad<number>('0'), Buffer.alloc(1))).toThrow(TypeError);
    expect(() => sys.read(0, bad<Uint8Array>('abc'))).toThrow(TypeError);
    expect(() => sys.read(0, Buffer.alloc(4), 5)).toThrow(RangeError);
    expect(() => sys.write(0, Buffer.alloc(4), 2, 3)).toThrow(RangeError);
    expect(() => sys.writev(0, bad<Uint8Array[]>(Buffer.alloc(1)))).toThrow(TypeError);
    expect(() => sys.writev(0, [bad<Uint8Array>('x')])).toThrow(TypeError);
    expect(() => sys.shutdown(0, bad<'read'>('sideways'))).toThrow(TypeError);
    expect(() => sys.close(-1)).toThrow(RangeError);
    expect(() => sys.setNoDelay(0, bad<boolean>(1))).toThrow(TypeError);
    expect(() => sys.pipe({ size: 0 })).toThrow(RangeError);
    expect(() => sys.socketpair(bad<{ blocking: boolean }>(5))).toThrow(TypeError);
    expect(() => sys.eventfd(-1)).toThrow(RangeError);
    // Names are not resolved at this layer: refused with a message saying so, not a bare EINVAL.
    for (const host of ['256.1.1.1', 'localhost', 'example.com', ''])
      for (const call of [() => sys.listenTcp(host, 0), () => sys.connectTcp(host, 1)])
        expect(call).toThrow(
          expect.objectContaining({
            code: 'ERR_INVALID_ARG_VALUE',
            message: expect.stringMatching(/IP address literal/),
          }),
        );
  });
});
