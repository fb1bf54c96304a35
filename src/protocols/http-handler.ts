/**
 * The HTTP application API: `serve({ protocol: 'http', handler })` hands every request to
 * the handler module's `handle(request)` instead of the built-in hello-world. The codec
 * (http-codec.ts) still frames, refuses malformed input and decodes chunked bodies; this
 * file turns a frame into an {@link HttpRequest} and the handler's {@link HttpResponse}
 * into a Reply: the head built here (Content-Length or chunked framing, Connection, HEAD
 * without a body), a string or bytes body appended, a file body left to the model's
 * transferFile (the server's transfer method), an async-iterable body sent chunked as it
 * is produced. A handler that throws or rejects gets a 500 for that request alone; the
 * connection goes on.
 */
import type { Reply } from './protocol.js';
import { simpleResponse } from './http-codec.js';
import {
  FLAG_HTTP10,
  FLAG_KEEP_ALIVE,
  Method,
  PREFIX,
  frameBody,
  frameFlags,
  frameHeadEnd,
  frameMethod,
} from './http-frame.js';
import { httpDate } from './http-date.js';
import { imported, reportUserError, setStrayHook } from './module.js';
import { open } from '../sys/file.js';
import { checkRegion, count, isBytes, ownBytes, regularSize } from './user-checks.js';
import { EmptyRun, loopTurn } from './bytes.js';
import { close } from '../sys/socket.js';
import { constants } from '../sys/constants.js';
import { ErrnoError } from '../sys/errors.js';
import { typeError, rangeError } from '../sys/validate.js';

/** One request, as a handler receives it. */
export interface HttpRequest {
  /** The method as sent ('GET', 'POST' …). */
  method: string;
  /** The request target as sent ('/path?query'). */
  target: string;
  /** '1.1' or '1.0'. */
  httpVersion: '1.0' | '1.1';
  /** Header fields by lower-case name (own properties), values without the spaces and tabs around them; repeated fields joined with ', '. */
  headers: Record<string, string>;
  /**
   * The body (a chunked body already decoded); empty when there is none. Its buffer is its
   * own: it may be kept, changed or transferred to another thread.
   */
  body: Uint8Array;
}

/** A file region sent as a response body with transferFile: `path`, or an open `fd` (not taken over). */
export interface HttpFileBody {
  /** The file's path. */
  path?: string;
  /** An open file, reopened for the reply (the caller's fd stays open and theirs). */
  fd?: number;
  /** Default 0. */
  offset?: number;
  /** Default: to the end of the file. */
  length?: number;
}

/** What a handler returns (or resolves with). */
export interface HttpResponse {
  /** Default 200; an integer from 200 to 999 (a 1xx is interim, not an answer). */
  status?: number;
  /**
   * Header fields to send. Content-Length, Transfer-Encoding and Connection are the
   * server's (framing and keep-alive) and are ignored here, but for a Connection value
   * holding `close`: the connection then closes after this response, which says
   * `Connection: close`; Server and Date are added
   * unless given. A value is a string, a number or an array of them (one field each); what
   * node:http would refuse — another type, a control character but tab, a character past
   * U+00FF — makes the response a 500 instead, with nothing of it written.
   */
  headers?: Record<string, string | number | readonly (string | number)[]>;
  /** A string (UTF-8), bytes, a file region, or an async iterable of bytes sent chunked. */
  body?: string | Uint8Array | HttpFileBody | AsyncIterable<Uint8Array | string> | null;
}

/** What a handler module exports. */
export interface HttpHandlerModule {
  /** Answers one request; runs in whichever server thread the model chooses. */
  handle(request: HttpRequest): HttpResponse | Promise<HttpResponse>;
  /** Told of every error the handler throws; without it they are logged. */
  onError?(err: unknown): void;
}

let reasons: Record<number, string | undefined> | undefined;
/**
 * node:http's reason phrase for a status, loaded at the first response and not at import:
 * on Node 22 and later, evaluating node:http starts a thread that reads the system CA
 * certificates, and importing rawio opens no fd and starts no thread.
 */
function reason(status: number): string | undefined {
  reasons ??= process.getBuiltinModule('node:http').STATUS_CODES;
  return reasons[status];
}
const SERVER_HEADERS = new Set(['content-length', 'transfer-encoding']);
/** What a header value may hold, as node:http allows: tab, visible ASCII and latin-1 (obs-text). */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Optional whitespace around a field value (RFC 9110 5.6.3). */
const OWS = /^[ \t]+|[ \t]+$/g;
const O_RDONLY = constants.O_RDONLY as number;
const O_CLOEXEC = constants.O_CLOEXEC as number;
const O_NONBLOCK = constants.O_NONBLOCK as number;

