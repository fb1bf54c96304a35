/**
 * RESP request framing (the Redis protocol spec, "Sending commands to a Redis server"):
 * multibulk commands (`*<argc>\r\n` then `$<len>\r\n<bytes>\r\n` per argument) and inline
 * commands (one line of space-separated, optionally quoted, arguments), pipelined.
 *
 * A frame is the command as multibulk RESP, checked: `*<argc>\r\n` then `$<len>\r\n<bytes>\r\n`
 * per argument, with every length and CRLF already verified, so the handler walks it without
 * checks (frameArgs). A multibulk command is framed as a view of the bytes pushed, with no
 * copy: it is valid until the model reuses the chunk it pushed or pushes again (see Codec in
 * protocol.ts); an inline command is rebuilt as multibulk. A command that arrived whole is
 * read in one pass; otherwise the parser is resumable: a large argument arriving in many
 * chunks is scanned once. Limits are checked on the declared
 * lengths before any byte is buffered, and the buffer only grows as bytes arrive, so a
 * hostile length costs nothing; past a limit the codec answers a protocol error and the
 * connection is closed, as Redis does.
 */
import type { Codec, PushResult, Reply } from './protocol.js';
import { liveBytes } from '../sys/validate.js';
import { Pending, allocFrame, ascii, copyBytes, hex, indexOf, putUint, uintDigits } from './bytes.js';

/** Limits of {@link RespCodec} (and `RespOptions.limits`). */
export interface RespLimits {
  /** Largest bulk argument (Redis's proto-max-bulk-len); default 8 MiB. */
  maxBulk?: number;
  /** Most arguments in one command; default 1 048 576 (Redis 7 takes up to 2^31 - 1). */
  maxArgs?: number;
  /** Largest command in bytes, all arguments together (an inline line, its LF included); default 16 MiB. */
  maxRequest?: number;
  /** Longest inline command line, within maxRequest too; default 64 KiB (Redis's PROTO_INLINE_MAX_SIZE). */
  maxInline?: number;
}

const CR = 13;
const LF = 10;

function protocolError(msg: string): Reply {
  return { data: ascii(`-ERR Protocol error: ${msg}\r\n`), close: true };
}

/**
 * Parses the decimal integer in buf[from, to) by Redis's rule for a length (its string2ll):
 * NaN when it is not one, has a leading zero or is '-0' (as Redis refuses them), or is too long.
 */
function parseInt10(buf: Uint8Array, from: number, to: number): number {
  let i = from;
  let neg = false;
  if (buf[i] === 45) {
    neg = true;
    i++;
  }
  if (i === to || to - i > 15) return NaN;
  if (buf[i] === 48 && (neg || to - i > 1)) return NaN;
  let n = 0;
  for (; i < to; i++) {
    const c = (buf[i] ?? -1) - 48;
    if (c < 0 || c > 9) return NaN;
    n = n * 10 + c;
  }
  return neg ? -n : n;
}

/** A multibulk frame of `args` (an inline command's words): a new buffer the frame owns. */
export function multibulkFrame(args: Uint8Array[]): Uint8Array {
  let size = 3 + uintDigits(args.length);
  for (const a of args) size += 5 + uintDigits(a.length) + a.length;
  const f = allocFrame(size);
  let o = putLine(f, 0, 42, args.length);
  for (const a of args) {
    o = putLine(f, o, 36, a.length);
    copyBytes(f, o, a, 0, a.length);
    o += a.length;
    f[o++] = CR;
    f[o++] = LF;
  }
  return f;
}

/** Writes `<prefix><n>\r\n` at `o`; returns the offset after it. */
function putLine(f: Uint8Array, o: number, prefix: number, n: number): number {
  f[o] = prefix;
  o = putUint(f, o + 1, n);
  f[o] = CR;
  f[o + 1] = LF;
  return o + 2;
}

/** Reads the decimal at `at` (checked by the codec: digits only), up to its CR, into `line`: [value, offset after the LF]. */
function readLine(f: Uint8Array, at: number, line: Int32Array): void {
  let n = 0;
  let c = f[at] ?? CR;
  while (c !== CR) {
    n = n * 10 + c - 48;
    c = f[++at] ?? CR;
  }
  line[0] = n;
  line[1] = at + 2;
}
const LINE = new Int32Array(2);

