import { describe, expect, it } from 'vitest';
import { ErrnoError, check, constants, errnoError, errnoName, sys } from './helpers/rawio.js';

describe('errors', () => {
  it('builds a SystemError-shaped error from -errno', () => {
    const e = errnoError(-constants.EAGAIN, 'read');
    expect(e).toBeInstanceOf(ErrnoError);
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('EAGAIN');
    expect(e.errno).toBe(-11);
    expect(e.syscall).toBe('read');
    expect(e.message).toBe('EAGAIN: resource temporarily unavailable, read');
  });

  it('adds the path to the message', () => {
    const e = errnoError(-2, 'open', '/nope');
    expect(e.message).toBe("ENOENT: no such file or directory, open '/nope'");
    expect(e.path).toBe('/nope');
  });

  it('check returns results and throws -errno', () => {
    expect(check(5, 'read')).toBe(5);
    expect(() => check(-constants.EBADF, 'close')).toThrow(/EBADF: bad file descriptor, close/);
    expect(errnoName(-104)).toBe('ECONNRESET');
  });

  it('a failing syscall returns -errno from the hot path and throws from setup', () => {
    const [r, w] = sys.pipe();
    sys.close(w);
    sys.close(r);
    expect(sys.read(r, new Uint8Array(1))).toBe(-constants.EBADF);
    const held = sys.listenTcp('127.0.0.1', 0);
    const port = sys.localPort(held);
    expect(() => sys.listenTcp('127.0.0.1', port)).toThrow(
      expect.objectContaining({ code: 'EADDRINUSE', errno: -98, syscall: 'bind' }),
    );
    expect(() => sys.listenTcp('198.18.0.1', 0)).toThrow(
      expect.objectContaining({ code: 'EADDRNOTAVAIL', syscall: 'bind' }),
    );
    sys.close(held);
  });
});
