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

/**
 * The whole binding. Each family's section below adds its interface to it with a merging
 * declaration (`export interface NativeBinding extends XBinding {}`), so families are
 * added without touching each other's lines.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface NativeBinding {}

// ---- constants.cc
export interface ConstantsBinding {
  readonly constants: Readonly<Record<string, number>>;
}
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface NativeBinding extends ConstantsBinding {}

// ---- socket.cc
export interface SocketBinding {
  /**
   * The fd, or `[-errno, syscall]` naming the step that failed (socket, setsockopt, bind,
   * listen). `bindOnly`: bound, not listening (reserves the port; no connection is queued to it).
   */
  listenTcp(
    host: string,
    port: number,
    backlog: number,
    reusePort: boolean,
    blocking: boolean,
    bindOnly?: boolean,
  ): number | [number, string];
  /** The fd, or `[-errno, syscall]` naming the step that failed (socket, connect). */
  connectTcp(host: string, port: number, blocking: boolean): number | [number, string];
  localPort(fd: number): number;
  accept(fd: number, blocking: boolean): number;
  /** getpeername(2) as 16 bytes of IPv6 address in out (IPv4: ::ffff:a.b.c.d): the family, or -errno. */
  peerAddress(fd: number, out: Uint8Array): number;
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
  dupCloexec(fd: number): number;
  socketpair(blocking: boolean): Pair | number;
  pipe(size: number, blocking: boolean): Pair | number;
  pipeSize(fd: number): number;
  eventfd(initial: number, blocking: boolean): number;
}
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface NativeBinding extends SocketBinding {}

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
  /** This thread's libuv loop fd (uv_backend_fd: its epoll fd), or -1. */
  loopFd(): number;
}
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface NativeBinding extends WatchBinding {}

// ---- process.cc
export interface ProcessBinding {
  setAffinity(cpus: readonly number[]): number;
  getAffinity(): number[] | number;
  getrlimit(resource: number): Pair | number;
  setrlimit(resource: number, soft: number, hard: number): number;
  gettid(): number;
  setThreadName(name: string): number;
  getThreadName(): string | number;
  setParentDeathSignal(signal: number): number;
}
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface NativeBinding extends ProcessBinding {}

// ---- select.cc, poll.cc, epoll.cc
/**
 * The three multiplexers' native sets. add/modify/remove return 0 or -errno (poll and
 * select report EEXIST, ENOENT and EBADF as epoll_ctl would); wait fills `out` with
 * (fd, revents) pairs and returns their count or -errno (0 when a signal cut it short).
 */
export interface NativePollerSet {
  add(fd: number, mask: number): number;
  modify(fd: number, mask: number): number;
  remove(fd: number): number;
  wait(out: Int32Array, timeoutMs: number): number;
}
export interface NativeEpoll extends NativePollerSet {
  /** The epoll fd, or -errno when epoll_create1 failed; -1 once closed. */
  fd(): number;
  close(): number;
}
export interface MultiplexBinding {
  SelectSet: new () => NativePollerSet;
  PollSet: new () => NativePollerSet & { size(): number };
  Epoll: new () => NativeEpoll;
}
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface NativeBinding extends MultiplexBinding {}

// ---- file.cc
export interface FileBinding {
  open(path: string, flags: number, mode: number): number;
  openat2(dirFd: number, path: string, flags: number, mode: number, resolve: number): number;
  pread(fd: number, buf: Uint8Array, off: number, len: number, position: number): number;
  pwrite(fd: number, buf: Uint8Array, off: number, len: number, position: number): number;
  /** [size, blksize, mode, blocks, devMajor, devMinor, ino] or -errno. */
  /** Fills out[0..6] with size, blksize, mode, blocks, devMajor, devMinor, ino; 0 or -errno. */
  fstat(fd: number, out: Float64Array): number;
  /** statx: [gotDioAlign 0/1, memAlign, offsetAlign, devMajor, devMinor, blksize, mode] or -errno. */
  dioAlign(fd: number): number[] | number;
  /** Reopens the file with O_DIRECT: 0 accepted, -EINVAL refused, other -errno unknown. */
  probeDirect(fd: number): number;
  fadvise(fd: number, offset: number, len: number, advice: number): number;
  /** Throws (not -errno): allocation failure, or a runtime without external buffers. */
  alignedBuffer(size: number, align: number): Buffer | number;
  /** The largest power of two (<= 2^30) dividing the address of buf[off]. */
  addrAlign(buf: Uint8Array, off: number): number;
  /** A read-only Buffer (clamped to EOF) or -errno. */
  /** flags: 0 or MAP_POPULATE (anything else -EINVAL). */
  mmap(fd: number, offset: number, length: number, flags?: number): Buffer | number;
  /** 0 or -errno; -EINVAL for a Buffer that is not a whole live mapping, or advice other than MADV_NORMAL/RANDOM/SEQUENTIAL/WILLNEED. */
  madvise(buf: Uint8Array, advice: number): number;
  /**
   * 0 unmapped, 1 already detached, -EINVAL not an mmap() Buffer, other -errno. reserve
   * (default true): keep the addresses reserved (PROT_NONE) until the ArrayBuffer is
   * collected, for a Buffer an in-flight operation may still hold; false unmaps outright.
   */
  munmap(buf: Uint8Array, reserve?: boolean): number;
  /**
   * One step of the `mmap` transfer from a mapping no JS sees, held in this thread's `slot`:
   * writes up to `count` bytes of the file at `position` to the socket, first mapping a
   * window of up to `window` bytes there (clamped to EOF) when the slot's mapping does not
   * hold it. Bytes written, 0 at EOF, the write's -errno, or a file-side failure:
   * -(errno | 1 << 16) fstat/mmap, -(errno | 2 << 16) madvise. A step that writes all of
   * `count` unmaps; otherwise {@link mmapDrop} ends the slot's use. flags: 0 or
   * MAP_POPULATE; advice: -1 or MADV_NORMAL/RANDOM/SEQUENTIAL/WILLNEED.
   */
  mmapSend(
    slot: number,
    sockFd: number,
    fileFd: number,
    position: number,
    count: number,
    window: number,
    flags: number,
    advice: number,
  ): number;
  /** Unmaps what `slot` holds: 1 when it held a mapping, 0 when it held none. */
  mmapDrop(slot: number): number;
  /** How many slots of this thread hold a mapping. */
  mmapWindows(): number;
}
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface NativeBinding extends FileBinding {}

