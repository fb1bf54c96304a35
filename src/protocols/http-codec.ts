/**
 * HTTP/1.1 request framing (RFC 9112): request line, header fields and a Content-Length
 * body, pipelined, parsed byte by byte without regular expressions or strings. Shared by
 * the `http` and `static` protocols.
 *
 * Each request becomes a frame (its layout and readers in http-frame.ts): a 16-byte prefix,
 * then the raw head, then the body. Framing errors become the error reply RFC 9112 asks
 * for, and the connection closes after it: 400 (malformed, a bare CR or a bare LF — every
 * head line ends with CRLF —, obs-fold, space before a colon, a bad Content-Length or a
 * second one, one too large to hold exactly, Content-Length with Transfer-Encoding,
 * HTTP/1.1 without a Host, two Hosts in any version, a Host value that is no host, a
 * request target of a form its method may not use or an absolute-form one that is no
 * http(s) URI with a host), 413 (body over the limit), 414 (a request line alone over the
 * head limit), 431 (head over the limit), 501 (a transfer coding before `chunked`; one
 * that is not chunked last, or chunked twice, is a 400), 505. A
 * `Transfer-Encoding: chunked` body is decoded (http-chunked.ts) and framed as if it had
 * come with a Content-Length: the frame holds the head as sent and the decoded body.
 */
import type { Codec, PushResult, Reply } from './protocol.js';
import { EMPTY, Pending, allocFrame, ascii, copyBytes } from './bytes.js';
import { httpDate } from './http-date.js';
import { liveBytes } from '../sys/validate.js';
import { ChunkedDecoder, TCHAR } from './http-chunked.js';
import {
  FLAG_HTTP10,
  FLAG_KEEP_ALIVE,
  Method,
  PREFIX,
  frameFlags,
  frameHeadEnd,
  frameMethod,
  writeFramePrefix,
  type FramePrefix,
} from './http-frame.js';

export { FLAG_HTTP10, FLAG_KEEP_ALIVE, Method, PREFIX } from './http-frame.js';
const CONTINUE_FRAME = new Uint8Array(PREFIX);
writeFramePrefix(CONTINUE_FRAME, {
  method: Method.Continue,
  flags: 0,
  targetStart: 0,
  targetLen: 0,
  headLen: 0,
  bodyLen: 0,
});
/** The interim response a Method.Continue frame is answered with. */
export const CONTINUE: { data: Uint8Array } = { data: ascii('HTTP/1.1 100 Continue\r\n\r\n') };

/**
 * The reply to a frame the codec made rather than a request it passes on (its method is
 * CODEC_FRAMES or above): `100 Continue` for a Method.Continue frame, `417 Expectation
 * Failed` (empty, keeping the connection as the request asked) for a
 * Method.ExpectationFailed one. Every protocol built on HttpCodec answers them with it, so
 * every model answers them alike.
 */
export function codecReply(frame: Uint8Array): Reply {
  return frameMethod(frame) === Method.Continue ? CONTINUE : simpleResponse(417, frameFlags(frame));
}

/** The lowest method code of a frame the codec made (see codecReply). */
export const CODEC_FRAMES = Method.ExpectationFailed;

/** Limits of {@link HttpCodec} (and `HttpOptions.limits`). */
export interface HttpLimits {
  /** Request line plus header fields, in bytes; default 8 KiB (431 beyond; 414 when the request line alone is). */
  maxHead?: number;
  /** Content-Length bodies, in bytes; default 8 MiB (413 beyond). */
  maxBody?: number;
}

const LF = 10;
const CR = 13;
const SP = 32;
const HT = 9;

const STATUS: Record<number, string> = {
  200: 'OK',
  206: 'Partial Content',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Content Too Large',
  414: 'URI Too Long',
  416: 'Range Not Satisfiable',
  417: 'Expectation Failed',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  505: 'HTTP Version Not Supported',
};

/**
 * The Connection field a response to a request with these frame flags carries: `close`
 * when the connection ends after it, `keep-alive` when an HTTP/1.0 request asked to keep
 * it (an HTTP/1.0 client assumes a close without it, and would wait for one), else none.
 */
