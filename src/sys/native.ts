/**
 * The raw addon and its typed interface. The addon is loaded once per thread through
 * node-gyp-build (a prebuild when one matches, `build/Release` otherwise); `RAWIO_ADDON`
 * names another build to load instead (the sanitizer build, say). Every function here
 * returns `>= 0` or `-errno` unless its comment says otherwise; the typed wrappers in the
 * sibling files check arguments first and are what users call.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

/** The package root: dist/src/sys/native.js → three levels up. */
export const packageRoot = fileURLToPath(new URL('../../../', import.meta.url));

type Pair = [number, number];

// ---- constants.cc
export interface ConstantsBinding {
  readonly constants: Readonly<Record<string, number>>;
}

// ---- socket.cc
export interface SocketBinding {
  listenTcp(host: string, port: number, backlog: number, reusePort: boolean, blocking: boolean): number;
  connectTcp(host: string, port: number, blocking: boolean): number;
  localPort(fd: number): number;
  accept(fd: number, blocking: boolean): number;
  read(fd: number, buf: Uint8Array, off: number, len: number): number;
  write(fd: number, buf: Uint8Array, off: number, len: number): number;
  writev(fd: number, bufs: readonly Uint8Array[], start: number): number;
  shutdown(fd: number, how: number): number;
  close(fd: number): number;
  setNoDelay(fd: number, on: boolean): number;
  setCork(fd: number, on: boolean): number;
  setSndBuf(fd: number, size: number): number;
  setRcvBuf(fd: number, size: number): number;
  setLingerZero(fd: number): number;
  socketError(fd: number): number;
  setBlocking(fd: number, on: boolean): number;
  socketpair(blocking: boolean): Pair | number;
  pipe(size: number, blocking: boolean): Pair | number;
  pipeSize(fd: number): number;
  eventfd(initial: number, blocking: boolean): number;
}

// ---- watch.cc
/** A uv_poll_t on one fd. Events: UV_READABLE 1, UV_WRITABLE 2, UV_DISCONNECT 4. */
export interface NativeWatch {
  start(events: number): number;
  stop(): void;
  ref(): void;
  unref(): void;
  close(): void;
}
export interface WatchBinding {
  Watch: new (fd: number, callback: (status: number, events: number) => void) => NativeWatch;
}

// ---- process.cc
export interface ProcessBinding {
  setAffinity(cpus: readonly number[]): number;
  getAffinity(): number[] | number;
  getrlimit(resource: number): Pair | number;
  setrlimit(resource: number, soft: number, hard: number): number;
  gettid(): number;
}

// ---- select.cc

// ---- poll.cc

// ---- epoll.cc

// ---- file.cc
export interface FileBinding {
  open(path: string, flags: number, mode: number): number;
  openat2(dirFd: number, path: string, flags: number, mode: number, resolve: number): number;
  pread(fd: number, buf: Uint8Array, off: number, len: number, position: number): number;
  pwrite(fd: number, buf: Uint8Array, off: number, len: number, position: number): number;
  /** [size, blksize, mode, blocks, devMajor, devMinor, ino] or -errno. */
  fstat(fd: number): number[] | number;
  /** statx: [gotDioAlign 0/1, memAlign, offsetAlign, devMajor, devMinor, blksize, mode] or -errno. */
  dioAlign(fd: number): number[] | number;
  /** Reopens the file with O_DIRECT: 0 accepted, -EINVAL refused, other -errno unknown. */
  probeDirect(fd: number): number;
  fadvise(fd: number, offset: number, len: number, advice: number): number;
  /** Throws (not -errno): allocation failure, or a runtime without external buffers. */
  alignedBuffer(size: number, align: number): Buffer;
  /** The largest power of two (<= 2^30) dividing the address of buf[off]. */
  addrAlign(buf: Uint8Array, off: number): number;
  /** A read-only Buffer (clamped to EOF) or -errno. */
  mmap(fd: number, offset: number, length: number): Buffer | number;
  /** 0 unmapped, 1 already detached, -EINVAL not an mmap() Buffer, other -errno. */
  munmap(buf: Uint8Array): number;
}

// ---- zerocopy.cc
/** Offsets of -1 mean "none": the fd's own position is used and advanced. */
export interface ZerocopyBinding {
  sendfile(outFd: number, inFd: number, offset: number, count: number): number;
  splice(inFd: number, inOff: number, outFd: number, outOff: number, len: number, flags: number): number;
  tee(inFd: number, outFd: number, len: number, flags: number): number;
  copyFileRange(inFd: number, inOff: number, outFd: number, outOff: number, len: number): number;
}

// ---- uring.cc
/** What `Ring.probe()` reads from a throwaway ring: features and IORING_REGISTER_PROBE. */
export interface NativeRingProbe {
  features: number;
  probeErrno: number;
  lastOp?: number;
  ops: number[];
}
/** A raw io_uring; see native/uring.cc for each method's contract. */
export interface NativeRing {
  setup(entries: number, flags: number, cqEntries: number): number;
  /** [ringFd, sqEntries, cqEntries, features] */
  info(): [number, number, number, number];
  prep(
    op: number,
    fd: number,
    addrBuf: Uint8Array | null,
    addrOff: number,
    len: number,
    off: number,
    offBuf: Uint8Array | null,
    userData: number,
    opFlags: number,
    sqeFlags: number,
    ioprio: number,
    bufIndex: number,
    spliceFdIn: number,
  ): boolean;
  prepRw(
    op: number,
    fd: number,
    buf: Uint8Array,
    off: number,
    len: number,
    position: number,
    userData: number,
    sqeFlags: number,
    bufIndex: number,
  ): boolean;
  submit(waitNr: number): number;
  reap(out: Int32Array, minComplete: number): number;
  sqSpace(): number;
  inflight(): number;
  fillIovecs(store: Uint8Array, bufs: readonly Uint8Array[]): number;
  register(opcode: number, arg?: number | readonly Uint8Array[] | readonly number[]): number;
  cancelAndWait(): number;
  close(): void;
}
export interface UringBinding {
  Ring: { new (): NativeRing; probe(): NativeRingProbe | number };
}

// ---- loadgen.cc

// ---- keyspace.cc

export interface NativeBinding
  extends ConstantsBinding, SocketBinding, WatchBinding, ProcessBinding, FileBinding, ZerocopyBinding, UringBinding {}

function load(): NativeBinding {
  const override = process.env.RAWIO_ADDON;
  if (override) return require(override) as NativeBinding;
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
  return nodeGypBuild(packageRoot) as NativeBinding;
}

/** The addon, loaded for this thread. */
export const native: NativeBinding = load();