/** The arguments of a frame (a checked multibulk command), as views into it. */
export function frameArgs(frame: Uint8Array): Uint8Array[] {
  readLine(frame, 1, LINE);
  const argc = LINE[0]!;
  let o = LINE[1]!;
  const out = new Array<Uint8Array>(argc);
  for (let i = 0; i < argc; i++) {
    readLine(frame, o + 1, LINE);
    const from = LINE[1]!;
    out[i] = frame.subarray(from, from + LINE[0]!);
    o = from + LINE[0]! + 2;
  }
  return out;
}

/**
 * The bounds of a frame's arguments, without a view each: returns argc and writes argument
 * i's bytes as [at[2i], at[2i + 1]); -1 (nothing written) when `at` cannot hold them all.
 * A bulk argument's `$<len>\r\n` header starts two bytes after the previous one ends.
 */
export function frameBounds(frame: Uint8Array, at: Int32Array): number {
  readLine(frame, 1, LINE);
  const argc = LINE[0]!;
  if (2 * argc > at.length) return -1;
  let o = LINE[1]!;
  for (let i = 0; i < 2 * argc; i += 2) {
    readLine(frame, o + 1, LINE);
    const from = LINE[1]!;
    o = from + LINE[0]!;
    at[i] = from;
    at[i + 1] = o;
    o += 2;
  }
  return argc;
}

/** Whether c separates inline arguments (C's isspace: space, \t, \n, \v, \f, \r). */
const isSpace = (c: number | undefined): boolean => c === 32 || (c !== undefined && c >= 9 && c <= 13);
/** Whether c ends an unquoted argument: space, \t, \n, \r (not \v or \f, which belong to it), or the line's end. */
const endsWord = (c: number | undefined): boolean => c === 32 || c === 9 || c === 10 || c === 13 || c === undefined;

/**
 * Splits an inline command line (without its LF) into arguments as Redis does (its
 * sdssplitargs rules): one CR before the LF is dropped; arguments are separated by
 * whitespace; a double or single quote opens a quoted part anywhere in an argument, which
 * its closing quote ends (`a"b c"` is one argument, `ab c`); a double-quoted part takes the escapes
 * \xHH, \n, \r, \t, \b, \a and \<any> (that byte), a single-quoted one only \'; a closing
 * quote must end its argument (whitespace or the line's end after it). A NUL byte is a byte
 * of its argument (Redis stops reading a connection at one). Null for quotes left open or
 * closed mid-argument (Redis's "unbalanced quotes in request").
 */
export function splitInline(line: Uint8Array): Uint8Array[] | null {
  const out: Uint8Array[] = [];
  let n = line.length;
  if (n > 0 && line[n - 1] === CR) n--;
  let i = 0;
  for (;;) {
    while (i < n && isSpace(line[i])) i++;
    if (i === n) return out;
    // The common case, a plain word: a view (multibulkFrame copies it).
    const from = i;
    while (i < n && !endsWord(line[i]) && line[i] !== 34 && line[i] !== 39) i++;
    if (i === n || endsWord(line[i])) {
      out.push(line.subarray(from, i));
      continue;
    }
    // A quote within the word: the word is built byte by byte from here.
    const arg: number[] = Array.from(line.subarray(from, i));
    i = quotedWord(line, i, n, arg);
    if (i < 0) return null;
    out.push(Uint8Array.from(arg));
  }
}

/**
 * Reads the rest of an argument from the quote at line[i] (the line ending at n) into arg:
 * the offset after it, or -1 for unbalanced quotes.
 */
function quotedWord(line: Uint8Array, i: number, n: number, arg: number[]): number {
  const q = line[i++]; // the quote: its closing one ends the argument
  for (;;) {
    const c = i < n ? line[i] : undefined;
    if (c === undefined) return -1; // the line ended inside quotes
    if (c === q) {
      if (i + 1 < n && !isSpace(line[i + 1])) return -1; // a closing quote must end the argument
      return i + 1;
    }
    if (q === 34 && c === 92 && i + 1 < n) {
      i += unescape(line, i, n, arg);
      continue;
    }
    if (q === 39 && c === 92 && i + 1 < n && line[i + 1] === 39) {
      arg.push(39);
      i += 2;
      continue;
    }
    arg.push(c);
    i++;
  }
}

