/**
 * Byte helpers the protocols share: an append buffer that grows only as bytes arrive (never
 * from a length a client declared), ASCII comparisons and decimal formatting without
 * building strings on the hot path.
 *
 * Reading a byte: the parsers here write `buf[i] ?? -1` where `i` may lie past the end of
 * what has arrived — -1 is no byte, so it matches no character test and ends every scan.
 */
import { markAsUntransferable } from 'node:worker_threads';

export const EMPTY: Uint8Array = new Uint8Array(0);
export const encoder = new TextEncoder();

/**
 * A copy of `b`, a Buffer for a Buffer. Not `b.slice()`: Buffer's slice is a view
 * (Buffer#subarray), so a Buffer a codec handed out as a view of a lent chunk, or a view of
 * a read buffer the kernel keeps receiving into, would still share that memory.
 */
export function copyOf(b: Uint8Array): Uint8Array {
  return Buffer.isBuffer(b) ? Buffer.from(b) : b.slice();
}

/** Bytes of an ASCII / UTF-8 string. */
export function ascii(s: string): Uint8Array {
  return encoder.encode(s);
}

/**
 * The unconsumed tail of a connection's input. `view(chunk)` returns what to parse (the
 * chunk itself when nothing is pending: no copy); `keep(bytes)` stores the unparsed rest,
 * copying it when it lies in the chunk, because the model may reuse the chunk it pushed.
 *
 * A codec may hand out views into what `view` returned (frames that are views, until the
 * next push), so `keep` never moves bytes inside its own buffer: a tail already there is
 * only marked, and moved to the front by the next `view`.
 */
export class Pending {
  #buf = EMPTY;
  /** The kept bytes are #buf[#off, #off + #len). */
  #off = 0;
  #len = 0;

  get length(): number {
    return this.#len;
  }

  view(chunk: Uint8Array): Uint8Array {
    // A plain Uint8Array view of a Buffer: its indexOf and subarray are V8 builtins, not
    // Buffer's JavaScript wrappers around C++ calls.
    if (this.#len === 0)
      return chunk instanceof Buffer ? new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length) : chunk;
    const need = this.#len + chunk.length;
    if (need > this.#buf.length) {
      const grown = new Uint8Array(Math.max(need, this.#buf.length * 2));
      grown.set(this.#buf.subarray(this.#off, this.#off + this.#len));
      this.#buf = grown;
    } else if (this.#off > 0) {
      this.#buf.copyWithin(0, this.#off, this.#off + this.#len);
    }
    this.#off = 0;
    this.#buf.set(chunk, this.#len);
    this.#len = need;
    return this.#buf.subarray(0, need);
  }

  /** Keeps `rest` (a tail of the last view, or empty) for the next push. */
  keep(rest: Uint8Array): void {
    const n = rest.length;
    if (n === 0) {
      this.#off = this.#len = 0;
      if (this.#buf.length > 65536) this.#buf = EMPTY; // do not pin a large buffer while idle
    } else if (rest.buffer === this.#buf.buffer) {
      this.#off = rest.byteOffset - this.#buf.byteOffset;
      this.#len = n;
    } else {
      // From the chunk: this buffer holds nothing a frame of this push points into.
      if (n > this.#buf.length) this.#buf = new Uint8Array(Math.max(n, 1024));
      this.#buf.set(rest);
      this.#off = 0;
      this.#len = n;
    }
  }
}

/** Index of byte `b` in `buf` from `from` to `to` (exclusive), or -1. */
export function indexOf(buf: Uint8Array, b: number, from: number, to: number): number {
  const i = buf.indexOf(b, from);
  return i < 0 || i >= to ? -1 : i;
}

/** Writes the decimal digits of a non-negative safe integer at `off`; returns the new offset. */
export function putUint(out: Uint8Array, off: number, n: number): number {
  if (n < 10) {
    out[off] = 48 + n;
    return off + 1;
  }
  let digits = 1;
  for (let t = n; t >= 10; t = Math.floor(t / 10)) digits++;
  for (let i = off + digits - 1; i >= off; i--) {
    out[i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  return off + digits;
}

/** Number of decimal digits of a non-negative safe integer. */
export function uintDigits(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

const SLAB = 64 << 10;
let slab = newSlab();
let slabUsed = 0;

/**
 * A slab the frames of many requests share, marked untransferable as Node marks its Buffer
 * pool: a module handing a frame's `.buffer` in a transfer list (postMessage,
 * structuredClone) gets a copy sent (Node 20) or a DataCloneError (Node 21 on), and the
 * frames of other requests, other connections included, stay readable.
 */
function newSlab(): ArrayBuffer {
  const ab = new ArrayBuffer(SLAB);
  markAsUntransferable(ab);
  return ab;
}

/**
 * A frame buffer of `n` bytes whose every byte the caller writes, carved from a shared
 * 64 KiB slab (8-byte aligned) the way Node pools small Buffers, but as a plain
 * Uint8Array: several times cheaper than a fresh ArrayBuffer (a malloc each) or
 * Buffer.allocUnsafe. Such frames share an ArrayBuffer, untransferable; one detached all
 * the same (ArrayBuffer.prototype.transfer) is left for a new one, not failed on.
 */
export function allocFrame(n: number): Uint8Array {
  if (n > SLAB >>> 3) return new Uint8Array(n);
  if (slabUsed + n > SLAB || slab.byteLength === 0) {
    slab = newSlab();
    slabUsed = 0;
  }
  const f = new Uint8Array(slab, slabUsed, n);
  slabUsed = (slabUsed + n + 7) & ~7;
  return f;
}

/** Copies src[from, to) to dst at `at`; a loop for the short copies a request is made of. */
export function copyBytes(dst: Uint8Array, at: number, src: Uint8Array, from: number, to: number): void {
  if (to - from > 64) {
    dst.set(src.subarray(from, to), at);
    return;
  }
  for (let i = from; i < to; i++) dst[at++] = src[i] ?? 0; // i < to <= src.length
}

/** The value of a hexadecimal digit, or -1 for any other byte (or none). */
export function hex(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

export function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = v >>> 24;
}

export function getU32(b: Uint8Array, at: number): number {
  const b0 = b[at];
  const b1 = b[at + 1];
  const b2 = b[at + 2];
  const b3 = b[at + 3];
  if (b0 === undefined || b1 === undefined || b2 === undefined || b3 === undefined)
    throw new RangeError(`no u32 at ${at} of ${b.length} bytes`); // a frame rawio built is never short
  return (b0 | (b1 << 8) | (b2 << 16)) + b3 * 0x1000000;
}

/**
 * A turn of the thread's event loop (setImmediate): what a loop that would otherwise run on
 * microtasks alone awaits now and then, so that the thread's I/O and timers run between.
 */
export function loopTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Empty pieces of a body in a row after which its thread's event loop gets a turn. */
const EMPTY_RUN = 64;

/**
 * A body's empty pieces in a row. An empty piece takes no output, so no backpressure ever
 * stops its producer: every EMPTY_RUN of them in a row the sender awaits loopTurn(), or a
 * producer yielding nothing else would hold every other client of its thread (and the close
 * of this one) for ever.
 */
export class EmptyRun {
  #n = 0;

  /** Counts an empty piece: true when the thread's loop is due a turn. */
  empty(): boolean {
    if (++this.#n < EMPTY_RUN) return false;
    this.#n = 0;
    return true;
  }

  /** A piece with bytes ends the run. */
  reset(): void {
    this.#n = 0;
  }
}
