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
} as const;

export const REPLY_CLOSE = 1;
/** More of this reply's bytes follow in another REPLY message (a reply larger than CHUNK). */
export const REPLY_PARTIAL = 2;

/** Channel capacity, and the largest piece of a reply or request that travels as one message. */
export const CHANNEL_BYTES = 4 << 20;
export const CHUNK = 1 << 20;
