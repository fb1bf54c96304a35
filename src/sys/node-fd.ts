/**
 * The fd under a Node object, for the calls that take "an fd, a net.Socket or an
 * http.ServerResponse" (`transferFile`, `Connection`). A connected TCP or Unix socket's
 * libuv handle carries its fd; a TLS socket has one too, but bytes written there would
 * bypass the encryption, so it is refused, as is a socket not yet connected (no handle
 * fd) and a response whose head has not been flushed (the file's bytes would go out
 * before the status line).
 */
import type { Socket } from 'node:net';
import type { ServerResponse } from 'node:http';
import * as v from './validate.js';

/** What the Node-interop calls take in place of an fd. */
export type SocketLike = number | Socket | ServerResponse;

function unusable(what: string, why: string): TypeError {
  const e = new TypeError(`${what} has no usable fd: ${why}`);
  (e as TypeError & { code: string }).code = 'ERR_INVALID_ARG_VALUE';
  return e;
}

/** An object with a Node stream socket's shape (net.Socket or a subclass). */
function isSocket(x: object): x is Socket {
  return typeof (x as Socket).setNoDelay === 'function' && 'writableLength' in x;
}

/** The net.Socket behind `target` (itself, or a response's), or undefined for an fd. */
export function nodeSocket(target: unknown, name: string): Socket | undefined {
  if (typeof target === 'number') return undefined;
  if (target === null || typeof target !== 'object') {
    throw v.typeError(name, 'an fd, a net.Socket or an http.ServerResponse', target);
  }
  if (isSocket(target)) return target;
  const res = target as Partial<ServerResponse>;
  if ('headersSent' in res && 'socket' in res) {
    if (!res.headersSent) throw unusable('the response', 'its head is not flushed yet (call res.flushHeaders() first)');
    if (!res.socket) throw unusable('the response', 'its socket is gone (the response has finished or was detached)');
    return res.socket;
  }
  throw v.typeError(name, 'an fd, a net.Socket or an http.ServerResponse', target);
}

/** The fd of `target`: the number itself, or the fd of a connected, unencrypted Node socket. */
export function fdOf(target: unknown, name: string): number {
  const socket = nodeSocket(target, name);
  if (socket === undefined) return v.fd(target, name);
  if ((socket as { encrypted?: boolean }).encrypted === true) {
    throw unusable('a TLS socket', 'bytes written to its fd would bypass the encryption');
  }
  const fd = (socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  if (socket.destroyed || typeof fd !== 'number' || fd < 0) {
    const why = socket.destroyed
      ? 'it is destroyed'
      : socket.connecting
        ? 'it is not connected yet'
        : 'its handle has none';
    throw unusable('the socket', why);
  }
  return fd;
}
