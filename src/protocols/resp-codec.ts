/**
 * RESP request framing (the Redis protocol spec, "Sending commands to a Redis server"):
 * multibulk commands (`*<argc>\r\n` then `$<len>\r\n<bytes>\r\n` per argument) and inline
 * commands (one line of space-separated, optionally quoted, arguments), pipelined.
 *
 * A frame is the command normalised to argc (u32 LE) followed by each argument as len
 * (u32 LE) + bytes, so the handler never re-parses RESP. The parser is resumable: a large
 * argument arriving in many chunks is scanned once. Limits are checked on the declared
 * lengths before any byte is buffered, and the buffer only grows as bytes arrive, so a
 * hostile length costs nothing; past a limit the codec answers a protocol error and the
 * connection is closed, as Redis does.
 */
import type { Codec, PushResult, Reply } from './protocol.js';
import { Pending, allocFrame, ascii, copyBytes, getU32, hex, indexOf, putU32 } from './bytes.js';

/** Limits of {@link RespCodec} (and `RespOptions.limits`). */
export interface RespLimits {
  /** Largest bulk argument (Redis's proto-max-bulk-len); default 8 MiB. */
  maxBulk?: number;
  /** Most arguments in one command; default 1 048 576 (Redis's limit). */
  maxArgs?: number;
  /** Largest command in bytes, all arguments together; default 16 MiB. */
  maxRequest?: number;
  /** Longest inline command line; default 64 KiB (Redis's PROTO_INLINE_MAX_SIZE). */
  maxInline?: number;
}

const CR = 13;
const LF = 10;

function protocolError(msg: string): Reply {
  return { data: ascii(`-ERR Protocol error: ${msg}\r\n`), close: true };
}

/** Parses the decimal integer in buf[from, to); NaN when it is not one (or too long). */
function parseInt10(buf: Uint8Array, from: number, to: number): number {
  let i = from;
  let neg = false;
  if (buf[i] === 45) {
    neg = true;
    i++;
  }
  if (i === to || to - i > 15) return NaN;
  let n = 0;
  for (; i < to; i++) {
    const c = (buf[i] ?? -1) - 48;
    if (c < 0 || c > 9) return NaN;
    n = n * 10 + c;
  }
  return neg ? -n : n;
}

/** Builds a frame from argument slices of `buf` (start, len pairs relative to `base`). */
export function buildFrame(buf: Uint8Array, base: number, args: number[]): Uint8Array {
  const argc = args.length >> 1;
  let size = 4;
  for (let i = 0; i < argc; i++) size += 4 + (args[2 * i + 1] ?? 0);
  const f = allocFrame(size);
  putU32(f, 0, argc);
  let o = 4;
  for (let i = 0; i < argc; i++) {
    const from = base + (args[2 * i] ?? 0);
    const len = args[2 * i + 1] ?? 0;
    putU32(f, o, len);
    copyBytes(f, o + 4, buf, from, from + len);
    o += 4 + len;
  }
  return f;
}

/** The arguments of a frame, as views into it. */
export function frameArgs(frame: Uint8Array): Uint8Array[] {
  const argc = getU32(frame, 0);
  const out = new Array<Uint8Array>(argc);
  let o = 4;
  for (let i = 0; i < argc; i++) {
    const len = getU32(frame, o);
    out[i] = frame.subarray(o + 4, o + 4 + len);
    o += 4 + len;
  }
  return out;
}

/** Splits an inline command line the way redis-cli's users expect (sdssplitargs rules). */
export function splitInline(line: Uint8Array): Uint8Array[] | null {
  const out: Uint8Array[] = [];
  let i = 0;
  const n = line.length;
  const isSpace = (c: number | undefined): boolean =>
    c === 32 || c === 9 || c === 10 || c === 13 || c === 11 || c === 12;
  while (true) {
    while (i < n && isSpace(line[i])) i++;
    if (i === n) return out;
    if (line[i] !== 34 && line[i] !== 39) {
      // the common case, a plain word: a view (buildFrame copies it)
      const from = i;
      while (i < n && !isSpace(line[i])) i++;
      out.push(line.subarray(from, i));
      continue;
    }
    const arg: number[] = [];
    const q = line[i++];
    for (;;) {
      const c = line[i];
      if (c === undefined) return null; // unbalanced quotes: the line ended inside them
      if (c === q) {
        i++;
        if (i < n && !isSpace(line[i])) return null; // closing quote must end the argument
        break;
      }
      if (q === 34 && c === 92 && i + 1 < n) {
        i += unescape(line, i, arg);
        continue;
      }
      if (q === 39 && c === 92 && line[i + 1] === 39) {
        arg.push(39);
        i += 2;
        continue;
      }
      arg.push(c);
      i++;
    }
    out.push(Uint8Array.from(arg));
  }
}

