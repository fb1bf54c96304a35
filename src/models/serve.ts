/**
 * `serve()`: one call starts any model with any protocol. It checks the options once
 * (TypeError / RangeError before anything is opened), fills in the defaults, loads the
 * model's file and returns a Server with the bound address, live stats and close().
 */
import { lookup } from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { resolveServeOptions } from './serve-options.js';
import type { ModelName, ModelStarter, ServeOptions, Server } from './types.js';

export { modelNames, resolveServeOptions, serveOptionNames } from './serve-options.js';

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
 * `proactor` …). A `host` that is not an IP literal is resolved with dns.lookup; `server.host`
 * is the address bound.
 * @example
 * const server = await serve({ model: 'multi-reactor', protocol: 'http', workers: 2 });
 * console.log(`http://${server.host}:${server.port}/`);
 * await server.close();
 */
export async function serve(opts: ServeOptions): Promise<Server> {
  const resolved = resolveServeOptions(opts);
  // The models do not load user code yet: refuse a module or handler rather than ignore it.
  if (resolved.protocolModule !== undefined || resolved.handler !== undefined) {
    const what = resolved.handler !== undefined ? 'handler' : 'protocol';
    throw Object.assign(new TypeError(`serve(): the '${what}' module option is not supported by this build`), {
      code: 'ERR_INVALID_ARG_VALUE',
    });
  }
  // bind(2) takes addresses: a name is looked up first (ENOTFOUND rejects as dns reports it).
  if (isIP(resolved.host) === 0) resolved.host = (await lookup(resolved.host)).address;
  const handle = await (await loadModel(resolved.model))(resolved);
  const close = () => handle.close();
  const server = Object.assign(new EventEmitter(), {
    host: resolved.host,
    port: handle.port,
    model: resolved.model,
    stats: () => handle.stats(),
    workerPids: () => handle.workerPids?.() ?? [],
    close,
    [Symbol.asyncDispose]: close,
  });
  handle.onError?.((e) => server.emit('error', e));
  return server;
}