export function connectionField(flags: number): string {
  if (!(flags & FLAG_KEEP_ALIVE)) return 'Connection: close\r\n';
  return flags & FLAG_HTTP10 ? 'Connection: keep-alive\r\n' : '';
}

/**
 * A complete small response (errors and other rare paths; the hot paths precompute) to a
 * request with frame flags `flags` (FLAG_KEEP_ALIVE, FLAG_HTTP10; 0 closes).
 */
export function simpleResponse(status: number, flags: number, extra = '', body = ''): Reply {
  const head =
    `HTTP/1.1 ${status} ${STATUS[status] ?? 'Unknown'}\r\nServer: rawio\r\nDate: ${httpDate()}\r\n` +
    `Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}` +
    connectionField(flags) +
    '\r\n';
  return { data: ascii(head + body), close: !(flags & FLAG_KEEP_ALIVE) };
}

function fail(status: number): Reply {
  return simpleResponse(status, 0, '', `${STATUS[status]}\n`);
}

/** Case-insensitive comparison of buf[at, at + name.length) with a lower-case ASCII name. */
export function matchLower(buf: Uint8Array, at: number, len: number, name: Uint8Array): boolean {
  if (len !== name.length) return false;
  for (let i = 0; i < len; i++) if (((buf[at + i] ?? -1) | 0x20) !== name[i]) return false;
  return true;
}

const H_CONTENT_LENGTH = ascii('content-length');
const H_TRANSFER_ENCODING = ascii('transfer-encoding');
const H_CONNECTION = ascii('connection');
const H_HOST = ascii('host');
const H_EXPECT = ascii('expect');
const T_CONTINUE = ascii('100-continue');

/** A byte of \w (ASCII letter, digit, underscore). */
const isWord = (c: number | undefined): boolean =>
  c !== undefined && ((c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 122) || c === 95);

/**
 * Whether an Expect value holds `100-continue` (any case) not inside a longer word: what
 * node:http looks for, so `100-continue, foo` still asks for the interim response.
 */
function hasContinue(buf: Uint8Array, from: number, to: number): boolean {
  const n = T_CONTINUE.length;
  for (let k = from; k + n <= to; k++) {
    const after = k + n === to ? undefined : buf[k + n];
    if (matchLower(buf, k, n, T_CONTINUE) && !(k > from && isWord(buf[k - 1])) && !isWord(after)) return true;
  }
  return false;
}
const T_CLOSE = ascii('close');
const T_KEEP_ALIVE = ascii('keep-alive');
const T_CHUNKED = ascii('chunked');
const T_HTTP = ascii('http');

/** A parsed head: what its frame's prefix records, and whether the client waits for 100. */
interface Head extends FramePrefix {
  /** Expect: 100-continue on an HTTP/1.1 request with a body. */
  expect: boolean;
  /** An HTTP/1.1 request with an Expect field that holds no 100-continue: answered 417. */
  expectFailed: boolean;
  /** The body comes in the chunked coding (bodyLen is 0 until it is decoded). */
  chunked: boolean;
}

/** Finds `close` / `keep-alive` in a Connection value: 1 close, 2 keep-alive, 0 neither. */
function connectionTokens(buf: Uint8Array, from: number, to: number): number {
  let r = 0;
  let i = from;
  while (i < to) {
    while (i < to && (buf[i] === SP || buf[i] === HT || buf[i] === 44)) i++;
    let j = i;
    while (j < to && buf[j] !== 44 && buf[j] !== SP && buf[j] !== HT) j++;
    if (matchLower(buf, i, j - i, T_CLOSE)) r |= 1;
    else if (matchLower(buf, i, j - i, T_KEEP_ALIVE)) r |= 2;
    i = j;
  }
  return r;
}

function methodCode(buf: Uint8Array, at: number, len: number): Method {
  const c = buf[at];
  if (len === 3 && c === 71 && buf[at + 1] === 69 && buf[at + 2] === 84) return Method.Get;
  if (len === 4 && c === 72 && buf[at + 1] === 69 && buf[at + 2] === 65 && buf[at + 3] === 68) return Method.Head;
  if (len === 4 && c === 80 && buf[at + 1] === 79 && buf[at + 2] === 83 && buf[at + 3] === 84) return Method.Post;
  return Method.Other;
}