/** The request a frame holds. */
export function requestOf(frame: Uint8Array): HttpRequest {
  // Each byte its own code point, as node:http reads a head: not TextDecoder('latin1'),
  // which is windows-1252 (0x80-0x9F become other characters) from Node 22 on.
  const head = Buffer.from(frame.buffer, frame.byteOffset + PREFIX, frameHeadEnd(frame) - PREFIX).toString('latin1');
  const lines = head.split(/\r?\n/);
  const [method = '', target = '', version = ''] = lines[0]!.split(' ');
  const headers: Record<string, string> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).replace(OWS, ''); // SP and HTAB only: 0xA0 is a byte of the value
    // Own properties only: `constructor` and `__proto__` are names a client may send too.
    const joined = Object.hasOwn(headers, name) ? `${headers[name]}, ${value}` : value;
    if (name === '__proto__')
      Object.defineProperty(headers, name, { value: joined, enumerable: true, writable: true, configurable: true });
    else headers[name] = joined;
  }
  // A copy with a buffer of its own: the frame is a view into a slab other requests share,
  // which a handler must neither read through `.buffer` nor detach by transferring it.
  const body = new Uint8Array(frameBody(frame));
  return { method, target, httpVersion: version === 'HTTP/1.0' ? '1.0' : '1.1', headers, body };
}

interface Framing {
  /** The request's frame flags (FLAG_KEEP_ALIVE, FLAG_HTTP10). */
  flags: number;
  keepAlive: boolean;
  http10: boolean;
  head: boolean;
}

/** The request handler of one HttpProtocol instance. */
export class HttpApp {
  readonly #handle: HttpHandlerModule['handle'];
  readonly #onError: ((err: unknown) => void) | undefined;

