/**
 * The chunked transfer coding of a request body (RFC 9112 section 7.1), decoded as it
 * arrives: size lines in hex (chunk extensions checked and ignored), data, CRLF, a
 * zero-size last chunk, then trailer fields (discarded) and the blank line. The decoder is
 * resumable: it consumes whatever part of the input it can and keeps its place for the next
 * push, so a body trickled byte by byte costs a step per byte, never a rescan. Every
 * malformed size line is refused (a smuggling vector when two parsers disagree): no digits,
 * a bare CR, control bytes, whitespace after the size without an extension, extensions not
 * of RFC 9112's grammar, a size of 2^53 or more (past the integers a double holds exactly),
 * missing CRLF after the data. Every line of the coding ends with CRLF, as RFC 9112 7.1 writes it and as
 * every line of the head does: a bare LF is refused, since parsers that end a chunk line at
 * different bytes frame different bodies. Leading zeros are digits like any other, but they
 * and the extensions of a body's size lines count against one bound (MAX_OVERHEAD), as the
 * trailers count against maxTrailer and the data maxBody.
 */

const LF = 10;
const CR = 13;
const HT = 9;
const SP = 32;

/** Longest size line (with extensions) or trailer section accepted, in bytes. */
const MAX_LINE = 4096;
/**
 * Bytes of a body's size lines beyond the digits of their sizes (leading zeros, chunk
 * extensions), all lines together: past it the request is a 413. Without a bound a client
 * could send any amount within one request (a 4 KiB extension per one-byte chunk), which
 * maxBody, counting data only, would never stop.
 */
export const MAX_OVERHEAD = 16 << 10;

