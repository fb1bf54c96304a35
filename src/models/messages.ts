/**
 * The messages a model's threads exchange through Channels (channel.ts): numbers in the
 * header fields, bytes in the payload, nothing cloned. Each kind has one writer (`write*`,
 * false when the channel is full: the caller keeps the message and retries) and one reader
 * (`read*`); they alone know which of the channel's numeric slots carries which field.
 */
import type { Channel, Message } from './channel.js';

/** Message tags. */
export const MSG = {
  /** To a reactor or a blocking thread: adopt a connection (an fd accepted elsewhere). */
  NEW_FD: 1,
  /** To a reactor or a pool worker: finish and exit. */
  STOP: 2,
  /** To a pool worker: handle a framed request for a reactor's session. */
  REQUEST: 3,
  /** To a reactor: (a piece of) the reply to a request it handed to a pool worker. */
  REPLY: 4,
} as const;

/** Channel capacity, and the largest piece of a reply or request that travels as one message. */
export const CHANNEL_BYTES = 4 << 20;
export const CHUNK = 1 << 20;

// REPLY's flag bits
const REPLY_CLOSE = 1;
const REPLY_PARTIAL = 2;

export function writeNewFd(ch: Channel, fd: number): boolean {
  return ch.push(MSG.NEW_FD, fd);
}
/** The connection a NEW_FD message hands over. */
export function readNewFd(m: Message): number {
  return m.a;
}

export function writeStop(ch: Channel): boolean {
  return ch.push(MSG.STOP);
}

/** A framed request, sent by reactor `reactor` for its session `session`, the `seq`th request. */
export interface RequestMessage {
  reactor: number;
  session: number;
  seq: number;
  /** The frame: copied into the channel by the writer; a view reused by the next pop for the reader. */
  frame: Uint8Array;
}
export function writeRequest(ch: Channel, r: RequestMessage): boolean {
  return ch.push(MSG.REQUEST, r.reactor, r.session, r.seq, 0, 0, 0, r.frame);
}
export function readRequest(m: Message): RequestMessage {
  return { reactor: m.a, session: m.b, seq: m.c, frame: m.payload };
}

/** A reply, or one CHUNK-sized piece of it, for request `seq` of session `session`. */
export interface ReplyMessage {
  session: number;
  seq: number;
  /** The reply's bytes (this piece of them). */
  data: Uint8Array;
  /** More of this reply's bytes follow in another REPLY message. */
  partial: boolean;
  /** Close the connection once the reply is written (only on the last piece). */
  close: boolean;
  /** A file region to send after the bytes (only on the last piece); its fd travels with the message. */
  file?: { fd: number; offset: number; length: number };
}
export function writeReply(ch: Channel, r: ReplyMessage): boolean {
  const flags = (r.partial ? REPLY_PARTIAL : 0) | (r.close ? REPLY_CLOSE : 0);
  const f = r.file;
  return ch.push(MSG.REPLY, r.session, r.seq, f ? f.fd : -1, f ? f.offset : 0, f ? f.length : 0, flags, r.data);
}
export function readReply(m: Message): ReplyMessage {
  const r: ReplyMessage = {
    session: m.a,
    seq: m.b,
    data: m.payload,
    partial: (m.f & REPLY_PARTIAL) !== 0,
    close: (m.f & REPLY_CLOSE) !== 0,
  };
  if (m.c >= 0) r.file = { fd: m.c, offset: m.d, length: m.e };
  return r;
}