/** Decodes the escape at line[i] (a backslash, with a byte after it before n) into arg; returns the bytes consumed. */
function unescape(line: Uint8Array, i: number, n: number, arg: number[]): number {
  const c = line[i + 1] ?? -1;
  if (c === 120 && i + 3 < n && hex(line[i + 2]) >= 0 && hex(line[i + 3]) >= 0) {
    arg.push(hex(line[i + 2]) * 16 + hex(line[i + 3]));
    return 4;
  }
  const map: Record<number, number> = { 110: 10, 114: 13, 116: 9, 98: 8, 97: 7 };
  arg.push(map[c] ?? c);
  return 2;
}

/**
 * RESP request framing: multibulk and inline commands, pipelined. Past a limit, or on
 * malformed input, it yields a `-ERR Protocol error` reply that closes the connection, and
 * ends.
 */
export class RespCodec implements Codec {
  readonly #maxBulk: number;
  readonly #maxArgs: number;
  readonly #maxRequest: number;
  readonly #maxInline: number;
  readonly #pending = new Pending();

  /** Bytes of an unfinished request kept for the next push. */
  get buffered(): number {
    return this.#pending.length;
  }
  // The multibulk command being parsed: -1 before its header; arguments complete; where
  // the next argument header starts, relative to the command's start.
  #argc = -1;
  #parsed = 0;
  #scan = 0;
  // What #header read: the line's integer, and the offset after its LF.
  #value = 0;
  #next = 0;
  #dead = false;
  /** Bytes of the inline line at the start of the pending input already searched for its LF. */
  #lineScanned = 0;

  constructor(limits: RespLimits = {}) {
    this.#maxBulk = limits.maxBulk ?? 8 << 20;
    this.#maxArgs = limits.maxArgs ?? 1 << 20;
    this.#maxRequest = limits.maxRequest ?? 16 << 20;
    this.#maxInline = limits.maxInline ?? 64 << 10;
  }

  push(chunk: Uint8Array): PushResult {
    if (chunk.length === 0) liveBytes(chunk, 'chunk'); // a detached chunk is no bytes received: a TypeError
    const frames: Uint8Array[] = [];
    if (this.#dead) return { frames };
    const buf = this.#pending.view(chunk);
    let start = 0;
    while (start < buf.length) {
      const r = buf[start] === 42 ? this.#multibulk(buf, start, frames) : this.#inline(buf, start, frames);
      if (typeof r !== 'number') {
        this.#dead = true;
        this.#pending.keep(buf.subarray(0, 0));
        return { frames, error: r };
      }
      if (r < 0) break; // incomplete
      start = r;
    }
    this.#pending.keep(buf.subarray(start));
    return { frames };
  }

  /**
   * The end of the command at `start` (>= 0), -1 if incomplete, or an error reply. A line
   * is a command like any other: its bytes, LF included, count against maxRequest as a
   * multibulk command's do (same reply), checked as they arrive, so a line that never ends
   * is refused once it has passed the limit rather than buffered up to maxInline. An
   * incomplete line is kept whole for the next push, which starts at it (offset 0), so
   * #lineScanned stays relative to the line's start.
   */
  #inline(buf: Uint8Array, start: number, frames: Uint8Array[]): number | Reply {
    // The search resumes where the last push's stopped: a line trickled a byte at a time
    // costs a step per byte, not a rescan of the line so far.
    const nl = indexOf(buf, LF, start + this.#lineScanned, buf.length);
    this.#lineScanned = nl < 0 ? buf.length - start : 0;
    const bytes = nl < 0 ? buf.length - start : nl + 1 - start;
    const content = nl < 0 ? bytes : bytes - 1;
    // The limit the line's bytes cross first decides the reply, so a line is answered the
    // same whole or byte by byte: maxRequest at byte maxRequest + 1 (its LF counted),
    // maxInline at content byte maxInline + 1.
    const overRequest = bytes > this.#maxRequest ? this.#maxRequest : Infinity;
    const overInline = content > this.#maxInline ? this.#maxInline : Infinity;
    if (overRequest !== Infinity && overRequest <= overInline) return protocolError('command too large');
    if (overInline !== Infinity) return protocolError('too big inline request');
    if (nl < 0) return -1;
    const args = splitInline(buf.subarray(start, nl));
    if (args === null) return protocolError('unbalanced quotes in request');
    if (args.length > 0) frames.push(multibulkFrame(args));
    return nl + 1;
  }

  /**
   * Reads a `<prefix><int>\r\n` line at `at` into #value (NaN when no integer ends with its
   * CRLF) and #next: 1, or -1 if incomplete, or 0 if no LF ends it within 32 bytes. (Fields, not a returned pair: it runs for every argument.)
   */
  #header(buf: Uint8Array, at: number): number {
    // A loop: the line is short, and a typed array's indexOf is a call into C++.
    const stop = Math.min(buf.length, at + 32);
    let nl = at;
    while (nl < stop && buf[nl] !== LF) nl++;
    if (nl === stop) return buf.length - at >= 32 ? 0 : -1;
    // A line ended by a bare LF is a malformed number (NaN), not one too long: Redis reads
    // up to the CR, so its digits run into the next line and are no integer.
    this.#value = buf[nl - 1] === CR ? parseInt10(buf, at + 1, nl - 1) : NaN;
    this.#next = nl + 1;
    return 1;
  }

