/**
 * The layout of an HTTP frame: what http-codec.ts hands a handler for one request. A frame
 * is a 16-byte prefix the handler reads instead of re-parsing, then the raw head (request
 * line and header fields), then the body. The prefix, little-endian:
 *
 *   byte 0       method code (`Method`)
 *   byte 1       flags (FLAG_KEEP_ALIVE, FLAG_HTTP10)
 *   bytes 2-3    length of the request target
 *   bytes 4-7    length of the head
 *   bytes 8-11   length of the body
 *   bytes 12-13  where the request target starts, counted from the head's first byte
 *   bytes 14-15  zero
 *
 * `writeFramePrefix` is its one writer and the `frame*` functions its readers: nothing else
 * reads the prefix by offset.
 */
import { getU32, putU32 } from './bytes.js';

export const enum Method {
  Other = 0,
  Get = 1,
  Head = 2,
  Post = 3,
  /**
   * A request whose Expect field asks for something other than 100-continue: answered 417
   * without being handled (see codecReply). The frame is its prefix alone.
   */
  ExpectationFailed = 254,
  /** Not a request: the codec asks for `100 Continue` to be written (see CONTINUE). */
  Continue = 255,
}
export const FLAG_KEEP_ALIVE = 1;
export const FLAG_HTTP10 = 2;
/** Bytes before the head. */
export const PREFIX = 16;

/** What the prefix records about one request. */
export interface FramePrefix {
  method: Method;
  flags: number;
  /** Where the request target starts, counted from the head's first byte (below 64 KiB). */
  targetStart: number;
  /** The request target's length (below 64 KiB). */
  targetLen: number;
  headLen: number;
  bodyLen: number;
}

/** Writes `h` into the first PREFIX bytes of `frame`. */
export function writeFramePrefix(frame: Uint8Array, h: FramePrefix): void {
  frame[0] = h.method;
  frame[1] = h.flags;
  frame[2] = h.targetLen & 0xff;
  frame[3] = h.targetLen >>> 8;
  putU32(frame, 4, h.headLen);
  putU32(frame, 8, h.bodyLen);
  frame[12] = h.targetStart & 0xff;
  frame[13] = h.targetStart >>> 8;
  frame[14] = frame[15] = 0;
}

export function frameMethod(frame: Uint8Array): Method {
  return (frame[0] ?? Method.Other) as Method;
}
export function frameFlags(frame: Uint8Array): number {
  return frame[1] ?? 0;
}
/** The index in `frame` of the request target's first byte. */
export function frameTargetStart(frame: Uint8Array): number {
  return PREFIX + ((frame[12] ?? 0) | ((frame[13] ?? 0) << 8));
}
export function frameTargetLength(frame: Uint8Array): number {
  return (frame[2] ?? 0) | ((frame[3] ?? 0) << 8);
}
/** The request target's bytes (a view into `frame`). */
export function frameTarget(frame: Uint8Array): Uint8Array {
  const at = frameTargetStart(frame);
  return frame.subarray(at, at + frameTargetLength(frame));
}
/** The index in `frame` just past the head: where the body starts. */
export function frameHeadEnd(frame: Uint8Array): number {
  return PREFIX + getU32(frame, 4);
}
/** The body's bytes (a view into `frame`). */
export function frameBody(frame: Uint8Array): Uint8Array {
  return frame.subarray(frameHeadEnd(frame));
}
