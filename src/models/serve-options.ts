/**
 * The options of `serve()`, checked once before anything is opened. One table below names
 * every option with its check, its default and the models and protocols that use it; the
 * `satisfies` clause ties the table to `ServeOptions`, so an option added to the interface
 * does not compile until it has a row here, and the known-keys message is read from the
 * same rows. Wrong type → TypeError, out of range → RangeError, an option the chosen model
 * does not use, or one that belongs to another protocol (`handler`, `keyspaceSize`) →
 * TypeError (ERR_INVALID_ARG_VALUE) naming the ones that do. The limits and file options the
 * protocols share (`root`, `maxHeader`, `maxRequest`, `transfer`, `directio`, `mmap`,
 * `maxFiles`) are checked alike for every protocol and left unread by one that has no use
 * for them, so one set of options can serve each protocol in turn.
 */
import { availableParallelism } from 'node:os';
import { statSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { protocolNames, type ProtocolName, type ProtocolOptions } from '../protocols/protocol.js';
import { plainData } from '../protocols/user-checks.js';
import { ENOENT, ENOTDIR } from '../sys/errno.js';
import { errnoError } from '../sys/errors.js';
import { getAffinity } from '../sys/process.js';
import * as v from '../sys/validate.js';
import { transferMethodNames } from '../transfer/names.js';
import { checkMmapTransfer } from '../transfer/mmap-options.js';
import { pollerNames, type PollerName } from './poller-name.js';
import { workerExecArgv } from './worker-argv.js';
import { CONN_DEFAULTS } from './conn-core.js';
import {
  modelNames,
  type AcceptStrategy,
  type ModelName,
  type ResolvedServeOptions,
  type RingSetup,
  type ServeOptions,
} from './types.js';

export { modelNames };

const acceptStrategies: readonly AcceptStrategy[] = ['reuseport', 'exclusive', 'mutex'];
const reactorModels: readonly ModelName[] = [
  'single',
  'worker-pool',
  'multi-reactor',
  'multi-reactor-pool',
  'multi-process',
];

/**
 * One option's row: which models and protocols use it (absent: every one) and how
 * `rawio serve` reads it from its flag (`--max-queue` for maxQueue): text, a whole
 * number, a comma-separated list of whole numbers, or of words.
 */
export interface ServeOptionRow {
  models?: readonly ModelName[];
  protocols?: readonly ProtocolName[];
  /**
   * 'none': no flag (the command line has its own way, e.g. `node --opt rawio serve`);
   * 'words': a comma-separated list of option words (`--mmap populate,reuse,sequential`);
   * 'rate': a whole number, or the word Infinity.
   */
  cli: 'string' | 'int' | 'ints' | 'words' | 'rate' | 'none';
}

/** One row per option of ServeOptions. */
export const serveOptionTable = {
  model: { cli: 'string' },
  protocol: { cli: 'string' },
  handler: { cli: 'string', protocols: ['http'] },
  host: { cli: 'string' },
  port: { cli: 'int' },
  workers: { cli: 'int' }, // iterative and single run one I/O thread whatever it says (README's model table)
  backend: { cli: 'string', models: reactorModels },
  accept: { cli: 'string', models: ['multi-process'] },
  root: { cli: 'string' }, // required by static, read by no other protocol (README's model table)
  transfer: { cli: 'string' },
  directio: { cli: 'int' },
  mmap: { cli: 'words' },
  maxQueue: { cli: 'int' },
  maxHeader: { cli: 'int' }, // read by http and static (README's limits table)
  maxRequest: { cli: 'int' }, // read by http, static (bodies, at most 64 KiB there), resp and a module's codec
  keyspaceSize: { cli: 'int', protocols: ['resp'] },
  maxInFlight: { cli: 'int' },
  maxOutput: { cli: 'int' },
  maxFiles: { cli: 'int' },
  headerTimeout: { cli: 'int' },
  idleTimeout: { cli: 'int' },
  minRequestRate: { cli: 'rate' },
  maxConnections: { cli: 'int' }, // server-wide, not per connection (README's limits table)
  maxConnectionsPerClient: { cli: 'int' }, // per client address, server-wide (README's limits table)
  zerocopyThreshold: { cli: 'int', models: [...reactorModels, 'proactor', 'multi-proactor'] },
  backlog: { cli: 'int' },
  pool: { cli: 'int' }, // read by multi-reactor-pool only (README's model table), as workers by some
  cpus: { cli: 'ints' },
  execArgv: { cli: 'none', models: ['multi-process'] },
  ring: { cli: 'none', models: ['proactor', 'multi-proactor'] },
} satisfies Record<keyof ServeOptions, ServeOptionRow>;

/** Every option `serve()` knows, in the table's order. */
export const serveOptionNames = Object.keys(serveOptionTable) as (keyof ServeOptions)[];

function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw v.typeError(name, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value);
  }
  return value as T;
}

