/**
 * `serve()`: one call starts any model with any protocol. It checks the options once
 * (TypeError / RangeError before anything is opened), fills in the defaults, loads the
 * model's file and returns a Server with the bound address, live stats and close().
 */
import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import { statSync } from 'node:fs';
import { protocolNames, type ProtocolOptions } from '../protocols/protocol.js';
import * as v from '../sys/validate.js';
import { CONN_DEFAULTS } from './conn-core.js';
import { pollerNames, type PollerName } from './poller-name.js';
import { workerExecArgv } from './worker-argv.js';
import type {
  AcceptStrategy,
  ModelName,
  ModelStarter,
  ResolvedServeOptions,
  RingSetup,
  ServeOptions,
  Server,
} from './types.js';

import { modelNames } from './types.js';

export { modelNames };
const acceptStrategies: readonly AcceptStrategy[] = ['reuseport', 'exclusive', 'mutex'];

/** An array of strings that become C strings (exec arguments). */
function strings(name: string, value: unknown): string[] {
  if (!Array.isArray(value)) throw v.typeError(name, 'an array of strings', value);
  return value.map((s: unknown, i) => v.cstr(`${name}[${i}]`, s));
}

function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw v.typeError(name, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value);
  }
  return value as T;
}

/**
 * Checks `opts` and fills in every default, as {@link serve} does before it starts a model
 * (TypeError / RangeError for a bad option; the static protocol's `root` must be a
 * directory). Opens nothing.
 */
export function resolveServeOptions(opts: ServeOptions): ResolvedServeOptions {
  const o = v.object<ServeOptions>('opts', opts);
  if (opts === undefined) throw v.typeError('opts', 'of type object', opts);
  const model = oneOf('model', o.model, modelNames);
  const protocol = oneOf('protocol', o.protocol, protocolNames);
  const cpus = availableParallelism();
  const root = o.root === undefined ? undefined : v.cstr('root', o.root);
  if (protocol === 'static') {
    if (root === undefined) throw v.typeError('root', 'a directory (the static protocol needs one)', root);
    if (!statSync(root, { throwIfNoEntry: false })?.isDirectory()) throw v.rangeError('root', 'a directory', root);
  }
  const transfer = o.transfer === undefined ? 'auto' : v.str('transfer', o.transfer);
  const directio = o.directio === undefined ? 4 << 20 : v.int('directio', o.directio, 0);
  const maxHeader = o.maxHeader === undefined ? undefined : v.int('maxHeader', o.maxHeader, 64, 65535);
  const maxRequest = o.maxRequest === undefined ? undefined : v.int('maxRequest', o.maxRequest, 1);
  const resolved: ResolvedServeOptions = {
    model,
    protocol,
    host: o.host === undefined ? '127.0.0.1' : v.cstr('host', o.host),
    port: o.port === undefined ? 0 : v.int('port', o.port, 0, 65535),
    workers:
      o.workers === undefined ? (model === 'thread-per-connection' ? 256 : cpus) : v.int('workers', o.workers, 1, 4096),
    backend: o.backend === undefined ? 'epoll' : oneOf<PollerName>('backend', o.backend, pollerNames),
    accept: o.accept === undefined ? 'reuseport' : oneOf('accept', o.accept, acceptStrategies),
    transfer,
    directio,
    maxQueue: o.maxQueue === undefined ? 64 << 20 : v.int('maxQueue', o.maxQueue, 1),
    maxInFlight: o.maxInFlight === undefined ? CONN_DEFAULTS.maxInFlight : v.int('maxInFlight', o.maxInFlight, 1),
    maxOutput: o.maxOutput === undefined ? CONN_DEFAULTS.maxOutput : v.int('maxOutput', o.maxOutput, 1),
    maxFiles: o.maxFiles === undefined ? CONN_DEFAULTS.maxFiles : v.int('maxFiles', o.maxFiles, 1),
    headerTimeout:
      o.headerTimeout === undefined ? CONN_DEFAULTS.headerTimeout : v.int('headerTimeout', o.headerTimeout, 1),
    idleTimeout: o.idleTimeout === undefined ? CONN_DEFAULTS.idleTimeout : v.int('idleTimeout', o.idleTimeout, 1),
    backlog: o.backlog === undefined ? 511 : v.int('backlog', o.backlog, 1, 0x7fffffff),
    pool: o.pool === undefined ? cpus : v.int('pool', o.pool, 1, 4096),
    cpus: o.cpus === undefined ? [] : o.cpus.map((c) => v.int('cpus[i]', c, 0, 1023)),
    execArgv: o.execArgv === undefined ? workerExecArgv(process.execArgv) : strings('execArgv', o.execArgv),
    protocolOptions: { root, transfer, directio, limits: requestLimits(maxHeader, maxRequest) },
    ring: ringSetup(o.ring),
  };
  if (root !== undefined) resolved.root = root;
  if (maxHeader !== undefined) resolved.maxHeader = maxHeader;
  if (maxRequest !== undefined) resolved.maxRequest = maxRequest;
  return resolved;
}