/** Index of the first LF in buf[i, end), or -1 (a loop: header lines are short, and Buffer's indexOf is a C++ call). */
function findLF(buf: Uint8Array, i: number, end: number): number {
  for (; i < end; i++) if (buf[i] === LF) return i;
  return -1;
}

/** End of the line whose LF is at `nl` and which starts at `i`: the CR before the LF is not content. */
function contentEnd(buf: Uint8Array, i: number, nl: number): number {
  return nl > i && buf[nl - 1] === CR ? nl - 1 : nl;
}

/** A visible US-ASCII byte (RFC 5234 VCHAR): what a request target is made of. */
function visible(c: number | undefined): boolean {
  return c !== undefined && c > SP && c < 127;
}

/** End of the line starting at `i` (index of its LF, CR excluded): [contentEnd, next] or null. */
function lineEnd(buf: Uint8Array, i: number, end: number): [number, number] | null {
  const nl = findLF(buf, i, end);
  return nl < 0 ? null : [contentEnd(buf, i, nl), nl + 1];
}

/** Parses the request line into `h` (method, flags, target); returns the next offset, -status, or 0 when its LF is not in. */
function requestLine(buf: Uint8Array, s: number, end: number, h: Head): number {
  const nl = findLF(buf, s, end);
  if (nl < 0) return INCOMPLETE;
  if (buf[nl - 1] !== CR) return -400; // a bare LF (see parseHead)
  const stop = nl - 1;
  let i = s;
  while (i < stop && TCHAR[buf[i] ?? -1]) i++;
  if (i === s || i >= stop || buf[i] !== SP) return -400;
  h.method = methodCode(buf, s, i - s);
  const methodEnd = i;
  const t = ++i;
  while (i < stop && visible(buf[i])) i++;
  if (i === t || i >= stop || buf[i] !== SP) return -400;
  if (!targetFormOk(buf, s, methodEnd, t, i)) return -400;
  const v = i + 1;
  // "HTTP/" DIGIT "." DIGIT
  if (stop - v !== 8 || buf[v] !== 72 || buf[v + 1] !== 84 || buf[v + 2] !== 84 || buf[v + 3] !== 80) return -400;
  if (buf[v + 4] !== 47 || buf[v + 6] !== 46) return -400;
  const major = (buf[v + 5] ?? -1) - 48;
  const minor = (buf[v + 7] ?? -1) - 48;
  if (major < 0 || major > 9 || minor < 0 || minor > 9) return -400;
  if (major !== 1) return -505;
  h.flags = minor === 0 ? FLAG_HTTP10 : 0;
  h.targetStart = t - s;
  h.targetLen = i - t;
  return nl + 1;
}

const M_OPTIONS = ascii('OPTIONS');
const M_CONNECT = ascii('CONNECT');

function sameBytes(buf: Uint8Array, at: number, end: number, want: Uint8Array): boolean {
  if (end - at !== want.length) return false;
  for (let k = 0; k < want.length; k++) if (buf[at + k] !== want[k]) return false;
  return true;
}

// What a Host value (uri-host [ ":" port ]) may hold: unreserved, pct-encoded and
// sub-delims of a reg-name, ":" and the brackets of an IP literal.
const HOST_CHAR = new Uint8Array(256);
for (const c of "-._~%!$&'()*+,;=:[]") HOST_CHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) HOST_CHAR[c] = 1;
for (let c = 65; c <= 90; c++) HOST_CHAR[c] = HOST_CHAR[c + 32] = 1;

function hostChars(buf: Uint8Array, from: number, to: number): boolean {
  for (let k = from; k < to; k++) if (!HOST_CHAR[buf[k]!]) return false;
  return true;
}

function digits(buf: Uint8Array, from: number, to: number): boolean {
  for (let k = from; k < to; k++) if (buf[k]! < 48 || buf[k]! > 57) return false;
  return true;
}

/**
 * Whether host [ ":" port ] in buf[from, to) names a host: not empty (RFC 9110 4.2.1: an
 * http URI with an empty host is invalid), an IP literal closed by its `]`, a port of
 * digits only.
 */