function invalidValue(message: string): TypeError {
  const e = new TypeError(message);
  (e as TypeError & { code: string }).code = 'ERR_INVALID_ARG_VALUE';
  return e;
}

function checkKeys(o: object): void {
  for (const key of Object.keys(o)) {
    if (!Object.hasOwn(serveOptionTable, key)) {
      throw invalidValue(`serve() has no option '${key}'; the options are: ${serveOptionNames.join(', ')}`);
    }
  }
}

/** An option given (not undefined) that the model or protocol does not use is refused. */
function checkUse(o: Partial<ServeOptions>, model: ModelName, protocol: ProtocolName | 'module'): void {
  for (const key of serveOptionNames) {
    if (o[key] === undefined) continue;
    const use: ServeOptionRow = serveOptionTable[key];
    if (use.models && !use.models.includes(model)) {
      throw invalidValue(
        `the '${key}' option is not used by the ${model} model; it applies to ${use.models.join(', ')}`,
      );
    }
    if (use.protocols && !use.protocols.includes(protocol as ProtocolName)) {
      const to = use.protocols.map((p) => `'${p}'`).join(', ');
      throw invalidValue(`the '${key}' option is not used by the ${protocol} protocol; it applies to ${to}`);
    }
  }
}

/** The models whose rings read and send file bodies themselves, with no transfer method. */
const RING_BODY_MODELS: readonly ModelName[] = ['proactor', 'multi-proactor'];
const RING_UNUSED = ['transfer', 'directio', 'mmap'] as const;

/**
 * `transfer`, `directio` and `mmap` given to a model whose ring reads and sends file bodies
 * itself: accepted, as they always were, but unused. Refused like any other option the model
 * does not use from the next release; until then a DeprecationWarning
 * (RAWIO_DEP_RING_TRANSFER, once per process) says so.
 */
function warnRingTransfer(o: Partial<ServeOptions>, model: ModelName): void {
  if (!RING_BODY_MODELS.includes(model) || warnedRingTransfer) return;
  const given = RING_UNUSED.filter((k) => o[k] !== undefined);
  if (given.length === 0) return;
  warnedRingTransfer = true;
  process.emitWarning(
    `the ${given.map((k) => `'${k}'`).join(', ')} option${given.length > 1 ? 's are' : ' is'} not used by the ${model} model, whose ring reads and sends file bodies itself; the next release refuses ${given.length > 1 ? 'them' : 'it'}, as it does any option a model does not use`,
    { type: 'DeprecationWarning', code: 'RAWIO_DEP_RING_TRANSFER' },
  );
}
let warnedRingTransfer = false;

/** A path or URL of a module, as an href every thread and process can import. */
function moduleHref(name: string, value: unknown): string {
  if (value instanceof URL) return value.href;
  if (typeof value !== 'string' || value === '') throw v.typeError(name, 'a path or a URL', value);
  return /^[a-z][a-z0-9+.-]*:/i.test(value) ? new URL(value).href : pathToFileURL(value).href;
}

/** 'http' or a built-in name; `{ module, options }` for a user protocol module. */
function protocolOf(value: unknown): { protocol: ProtocolName; module?: { module: string; options?: unknown } } {
  if (typeof value === 'string' || value === undefined || value === null || typeof value !== 'object') {
    return { protocol: oneOf('protocol', value, protocolNames) };
  }
  const spec = value as { module?: unknown; options?: unknown };
  for (const key of Object.keys(spec)) {
    if (key !== 'module' && key !== 'options')
      throw invalidValue(`protocol has no field '${key}'; it takes module, options`);
  }
  const module = { module: moduleHref('protocol.module', spec.module) } as { module: string; options?: unknown };
  // Options cross threads (structured clone) and processes (JSON): plain data only, checked
  // here rather than failing late, and differently, in one model or another.
  if (spec.options !== undefined) module.options = plainData('protocol.options', spec.options);
  // The models frame a module's bytes themselves; 'echo' only stands in for the built-in name.
  return { protocol: 'echo', module };
}

/** CPU numbers, each one this process may run on (sched_getaffinity), else a RangeError. */
function cpuList(value: unknown): number[] {
  if (!Array.isArray(value)) throw v.typeError('cpus', 'an array of CPU numbers', value);
  const allowed = getAffinity();
  return value.map((c: unknown, i) => {
    const cpu = v.int(`cpus[${i}]`, c, 0, 1023);
    if (!allowed.includes(cpu))
      throw v.rangeError(`cpus[${i}]`, `a CPU this process may use (${allowed.join(', ')})`, c);
    return cpu;
  });
}

