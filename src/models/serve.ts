/**
 * `serve()`: one call starts any model with any protocol. It checks the options once
 * (TypeError / RangeError before anything is opened), fills in the defaults, loads the
 * model's file and returns a Server with the bound address, live stats and close().
 */
import { lookup } from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { loadProtocolModules } from '../protocols/module.js';
import { resolveServeOptions } from './serve-options.js';
import { drainMs } from './drain.js';
import type { CloseOptions, ModelHandle, ModelName, ModelStarter, ServeOptions, Server } from './types.js';

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
 * `proactor` …). A `host` that is not an IP literal is resolved with dns.lookup; `server.host`
 * is the address bound.
 * @example
 * const server = await serve({ model: 'multi-reactor', protocol: 'http', workers: 2 });
 * console.log(`http://${server.host}:${server.port}/`);
 * await server.close();
 */
export async function serve(opts: ServeOptions): Promise<Server> {
  const resolved = resolveServeOptions(opts);
  // The caller's thread imports user modules first: one that fails to load rejects here.
  await loadProtocolModules(resolved.protocolOptions);
  // bind(2) takes addresses: a name is looked up first (ENOTFOUND rejects as dns reports it).
  if (isIP(resolved.host) === 0) resolved.host = (await lookup(resolved.host)).address;
  const handle = await (await loadModel(resolved.model))(resolved);
  const close = closer(handle);
  const server = Object.assign(new EventEmitter(), {
    host: resolved.host,
    port: handle.port,
    model: resolved.model,
    stats: () => handle.stats(),
    workerPids: () => handle.workerPids?.() ?? [],
    close,
    [Symbol.asyncDispose]: () => close(),
  });
  handle.onError?.((e) => server.emit('error', e));
  return server;
}

/**
 * Server.close(): once, however often it is called. With `drain` the model drains first
 * (ModelHandle.drain) until its connections are gone or the deadline; a later call without
 * `drain` ends the drain at once.
 */
function closer(handle: ModelHandle): (options?: CloseOptions) => Promise<void> {
  let closing: Promise<void> | undefined;
  let cutNow: (() => void) | undefined;
  return (options) => {
    let ms: number;
    try {
      ms = drainMs(options);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    if (closing) {
      if (ms === 0) cutNow?.();
      return closing;
    }
    if (ms === 0) return (closing = handle.close());
    let timer: ReturnType<typeof setTimeout> | undefined;
    const cut = new Promise<void>((resolve) => {
      cutNow = resolve;
      if (ms !== Infinity) timer = setTimeout(resolve, ms);
    });
    // A drain that fails (it should not) still ends in the close below.
    let drained: Promise<unknown>;
    try {
      drained = handle.drain(cut).catch(() => undefined);
    } catch {
      drained = Promise.resolve();
    }
    closing = (async () => {
      await Promise.race([drained, cut]);
      clearTimeout(timer);
      cutNow?.();
      cutNow = undefined;
      await handle.close();
    })();
    return closing;
  };
}
