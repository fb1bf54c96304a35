/**
 * `probe()`: what this machine's kernel lets rawio do, in one plain object — the kernel
 * version, io_uring (the `io_uring_disabled` sysctl and the ring's own probe), the limits
 * that bound the servers (RLIMIT_NOFILE, RLIMIT_MEMLOCK, pipe-max-size), FD_SETSIZE, the
 * direct-IO alignment of a path, the CPU count, and whether the network devices do
 * scatter-gather (ETHTOOL_GSG), without which sendfile is not a zero-copy path, and which
 * zero-copy sends the kernel takes (MSG_ZEROCOPY, io_uring's SEND_ZC). It reads
 * /proc and /sys and asks the kernel; it never throws for a missing feature.
 */
import { readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism, release } from 'node:os';
import { constants } from './sys/constants.js';
import { getrlimit } from './sys/process.js';
import { netdevFeature, type NetdevFeature } from './sys/netdev.js';
import * as sys from './sys/index.js';
import { Ring } from './sys/ring.js';
import * as v from './sys/validate.js';

/** A resource limit (getrlimit(2)); `Infinity` for unlimited. */
export interface Limit {
  /** The limit the kernel enforces. */
  soft: number;
  /** The ceiling up to which an unprivileged process may raise `soft`. */
  hard: number;
}

/** What {@link probe} returns. */
export interface ProbeResult {
  /** The running kernel (uname(2)'s release). */
  kernel: {
    /** The release string, e.g. '6.1.0-18-amd64'. */
    release: string;
    /** Major version (6 in 6.1.0). */
    major: number;
    /** Minor version (1 in 6.1.0). */
    minor: number;
    /** Patch level (0 in 6.1.0; 0 when absent). */
    patch: number;
  };
  /** CPUs this process may use (os.availableParallelism()). */
  cpus: number;
  /** Whether and how io_uring is available. */
  ioUring: {
    /** /proc/sys/kernel/io_uring_disabled: 0 allowed, 1 privileged only, 2 off; null: no sysctl (before 6.6). */
    disabled: number | null;
    /** Whether a ring could be set up (null: not probed). */
    supported: boolean | null;
    /** 'ok', or why io_uring_setup failed ('ENOSYS', 'EPERM' …). */
    setup: string;
    /** Names of the opcodes the kernel supports ('READ', 'ACCEPT' …); empty when refused. */
    opcodes: string[] | null;
    /** IORING_FEAT_* names io_uring_setup returned. */
    features?: string[];
  };
  /** The limits that bound a server. */
  limits: {
    /** RLIMIT_NOFILE: open fds. */
    nofile: Limit;
    /** RLIMIT_MEMLOCK: locked memory in bytes (io_uring rings on kernels before 5.12). */
    memlock: Limit;
    /** /proc/sys/fs/pipe-max-size: the largest pipe an unprivileged process may ask for; null if unreadable. */
    pipeMaxSize: number | null;
  };
  /** FD_SETSIZE: select(2) can watch fds below it only. */
  fdSetSize: number;
  /** The direct-IO alignment of `opts.path` (default: the current directory); null when it could not be read. */
  directIo: {
    /** The path asked about. */
    path: string;
    /** Alignment O_DIRECT needs for the buffer's address (0 where direct IO is unsupported). */
    memAlign: number;
    /** Alignment O_DIRECT needs for the file position and the length. */
    offsetAlign: number;
    /** How the answer was reached ({@link sys.DioAlignment}'s `detail`). */
    source: string;
  } | null;
  /** Per network device: scatter-gather and the offloads that go with it; null: not answered. */
  netdev: Record<string, Partial<Record<NetdevFeature, boolean | null>>>;
  /** Zero-copy sends (`sys.send({ zerocopy })`, `Ring.sendZc`, `zerocopyThreshold`). */
  zerocopySend: {
    /** A TCP socket accepts SO_ZEROCOPY (MSG_ZEROCOPY, 4.14); null when no socket could be made. */
    msgZerocopy: boolean | null;
    /** io_uring offers IORING_OP_SEND_ZC (6.0); null when io_uring is refused. */
    sendZc: boolean | null;
  };
}