function hostPortOk(buf: Uint8Array, from: number, to: number, portRequired: boolean): boolean {
  let hostEnd: number;
  if (buf[from] === 91) {
    hostEnd = buf.indexOf(93, from);
    if (hostEnd < 0 || hostEnd >= to) return false;
    hostEnd++;
  } else {
    hostEnd = from;
    while (hostEnd < to && buf[hostEnd] !== 58) hostEnd++;
  }
  if (hostEnd === from || !hostChars(buf, from, hostEnd)) return false;
  if (hostEnd === to) return !portRequired;
  if (buf[hostEnd] !== 58) return false;
  return digits(buf, hostEnd + 1, to) && (!portRequired || hostEnd + 1 < to);
}

/**
 * RFC 9112 3.2: the request target's four forms, each where it belongs, anything else 400.
 * Origin-form (`/path?q`) for any method; asterisk-form (`*`) only with OPTIONS;
 * authority-form (`host:port`) only with CONNECT; absolute-form only as an `http` or
 * `https` URI with a host (RFC 9110 4.2: another scheme is no resource of this server, and
 * an http URI with an empty host must be rejected as invalid), userinfo aside.
 */
function targetFormOk(buf: Uint8Array, m: number, mEnd: number, t: number, tEnd: number): boolean {
  if (buf[t] === 47) return true;
  if (sameBytes(buf, m, mEnd, M_CONNECT)) return hostPortOk(buf, t, tEnd, true);
  if (tEnd - t === 1 && buf[t] === 42) return sameBytes(buf, m, mEnd, M_OPTIONS);
  // "http" [ "s" ] "://" authority, case-insensitive
  let i = t;
  if (!matchLower(buf, i, 4, T_HTTP)) return false;
  i += 4;
  if ((buf[i]! | 0x20) === 115) i++;
  if (buf[i] !== 58 || buf[i + 1] !== 47 || buf[i + 2] !== 47) return false;
  i += 3;
  let end = i;
  while (end < tEnd && buf[end] !== 47 && buf[end] !== 63 && buf[end] !== 35) end++;
  let host = i;
  for (let k = i; k < end; k++) if (buf[k] === 64) host = k + 1; // past the userinfo's @
  return hostPortOk(buf, host, end, false);
}

// The header fields the codec acts on, told apart by name length first (one compare for
// the fields it ignores, instead of one per known name).
const F_OTHER = 0;
const F_CONTENT_LENGTH = 1;
const F_TRANSFER_ENCODING = 2;
const F_CONNECTION = 3;
const F_HOST = 4;
const F_EXPECT = 5;

function fieldKind(buf: Uint8Array, at: number, len: number): number {
  switch (len) {
    case 4:
      return matchLower(buf, at, len, H_HOST) ? F_HOST : F_OTHER;
    case 6:
      return matchLower(buf, at, len, H_EXPECT) ? F_EXPECT : F_OTHER;
    case 10:
      return matchLower(buf, at, len, H_CONNECTION) ? F_CONNECTION : F_OTHER;
    case 14:
      return matchLower(buf, at, len, H_CONTENT_LENGTH) ? F_CONTENT_LENGTH : F_OTHER;
    case 17:
      return matchLower(buf, at, len, H_TRANSFER_ENCODING) ? F_TRANSFER_ENCODING : F_OTHER;
    default:
      return F_OTHER;
  }
}

/** The codings of a request's Transfer-Encoding fields, in order, as one list (RFC 9110 5.3). */
interface Codings {
  /** List elements that name a coding (empty ones are none, RFC 9110 5.6.1). */
  count: number;
  /** Of them, `chunked`. */
  chunked: number;
  /** The last one is `chunked`. */
  last: boolean;
}

/** Adds the codings of the Transfer-Encoding value buf[from, to) to `c`. */
function codings(buf: Uint8Array, from: number, to: number, c: Codings): void {
  for (let i = from; i <= to;) {
    let j = i;
    while (j < to && buf[j] !== 44) j++;
    let a = i;
    let b = j;
    while (a < b && (buf[a] === SP || buf[a] === HT)) a++;
    while (b > a && (buf[b - 1] === SP || buf[b - 1] === HT)) b--;
    if (b > a) {
      c.count++;
      c.last = matchLower(buf, a, b - a, T_CHUNKED);
      if (c.last) c.chunked++;
    }
    i = j + 1;
  }
}