  constructor(url: string) {
    const ns = imported(url) as Partial<HttpHandlerModule>;
    if (typeof ns.handle !== 'function') throw typeError('handler', `a module exporting handle() (${url})`, ns.handle);
    this.#handle = ns.handle;
    this.#onError = typeof ns.onError === 'function' ? ns.onError : undefined;
    setStrayHook(this.#onError);
  }

  handle(frame: Uint8Array): Reply | Promise<Reply> {
    const flags = frameFlags(frame);
    const f: Framing = {
      flags,
      keepAlive: (flags & FLAG_KEEP_ALIVE) !== 0,
      http10: (flags & FLAG_HTTP10) !== 0,
      head: frameMethod(frame) === Method.Head,
    };
    let res: HttpResponse | Promise<HttpResponse>;
    let thenable: boolean;
    try {
      res = this.#handle(requestOf(frame));
      // Inside the fence: a response whose `then` is a getter that throws is this request's error.
      thenable = typeof (res as { then?: unknown } | null)?.then === 'function';
    } catch (e) {
      return this.#failed(e, f);
    }
    if (thenable) {
      return Promise.resolve(res).then(
        (r) => this.#reply(r, f),
        (e: unknown) => this.#failed(e, f),
      );
    }
    return this.#reply(res as HttpResponse, f);
  }

  #failed(err: unknown, f: Framing): Reply {
    reportUserError(err, this.#onError);
    return simpleResponse(500, f.flags, '', f.head ? '' : 'Internal Server Error\n');
  }

  #reply(res: HttpResponse, f: Framing): Reply {
    const asked = { close: false };
    try {
      return buildReply(res, f, (e) => reportUserError(e, this.#onError), asked);
    } catch (e) {
      // A response that asked to close still closes when its file body fails, as the 404,
      // 403 or 500 that replaces it.
      const g = asked.close ? closing(f) : f;
      if (e instanceof ErrnoError && FILE_STATUS[e.code] !== undefined) {
        return simpleResponse(FILE_STATUS[e.code]!, g.flags, '', g.head ? '' : `${reason(FILE_STATUS[e.code]!)}\n`);
      }
      return this.#failed(e, g);
    }
  }
}

/** A file body that cannot be opened answers like the static protocol: these codes, not 500. */
const FILE_STATUS: Record<string, number> = { ENOENT: 404, ENOTDIR: 404, EACCES: 403, EMFILE: 503, ENFILE: 503 };

/** A Connection value holding the `close` option (RFC 9110 7.6.1: a list of tokens, any case). */
function closeOption(value: string): boolean {
  return value.split(',').some((t) => t.trim().toLowerCase() === 'close');
}

/** The status line and header fields of a response, and whether its Connection field asks to close. */
function headLines(status: number, headers: HttpResponse['headers']): { lines: string; close: boolean } {
  if (typeof status !== 'number') throw typeError('status', 'of type number', status);
  if (!Number.isInteger(status) || status < 200 || status > 999)
    throw rangeError('status', 'an integer from 200 to 999', status);
  let out = `HTTP/1.1 ${status} ${reason(status) ?? 'Unknown'}\r\n`;
  const given = new Set<string>();
  const fields = headers ?? {};
  // An iterable (an array of pairs, a Map, a Headers) has no fields of its own to read:
  // refused, not sent without the fields it holds.
  if (typeof fields !== 'object' || Symbol.iterator in fields) {
    throw typeError('headers', 'an object of header names and values', fields);
  }
  let close = false;
  for (const [name, value] of Object.entries(fields)) {
    if (!TOKEN.test(name)) throw typeError('header name', 'a token', name);
    const lower = name.toLowerCase();
    const values = Array.isArray(value) ? (value as unknown[]) : [value];
    if (lower === 'connection') {
      // The server writes Connection itself; the handler's `close` is honoured, the rest dropped.
      for (const v of values) close ||= closeOption(headerValue(name, v));
      continue;
    }
    if (SERVER_HEADERS.has(lower)) continue;
    given.add(lower);
    for (const v of values) out += `${name}: ${headerValue(name, v)}\r\n`;
  }
  if (!given.has('server')) out += 'Server: rawio\r\n';
  if (!given.has('date')) out += `Date: ${httpDate()}\r\n`;
  return { lines: out, close };
}

/**
 * One header value as written: a string or a number, as node:http takes them, refused with
 * its codes otherwise — anything else (undefined, an object, a nested array) is
 * ERR_HTTP_INVALID_HEADER_VALUE, a character a field may not hold ERR_INVALID_CHAR. A
 * character past U+00FF would be written as its low byte (latin-1), so U+010A would become
 * LF: refused like the control characters, or it would split the response.
 */
function headerValue(name: string, v: unknown): string {
  if (typeof v !== 'string' && typeof v !== 'number') {
    const e = typeError(`header ${name}`, 'a string, a number or an array of them', v);
    (e as TypeError & { code: string }).code = 'ERR_HTTP_INVALID_HEADER_VALUE';
    throw e;
  }
  const s = String(v);
  if (BAD_VALUE.test(s)) {
    const e = new TypeError(`Invalid character in header content ["${name}"]`);
    (e as TypeError & { code: string }).code = 'ERR_INVALID_CHAR';
    throw e;
  }
  return s;
}

function connection(f: Framing, close: boolean): string {
  if (close) return 'Connection: close\r\n';
  return f.http10 ? 'Connection: keep-alive\r\n' : '';
}

/** `f` for a response that ends its connection. */
function closing(f: Framing): Framing {
  return { ...f, keepAlive: false, flags: f.flags & ~FLAG_KEEP_ALIVE };
}

/**
 * The Reply for a handler's response (throws TypeError / RangeError / ErrnoError for a bad
 * one). `asked.close` says, once its header fields are read, whether it asked to close.
 */
export function buildReply(
  res: HttpResponse,
  framing: Framing,
  onError: (e: unknown) => void,
  asked: { close: boolean } = { close: false },
): Reply {
  if (typeof res !== 'object' || res === null) throw typeError('response', 'an object', res);
  // Each field read once: a getter (or a Proxy) answering twice could otherwise give the
  // status line one status and the framing another (a 200 framed as a bodiless 204). The
  // body first, so that it is released whatever fails after it.
  const body = res.body;
  let status: number;
  let lines: string;
  let close: boolean;
  try {
    const { status: given, headers } = res;
    status = given ?? 200;
    ({ lines, close } = headLines(status, headers));
  } catch (e) {
    // Refused before it was sent: its body is ended as one never sent is (a file stream's fd
    // closed), and a Node stream's later 'error' finds a listener.
    try {
      if (isIterable(body)) {
        guard(body);
        release(body);
      }
    } catch {
      // an `on` or `destroy` that throws: the error reported is the response's own
    }
    throw e;
  }
  asked.close = close;
  // A handler that asks to close (Connection: close) ends the connection after this response.
  const f = close ? closing(framing) : framing;
  const bodyless = status === 204 || status === 304;
  if (isIterable(body)) {
    guard(body);
    if (bodyless || f.head) release(body);
  }
  if (isIterable(body) && !bodyless) {
    // HTTP/1.0 has no chunked coding: the body runs to the connection's close.
    const close = !f.keepAlive || f.http10;
    const head = `${lines}${f.http10 ? '' : 'Transfer-Encoding: chunked\r\n'}${connection(f, close)}\r\n`;
    const reply: Reply = { data: Buffer.from(head, 'latin1'), close };
    if (!f.head) reply.body = f.http10 ? raw(body, onError) : chunked(body, onError);
    return reply;
  }
  if (isFile(body) && !bodyless) return fileReply(body, lines, f);
  const bytes = bodyless ? new Uint8Array(0) : bodyBytes(body);
  // RFC 9110 8.6: no Content-Length in a 204, nor in a 304, where it would have to be the
  // length of the 200's content, which the server does not know (0 would tell a cache so)
  const head = `${lines}${bodyless ? '' : `Content-Length: ${bytes.length}\r\n`}${connection(f, !f.keepAlive)}\r\n`;
  const data = Buffer.allocUnsafe(Buffer.byteLength(head, 'latin1') + (f.head ? 0 : bytes.length));
  const n = data.write(head, 'latin1');
  if (!f.head) data.set(bytes, n);
  return { data, close: !f.keepAlive };
}

function bodyBytes(body: HttpResponse['body']): Uint8Array {
  if (body === undefined || body === null) return new Uint8Array(0);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (isBytes(body)) return body;
  if (body instanceof Uint8Array) throw typeError('body', 'bytes whose buffer is not detached', body);
  throw typeError('body', 'a string, bytes, a file { path | fd } or an async iterable', body);
}

/**
 * A body that will not be sent (HEAD, 204, 304), or no longer (its client has gone), is
 * ended, so what it holds (a file stream's fd) is released: a Node stream is destroyed
 * (returning an iterator that never started, or one waiting for the stream, would not reach
 * it), any other iterable's iterator (`started`, or a new one) is returned.
 */
function release(body: AsyncIterable<unknown>, started?: AsyncIterator<unknown>): void {
  const { destroy } = body as { destroy?: unknown };
  if (typeof destroy === 'function') return void destroy.call(body);
  try {
    void Promise.resolve((started ?? body[Symbol.asyncIterator]()).return?.()).catch(() => {});
  } catch {
    // an iterable that cannot even make its iterator holds nothing to release
  }
}

/**
 * A Node stream body emits 'error' even after it was ended unread (a HEAD, a client that
 * left): without a listener that would be an uncaught exception ending the thread. Errors
 * met while the body is being sent still reach chunked()/raw() through the iteration.
 */
function guard(body: object): void {
  const { on } = body as { on?: unknown };
  if (typeof on === 'function') on.call(body, 'error', () => {});
}

function isIterable(b: unknown): b is AsyncIterable<Uint8Array | string> {
  return typeof b === 'object' && b !== null && Symbol.asyncIterator in b;
}

function isFile(b: unknown): b is HttpFileBody {
  return typeof b === 'object' && b !== null && !(b instanceof Uint8Array) && ('path' in b || 'fd' in b);
}

/**
 * Opens the region for the reply (an fd of its own: the model closes it once sent). Its
 * fields are checked as a module's `reply.file` is, and with O_NONBLOCK: opening a FIFO must
 * not block the serving thread, which serves every other connection too.
 */
function fileReply(body: HttpFileBody, lines: string, f: Framing): Reply {
  const offset = body.offset === undefined ? 0 : count('body.offset', body.offset, Number.MAX_SAFE_INTEGER);
  const wanted = body.length === undefined ? undefined : count('body.length', body.length, Number.MAX_SAFE_INTEGER);
  const flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC;
  let fd: number;
  let name: string;
  if (body.path !== undefined) {
    if (typeof body.path !== 'string') throw typeError('body.path', 'a string', body.path);
    [fd, name] = [open(body.path, flags), 'body.path'];
  } else {
    const theirs = count('body.fd', body.fd, 0x7fffffff);
    // Checked before it is reopened: EBADF for an fd that is not open (through /proc it would
    // read ENOENT, a 404), and not reopening what is not a regular file (a FIFO would block).
    regularSize(theirs, 'body.fd', theirs);
    [fd, name] = [open(`/proc/self/fd/${theirs}`, flags), 'body.fd']; // the caller keeps its own fd
  }
  try {
    const size = regularSize(fd, name, body.path ?? body.fd);
    const length = wanted ?? Math.max(0, size - offset);
    checkRegion('body', size, offset, length);
    const head = `${lines}Content-Length: ${length}\r\n${connection(f, !f.keepAlive)}\r\n`;
    const reply: Reply = { data: Buffer.from(head, 'latin1'), close: !f.keepAlive };
    if (f.head || length === 0) close(fd);
    else reply.file = { fd, offset, length };
    return reply;
  } catch (e) {
    close(fd);
    throw e;
  }
}

const CRLF = Buffer.from('\r\n');
const LAST = Buffer.from('0\r\n\r\n');

function toBytes(piece: unknown): Uint8Array {
  if (typeof piece === 'string') return Buffer.from(piece, 'utf8');
  if (isBytes(piece)) return piece;
  if (piece instanceof Uint8Array) throw typeError('body chunk', 'bytes whose buffer is not detached', piece);
  throw typeError('body chunk', 'a string or bytes', piece);
}

const DONE: IteratorReturnResult<undefined> = { value: undefined, done: true };

/** A chunk in the chunked coding: its size in hex, the bytes, CRLF. */
function chunkOf(bytes: Uint8Array): Uint8Array {
  return Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, CRLF]);
}