function readNumber(path: string): number | null {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

function kernel(): ProbeResult['kernel'] {
  const rel = release();
  const [major = 0, minor = 0, patch = 0] = (/^(\d+)\.(\d+)(?:\.(\d+))?/.exec(rel) ?? []).slice(1).map(Number);
  return { release: rel, major, minor, patch: Number.isNaN(patch) ? 0 : patch };
}

// The ring's own probe: a throwaway io_uring_setup and IORING_REGISTER_PROBE (Ring.probe()).
function ringProbe(): Omit<ProbeResult['ioUring'], 'disabled'> {
  const p = Ring.probe();
  if (!p.supported) return { supported: false, setup: p.code ?? 'refused', opcodes: [], features: [] };
  return { supported: true, setup: 'ok', opcodes: p.opcodes, features: p.features };
}

// SO_ZEROCOPY on a throwaway TCP socket (a listening one: the only TCP socket rawio makes
// without a peer), and SEND_ZC in the ring's opcode list.
function zerocopySend(): ProbeResult['zerocopySend'] {
  let msgZerocopy: boolean | null = null;
  try {
    const fd = sys.listenTcp('127.0.0.1', 0, { backlog: 1 });
    msgZerocopy = new sys.ZerocopySocket(fd).enabled;
    sys.close(fd);
  } catch {
    // no loopback socket: unknown
  }
  const ring = Ring.probe();
  return { msgZerocopy, sendZc: ring.supported ? ring.opcodes.includes('SEND_ZC') : null };
}

/**
 * The direct-IO alignment the kernel asks for on `path`'s filesystem (statx
 * STATX_DIOALIGN, with sys.dioAlignment's fallbacks). A directory is asked through a
 * scratch file created in it, since directories themselves have no direct IO.
 */
function directIo(path: string): ProbeResult['directIo'] {
  let scratch: string | undefined;
  try {
    let target = path;
    if (statSync(path).isDirectory()) {
      scratch = join(path, `.rawio-probe-${process.pid}`);
      writeFileSync(scratch, '');
      target = scratch;
    }
    const fd = sys.open(target, constants.O_RDONLY!);
    try {
      const d = sys.dioAlignment(fd);
      return { path, memAlign: d.memAlign, offsetAlign: d.offsetAlign, source: d.detail };
    } finally {
      sys.close(fd);
    }
  } catch {
    return null;
  } finally {
    if (scratch) rmSync(scratch, { force: true });
  }
}

function feature(dev: string, f: NetdevFeature): boolean | null {
  try {
    return netdevFeature(dev, f);
  } catch {
    return null;
  }
}

/** Network devices (from /sys/class/net), loopback first: the benchmarks run over it. */
export function netDevices(): string[] {
  let names: string[] = [];
  try {
    names = readdirSync('/sys/class/net');
  } catch {
    names = ['lo'];
  }
  return names.sort((a, b) => (a === 'lo' ? -1 : b === 'lo' ? 1 : a.localeCompare(b)));
}

/** Scatter-gather and its neighbours for each network device. */
export function netdevFeatures(devices = netDevices()): ProbeResult['netdev'] {
  const out: ProbeResult['netdev'] = {};
  for (const dev of devices) {
    out[dev] = { sg: feature(dev, 'sg'), tso: feature(dev, 'tso'), gso: feature(dev, 'gso') };
  }
  return out;
}

/**
 * What this kernel and machine allow: a plain object, safe to print or serialize. Never
 * throws for a missing feature: what cannot be read is null (or `supported: false`).
 * `opts.path` is where the direct-IO alignment is asked (a directory gets a scratch file,
 * removed at once); default the current directory.
 * @example
 * const p = probe();
 * if (p.netdev.lo?.sg) console.log('sendfile over loopback can skip the copy');
 */
export function probe(opts: { path?: string } = {}): ProbeResult {
  const o = v.object<{ path?: string }>('opts', opts);
  const path = o.path === undefined ? process.cwd() : v.cstr('path', o.path);
  const disabled = readNumber('/proc/sys/kernel/io_uring_disabled');
  return {
    kernel: kernel(),
    cpus: availableParallelism(),
    ioUring: { disabled, ...ringProbe() },
    limits: {
      nofile: getrlimit(constants.RLIMIT_NOFILE!),
      memlock: getrlimit(constants.RLIMIT_MEMLOCK!),
      pipeMaxSize: readNumber('/proc/sys/fs/pipe-max-size'),
    },
    fdSetSize: constants.FD_SETSIZE!,
    directIo: directIo(path),
    netdev: netdevFeatures(),
    zerocopySend: zerocopySend(),
  };
}