/** parseHead's answer when buf[s, end) holds no blank line yet. */
const INCOMPLETE = 0;
/** HttpCodec's head search: a bare CR or a bare LF came before the head's end. */
const BARE = -2;

/**
 * Parses the head at `s` in one pass: a Head, an error status, or INCOMPLETE when the blank
 * line is not within buf[s, end) (a line that is malformed before that is an error at once).
 */
function parseHead(buf: Uint8Array, s: number, end: number, maxBody: number): Head | number {
  const h: Head = {
    method: Method.Other,
    flags: 0,
    targetStart: 0,
    targetLen: 0,
    headLen: 0,
    bodyLen: 0,
    expect: false,
    expectFailed: false,
    chunked: false,
  };
  let i = requestLine(buf, s, end, h);
  if (i <= 0) return -i;
  const http10 = h.flags;
  let contentLength = -1;
  let te: Codings | null = null;
  let chunked = false;
  let hosts = 0;
  let conn = 0;
  let expect = false;
  let expectations = false;
  for (;;) {
    if (i >= end || (buf[i] === CR && i + 1 >= end)) return INCOMPLETE;
    if (buf[i] === LF) return 400; // a bare LF
    if (buf[i] === CR && buf[i + 1] === LF) break; // the blank line
    let c = i;
    while (c < end && TCHAR[buf[c] ?? -1]) c++;
    if (c >= end) return INCOMPLETE;
    if (c === i || buf[c] !== 58) return 400; // also obs-fold and "name :"
    let v = c + 1;
    while (v < end && (buf[v] === SP || buf[v] === HT)) v++;
    // One pass over the value finds its LF and rejects control bytes (a CR only before the
    // LF, and the LF only after a CR).
    let nl = v;
    for (; nl < end; nl++) {
      const b = buf[nl] ?? -1;
      if (b >= SP ? b === 127 : b !== HT) {
        if (b === LF) {
          if (buf[nl - 1] !== CR) return 400;
          break;
        }
        if (b !== CR) return 400;
        if (nl + 1 >= end) return INCOMPLETE;
        if (buf[nl + 1] !== LF) return 400;
      }
    }
    if (nl >= end) return INCOMPLETE;
    let ve = nl - 1;
    while (ve > v && (buf[ve - 1] === SP || buf[ve - 1] === HT)) ve--;
    switch (fieldKind(buf, i, c - i)) {
      case F_CONTENT_LENGTH: {
        // A second Content-Length is a 400 even when it repeats the first (RFC 9110 8.6 lets
        // a recipient take equal ones; two parsers that differ there frame differently).
        if (ve === v || contentLength >= 0) return 400;
        // 1*DIGIT, leading zeros included; n is exact up to 2^53, and only ever grows past it
        let n = 0;
        for (let k = v; k < ve; k++) {
          const d = (buf[k] ?? -1) - 48;
          if (d < 0 || d > 9) return 400;
          n = n * 10 + d;
        }
        // A length that cannot be held exactly is no length (RFC 9110 8.6: overflow is an
        // error): 400; one that can, past the limit, is a 413 (below)
        if (n > Number.MAX_SAFE_INTEGER) return 400;
        contentLength = n;
        break;
      }
      case F_TRANSFER_ENCODING:
        // The codings of every Transfer-Encoding field, in order, as one list (RFC 9110 5.3)
        te ??= { count: 0, chunked: 0, last: false };
        codings(buf, v, ve, te);
        break;
      case F_CONNECTION:
        conn |= connectionTokens(buf, v, ve);
        break;
      case F_HOST:
        // RFC 9112 3.2: a Host that is no host (a space, a path, userinfo) is a 400; empty
        // is allowed, as for a target without an authority
        if (!hostChars(buf, v, ve)) return 400;
        hosts++;
        break;
      case F_EXPECT:
        // Several fields are one list (RFC 9110 5.3): 100-continue in any of them counts.
        expectations = true;
        if (hasContinue(buf, v, ve)) expect = true;
        break;
    }
    i = nl + 1;
  }
  // RFC 9112 6.1/6.3: both framings at once, or Transfer-Encoding in HTTP/1.0, is faulty
  // framing (a smuggling vector): refused rather than guessed. So is a body whose final
  // coding is not chunked (its length cannot be known: 400, a MUST of 6.3), or that is
  // chunked twice; only a lone `chunked` is decoded, a coding before it is 501.
  if (te !== null && (contentLength >= 0 || http10)) return 400;
  if (te !== null) {
    if (!te.last || te.chunked > 1) return 400;
    if (te.count > 1) return 501;
    chunked = true;
  }
  // RFC 9112 3.2: HTTP/1.1 needs a Host, and no request may carry two.
  if (hosts > 1 || (!http10 && hosts === 0)) return 400;
  if (contentLength > maxBody) return 413;
  const keepAlive = conn & 1 ? false : http10 ? (conn & 2) !== 0 : true;
  h.flags = http10 | (keepAlive ? FLAG_KEEP_ALIVE : 0);
  h.headLen = i + 2 - s;
  h.bodyLen = Math.max(contentLength, 0);
  h.chunked = chunked;
  h.expect = expect && !http10 && (contentLength > 0 || chunked);
  // RFC 9110 10.1.1: an expectation the server cannot meet may be answered 417; node:http
  // does so for HTTP/1.1 (HTTP/1.0 has no Expect, and it is ignored there).
  h.expectFailed = expectations && !expect && !http10;
  return h;
}