  /**
   * A whole command at `start` in the form clients send (`*<argc>\r\n`, then per argument
   * `$<len>\r\n<bytes>\r\n`, plain digits, every limit kept) read in one pass with no field
   * writes: its end, or -1 for anything else (incomplete, malformed, past a limit), which
   * the general, resumable path then reads from the start as before. Only called between
   * commands, so it leaves no state behind.
   */
  #whole(buf: Uint8Array, start: number): number {
    const n = buf.length;
    let i = start + 1;
    let argc = 0;
    let c = buf[i] ?? 0;
    while (c >= 48 && c <= 57 && i - start < 8) {
      argc = argc * 10 + c - 48;
      c = buf[++i] ?? 0;
    }
    // `*0` and a leading zero are left to the general path, which skips or refuses them.
    if (c !== CR || buf[i + 1] !== LF || i === start + 1 || argc === 0 || argc > this.#maxArgs) return -1;
    if (buf[start + 1] === 48) return -1;
    i += 2;
    const last = start + this.#maxRequest;
    for (let a = 0; a < argc; a++) {
      if (buf[i] !== 36) return -1;
      const at = ++i;
      let len = 0;
      c = buf[i] ?? 0;
      while (c >= 48 && c <= 57 && i - at < 9) {
        len = len * 10 + c - 48;
        c = buf[++i] ?? 0;
      }
      if (c !== CR || buf[i + 1] !== LF || i === at || len > this.#maxBulk || (buf[at] === 48 && i - at > 1)) return -1;
      i += 2 + len;
      if (i + 2 > n || i + 2 > last || buf[i] !== CR || buf[i + 1] !== LF) return -1;
      i += 2;
    }
    return i;
  }

  #multibulk(buf: Uint8Array, start: number, frames: Uint8Array[]): number | Reply {
    if (this.#argc < 0) {
      const end = this.#whole(buf, start);
      if (end > 0) {
        frames.push(buf.subarray(start, end)); // a view: see the file comment
        return end;
      }
      const h = this.#header(buf, start);
      if (h < 0) return -1;
      if (h === 0) return protocolError('too big mbulk count string');
      const argc = this.#value;
      if (!(argc <= this.#maxArgs)) return protocolError('invalid multibulk length');
      if (argc <= 0) return this.#next; // *0 and *-1 are ignored, as Redis does
      this.#argc = argc;
      this.#scan = this.#next - start;
    }
    while (this.#parsed < this.#argc) {
      const at = start + this.#scan;
      const b = buf[at];
      if (b === undefined) return -1; // not arrived yet
      if (b !== 36) return protocolError(`expected '$', got '${String.fromCharCode(b)}'`);
      const h = this.#header(buf, at);
      if (h < 0) return -1;
      const len = this.#value;
      if (h === 0 || !(len >= 0 && len <= this.#maxBulk)) return protocolError('invalid bulk length');
      const data = this.#next;
      if (data - start + len + 2 > this.#maxRequest) return protocolError('command too large');
      if (data + len + 2 > buf.length) return -1;
      if (buf[data + len] !== CR || buf[data + len + 1] !== LF) return protocolError('bulk not followed by CRLF');
      this.#parsed++;
      this.#scan = data + len + 2 - start;
    }
    const end = start + this.#scan;
    frames.push(buf.subarray(start, end)); // a view: see the file comment
    this.#argc = -1;
    this.#parsed = 0;
    this.#scan = 0;
    return end;
  }
}
