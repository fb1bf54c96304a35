/**
 * Sockets, pipes and eventfds (socket(2), accept4(2), read(2), write(2), writev(2),
 * pipe2(2), eventfd(2)). Every fd rawio creates is close-on-exec and non-blocking unless
 * `{ blocking: true }` is asked for. I/O calls return the byte count or `-errno` and never
 * throw for EAGAIN; setup calls (listenTcp, connectTcp, socketpair, pipe, eventfd) throw
 * an `ErrnoError`.
 */
import { isIP } from 'node:net';
import { check } from './errors.js';
import { forgetZerocopy } from './msg-zerocopy.js';
import { native } from './native.js';
import * as v from './validate.js';

/**
 * bind(2) and connect(2) take addresses: a host name here is refused with a message saying
 * so (the kernel's answer would be a bare EINVAL). `serve()` resolves names itself.
 */
function ipLiteral(host: unknown): string {
  v.cstr('host', host);
  if (isIP(host as string) === 0) {
    const e = new TypeError(
      `The "host" argument must be an IP address literal such as '127.0.0.1' or '::1'; ` +
        `names are not resolved here (use dns.lookup). Received '${String(host).slice(0, 64)}'`,
    );
    throw Object.assign(e, { code: 'ERR_INVALID_ARG_VALUE' });
  }
  return host as string;
}

/** A setup's fd, or the ErrnoError of the step that failed, named by that step's syscall. */
function setup(r: number | [number, string]): number {
  return typeof r === 'number' ? r : check(r[0], r[1]);
}

/** Options of {@link listenTcp}. */
export interface ListenOptions {
  /** listen(2) backlog; default 511, as nginx and Node use. */
  backlog?: number;
  /** SO_REUSEPORT, so that several sockets (processes) can bind the same port. */
  reusePort?: boolean;
  /** A blocking listening socket (the iterative model); default false. */
  blocking?: boolean;
}

/**
 * Creates a TCP socket bound to `host:port` and listening. Port 0 picks a free port
 * (see {@link localPort}). A failure throws an `ErrnoError` whose `syscall` names the step
 * that failed: `'bind'` for a port in use (EADDRINUSE) or an address not on this host
 * (EADDRNOTAVAIL), `'socket'`, `'setsockopt'` or `'listen'` otherwise.
 * @example
 * const lfd = sys.listenTcp('127.0.0.1', 0);
 * console.log(sys.localPort(lfd));
 */
export function listenTcp(host: string, port: number, opts?: ListenOptions): number {
  ipLiteral(host);
  v.int('port', port, 0, 65535);
  const o = v.object<ListenOptions>('opts', opts);
  const backlog = o.backlog === undefined ? 511 : v.int('backlog', o.backlog, 0, 0x7fffffff);
  const reusePort = o.reusePort === undefined ? false : v.bool('reusePort', o.reusePort);
  const blocking = o.blocking === undefined ? false : v.bool('blocking', o.blocking);
  return setup(native.listenTcp(host, port, backlog, reusePort, blocking));
}

/**
 * Connects a TCP socket to `host:port`. Non-blocking by default: the connect may still be
 * in progress when this returns; the fd turns writable when it completes, and
 * {@link socketError} then tells how it ended.
 */
export function connectTcp(host: string, port: number, opts?: { blocking?: boolean }): number {
  ipLiteral(host);
  v.int('port', port, 0, 65535);
  const o = v.object<{ blocking: boolean }>('opts', opts);
  const blocking = o.blocking === undefined ? false : v.bool('blocking', o.blocking);
  return setup(native.connectTcp(host, port, blocking));
}

/** The local port a socket is bound to; an ErrnoError (EAFNOSUPPORT) for a socket that is not TCP/IP's (AF_UNIX). */
export function localPort(fd: number): number {
  return check(native.localPort(v.fd(fd)), 'getsockname');
}

/**
 * accept4(2): the new connection's fd (non-blocking and close-on-exec unless
 * `{ blocking: true }`), or `-errno` (`-EAGAIN` when no connection is waiting).
 */
export function accept(fd: number, opts?: { blocking?: boolean }): number {
  const o = v.object<{ blocking?: boolean }>('opts', opts);
  const blocking = o.blocking === undefined ? false : v.bool('blocking', o.blocking);
  return native.accept(v.fd(fd), blocking);
}

/** read(2) into `buf[off, off + len)`: bytes read (0 at EOF) or `-errno`. */
export function read(fd: number, buf: Uint8Array, off?: number, len?: number): number {
  v.fd(fd);
  v.liveBytes(buf);
  const [o, l] = v.slice(buf, off, len);
  return native.read(fd, buf, o, l);
}

/** write(2) from `buf[off, off + len)`: bytes written (maybe fewer) or `-errno`. */
export function write(fd: number, buf: Uint8Array, off?: number, len?: number): number {
  v.fd(fd);
  v.liveBytes(buf);
  const [o, l] = v.slice(buf, off, len);
  return native.write(fd, buf, o, l);
}

