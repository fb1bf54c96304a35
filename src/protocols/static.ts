/**
 * The `static` protocol: HTTP GET/HEAD of the files under a root directory, as nginx's
 * static module does. Paths (an origin-form target, or an absolute-form one's path) are
 * percent-decoded and normalised, then opened with openat2(2) RESOLVE_BENEATH
 * (sys.openBeneath), so `..`, absolute paths and symlinks that leave the root are refused
 * by the kernel itself, not by string checks alone. One
 * `Range: bytes=` range is honoured (206, 416 when unsatisfiable); several ranges, a
 * malformed one, a Range field given twice or any range of an empty file are ignored (200,
 * the whole file). The body is not read
 * here: the reply carries the open fd and the region, and the model sends it with
 * transferFile using the configured method (ProtocolOptions.transfer / directio).
 */
import type { Codec, Protocol, ProtocolOptions, Reply } from './protocol.js';
import {
  CODEC_FRAMES,
  HttpCodec,
  codecReply,
  connectionField,
  headerValue,
  simpleResponse,
  singleHeaderValue,
  targetPathStart,
} from './http-codec.js';
import { FLAG_KEEP_ALIVE, Method, frameFlags, frameMethod, frameTarget } from './http-frame.js';
import { hex } from './bytes.js';
import { httpDate } from './http-date.js';
import { fstat, openBeneath, openDir } from '../sys/file.js';
import { close } from '../sys/socket.js';
import { ErrnoError } from '../sys/errors.js';
import { constants } from '../sys/constants.js';
import * as v from '../sys/validate.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const O_RDONLY = constants.O_RDONLY as number;
const O_NONBLOCK = constants.O_NONBLOCK as number;
const O_NOCTTY = constants.O_NOCTTY as number;

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  htm: 'text/html; charset=utf-8',
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  json: 'application/json',
  txt: 'text/plain; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
  xml: 'application/xml',
  svg: 'image/svg+xml',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  avif: 'image/avif',
  ico: 'image/x-icon',
  pdf: 'application/pdf',
  wasm: 'application/wasm',
  woff: 'font/woff',
  woff2: 'font/woff2',
  mp4: 'video/mp4',
  webm: 'video/webm',
  mp3: 'audio/mpeg',
  zip: 'application/zip',
  gz: 'application/gzip',
  tar: 'application/x-tar',
};