const enum State {
  Size,
  Data,
  DataEnd,
  Trailer,
  Done,
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

/** One request body's decoding state (see the file comment). */
export class ChunkedDecoder {
  #state = State.Size;
  #remaining = 0;
  #trailerBytes = 0;
  #overhead = 0;
  /** The body decoded so far: #data[0, #length), grown by doubling as bytes arrive. */
  #data = new Uint8Array(0);
  #length = 0;

  constructor(
    readonly maxBody: number,
    readonly maxTrailer: number,
  ) {}

  get done(): boolean {
    return this.#state === State.Done;
  }

  /** The decoded body so far (all of it once done): a view of the decoder's buffer. */
  body(): Uint8Array {
    return this.#data.subarray(0, this.#length);
  }

  /**
   * Copies buf[from, to) after the body so far (the chunk is the model's buffer). One
   * buffer rather than a piece per chunk: a body of one-byte chunks would otherwise cost an
   * object per byte, hundreds of times its own size. It grows only as bytes arrive, never
   * to a size merely declared, and never past maxBody.
   */
  #append(buf: Uint8Array, from: number, to: number): void {
    const need = this.#length + (to - from);
    if (need > this.#data.length) {
      const grown = new Uint8Array(Math.min(Math.max(need, 2 * this.#data.length, 256), Math.max(need, this.maxBody)));
      grown.set(this.body());
      this.#data = grown;
    }
    this.#data.set(buf.subarray(from, to), this.#length);
    this.#length = need;
  }

  get length(): number {
    return this.#length;
  }

  /** Decodes from buf[i]: returns where it stopped (the end when it needs more), or -status. */
  feed(buf: Uint8Array, i: number): number {
    while (i < buf.length && this.#state !== State.Done) {
      const next = this.#step(buf, i);
      if (next < 0) return next;
      if (next === i) break; // needs more bytes
      i = next;
    }
    return i;
  }

  #step(buf: Uint8Array, i: number): number {
    switch (this.#state) {
      case State.Size:
        return this.#size(buf, i);
      case State.Data: {
        const n = Math.min(this.#remaining, buf.length - i);
        this.#append(buf, i, i + n);
        this.#remaining -= n;
        if (this.#remaining === 0) this.#state = State.DataEnd;
        return i + n;
      }
      case State.DataEnd: {
        const end = lineBreak(buf, i);
        if (end === 0) return i;
        if (end < 0) return -400;
        this.#state = State.Size;
        return end;
      }
      default:
        return this.#trailer(buf, i);
    }
  }

  /** chunk-size [ chunk-ext ] CRLF */
  #size(buf: Uint8Array, i: number): number {
    const nl = buf.indexOf(LF, i);
    if (nl < 0) return buf.length - i > MAX_LINE ? -400 : i;
    if (nl - i > MAX_LINE) return -400;
    if (nl === i || buf[nl - 1] !== CR) return -400; // a bare LF
    const stop = nl - 1;
    let size = 0;
    let k = i;
    let zeros = 0; // leading ones
    for (; k < stop; k++) {
      const d = hexValue(buf[k]!);
      if (d < 0) break;
      if (size === 0 && d === 0) zeros++;
      size = size * 16 + d;
    }
    // 1*HEXDIG, leading zeros included: a size of 2^53 or more only ever grows, and is refused below
    if (k === i) return -400;
    // What the line holds beyond its size's own digits (leading zeros, extensions) counts
    // against MAX_OVERHEAD, or one request could stream gigabytes past maxBody that way.
    this.#overhead += stop - i - (k - i - zeros || 1);
    if (this.#overhead > MAX_OVERHEAD) return -413;
    // Nothing but extensions may follow the digits, not even whitespace alone.
    if (k < stop && !extensions(buf, k, stop)) return -400;
    if (size === 0) {
      this.#state = State.Trailer;
    } else {
      // A size that cannot be held exactly is no size (overflow: 400), one past the limit a 413
      if (size > Number.MAX_SAFE_INTEGER) return -400;
      if (this.#length + size > this.maxBody) return -413;
      this.#remaining = size;
      this.#state = State.Data;
    }
    return nl + 1;
  }

  /** *( field-line CRLF ) CRLF: fields are checked for shape and dropped. */
  #trailer(buf: Uint8Array, i: number): number {
    const nl = buf.indexOf(LF, i);
    if (nl < 0) return this.#trailerBytes + (buf.length - i) > this.maxTrailer ? -431 : i;
    this.#trailerBytes += nl + 1 - i;
    if (this.#trailerBytes > this.maxTrailer) return -431;
    if (nl === i || buf[nl - 1] !== CR) return -400; // a bare LF
    const stop = nl - 1;
    if (stop === i) {
      this.#state = State.Done;
      return nl + 1;
    }
    const colon = buf.indexOf(58, i);
    if (colon <= i || colon > stop) return -400;
    for (let k = i; k < stop; k++) if (!printable(buf[k]!)) return -400;
    return nl + 1;
  }
}

/**
 * RFC 9110 tchar, by byte: what a token is made of (a method, a field name, a chunk
 * extension's name or unquoted value). @internal
 */
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TCHAR[c] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = TCHAR[c + 32] = 1;

const isBws = (c: number | undefined): boolean => c === SP || c === HT;

/**
 * Whether buf[i, stop) is chunk extensions as RFC 9112 7.1.1 writes them:
 * `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`, names and values
 * tokens, a quoted string of qdtext and quoted pairs (RFC 9110 5.6.4). They are ignored,
 * but not guessed at: a line another parser could read otherwise is refused.
 */
function extensions(buf: Uint8Array, i: number, stop: number): boolean {
  while (i < stop) {
    while (isBws(buf[i]) && i < stop) i++;
    if (i >= stop || buf[i] !== 59) return false;
    i++;
    while (isBws(buf[i]) && i < stop) i++;
    const name = i;
    while (i < stop && TCHAR[buf[i]!]) i++;
    if (i === name) return false;
    let j = i;
    while (isBws(buf[j]) && j < stop) j++;
    if (j >= stop || buf[j] !== 61) continue; // no value: ";" (or the end, or junk) next
    i = j + 1;
    while (isBws(buf[i]) && i < stop) i++;
    if (buf[i] !== 34) {
      const value = i;
      while (i < stop && TCHAR[buf[i]!]) i++;
      if (i === value) return false;
      continue;
    }
    for (i++; ; i++) {
      if (i >= stop) return false; // unclosed
      const c = buf[i]!;
      if (c === 34) break;
      if (c === 92) i++; // a quoted pair: any printable byte next
      if (i >= stop || !printable(buf[i]!)) return false;
    }
    i++;
  }
  return true;
}

/** Visible ASCII, space, tab and obs-text; never CR, LF or other controls. */
function printable(b: number): boolean {
  return b === HT || (b >= SP && b !== 127);
}

/** After CRLF at i: its end, 0 when incomplete, -1 when something else (a bare LF too) is there. */
function lineBreak(buf: Uint8Array, i: number): number {
  if (buf[i] !== CR) return -1;
  if (i + 1 >= buf.length) return 0;
  return buf[i + 1] === LF ? i + 2 : -1;
}
