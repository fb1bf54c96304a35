/**
 * The protocols a server can speak, by name. Every model serves any of them through the
 * Protocol contract (protocol.ts).
 */
import { protocolNames, type ProtocolName, type ProtocolOptions, type SyncProtocol } from './protocol.js';
import { EchoProtocol } from './echo.js';
import { HttpProtocol } from './http.js';
import { RespProtocol } from './resp.js';
import { StaticProtocol } from './static.js';
import { object, typeError } from '../sys/validate.js';

export { protocolNames };

/**
 * Creates a protocol. On a worker thread or in a child process, pass the `options` of the
 * server's own protocol so that both share one state (the RESP keyspace).
 * @example
 * const p = createProtocol('resp', {});      // creates a keyspace
 * const w = createProtocol('resp', p.options); // attaches to it (in a worker, say)
 */
export function createProtocol(name: ProtocolName, opts: ProtocolOptions = {}): SyncProtocol {
  object('opts', opts);
  switch (name) {
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

export type { Codec, Protocol, ProtocolName, ProtocolOptions, PushResult, Reply, SyncProtocol } from './protocol.js';
export { EchoProtocol, HttpProtocol, RespProtocol, StaticProtocol };
export type { HttpOptions } from './http.js';
export type { RespOptions } from './resp.js';
export { HttpCodec, type HttpLimits } from './http-codec.js';
export { RespCodec, type RespLimits } from './resp-codec.js';
export { LocalKeyspace, type LocalKeyspaceOptions } from './local-keyspace.js';
