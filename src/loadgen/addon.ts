/**
 * The load generator's own addon (rawio_loadgen.node, built from native/loadgen_addon.cc,
 * native/loadgen.cc and native/loadgen_engine.cc) and its typed interface. It is built
 * beside rawio.node (in build/Release, in prebuilds/<platform>-<arch>, or beside the build
 * `RAWIO_ADDON` names) and loaded on first use by `rawio/loadgen` (the API, `rawio loadgen`
 * and the bench) alone: the library never loads it, so the addon every user loads carries
 * no load generator. The npm package ships its sources but no prebuilt copy (the install
 * budget); when it is missing, the error says how to build it. `RAWIO_LOADGEN_ADDON` names
 * another build to load instead.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { packageRoot } from '../sys/native.js';

const require = createRequire(import.meta.url);
const FILE = 'rawio_loadgen.node';

// ---- native/loadgen.cc
/** Every field required: ./index.ts fills the defaults. */
export interface LoadgenNativeOptions {
  host: string;
  port: number;
  protocol: 'http' | 'echo' | 'resp' | 'raw';
  connections: number;
  threads: number;
  pipeline: number;
  rate: number;
  /** Stop after this many requests over all threads; 0: by duration. */
  requests: number;
  warmupMs: number;
  durationMs: number;
  drainMs: number;
  /** By count: no reply for this long while requests or connects wait ends the run. */
  stallMs: number;
  path: string;
  payloadSize: number;
  command: 'ping' | 'set' | 'get' | 'setget' | 'mix';
  /** RESP 'mix': weights of PING, SET and GET. */
  mix: [number, number, number];
  /** Raw: the request bytes. */
  payload: Buffer;
  /** Raw: bytes per reply; 0: as many as the request. */
  replySize: number;
  keyspace: number;
  valueSize: number;
  cpus: number[];
}
export interface LoadgenNativeResult {
  /** Replies in the measured window (at a fixed rate: to the requests due in it, whenever they came). */
  requests: number;
  seconds: number;
  rps: number;
  sent: number;
  received: number;
  bytesOut: number;
  /** Bytes read over the whole run: warm-up, window and drain. */
  bytesIn: number;
  /**
   * Bytes read inside the measured window, the one `seconds` spans (a stop ends a timed one;
   * a count's ends with its last counted reply): a byte rate is this over `seconds`.
   */
  bytesInWindow: number;
  connects: number;
  /** -errno of a thread's failed sched_setaffinity(2) for `cpus`; 0 when pinned or not asked to pin. */
  affinityErrno: number;
  /** User + system CPU time of the load generator's threads (getrusage RUSAGE_THREAD). */
  cpuSeconds: number;
  /** Why the run ended (the worst of its threads'). */
  ended: 'done' | 'stopped' | 'stalled' | 'unreachable';
  /** The connections that got at least one reply. */
  connectionsAnswered: number;
  /**
   * What ended the last failed connection: -errno (of its connect, read or send; -EPROTO for
   * a reply the protocol cannot frame), 1 for a close with requests unanswered, 0 for none.
   */
  lastErrno: number;
  errors: { connect: number; reset: number; badReply: number; errorReply: number; lost: number };
  latencyUs: {
    min: number;
    mean: number;
    p50: number;
    p90: number;
    p99: number;
    p999: number;
    p9999: number;
    p99999: number;
    max: number;
    count: number;
  };
  /** The latency histogram's non-empty buckets: (value ns, count) pairs, ascending by value. */
  histogram: Float64Array;
}
export interface LoadgenBinding {
  /** Starts a run on native threads; `done` runs on this thread at the end. Returns stop(). */
  loadgen(opts: LoadgenNativeOptions, done: (r: LoadgenNativeResult) => void): () => void;
}

/**
 * Where the addon may be, first choice first: the build `RAWIO_LOADGEN_ADDON` names, else the
 * one beside `RAWIO_ADDON`'s, else node-gyp-build's order (a local build, then the prebuild).
 */
export function loadgenAddonCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.RAWIO_LOADGEN_ADDON) return [env.RAWIO_LOADGEN_ADDON];
  if (env.RAWIO_ADDON) return [join(dirname(env.RAWIO_ADDON), FILE)];
  return [
    join(packageRoot, 'build/Release', FILE),
    join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, FILE),
  ];
}

let binding: LoadgenBinding | undefined;

/** The load generator's addon, loaded for this thread on first call. */
export function loadgenAddon(): LoadgenBinding {
  if (binding) return binding;
  const candidates = loadgenAddonCandidates();
  const path = candidates.find((p) => existsSync(p));
  if (!path)
    throw new Error(
      `rawio: the load generator addon (rawio_loadgen.node) is not here (looked for ${candidates.join(', ')}). ` +
        'The npm package ships its source but no prebuilt copy; build it once with ' +
        `\`cd ${packageRoot} && npx node-gyp rebuild\` (needs g++, make and python3), ` +
        'or set RAWIO_LOADGEN_ADDON to a rawio_loadgen.node built elsewhere',
    );
  binding = require(path) as LoadgenBinding;
  return binding;
}