/** A host to bind: an address or a name, not '' (which dns.lookup would answer with null). */
function hostName(value: unknown): string {
  const host = v.cstr('host', value);
  if (host === '') throw v.valueError('host', 'an address or a host name', "''");
  return host;
}

/** A timer length in ms: what setTimeout can hold. */
const ms = (name: string, value: unknown) => v.int(name, value, 1, 0x7fffffff);

/** A server-wide connection limit (maxConnections, maxConnectionsPerClient): a whole number of connections, or Infinity (none). */
function maxConnections(value: unknown, name = 'maxConnections'): number {
  if (value === undefined || value === Infinity) return Infinity;
  return v.int(name, value, 1, 0x7fffffff);
}

/**
 * minRequestRate: bytes a second, a whole number of at least 1, or Infinity (no credit: a
 * started request must arrive whole within headerTimeout).
 */
function minRequestRate(value: unknown): number {
  if (value === undefined) return CONN_DEFAULTS.minRequestRate;
  if (value === Infinity) return Infinity;
  if (typeof value !== 'number') throw v.typeError('minRequestRate', 'of type number', value);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw v.rangeError('minRequestRate', 'an integer >= 1, or Infinity', value);
  }
  return value;
}

/** The codecs' limits for maxHeader / maxRequest (http and static heads and bodies, resp commands and arguments). */
function requestLimits(maxHeader?: number, maxRequest?: number): ProtocolOptions['limits'] {
  const limits: NonNullable<ProtocolOptions['limits']> = {};
  if (maxHeader !== undefined) limits.maxHead = maxHeader;
  if (maxRequest !== undefined) {
    limits.maxBody = maxRequest;
    limits.maxRequest = maxRequest;
    limits.maxBulk = maxRequest;
  }
  return limits;
}

const ringKeys = ['cqEntries', 'submitAll', 'registerRingFd', 'recvBundle', 'incrementalBuffers'] as const;

/**
 * The submission queue entries of every ring the proactor models set up. `ring.cqEntries`
 * may not be fewer (io_uring_setup refuses a completion queue smaller than the submission
 * queue with EINVAL), so serve() checks it against this before any thread starts.
 */
export const PROACTOR_RING_ENTRIES = 1024;

/** `ring`: only the keys it knows, each of its type (the Proactor checks the rest). */
function ringSetup(r: unknown): RingSetup {
  const o = v.object<Record<string, unknown>>('ring', r);
  const out: RingSetup = {};
  for (const [k, val] of Object.entries(o)) {
    if (val === undefined) continue;
    if (k === 'cqEntries') out.cqEntries = v.int('ring.cqEntries', val, PROACTOR_RING_ENTRIES, 65536);
    else if (k === 'submitAll' || k === 'registerRingFd' || k === 'recvBundle' || k === 'incrementalBuffers')
      out[k] = v.bool(`ring.${k}`, val);
    else throw invalidValue(`ring has no field '${k}'; it takes ${ringKeys.join(', ')}`);
  }
  if (out.recvBundle === true && out.incrementalBuffers === true)
    throw v.rangeError('ring', 'recvBundle or incrementalBuffers, not both', 'both');
  return out;
}

/** An array of strings that become C strings (exec arguments). */
function strings(name: string, value: unknown): string[] {
  if (!Array.isArray(value)) throw v.typeError(name, 'an array of strings', value);
  return value.map((s: unknown, i) => v.cstr(`${name}[${i}]`, s));
}

/** The static root: a directory; ENOENT / ENOTDIR as the SystemError-shaped ErrnoError. */
function rootDir(value: unknown): string {
  const root = v.cstr('root', value);
  const st = statSync(root, { throwIfNoEntry: false });
  if (st === undefined) throw errnoError(-ENOENT, 'stat', root);
  if (!st.isDirectory()) throw errnoError(-ENOTDIR, 'stat', root);
  return root;
}

/**
 * Checks `opts` and fills in every default, as {@link serve} does before it starts a model:
 * an unknown key, a wrong type, an option the model does not use or another protocol's
 * (`handler`, `keyspaceSize`) is a TypeError, a number out of range a RangeError, a missing static `root` an ENOENT
 * ErrnoError. Opens nothing (a host name is resolved by `serve()` itself).
 */