// ---- zerocopy.cc
/** Offsets of -1 mean "none": the fd's own position is used and advanced. */
export interface ZerocopyBinding {
  sendfile(outFd: number, inFd: number, offset: number, count: number): number;
  splice(inFd: number, inOff: number, outFd: number, outOff: number, len: number, flags: number): number;
  tee(inFd: number, outFd: number, len: number, flags: number): number;
  copyFileRange(inFd: number, inOff: number, outFd: number, outOff: number, len: number): number;
}
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface NativeBinding extends ZerocopyBinding {}

// ---- msg_zerocopy.cc
export interface MsgZerocopyBinding {
  /** send(2) of `buf[off, off + len)` with `flags`: bytes sent or -errno. */
  sendFlags(fd: number, buf: Uint8Array, off: number, len: number, flags: number): number;
  /** SO_ZEROCOPY: 0 or -errno. */
  setZerocopy(fd: number, on: boolean): number;
  /** Drains MSG_ERRQUEUE zero-copy completions into `out` as (first id, last id, copied) triples: the count or -errno. */
  zerocopyCompletions(fd: number, out: Int32Array): number;
}
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface NativeBinding extends MsgZerocopyBinding {}

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
  /** Each fd a completion carries is owned by the calling thread once reaped (fd_owner.cc). */
  ownNewFds(): void;
  /** [ring fd, SQ entries, CQ entries, IORING_FEAT_* bits, slot in its thread's rings (for `Ring.prepSend`)] */
  info(): [number, number, number, number, number];
  /**
   * The SQE writers, positional by design (each argument converted once): called only by the
   * named helpers of src/sys/uring-prep.ts, which know which field carries what.
   */
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
    /** The op's flag word (send/recv msg flags, RWF_* for read/write); default 0. */
    rwFlags?: number,
  ): boolean;
  /** ACCEPT / CLOSE / MSG_RING / FIXED_FD_INSTALL on direct descriptors: numbers only. */
  prepDirect(
    op: number,
    fd: number,
    userData: number,
    sqeFlags: number,
    opFlags: number,
    ioprio: number,
    fileIndex: number,
    addr: number,
    len: number,
    off: number,
    addr3: number,
  ): boolean;
  /** SEND or RECV of `buf[off, off + len)` with msg flags: the proactor's hot path. */
  prepSock(
    op: number,
    fd: number,
    buf: Uint8Array,
    off: number,
    len: number,
    userData: number,
    msgFlags: number,
  ): boolean;
  submit(waitNr: number): number;
  reap(out: Int32Array, minComplete: number): number;
  sqSpace(): number;
  inflight(): number;
  /** Once per ring: [0] is `inflight()`, rewritten by every call that changes it (read with no call). */
  state(): Float64Array;
  fillIovecs(store: Uint8Array, bufs: readonly Uint8Array[]): number;
  register(opcode: number, arg?: number | readonly Uint8Array[] | readonly number[]): number;
  cancelAndWait(): number;
  /** The prepared entry with this user data, not yet submitted, becomes a NOP: true, or false when none waits. */
  unprep(userData: number): boolean;
  /** IORING_REGISTER_PBUF_RING of `count` (a power of two) buffers of `size` bytes from `slab`: 0 or -errno. */
  /** `flags`: IOU_PBUF_RING_INC (6.12) or 0 (the default). */
  registerBufRing(bgid: number, slab: Uint8Array, count: number, size: number, flags?: number): number;
  /** IORING_REGISTER_RING_FDS in the calling thread: the index, or -errno. */
  registerRingFd(): number;
  /** Hands the buffers `bids[0, n)` back to the kernel. */
  recycleBufs(bids: Int32Array, n: number): void;
  close(): void;
}
export interface UringBinding {
  Ring: {
    new (): NativeRing;
    probe(): NativeRingProbe | number;
    /** A SEND with MSG_NOSIGNAL on this thread's ring in `slot` (`info()[4]`), without an unwrap; false when the SQ is full. */
    prepSend(slot: number, fd: number, buf: Uint8Array, off: number, len: number, userData: number): boolean;
    /**
     * `prepRw` of `buf[0, len)` with no rwFlags on the ring in slot `how / 2^32`, without an
     * unwrap: how = slot * 2^32 + bufIndex * 2^16 + sqeFlags * 2^8 + op.
     */
    prepRwIn(how: number, fd: number, buf: Uint8Array, len: number, position: number, userData: number): boolean;
    /** `submit(waitNr)` on the ring in `slot`, without an unwrap. */
    submitIn(slot: number, waitNr: number): number;
    /** `reap(out, minComplete)` on the ring in `slot`; with `submit`, submits first and waits in that enter. */
    reapIn(slot: number, out: Int32Array, minComplete: number, submit: boolean): number;
  };
}
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface NativeBinding extends UringBinding {}

