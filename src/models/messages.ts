/**
 * The messages a model's threads exchange through Channels (channel.ts): numbers in the
 * header fields, bytes in the payload, nothing cloned. Each kind has one writer (`write*`,
 * false when the channel is full: the caller keeps the message and retries) and one reader
 * (`read*`); they alone know which of the channel's numeric slots carries which field.
 */
import { close } from '../sys/socket.js';
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
  /** To a reactor: the next chunk of a reply's streamed body (after its REPLY said `body`). */
  BODY: 5,
  /** To a reactor: the server closes gracefully; answer what was asked, then close each connection. */
  DRAIN: 6,
} as const;

/** Channel capacity, and the largest piece of a reply or request that travels as one message. */
export const CHANNEL_BYTES = 4 << 20;
export const CHUNK = 1 << 20;

// REPLY's flag bits
const REPLY_CLOSE = 1;
const REPLY_PARTIAL = 2;
const REPLY_BODY = 4;
// BODY's flag bits
const BODY_END = 1;
const BODY_ERROR = 2;

/** `ticket`: what Stats.admit gave the connection when the sender admitted it (0: not admitted yet, or no ticket). */
export function writeNewFd(ch: Channel, fd: number, ticket = 0): boolean {
  return ch.push(MSG.NEW_FD, fd, ticket);
}
/** The connection a NEW_FD message hands over. */
export function readNewFd(m: Message): number {
  return m.a;
}
/** The ticket of the connection a NEW_FD message hands over (writeNewFd). */
export function readNewFdTicket(m: Message): number {
  return m.b;
}

/**
 * Closes the fds in what is left in `ch` once its reader has ended: the connections of NEW_FD
 * messages nobody adopted (a reactor terminate()d while user code blocked it), the files of
 * replies nobody sent. Only when no thread reads `ch` any more: its messages are taken.
 */
export function closeUnread(ch: Channel, dropped?: (ticket: number) => void): void {
  const m = {} as Message;
  while (ch.pop(m)) {
    if (m.tag === MSG.NEW_FD) {
      close(readNewFd(m));
      dropped?.(readNewFdTicket(m)); // a connection admitted by the sender gives its slots back
    } else if (m.tag === MSG.REPLY && m.c >= 0) close(m.c);
  }
}

/**
 * Deals `fds` round-robin to `channels` as NEW_FD messages (without a ticket: each receiver
 * judges the limits as it adopts one, then calls `handing.handed()`). A channel is full only
 * when its reader is stuck; with every one full, a connection is shed (closed unread), as the
 * main reactor sheds it.
 */
export function dealNewFds(fds: number[], channels: Channel[], handing: { handing(n: number): void }): void {
  let next = 0;
  for (const fd of fds) {
    let dealt = false;
    handing.handing(1); // before the receiver can see it
    for (let k = 0; k < channels.length && !dealt; k++) {
      dealt = writeNewFd(channels[(next + k) % channels.length]!, fd);
      if (dealt) next = (next + k + 1) % channels.length;
    }
    if (dealt) continue;
    handing.handing(-1);
    close(fd);
  }
}

export function writeStop(ch: Channel): boolean {
  return ch.push(MSG.STOP);
}

export function writeDrain(ch: Channel): boolean {
  return ch.push(MSG.DRAIN);
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
  /** A streamed body follows in BODY messages (only on the last piece). */
  body?: boolean;
}
export function writeReply(ch: Channel, r: ReplyMessage): boolean {
  const flags = (r.partial ? REPLY_PARTIAL : 0) | (r.close ? REPLY_CLOSE : 0) | (r.body ? REPLY_BODY : 0);
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
  if (m.f & REPLY_BODY) r.body = true;
  return r;
}

/**
 * A chunk of the streamed body of request `seq`'s reply, from pool thread `pool`, under
 * its credit slot `slot` (body-feed.ts); `last` on the final message (which may be empty).
 */
export interface BodyMessage {
  session: number;
  seq: number;
  pool: number;
  slot: number;
  /** Which use of the slot (body-feed.ts): a stop names it. */
  gen: number;
  /** The chunk: copied into the channel by the writer; a view reused by the next pop for the reader. */
  data: Uint8Array;
  last: 'end' | 'error' | false;
}
export function writeBody(ch: Channel, b: BodyMessage): boolean {
  const flags = b.last === 'end' ? BODY_END : b.last === 'error' ? BODY_ERROR : 0;
  return ch.push(MSG.BODY, b.session, b.seq, b.pool, b.slot, b.gen, flags, b.data);
}
export function readBody(m: Message): BodyMessage {
  const last = m.f & BODY_END ? 'end' : m.f & BODY_ERROR ? 'error' : false;
  return { session: m.a, seq: m.b, pool: m.c, slot: m.d, gen: m.e, data: m.payload, last };
}