/** The body in the chunked coding; an error is reported, then ends the connection (rethrown). */
function chunked(body: AsyncIterable<Uint8Array | string>, onError: (e: unknown) => void): AsyncIterable<Uint8Array> {
  return sourceBody(body, chunkOf, LAST, onError);
}

/**
 * The body as it comes (HTTP/1.0: it runs to the connection's close), each chunk copied
 * (ownBytes) as chunkOf copies it into its framing.
 */
function raw(body: AsyncIterable<Uint8Array | string>, onError: (e: unknown) => void): AsyncIterable<Uint8Array> {
  return sourceBody(body, ownBytes, undefined, onError);
}

/**
 * A handler's body as the server pulls it: each piece of `body` checked and framed, empty
 * ones skipped (a zero-size chunk would end a chunked body), `last` after its end; an error
 * is reported and rethrown (the connection closes after what was sent).
 *
 * Unlike an async generator, its return() ends the source at once even while a next() is
 * waiting for it: the server calls it when the client has gone in the middle of the body,
 * and a source that waits for its next event (a stream fed by a subscription, a pipe from
 * a slow upstream) must not stay open until that event, which may never come. The waiting
 * next() settles as done, a Node stream is destroyed, and any other source's iterator is
 * returned: an async generator waiting in an await runs its finally blocks once that await
 * settles, the soonest JavaScript allows.
 */