// ---- keyspace.cc
/** One mapping of a shared-memory keyspace; every method returns >= 0 or -errno. */
export interface NativeKeyspace {
  open(name: string, create: boolean, size: number, buckets: number): number;
  /** A memfd keyspace: its fd (kept open until close, reopened as /proc/<pid>/fd/<fd>) or -errno. */
  createAnonymous(size: number, buckets: number): number;
  close(): void;
  get(key: Uint8Array, out: Uint8Array): number;
  set(key: Uint8Array, value: Uint8Array, flags: number): number;
  del(key: Uint8Array): number;
  exists(key: Uint8Array): number;
  /** del / exists of every key under one lock: the count deleted / present. */
  delMany(keys: readonly Uint8Array[]): number;
  delPrefix(prefix: Uint8Array): number;
  existsMany(keys: readonly Uint8Array[]): number;
  incr(key: Uint8Array, delta: number | bigint, out: Uint8Array): number;
  /** incr(key, 1, out) only when the values of keys sum to less than max: digits, 0 at the limit, -errno. */
  incrIfSumBelow(key: Uint8Array, keys: readonly Uint8Array[], max: number, out: Uint8Array): number;
  mset(kv: readonly Uint8Array[]): number;
  mget(keys: readonly Uint8Array[], out: Uint8Array, lens: Int32Array): number;
  flush(): number;
  info(): [number, number, number] | number;
}
export interface KeyspaceBinding {
  Keyspace: new () => NativeKeyspace;
  keyspaceUnlink(name: string): number;
}

// ---- netdev.cc
export interface NetdevBinding {
  /** An ethtool value (0/1) of a network device, or -errno. */
  ethtoolGet(ifname: string, feature: 'sg' | 'tso' | 'gso' | 'gro' | 'tx-csum' | 'rx-csum'): number;
}

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface NativeBinding extends NetdevBinding {}
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface NativeBinding extends KeyspaceBinding {}

// ---- fd_owner.cc
export interface FdOwnerBinding {
  /** The calling thread owns fd: closed when the thread ends, unless closed before. */
  fdOwn(fd: number): void;
}
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface NativeBinding extends FdOwnerBinding {}

function load(): NativeBinding {
  const override = process.env.RAWIO_ADDON;
  if (override) return require(override) as NativeBinding;
  // build/Release and a prebuild directory also hold the benchmark's rawio_loadgen.node;
  // node-gyp-build takes the first .node file in name order, and rawio.node sorts first
  // ('.' < '_'), which test/addon-split.test.ts checks.
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
  try {
    return nodeGypBuild(packageRoot) as NativeBinding;
  } catch (e) {
    // The install script (node-gyp-build) compiles where no prebuild loads; if it could
    // not (no compiler then), the message says how to build the addon by hand.
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new Error(
      `rawio: cannot load its addon on ${process.platform}-${process.arch} (${why}); build it from ` +
        `source with \`npm rebuild rawio\` (its install script; npm may ask you to approve it first) ` +
        `or \`npx node-gyp rebuild\` in ${packageRoot} (a C++17 compiler, make and python3)`,
      { cause: e },
    );
  }
}

/**
 * The addon, loaded for this thread: a copy of its exports object. Node-API sets the exports
 * one property at a time, which leaves that object in dictionary mode, and V8 then looks up
 * every `native.x` on a hot path through its generic load (a hash lookup per call); the copy,
 * made once, has fast properties.
 */
export const native: NativeBinding = { ...load() };