/** writev(2) of the buffers in order (at most IOV_MAX = 1024 per call): bytes written or `-errno`. */
export function writev(fd: number, bufs: readonly Uint8Array[]): number {
  v.fd(fd);
  // A copy, read once: what was checked is what is written (an accessor is not asked again).
  return native.writev(fd, v.bytesList('bufs', bufs), 0);
}

const SHUT = { read: 0, write: 1, both: 2 } as const;

/** shutdown(2): 0 or `-errno`. */
export function shutdown(fd: number, how: 'read' | 'write' | 'both'): number {
  v.fd(fd);
  const h = SHUT[how];
  if (h === undefined) throw v.typeError('how', "one of 'read', 'write', 'both'", how);
  return native.shutdown(fd, h);
}

/**
 * close(2): 0 or `-errno`. Never retried on EINTR (Linux has released the fd already). Forgets
 * the buffers of the fd's pending zero-copy sends (see `send`).
 */
export function close(fd: number): number {
  forgetZerocopy(v.fd(fd)); // its zero-copy sends can no longer complete
  return native.close(fd);
}

/** TCP_NODELAY. */
export function setNoDelay(fd: number, on: boolean): void {
  check(native.setNoDelay(v.fd(fd), v.bool('on', on)), 'setsockopt');
}

/** TCP_CORK: hold partial frames until uncorked (nginx's tcp_nopush). */
export function setCork(fd: number, on: boolean): void {
  check(native.setCork(v.fd(fd), v.bool('on', on)), 'setsockopt');
}

/** SO_SNDBUF / SO_RCVBUF (the kernel doubles the value and clamps it to its limits). */
export function setBufferSizes(fd: number, sizes: { send?: number; recv?: number }): void {
  v.fd(fd);
  const s = v.object<{ send: number; recv: number }>('sizes', sizes);
  if (s.send !== undefined) check(native.setSndBuf(fd, v.int('send', s.send, 1, 0x7fffffff)), 'setsockopt');
  if (s.recv !== undefined) check(native.setRcvBuf(fd, v.int('recv', s.recv, 1, 0x7fffffff)), 'setsockopt');
}

/** SO_LINGER with a zero timeout: the next close(2) sends RST instead of FIN. */
export function setLingerZero(fd: number): void {
  check(native.setLingerZero(v.fd(fd)), 'setsockopt');
}

/** SO_ERROR: 0, or the `-errno` a non-blocking connect (or the socket) ended with. */
export function socketError(fd: number): number {
  return native.socketError(v.fd(fd));
}

/** Sets or clears O_NONBLOCK on an fd. */
export function setBlocking(fd: number, blocking: boolean): void {
  check(native.setBlocking(v.fd(fd), v.bool('blocking', blocking)), 'fcntl');
}

function pair(r: [number, number] | number, syscall: string): [number, number] {
  if (typeof r === 'number') check(r, syscall);
  return r as [number, number];
}

/** A connected pair of AF_UNIX stream sockets. */
export function socketpair(opts?: { blocking?: boolean }): [number, number] {
  const o = v.object<{ blocking: boolean }>('opts', opts);
  return pair(native.socketpair(o.blocking === undefined ? false : v.bool('blocking', o.blocking)), 'socketpair');
}

/**
 * pipe2(2): `[readEnd, writeEnd]`. `size` sets the pipe's capacity with F_SETPIPE_SZ (the
 * kernel rounds it up to a power-of-two number of pages; unprivileged callers are capped
 * by /proc/sys/fs/pipe-max-size).
 */
export function pipe(opts?: { size?: number; blocking?: boolean }): [number, number] {
  const o = v.object<{ size: number; blocking: boolean }>('opts', opts);
  const size = o.size === undefined ? 0 : v.int('size', o.size, 1, 0x7fffffff);
  const blocking = o.blocking === undefined ? false : v.bool('blocking', o.blocking);
  const r = native.pipe(size, blocking);
  if (typeof r !== 'number' || size === 0) return pair(r, 'pipe2');
  // pipe2 or F_SETPIPE_SZ failed (the native call closed the pipe then): named by which,
  // told apart by a pipe2 alone, on this failure path only.
  const plain = native.pipe(0, false);
  if (typeof plain === 'number') return pair(r, 'pipe2');
  native.close(plain[0]);
  native.close(plain[1]);
  return pair(r, 'fcntl');
}

/** F_GETPIPE_SZ: a pipe's capacity in bytes. */
export function pipeSize(fd: number): number {
  return check(native.pipeSize(v.fd(fd)), 'fcntl');
}

/** eventfd(2), non-blocking and close-on-exec: write 8 bytes to signal it, read 8 to reset. */
export function eventfd(initial = 0, opts?: { blocking?: boolean }): number {
  v.int('initial', initial, 0, 0xffffffff);
  const o = v.object<{ blocking?: boolean }>('opts', opts);
  const blocking = o.blocking === undefined ? false : v.bool('blocking', o.blocking);
  return check(native.eventfd(initial, blocking), 'eventfd');
}