export function resolveServeOptions(opts: ServeOptions): ResolvedServeOptions {
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts))
    throw v.typeError('opts', 'of type object', opts);
  const o = opts as Partial<ServeOptions>;
  checkKeys(o);
  const model = oneOf('model', o.model, modelNames);
  // A user module is checked as a protocol of its own: root and handler are not its options.
  const { protocol, module } = protocolOf(o.protocol);
  checkUse(o, model, module ? 'module' : protocol);
  warnRingTransfer(o, model);
  const cpus = availableParallelism();
  if (protocol === 'static' && o.root === undefined && !module) {
    throw v.typeError('root', 'a directory (the static protocol needs one)', o.root);
  }
  const root = o.root === undefined ? undefined : rootDir(o.root);
  const transfer = o.transfer === undefined ? 'auto' : oneOf('transfer', o.transfer, transferMethodNames);
  const directio = o.directio === undefined ? 4 << 20 : v.int('directio', o.directio, 0);
  const maxHeader = o.maxHeader === undefined ? undefined : v.int('maxHeader', o.maxHeader, 64, 65535);
  const maxRequest = o.maxRequest === undefined ? undefined : v.int('maxRequest', o.maxRequest, 1);
  // What Keyspace.create takes; a one-thread server's local table is held to the same range.
  const keyspaceSize =
    o.keyspaceSize === undefined ? undefined : v.int('keyspaceSize', o.keyspaceSize, 1 << 16, 0xffffffff);
  const resolved: ResolvedServeOptions = {
    model,
    protocol,
    host: o.host === undefined ? '127.0.0.1' : hostName(o.host),
    port: o.port === undefined ? 0 : v.int('port', o.port, 0, 65535),
    workers:
      o.workers === undefined ? (model === 'thread-per-connection' ? 256 : cpus) : v.int('workers', o.workers, 1, 4096),
    backend: o.backend === undefined ? 'epoll' : oneOf<PollerName>('backend', o.backend, pollerNames),
    accept: o.accept === undefined ? 'reuseport' : oneOf('accept', o.accept, acceptStrategies),
    transfer,
    directio,
    mmap: o.mmap === undefined ? {} : { ...checkMmapTransfer('mmap', o.mmap) },
    maxQueue: o.maxQueue === undefined ? 64 << 20 : v.int('maxQueue', o.maxQueue, 1),
    maxInFlight: o.maxInFlight === undefined ? CONN_DEFAULTS.maxInFlight : v.int('maxInFlight', o.maxInFlight, 1),
    maxOutput: o.maxOutput === undefined ? CONN_DEFAULTS.maxOutput : v.int('maxOutput', o.maxOutput, 1),
    maxFiles: o.maxFiles === undefined ? CONN_DEFAULTS.maxFiles : v.int('maxFiles', o.maxFiles, 1),
    headerTimeout: o.headerTimeout === undefined ? CONN_DEFAULTS.headerTimeout : ms('headerTimeout', o.headerTimeout),
    idleTimeout: o.idleTimeout === undefined ? CONN_DEFAULTS.idleTimeout : ms('idleTimeout', o.idleTimeout),
    minRequestRate: minRequestRate(o.minRequestRate),
    maxConnections: maxConnections(o.maxConnections),
    maxConnectionsPerClient: maxConnections(o.maxConnectionsPerClient, 'maxConnectionsPerClient'),
    zerocopyThreshold: o.zerocopyThreshold === undefined ? 0 : v.int('zerocopyThreshold', o.zerocopyThreshold, 0),
    backlog: o.backlog === undefined ? 511 : v.int('backlog', o.backlog, 1, 0x7fffffff),
    pool: o.pool === undefined ? cpus : v.int('pool', o.pool, 1, 4096),
    cpus: o.cpus === undefined ? [] : cpuList(o.cpus),
    execArgv: o.execArgv === undefined ? workerExecArgv(process.execArgv) : strings('execArgv', o.execArgv),
    protocolOptions: { root, transfer, directio, limits: requestLimits(maxHeader, maxRequest) },
    ring: o.ring === undefined ? {} : ringSetup(o.ring),
  };
  if (root !== undefined) resolved.root = root;
  if (maxHeader !== undefined) resolved.maxHeader = maxHeader;
  if (maxRequest !== undefined) resolved.maxRequest = maxRequest;
  if (keyspaceSize !== undefined) resolved.protocolOptions.keyspaceSize = resolved.keyspaceSize = keyspaceSize;
  // User code travels to every thread and process as the protocol's kind and options.
  if (module) {
    resolved.protocolModule = module;
    resolved.protocol = 'module';
    resolved.protocolOptions.module = module.module;
    resolved.protocolOptions.moduleOptions = module.options;
  }
  if (o.handler !== undefined) resolved.protocolOptions.handler = resolved.handler = moduleHref('handler', o.handler);
  if (resolved.accept === 'exclusive' && resolved.backend !== 'epoll' && o.accept !== undefined) {
    throw invalidValue(`accept 'exclusive' needs the epoll backend (EPOLLEXCLUSIVE); got '${resolved.backend}'`);
  }
  return resolved;
}