/**
 * A head past the limit: 414 when its request line alone is (RFC 9112 3: a target longer
 * than the server parses), else 431.
 */
function tooLarge(buf: Uint8Array, s: number, max: number): number {
  return findLF(buf, s, Math.min(buf.length, s + max)) < 0 ? 414 : 431;
}

/** RFC 9112 2.2: empty lines before a request line are ignored. */
function skipEmptyLines(buf: Uint8Array, s: number): number {
  while (s < buf.length && (buf[s] === LF || (buf[s] === CR && buf[s + 1] === LF))) s += buf[s] === LF ? 1 : 2;
  return s;
}

/**
 * Where the path of request target `t` starts: 0 in origin-form (`/a?q`); past the scheme
 * and authority in absolute-form (`http://host/a?q`), which RFC 9112 3.2.2 says a server
 * must accept as well, `t.length` when it names no path (`http://host`, the path `/`); -1
 * for any other form (asterisk, authority) or what is none.
 */
export function targetPathStart(t: Uint8Array): number {
  if (t[0] === 47) return 0;
  // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then "://"
  let i = 0;
  for (; i < t.length; i++) {
    const c = t[i]! | 0x20;
    const alpha = c >= 97 && c <= 122;
    if (!(alpha || (i > 0 && ((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46)))) break;
  }
  if (i === 0 || t[i] !== 58 || t[i + 1] !== 47 || t[i + 2] !== 47) return -1;
  for (i += 3; i < t.length; i++) if (t[i] === 47 || t[i] === 63 || t[i] === 35) break; // the authority's end
  return i;
}

/**
 * The value of the first `name` field (lower-case) in a frame's head, trimmed, or null.
 * For the rarer fields; the hot ones are read once by the codec.
 */
export function headerValue(frame: Uint8Array, name: string): string | null {
  return fieldValue(frame, name, false);
}

/**
 * The value of the `name` field (lower-case) when the head holds it exactly once, trimmed;
 * null when it holds none, or more than one: a field that is not a list (Range) given
 * twice has no meaning to choose (RFC 9110 5.3), and is ignored rather than guessed.
 */
export function singleHeaderValue(frame: Uint8Array, name: string): string | null {
  return fieldValue(frame, name, true);
}

function fieldValue(frame: Uint8Array, name: string, single: boolean): string | null {
  const want = ascii(name);
  const headEnd = frameHeadEnd(frame);
  let found: string | null = null;
  let i = frame.indexOf(LF, PREFIX) + 1;
  while (i > 0 && i < headEnd) {
    const line = lineEnd(frame, i, headEnd);
    if (line === null || line[0] === i) break;
    const colon = frame.indexOf(58, i);
    if (colon > i && colon < line[0] && matchLower(frame, i, colon - i, want)) {
      if (found !== null) return null; // a second one (single only: the first returned below)
      found = Buffer.from(frame.subarray(colon + 1, line[0]))
        .toString('latin1')
        .trim();
      if (!single) return found;
    }
    i = line[1];
  }
  return found;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function buildFrame(buf: Uint8Array, s: number, h: Head): Uint8Array {
  if (h.expectFailed) {
    // Its body read past, the request is not passed on: its prefix says to answer 417.
    const e = allocFrame(PREFIX);
    writeFramePrefix(e, {
      ...h,
      method: Method.ExpectationFailed,
      targetStart: 0,
      targetLen: 0,
      headLen: 0,
      bodyLen: 0,
    });
    return e;
  }
  const f = allocFrame(PREFIX + h.headLen + h.bodyLen);
  writeFramePrefix(f, h);
  copyBytes(f, PREFIX, buf, s, s + h.headLen + h.bodyLen);
  return f;
}

/**
 * HTTP/1.1 request framing (RFC 9112): request line, header fields and a Content-Length
 * body, pipelined. Over-limit or malformed input yields the error reply (400, 413, 414, 431,
 * 501, 505) and ends the codec.
 */
export class HttpCodec implements Codec {
  readonly #maxHead: number;
  readonly #maxBody: number;
  readonly #pending = new Pending();

  /**
   * Bytes of an unfinished request: those kept for the next push and, while a chunked body
   * is being decoded, its head and the body so far (the pending input may then be empty,
   * yet the request is begun: the server's header clock must keep running).
   */
  get buffered(): number {
    const d = this.#chunks;
    return this.#pending.length + (d === null ? 0 : this.#chunkedHead.length + d.length);
  }
  #scanned = 0; // bytes of the current head already searched for its end
  #head: Head | null = null; // parsed head whose body is still arriving
  #dead = false;
  /** The chunked body being decoded, the head it follows, and the input it has consumed. */
  #chunks: ChunkedDecoder | null = null;
  #chunkedHead = EMPTY;
  #consumed = -1;
  #continues = 0; // CONTINUE frames of the current push (PushResult.interim)

  constructor(limits: HttpLimits = {}) {
    // the frame prefix stores the target's place in 16 bits
    this.#maxHead = Math.min(limits.maxHead ?? 8192, 65535);
    this.#maxBody = limits.maxBody ?? 8 << 20;
  }

  /** Frames a CONTINUE (an interim response, not a request: see PushResult.interim). */
  #interim(frames: Uint8Array[]): void {
    frames.push(CONTINUE_FRAME.slice());
    this.#continues++;
  }

  push(chunk: Uint8Array): PushResult {
    if (chunk.length === 0) liveBytes(chunk, 'chunk'); // a detached chunk is no bytes received: a TypeError
    const frames: Uint8Array[] = [];
    if (this.#dead) return { frames };
    this.#continues = 0;
    const buf = this.#pending.view(chunk);
    let s = 0;
    for (;;) {
      if (this.#head === null) s = skipEmptyLines(buf, s);
      const r = this.#one(buf, s, frames);
      if (typeof r !== 'number') {
        this.#dead = true;
        this.#chunks = null;
        this.#pending.keep(buf.subarray(0, 0));
        return this.#continues > 0 ? { frames, error: r, interim: this.#continues } : { frames, error: r };
      }
      if (r < 0) {
        if (this.#consumed >= 0) s = this.#consumed;
        this.#consumed = -1;
        break;
      }
      s = r;
    }
    this.#pending.keep(s === buf.length ? EMPTY : buf.subarray(s)); // all parsed: no view to make
    return this.#continues > 0 ? { frames, interim: this.#continues } : { frames };
  }

  /** Frames the request at `s`: its end, -1 when incomplete, or an error reply. */
  #one(buf: Uint8Array, s: number, frames: Uint8Array[]): number | Reply {
    if (this.#head === null) {
      if (s >= buf.length || (buf[s] === CR && s + 1 === buf.length)) return -1;
      const h = this.#parse(buf, s);
      if (typeof h === 'number') return h === INCOMPLETE ? -1 : fail(h);
      this.#head = h;
      if (h.chunked) {
        // The head is kept aside and the body decoded as it comes; the pending input then
        // holds only undecoded bytes, so a long body is never rescanned.
        this.#chunkedHead = buf.slice(s, s + h.headLen);
        this.#chunks = new ChunkedDecoder(this.#maxBody, this.#maxHead);
        return this.#decode(buf, s + h.headLen, frames, true);
      }
      // RFC 9110 10.1.1: a client that sent Expect: 100-continue waits for an interim
      // response before its body; a CONTINUE frame, answered in order, asks for it.
      if (h.expect && buf.length - s < h.headLen + h.bodyLen) this.#interim(frames);
    }
    if (this.#chunks !== null) return this.#decode(buf, s, frames, false);
    const h = this.#head;
    if (buf.length - s < h.headLen + h.bodyLen) return -1;
    frames.push(buildFrame(buf, s, h));
    this.#head = null;
    return s + h.headLen + h.bodyLen;
  }

  /** Feeds a chunked body from `s`: the end of the request once decoded, else the bytes consumed (kept out of pending). */
  #decode(buf: Uint8Array, s: number, frames: Uint8Array[], first: boolean): number | Reply {
    const d = this.#chunks!;
    const h = this.#head!;
    const at = d.feed(buf, s);
    if (at < 0) return fail(-at);
    if (!d.done) {
      if (first && h.expect) this.#interim(frames);
      this.#consumed = at;
      return -1;
    }
    const head = this.#chunkedHead;
    h.bodyLen = d.length;
    frames.push(buildFrame(concat(head, d.body()), 0, h));
    this.#head = null;
    this.#chunks = null;
    this.#chunkedHead = EMPTY;
    return at;
  }

  /**
   * The head at `s`: parsed in one pass while it arrives whole (the common case); once a
   * head has come in pieces, its end is searched for first, resuming where the last search
   * stopped, so a client trickling a head byte by byte costs a scan per byte, not a parse.
   */
  #parse(buf: Uint8Array, s: number): Head | number {
    const max = this.#maxHead;
    if (this.#scanned === 0) {
      const h = parseHead(buf, s, Math.min(buf.length, s + max), this.#maxBody);
      if (typeof h !== 'number') return h;
      // An error is answered once the head is complete (below), as when it arrives in pieces.
    }
    const end = this.#headEnd(buf, s, max);
    if (end === BARE) return 400;
    if (end < 0) return buf.length - s > max ? tooLarge(buf, s, max) : INCOMPLETE;
    if (end - s > max) return tooLarge(buf, s, max);
    const h = parseHead(buf, s, end, this.#maxBody);
    return h === INCOMPLETE ? 400 : h;
  }

  /**
   * Just past the blank line ending the head at `s`, -1 while it has not arrived, or BARE
   * at a CR followed by anything but LF, or an LF after anything but CR, within the head's
   * first `max` bytes: every line of a head ends with CRLF here (RFC 9112 2.2 lets a
   * recipient take a bare LF; parsers that end a line at different bytes see different
   * fields, so rawio takes the strict reading), and a client ending its lines otherwise
   * would wait for an answer until its head passed the limit. Bytes are judged in order,
   * resuming where the last search stopped, so the answer is the same however the head is
   * split.
   */
  #headEnd(buf: Uint8Array, s: number, max: number): number {
    const n = buf.length;
    for (let i = s + this.#scanned; i < n; i++) {
      const c = buf[i];
      if (c === LF) {
        if (i === s || buf[i - 1] !== CR) {
          if (i < s + max) {
            this.#scanned = 0;
            return BARE;
          }
        } else if (i - 3 >= s && buf[i - 2] === LF && buf[i - 3] === CR) {
          this.#scanned = 0;
          return i + 1;
        }
      } else if (c === CR && i + 1 < s + max) {
        if (i + 1 === n) {
          this.#scanned = i - s; // judged once the next byte is in
          return -1;
        }
        if (buf[i + 1] !== LF) {
          this.#scanned = 0;
          return BARE;
        }
      }
    }
    this.#scanned = n - s;
    return -1;
  }
}
