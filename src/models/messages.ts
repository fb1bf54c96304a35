/**
 * The messages a model's threads exchange through Channels (channel.ts): numbers in the
 * header fields, bytes in the payload, nothing cloned.
 */
export const MSG = {
  /** To a reactor: adopt connection `a` (an fd accepted by the main reactor). */
  NEW_FD: 1,
  /** To a reactor or a pool worker: finish and exit. */
  STOP: 2,
  /** To a pool worker: handle the payload for reactor `a`, session `b`, request `c`. */
  REQUEST: 3,
  /** To a reactor: the reply for session `a`, request `b`; file fd `c` (-1 none), offset `d`, length `e`; `f` = REPLY_CLOSE. */
  REPLY: 4,
  /**
   * To a reactor: the next chunk of the body of session `a`'s reply `b` (one REPLY with
   * REPLY_BODY came first); `c` the pool thread, `d` its credit slot (body-feed.ts); `f` =
   * BODY_END or BODY_ERROR for the last message.
   */
  BODY: 5,
} as const;

/** The reply has a body: BODY messages follow. */
export const REPLY_BODY = 4;
export const BODY_END = 1;
export const BODY_ERROR = 2;

export const REPLY_CLOSE = 1;
/** More of this reply's bytes follow in another REPLY message (a reply larger than CHUNK). */
export const REPLY_PARTIAL = 2;

/** Channel capacity, and the largest piece of a reply or request that travels as one message. */
export const CHANNEL_BYTES = 4 << 20;
export const CHUNK = 1 << 20;