export function contentType(path: string): string {
  const dot = path.lastIndexOf('.');
  const slash = path.lastIndexOf('/');
  if (dot <= slash + 1) return 'application/octet-stream';
  return TYPES[path.slice(dot + 1).toLowerCase()] ?? 'application/octet-stream';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The request target as a path relative to the root ('' for the root itself), or the
 * status that refuses it: 400 for what is not a path (bad escapes, NUL, bad UTF-8), 403
 * for backslashes in any encoding and for a `..` that would climb above the root.
 *
 * Repeated slashes are merged, but `.`, `..` and a trailing slash are kept for the kernel
 * to resolve, one component at a time as it resolves any path: a file named as a directory
 * (`/a.txt/`, `/a.txt/.`, `/a.txt/..`, `/a.txt%2f`) is then ENOTDIR, a 404, as nginx and
 * the filesystem answer, instead of being normalised into the file's own name.
 */
export function targetPath(target: Uint8Array): string | number {
  const path = decodeTarget(target);
  if (typeof path === 'number') return path;
  const parts: string[] = [];
  let depth = 0;
  for (const seg of path.split('/')) {
    if (seg === '') continue;
    depth += seg === '..' ? -1 : seg === '.' ? 0 : 1;
    if (depth < 0) return 403;
    parts.push(seg);
  }
  const rel = parts.join('/');
  return rel !== '' && path.endsWith('/') ? `${rel}/` : rel;
}

/**
 * Percent-decodes the target's path (up to `?` or `#`; origin-form, or absolute-form with
 * its scheme and authority ignored): the path, or 400 / 403.
 */
function decodeTarget(target: Uint8Array): string | number {
  const start = targetPathStart(target);
  if (start < 0) return 400;
  let end = target.length;
  for (let i = start; i < end; i++) if (target[i] === 63 || target[i] === 35) end = i; // ? and #
  if (start === end) return '/'; // absolute-form without a path: the root
  if (target[start] !== 47) return 400;
  const bytes = new Uint8Array(end - start);
  let n = 0;
  for (let i = start; i < end; i++) {
    let c = target[i] ?? 0; // i < end <= target.length
    if (c === 37) {
      const hi = i + 2 < end ? hex(target[i + 1]) : -1;
      const lo = i + 2 < end ? hex(target[i + 2]) : -1;
      if (hi < 0 || lo < 0) return 400;
      c = hi * 16 + lo;
      i += 2;
    }
    if (c === 0) return 400;
    if (c === 92) return 403;
    bytes[n++] = c;
  }
  try {
    return utf8.decode(bytes.subarray(0, n));
  } catch {
    return 400;
  }
}

/**
 * A single `bytes=` range against `size`: [start, end] inclusive, 'unsatisfiable', or null
 * (ignore: the whole file, 200). `bytes` and `=` are one token (`bytes =0-1` is no range, as
 * RFC 9110's grammar and nginx have it); blanks around the numbers are let through, as nginx
 * does. An empty file ignores any range: no range of it can be sent, and a suffix range
 * (`bytes=-1`) is satisfiable by RFC 9110, so 416 would be wrong; its 200 is empty anyway.
 */
export function parseRange(value: string, size: number): [number, number] | 'unsatisfiable' | null {
  const m = /^bytes=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*$/i.exec(value);
  if (m === null || (m[1] === '' && m[2] === '')) return null; // also multiple ranges: served whole
  if (size === 0) return null;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return [Math.max(0, size - suffix), size - 1];
  }
  const start = Number(m[1]);
  if (m[2] !== '' && Number(m[2]) < start) return null; // invalid: ignored
  if (start >= size) return 'unsatisfiable';
  return [start, m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)];
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  414: 'URI Too Long',
  416: 'Range Not Satisfiable',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

function refusal(err: unknown): number {
  const code = err instanceof ErrnoError ? err.code : '';
  if (code === 'ENOENT' || code === 'ENOTDIR') return 404;
  if (code === 'EXDEV' || code === 'ELOOP' || code === 'EACCES' || code === 'EPERM') return 403;
  // A socket (ENXIO) or a device without its driver (ENODEV, ENXIO): not a regular file, as a
  // FIFO or a device that opens is refused after fstat.
  if (code === 'ENXIO' || code === 'ENODEV') return 403;
  if (code === 'ENAMETOOLONG') return 414;
  // Out of fds (this process's or the system's): only this request fails, in its place in
  // the connection's order, and the client may try again once fds free up.
  if (code === 'EMFILE' || code === 'ENFILE') return 503;
  return 500;
}

/** The largest request body `static` frames (a body it then answers 405 to). */
const STATIC_MAX_BODY = 64 << 10;

/**
 * The `static` protocol: HTTP GET and HEAD of the files under `options.root` (a directory's
 * index.html for a directory), opened with openat2(2) RESOLVE_BENEATH so no path leaves the
 * root; one `Range: bytes=` range honoured. The reply carries the open file region, which
 * the model sends with `transferFile` (`options.transfer`). The constructor throws a
 * TypeError without `root` and an ErrnoError when it cannot be opened.
 */
export class StaticProtocol implements Protocol {
  readonly name = 'static';
  readonly options: ProtocolOptions;
  readonly #root: number;
  #closed = false;

  constructor(opts: ProtocolOptions = {}) {
    v.object('opts', opts);
    if (opts.root === undefined) throw v.typeError('root', 'a directory path', opts.root);
    this.#root = openDir(v.cstr('root', opts.root));
    this.options = { ...opts };
  }