/** Decodes the escape at line[i] (a backslash) into arg; returns the bytes consumed. */
function unescape(line: Uint8Array, i: number, arg: number[]): number {
  const c = line[i + 1] ?? -1;
  if (c === 120 && i + 3 < line.length && hex(line[i + 2]) >= 0 && hex(line[i + 3]) >= 0) {
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
  // The multibulk command being parsed: -1 before its header; argument (start, len) pairs
  // relative to the command's start; where the next argument header starts.
  #argc = -1;
  #args: number[] = [];
  #scan = 0;
  #dead = false;

  constructor(limits: RespLimits = {}) {
    this.#maxBulk = limits.maxBulk ?? 8 << 20;
    this.#maxArgs = limits.maxArgs ?? 1 << 20;
    this.#maxRequest = limits.maxRequest ?? 16 << 20;
    this.#maxInline = limits.maxInline ?? 64 << 10;
  }

  push(chunk: Uint8Array): PushResult {
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

  /** The end of the command at `start` (>= 0), -1 if incomplete, or an error reply. */
  #inline(buf: Uint8Array, start: number, frames: Uint8Array[]): number | Reply {
    const nl = indexOf(buf, LF, start, buf.length);
    if (nl < 0) return buf.length - start > this.#maxInline ? protocolError('too big inline request') : -1;
    if (nl - start > this.#maxInline) return protocolError('too big inline request');
    const args = splitInline(buf.subarray(start, nl));
    if (args === null) return protocolError('unbalanced quotes in request');
    if (args.length > 0) {
      const pairs: number[] = [];
      let size = 0;
      for (const a of args) size += a.length;
      const joined = new Uint8Array(size);
      size = 0;
      for (const a of args) {
        joined.set(a, size);
        pairs.push(size, a.length);
        size += a.length;
      }
      frames.push(buildFrame(joined, 0, pairs));
    }
    return nl + 1;
  }

  /** Reads a `<prefix><int>\r\n` line at `at`: [value, next offset], -1 if incomplete. */
  #header(buf: Uint8Array, at: number): [number, number] | -1 | null {
    // A loop: the line is short, and a typed array's indexOf is a call into C++.
    const stop = Math.min(buf.length, at + 32);
    let nl = at;
    while (nl < stop && buf[nl] !== LF) nl++;
    if (nl === stop) nl = -1;
    if (nl < 0) return buf.length - at >= 32 ? null : -1;
    if (buf[nl - 1] !== CR) return null;
    return [parseInt10(buf, at + 1, nl - 1), nl + 1];
  }

  #multibulk(buf: Uint8Array, start: number, frames: Uint8Array[]): number | Reply {
    if (this.#argc < 0) {
      const h = this.#header(buf, start);
      if (h === -1) return -1;
      if (h === null) return protocolError('too big mbulk count string');
      const [argc, next] = h;
      if (!(argc <= this.#maxArgs)) return protocolError('invalid multibulk length');
      if (argc <= 0) return next; // *0 and *-1 are ignored, as Redis does
      this.#argc = argc;
      this.#scan = next - start;
    }
    while (this.#args.length < this.#argc * 2) {
      const at = start + this.#scan;
      const b = buf[at];
      if (b === undefined) return -1; // not arrived yet
      if (b !== 36) return protocolError(`expected '$', got '${String.fromCharCode(b)}'`);
      const h = this.#header(buf, at);
      if (h === -1) return -1;
      if (h === null || !(h[0] >= 0 && h[0] <= this.#maxBulk)) return protocolError('invalid bulk length');
      const [len, data] = h;
      if (data - start + len + 2 > this.#maxRequest) return protocolError('command too large');
      if (data + len + 2 > buf.length) return -1;
      if (buf[data + len] !== CR || buf[data + len + 1] !== LF) return protocolError('bulk not followed by CRLF');
      this.#args.push(data - start, len);
      this.#scan = data + len + 2 - start;
    }
    frames.push(buildFrame(buf, start, this.#args));
    const end = start + this.#scan;
    this.#argc = -1;
    this.#args = [];
    this.#scan = 0;
    return end;
  }
}