/** `ring`, checked: only the keys it knows, each of its type (the Proactor checks the ranges). */
function ringSetup(r: unknown): RingSetup {
  const o = v.object<RingSetup>('ring', r);
  const out: RingSetup = {};
  for (const [k, val] of Object.entries(o)) {
    if (k === 'cqEntries') out.cqEntries = v.int('ring.cqEntries', val, 1, 65536);
    else if (k === 'submitAll' || k === 'registerRingFd' || k === 'recvBundle' || k === 'incrementalBuffers')
      out[k] = v.bool(`ring.${k}`, val);
    else throw v.rangeError('ring', 'cqEntries, submitAll, registerRingFd, recvBundle or incrementalBuffers', k);
  }
  if (out.recvBundle === true && out.incrementalBuffers === true)
    throw v.rangeError('ring', 'recvBundle or incrementalBuffers, not both', 'both');
  return out;
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

/** Each model's file, loaded when first served (a literal import each, so bundlers see them). */
const models: Record<ModelName, () => Promise<{ start: ModelStarter }>> = {
  iterative: () => import('./iterative.js'),
  'thread-per-connection': () => import('./thread-per-connection.js'),
  single: () => import('./single.js'),
  'worker-pool': () => import('./worker-pool.js'),
  'multi-reactor': () => import('./multi-reactor.js'),
  'multi-reactor-pool': () => import('./multi-reactor-pool.js'),
  'multi-process': () => import('./multi-process.js'),
  proactor: () => import('./proactor.js'),
  'multi-proactor': () => import('./multi-proactor.js'),
};

async function loadModel(model: ModelName): Promise<ModelStarter> {
  return (await models[model]()).start;
}

/**
 * Starts a server: `model` decides how connections are accepted and served (one thread, a
 * thread per connection, reactors on worker threads, processes, io_uring …), `protocol`
 * what they speak. Resolves once it listens, with the bound port (`port: 0` picks a free
 * one). Rejects with a TypeError / RangeError for bad options before opening anything, and
 * with an ErrnoError when the model cannot start (EADDRINUSE, or io_uring refused for
 * `proactor` …).
 * @example
 * const server = await serve({ model: 'multi-reactor', protocol: 'http', workers: 2 });
 * console.log(`http://${server.host}:${server.port}/`);
 * await server.close();
 */
export async function serve(opts: ServeOptions): Promise<Server> {
  const resolved = resolveServeOptions(opts);
  const handle = await (await loadModel(resolved.model))(resolved);
  const server = Object.assign(new EventEmitter(), {
    host: resolved.host,
    port: handle.port,
    model: resolved.model,
    stats: () => handle.stats(),
    close: () => handle.close(),
  });
  handle.onError?.((e) => server.emit('error', e));
  return server;
}