function sourceBody(
  body: AsyncIterable<Uint8Array | string>,
  frame: (bytes: Uint8Array) => Uint8Array,
  last: Uint8Array | undefined,
  onError: (e: unknown) => void,
): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
      let it: AsyncIterator<Uint8Array | string> | undefined;
      let done = false;
      const empty = new EmptyRun();
      /** Settles the next() under way as done. */
      let wake = (): void => {};
      const end = (): void => {
        if (done) return;
        done = true;
        wake();
        release(body, it);
      };
      return {
        next: async (): Promise<IteratorResult<Uint8Array>> => {
          try {
            while (!done) {
              const source = (it ??= body[Symbol.asyncIterator]());
              // A fresh promise per piece, settled by the source or by end() (a race with one
              // long-lived promise would keep a reaction per piece until the body ends).
              const r = await new Promise<IteratorResult<Uint8Array | string>>((resolve, reject) => {
                wake = () => resolve(DONE);
                source.next().then(resolve, reject);
              });
              if (done) break;
              if (r.done) {
                done = true;
                return last === undefined ? DONE : { value: last, done: false };
              }
              const bytes = toBytes(r.value);
              if (bytes.length > 0) {
                empty.reset();
                return { value: frame(bytes), done: false };
              }
              if (empty.empty()) await loopTurn(); // no output, no backpressure (EmptyRun)
            }
            return DONE;
          } catch (e) {
            end(); // a chunk that is not bytes leaves a source that has not ended
            onError(e);
            throw e;
          }
        },
        return: (): Promise<typeof DONE> => {
          end();
          return Promise.resolve(DONE);
        },
      };
    },
  };
}