  createCodec(): Codec {
    // A body is never read (GET and HEAD take none): it is buffered only to frame the next
    // request, up to 64 KiB, or maxRequest when smaller (413 past it, as `http` answers).
    const maxBody = Math.min(STATIC_MAX_BODY, this.options.limits?.maxBody ?? STATIC_MAX_BODY);
    return new HttpCodec({ maxHead: this.options.limits?.maxHead, maxBody });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    close(this.#root);
  }

  handle(frame: Uint8Array): Reply {
    if (frame.length === 0) v.liveBytes(frame, 'frame'); // a detached frame is a TypeError, not an empty request
    const method = frameMethod(frame);
    if (method >= CODEC_FRAMES) return codecReply(frame);
    const flags = frameFlags(frame);
    if (method !== Method.Get && method !== Method.Head)
      return simpleResponse(405, flags, 'Allow: GET, HEAD\r\n', 'Method Not Allowed\n');
    const path = targetPath(frameTarget(frame));
    if (typeof path === 'number') return this.#fail(path, flags, method);
    const opened = this.#open(path);
    if (typeof opened === 'number') {
      return this.#fail(opened, flags, method, opened === 503 ? 'Retry-After: 1\r\n' : '');
    }
    const [fd, size, name] = opened;
    try {
      return this.#reply(frame, fd, size, name, method, flags);
    } catch (e) {
      close(fd);
      throw e;
    }
  }

  #fail(status: number, flags: number, method: Method, extra = ''): Reply {
    const r = simpleResponse(status, flags, extra, `${STATUS_TEXT[status] ?? 'Refused'}\n`);
    return method === Method.Head ? { ...r, data: r.data.subarray(0, Buffer.from(r.data).indexOf('\r\n\r\n') + 4) } : r;
  }

  /** Opens a regular file (a directory's index.html): [fd, size, name] or a status. */
  #open(path: string): [number, number, string] | number {
    const dir = path.replace(/\/+$/, '');
    for (let name = path === '' ? '.' : path; ; name = `${dir === '' ? '' : `${dir}/`}index.html`) {
      let fd: number;
      try {
        // O_NONBLOCK: opening a FIFO someone left under the root must not block the server;
        // O_NOCTTY: a terminal's device node there must not become the controlling terminal
        // of a server that leads its session without one (it is refused as no regular file)
        fd = openBeneath(this.#root, name, O_RDONLY | O_NONBLOCK | O_NOCTTY);
      } catch (e) {
        const status = refusal(e);
        // A directory without an index is 403; running out of fds is 503 either way.
        return name === path || name === '.' || status === 503 ? status : 403;
      }
      const st = fstat(fd);
      if ((st.mode & S_IFMT) === S_IFREG) return [fd, st.size, name];
      close(fd);
      if ((st.mode & S_IFMT) !== S_IFDIR || name.endsWith('index.html')) return 403;
    }
  }

  #reply(frame: Uint8Array, fd: number, size: number, name: string, method: Method, flags: number): Reply {
    let status = 200;
    let offset = 0;
    let length = size;
    let extra = '';
    // Range twice (or more) is ignored, as an invalid Range is: the whole file, 200
    const range = singleHeaderValue(frame, 'range');
    if (range !== null && headerValue(frame, 'if-range') === null) {
      const r = parseRange(range, size);
      if (r === 'unsatisfiable') {
        close(fd);
        return this.#fail(416, flags, method, `Content-Range: bytes */${size}\r\n`);
      }
      if (r !== null) {
        status = 206;
        [offset, length] = [r[0], r[1] - r[0] + 1];
        extra = `Content-Range: bytes ${r[0]}-${r[1]}/${size}\r\n`;
      }
    }
    const head =
      `HTTP/1.1 ${status} ${status === 200 ? 'OK' : 'Partial Content'}\r\nServer: rawio\r\nDate: ${httpDate()}\r\n` +
      `Content-Type: ${contentType(name)}\r\nContent-Length: ${length}\r\nAccept-Ranges: bytes\r\n${extra}` +
      `${connectionField(flags)}\r\n`;
    // latin1: the head is ASCII, and Buffer.from carves it from Node's pool instead of a fresh ArrayBuffer.
    const reply: Reply = { data: Buffer.from(head, 'latin1'), close: !(flags & FLAG_KEEP_ALIVE) };
    if (method === Method.Get && length > 0) reply.file = { fd, offset, length };
    else close(fd);
    return reply;
  }
}
