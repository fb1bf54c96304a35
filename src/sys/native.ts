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

// ---- zerocopy.cc

// ---- uring.cc

// ---- loadgen.cc
/** Every field required: bench/loadgen.ts fills the defaults. */
export interface LoadgenNativeOptions {
  host: string;
  port: number;
  protocol: 'http' | 'echo' | 'resp';
  connections: number;
  threads: number;
  pipeline: number;
  rate: number;
  warmupMs: number;
  durationMs: number;
  drainMs: number;
  path: string;
  payloadSize: number;
  command: 'ping' | 'set' | 'get' | 'setget';
  keyspace: number;
  valueSize: number;
  cpus: number[];
}
export interface LoadgenNativeResult {
  requests: number;
  seconds: number;
  rps: number;
  sent: number;
  received: number;
  bytesOut: number;
  bytesIn: number;
  connects: number;
  affinityErrno: number;
  /** User + system CPU time of the load generator's threads (getrusage RUSAGE_THREAD). */
  cpuSeconds: number;
  errors: { connect: number; reset: number; badReply: number; errorReply: number; lost: number };
  latencyUs: {
    min: number;
    mean: number;
    p50: number;
    p90: number;
    p99: number;
    p999: number;
    max: number;
    count: number;
  };
}
export interface LoadgenBinding {
  /** Starts a run on native threads; `done` runs on this thread at the end. Returns stop(). */
  loadgen(opts: LoadgenNativeOptions, done: (r: LoadgenNativeResult) => void): () => void;
}

// ---- keyspace.cc

// ---- netdev.cc
export interface NetdevBinding {
  /** An ethtool value (0/1) of a network device, or -errno. */
  ethtoolGet(ifname: string, feature: 'sg' | 'tso' | 'gso' | 'gro' | 'tx-csum' | 'rx-csum'): number;
}

export interface NativeBinding
  extends ConstantsBinding, SocketBinding, WatchBinding, ProcessBinding, LoadgenBinding, NetdevBinding {}

function load(): NativeBinding {
  const override = process.env.RAWIO_ADDON;
  if (override) return require(override) as NativeBinding;
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
  return nodeGypBuild(packageRoot) as NativeBinding;
}

/** The addon, loaded for this thread. */
export const native: NativeBinding = load();
