/**
 * What every model opens first, in this order: the protocol, then the listening socket. The
 * protocol comes first because a user's protocol module may throw in `create()`; then nothing
 * is open yet. A listen that fails closes the protocol again, so a failed start leaves no fd,
 * keyspace or module state behind.
 */
import { createProtocol, handlerThreadOptions } from '../protocols/index.js';
import type { Protocol } from '../protocols/protocol.js';
import { listenTcp } from '../sys/socket.js';
import type { ResolvedServeOptions } from './types.js';

export interface OpenServer {
  protocol: Protocol;
  listenFd: number;
}

/**
 * Creates the model's protocol and its listening socket (or what `listen` opens instead).
 * `oneHandlerThread`: every request is handled on one thread, so RESP may keep its keyspace
 * as that thread's own table.
 */
export function openServer(
  opts: ResolvedServeOptions,
  oneHandlerThread: boolean,
  listen: { blocking?: boolean; reusePort?: boolean } | (() => number) = {},
): OpenServer {
  const protocol = createProtocol(
    opts.protocol,
    handlerThreadOptions(opts.protocol, opts.protocolOptions, oneHandlerThread),
  );
  try {
    const listenFd =
      typeof listen === 'function' ? listen() : listenTcp(opts.host, opts.port, { backlog: opts.backlog, ...listen });
    return { protocol, listenFd };
  } catch (e) {
    protocol.close();
    throw e;
  }
}
