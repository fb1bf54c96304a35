/**
 * The protocols a server can speak, by name. Every model serves any of them through the
 * Protocol contract (protocol.ts).
 */
import {
  protocolNames,
  type Protocol,
  type ProtocolKind,
  type ProtocolName,
  type ProtocolOptions,
  type SyncProtocol,
} from './protocol.js';
import { EchoProtocol } from './echo.js';
import { HttpProtocol } from './http.js';
import { RespProtocol } from './resp.js';
import { StaticProtocol } from './static.js';
import { ModuleProtocol, loadProtocolModules, moduleUrl, type ProtocolModuleSpec } from './module.js';
import { plainData } from './user-checks.js';
import { object, typeError } from '../sys/validate.js';

export { protocolNames };

/**
 * Creates a protocol. On a worker thread or in a child process, pass the `options` of the
 * server's own protocol so that both share one state (the RESP keyspace).
 * @example
 * const p = createProtocol('resp', {});      // creates a keyspace
 * const w = createProtocol('resp', p.options); // attaches to it (in a worker, say)
 */
export function createProtocol(name: ProtocolName, opts?: ProtocolOptions & { handler?: undefined }): SyncProtocol;
export function createProtocol(name: ProtocolKind, opts?: ProtocolOptions): Protocol;
export function createProtocol(name: ProtocolKind, opts: ProtocolOptions = {}): Protocol {
  object('opts', opts);
  switch (name) {
    case 'module':
      return new ModuleProtocol(opts);
    case 'echo':
      return new EchoProtocol(opts);
    case 'http':
      return new HttpProtocol(opts);
    case 'resp':
      return new RespProtocol(opts);
    case 'static':
      return new StaticProtocol(opts);
    default:
      throw typeError('name', `one of ${protocolNames.join(', ')}`, name);
  }
}

/**
 * Creates a protocol whose code lives in modules: a protocol module (`{ module, options }`,
 * see {@link ProtocolModule}), or a built-in protocol with module options (`http` with a
 * `handler`). Imports them first, in this thread; rejects with the module's own error when
 * one fails to load or has the wrong shape.
 * @example
 * const p = await loadProtocol({ module: './lines.mjs' }); // a path from the cwd, or a file URL
 * const h = await loadProtocol('http', { handler: './app.mjs' });
 */
export async function loadProtocol(
  spec: ProtocolName | ProtocolModuleSpec,
  opts: ProtocolOptions = {},
): Promise<Protocol> {
  const [kind, resolved] = protocolSpec(spec, opts);
  await loadProtocolModules(resolved);
  return createProtocol(kind, resolved);
}

/** A protocol name or module spec as the kind and options every thread recreates it from. */
export function protocolSpec(spec: unknown, opts: ProtocolOptions = {}): [ProtocolKind, ProtocolOptions] {
  const resolved = { ...opts };
  if (resolved.handler !== undefined) resolved.handler = moduleUrl('handler', resolved.handler);
  if (typeof spec === 'string' && protocolNames.includes(spec as ProtocolName)) return [spec as ProtocolName, resolved];
  if (typeof spec !== 'object' || spec === null || !('module' in spec)) {
    throw typeError('protocol', `one of ${protocolNames.map((n) => `'${n}'`).join(', ')} or { module, options }`, spec);
  }
  const { module, options } = spec as ProtocolModuleSpec;
  const moduleOptions = plainData('protocol.options', options);
  return ['module', { ...resolved, module: moduleUrl('protocol.module', module), moduleOptions }];
}

export type {
  Codec,
  Protocol,
  ProtocolKind,
  ProtocolName,
  ProtocolOptions,
  PushResult,
  Reply,
  SyncProtocol,
} from './protocol.js';
export type { ProtocolModule, CustomProtocol, ProtocolModuleSpec } from './module.js';
export type { HttpRequest, HttpResponse, HttpFileBody, HttpHandlerModule } from './http-handler.js';
export { EchoProtocol, HttpProtocol, RespProtocol, StaticProtocol };
export type { HttpOptions } from './http.js';
export type { RespOptions } from './resp.js';
export { HttpCodec, type HttpLimits } from './http-codec.js';
export { RespCodec, type RespLimits } from './resp-codec.js';
export { LocalKeyspace, type LocalKeyspaceOptions, type StoredReply } from './local-keyspace.js';

/**
 * The options for a protocol whose requests are all handled on one thread: `resp` then keeps
 * its keyspace as that thread's own table (no shared memory, no lock); others are unchanged.
 */
export function handlerThreadOptions(name: ProtocolKind, opts: ProtocolOptions, oneThread: boolean): ProtocolOptions {
  return oneThread && name === 'resp' ? { ...opts, localKeyspace: true } : opts;
}
