/**
 * rawio's static server against a real nginx serving the same tree: the same request bytes
 * sent to both over raw TCP, and for each request the status, Content-Length and
 * Content-Range (of a 200 or 206), the body bytes (of a GET's 200 or 206) and whether the
 * connection stayed open compared. Each case is one connection: its request, then a probe
 * request pipelined behind it (`GET /probe.txt`); the connection stayed open when the probe
 * is answered. Every case is sent as GET and as HEAD.
 *
 * The tree has files at the sizes that matter (empty, 1 byte, a page ± 1, 64 KiB + 1,
 * ~3 MiB), names with spaces, `%`, `+` and UTF-8, directories with and without an index,
 * symlinks inside and out of the root, a file without read permission, a FIFO, a socket
 * and dotfiles. The cases that send a file's bytes run on every model and every transfer
 * method (`auto` aside: it picks sendfile or direct, both run; proactor and multi-proactor
 * send with their ring, once each); the others, which never reach a transfer, on every
 * model. A file truncated or grown while it is being sent, or truncated while the answer
 * ahead of it is sent, is checked on every model × method too: the reply is cut short and
 * the connection closed (truncated), or exactly Content-Length bytes sent (grown), as nginx
 * does; never a hang. No fd (file, pipe, ring) is left open once a model's servers close.
 *
 * Where rawio differs on purpose (docs/PROTOCOLS.md, "rawio's `static` and nginx"), the case
 * names the difference and holds rawio to its own answer instead; a check holds each named
 * difference to be one (nginx answers otherwise).
 *
 * Skipped when nginx is not installed (CI installs nginx-light).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelNames, serve, transferMethodNames, type Server, type TransferMethodName } from '../helpers/rawio.js';
import { titled, why } from '../helpers/skips.js';
import { leakedSince, openFds } from '../helpers/fds.js';
import { exited } from '../helpers/procs.js';
import { freePort } from '../../dist/bench/lib/external.js';
import { eventually } from '../helpers/wait.js';

const NGINX = '/usr/sbin/nginx';

const KiB = 1 << 10;
const MiB = 1 << 20;
const PROBE = 'GET /probe.txt HTTP/1.1\r\nHost: x\r\n\r\n';
const PROBE_BODY = 'probe\n';

/** Deterministic bytes for a file of `n` bytes (a different stream per seed). */
function bytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    out[i] = s >>> 16;
  }
  return out;
}

/** What one request got: the fields compared, as one line of text. */
interface Outcome {
  status: number | 'none';
  /** Content-Length and Content-Range of a 200 or 206 (others carry the server's own page). */
  length?: string;
  range?: string;
  /** The body of a GET's 200 or 206: its length and hash; 'short n' when the connection closed first. */
  body?: string;
  /** 'open' when the probe behind the request was answered, 'closed' when not, 'hang' when neither came. */
  end: 'open' | 'closed' | 'hang';
}

const shown = (o: Outcome): string =>
  [
    `status ${o.status}`,
    o.length !== undefined ? `length ${o.length}` : '',
    o.range !== undefined ? `range ${o.range}` : '',
    o.body !== undefined ? `body ${o.body}` : '',
    o.end,
  ]
    .filter((s) => s !== '')
    .join(' | ');

const digest = (b: Buffer): string => `${b.length} bytes ${createHash('sha256').update(b).digest('hex').slice(0, 16)}`;

interface Head {
  status: number;
  fields: Map<string, string[]>;
  /** Where the head ends (after its blank line). */
  end: number;
}

function parseHead(data: Buffer, at: number): Head | undefined {
  const end = data.indexOf('\r\n\r\n', at);
  if (end < 0) return undefined;
  const [line, ...rest] = data.toString('latin1', at, end).split('\r\n');
  const fields = new Map<string, string[]>();
  for (const f of rest) {
    const colon = f.indexOf(':');
    const name = f.slice(0, colon).toLowerCase();
    fields.set(name, [...(fields.get(name) ?? []), f.slice(colon + 1).trim()]);
  }
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(line ?? '')?.[1] ?? NaN), fields, end: end + 4 };
}

/**
 * Sends `request` and the probe behind it, reads until the probe's answer is whole, the
 * server closes, or 10 s pass (a hang), and returns what the request got. `hold` runs once
 * the first bytes of the answer arrive, with the socket paused (the file changes then).
 * With `lead`, `request` starts with that many GETs whose answers are skipped.
 */
function ask(port: number, request: Buffer, head: boolean, hold?: () => void, lead = 0): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    /** Bytes the answers need before the probe's can be whole: checked again only past it. */
    let need = 0;
    let held = false;
    const c = net.connect(port, '127.0.0.1', () => c.write(Buffer.concat([request, Buffer.from(PROBE)])));
    const finish = (end: Outcome['end']) => {
      clearTimeout(timer);
      c.destroy();
      const data = Buffer.concat(chunks);
      resolve(outcome(data, answersEnd(data, lead).at, head, end));
    };
    const timer = setTimeout(() => finish('hang'), 10_000);
    c.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (hold && !held) {
        held = true;
        c.pause();
        hold();
        setImmediate(() => c.resume());
      }
      if (got < need) return;
      const data = Buffer.concat(chunks);
      const leading = answersEnd(data, lead);
      if (leading.need !== undefined) {
        need = leading.need;
        return;
      }
      const first = answerEnd(data, leading.at, head);
      if (typeof first === 'number') {
        const p = parseHead(data, first);
        if (p !== undefined && data.length >= p.end + PROBE_BODY.length) finish('open');
        else need = first + 1;
      } else need = first?.whole ?? got + 1;
    });
    c.on('close', () => finish('closed'));
    c.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') return; // 'close' follows
      clearTimeout(timer);
      reject(e);
    });
  });
}

/**
 * The end of the answer at `at` (HEAD: its head only); while it is not whole, how many bytes
 * it needs (undefined while its head is not whole).
 */
function answerEnd(data: Buffer, at: number, head: boolean): number | { whole: number } | undefined {
  const h = parseHead(data, at);
  if (!h) return undefined;
  const len = head ? 0 : Number(h.fields.get('content-length')?.[0] ?? 0);
  return data.length >= h.end + len ? h.end + len : { whole: h.end + len };
}

/** Where `n` GET answers end, or how far the ones that are whole reach and what the next needs. */
function answersEnd(data: Buffer, n: number): { at: number; need?: number } {
  let at = 0;
  for (let i = 0; i < n; i++) {
    const end = answerEnd(data, at, false);
    if (typeof end !== 'number') return { at, need: end?.whole ?? data.length + 1 };
    at = end;
  }
  return { at };
}

function outcome(data: Buffer, at: number, head: boolean, end: Outcome['end']): Outcome {
  const h = parseHead(data, at);
  if (!h) return { status: 'none', end };
  const o: Outcome = { status: h.status, end };
  if (h.status === 200 || h.status === 206) {
    o.length = (h.fields.get('content-length') ?? []).join(', ');
    if (h.fields.has('content-range')) o.range = h.fields.get('content-range')!.join(', ');
    if (!head) {
      const len = Number(o.length);
      const body = data.subarray(h.end, h.end + len);
      o.body = body.length < len ? `short ${body.length}` : digest(body);
    }
  }
  return o;
}

/** The tree both servers serve (see the file comment). */
const FILES: Record<string, Buffer> = {
  'empty.bin': Buffer.alloc(0),
  'one.bin': bytes(1, 1),
  'p-1.bin': bytes(4 * KiB - 1, 2),
  'page.bin': bytes(4 * KiB, 3),
  'p+1.bin': bytes(4 * KiB + 1, 4),
  '64k+1.bin': bytes(64 * KiB + 1, 5),
  'big.bin': bytes(3 * MiB + 12_345, 6),
  'a b.txt': Buffer.from('space\n'),
  '100%.txt': Buffer.from('percent\n'),
  'a+b.txt': Buffer.from('plus\n'),
  'ü€.txt': Buffer.from('utf-8\n'),
  '.hidden': Buffer.from('dot\n'),
  'probe.txt': Buffer.from(PROBE_BODY),
  'dir/index.html': Buffer.from('<p>index</p>\n'),
  'dir/x.txt': Buffer.from('in dir\n'),
  'noindex/y.txt': Buffer.from('no index\n'),
  '.git/config': Buffer.from('[core]\n'),
  'locked.txt': Buffer.from('locked\n'),
};

interface Case {
  name: string;
  /** The request line's target (a Buffer for bytes that are not latin1 text). */
  target: string | Buffer;
  /** Extra header lines, each ending in CRLF. */
  fields?: string;
  /** The method; GET and HEAD both when not given. */
  method?: string;
  /** The whole request, for requests the line template cannot spell. */
  raw?: string;
  /** Reaches a transfer: run on every transfer method, not only every model. */
  transfer?: boolean;
  /** Set when rawio differs on purpose: the fields rawio answers instead (`body`: those bytes of that file, all by default). */
  differs?: {
    why: string;
    rawio: Omit<Partial<Outcome>, 'body'> & { body?: { file: string; from?: number; to?: number } };
  };
}

const range = (file: string, value: string, differs?: Case['differs']): Case => ({
  name: `${file} Range: ${value}`,
  target: `/${file}`,
  fields: `Range: ${value}\r\n`,
  transfer: true,
  ...(differs ? { differs } : {}),
});

const WHOLE = { status: 200, length: '4097', body: { file: 'p+1.bin' } } as const;
const MULTI = { why: 'several ranges are answered with the whole file (200), not multipart/byteranges', rawio: WHOLE };
const INVALID = {
  why: 'an invalid range is ignored (200, the whole file), as RFC 9110 says; nginx answers 416',
  rawio: WHOLE,
};
const HUGE = {
  why: "a last position or suffix past the file's end is clamped to it however many digits it has (RFC 9110); nginx answers 416 past 2^63",
  rawio: { ...WHOLE, status: 206, range: 'bytes 0-4096/4097' },
};
const EMPTY_ELEMENT = {
  why: 'a range set with an empty element is answered with the whole file (200), as several ranges are; nginx answers 416',
  rawio: WHOLE,
};
const NO_VALIDATORS = {
  why: 'no validators (Last-Modified, ETag): no 304, and a Range with If-Range is ignored',
  rawio: WHOLE,
};
/** The modification time of p+1.bin, and nginx's ETag for it (mtime and size in hex). */
const MTIME = new Date('2020-01-01T00:00:00Z');
const HTTP_MTIME = MTIME.toUTCString();
const ETAG = `"${(MTIME.getTime() / 1000).toString(16)}-${(4097).toString(16)}"`;
const BAD_PATH = {
  why: 'a target that is no path (a bad escape, NUL) is a 400 that keeps the connection (the request was framed); nginx closes after any 400',
  rawio: { end: 'open' },
} as const;
const BACKSLASH = {
  why: 'a backslash in any encoding is refused (403); nginx looks for a file of that name (404)',
  rawio: { status: 403 },
} as const;
const ABOVE = {
  why: 'a `..` above the root is a 403 that keeps the connection; nginx answers 400 and closes',
  rawio: { status: 403, end: 'open' },
} as const;
const TOO_LONG = {
  why: 'a name the filesystem cannot hold (ENAMETOOLONG: a component past 255 bytes, a path past 4 KiB) is 414; nginx answers 404',
  rawio: { status: 414 },
} as const;
const LEAVES = {
  why: 'a symlink that leaves the root is refused (403: openat2 RESOLVE_BENEATH); nginx follows it unless disable_symlinks is set',
  rawio: { status: 403 },
} as const;

const CASES: Case[] = [
  // ---- plain files, at every size
  ...['empty.bin', 'one.bin', 'p-1.bin', 'page.bin', 'p+1.bin', '64k+1.bin', 'big.bin'].map((f): Case => ({
    name: f,
    target: `/${f}`,
    transfer: true,
  })),
  { name: 'a name with a space, %-encoded', target: '/a%20b.txt', transfer: true },
  { name: 'a name with a space, raw', target: '/a b.txt' },
  { name: 'a name with %, encoded', target: '/100%25.txt', transfer: true },
  { name: 'a name with a +', target: '/a+b.txt', transfer: true },
  { name: 'a name with a +, encoded', target: '/a%2Bb.txt' },
  { name: 'a UTF-8 name, %-encoded', target: '/%C3%BC%E2%82%AC.txt', transfer: true },
  {
    name: 'a UTF-8 name, raw bytes',
    target: Buffer.from('/ü€.txt'),
    differs: {
      why: 'a request target is visible ASCII (RFC 9112): a raw byte past 0x7F is a 400 and the connection closes; nginx takes raw UTF-8',
      rawio: { status: 400, end: 'closed' },
    },
  },
  { name: 'a dotfile', target: '/.hidden', transfer: true },
  { name: 'a file in a dot directory', target: '/.git/config' },
  // mode 000: as root both servers read it (200), as another user both refuse it (403)
  { name: 'a file without read permission', target: '/locked.txt' },

  // ---- ranges
  ...['bytes=0-0', 'bytes=-1', 'bytes=5-', 'bytes=4095-4096', 'bytes=1-4096', 'bytes=4096-4096'].map((r) =>
    range('p+1.bin', r),
  ),
  range('p+1.bin', 'bytes=-0'),
  range('p+1.bin', 'bytes=4097-'),
  range('p+1.bin', 'bytes=9999-99999'),
  range('p+1.bin', 'bytes=-99999'),
  range('p+1.bin', 'bytes=5-2', INVALID),
  range('p+1.bin', 'bytes=0-0,2-3', MULTI),
  range('p+1.bin', 'bytes=0-0,-1', MULTI),
  range('p+1.bin', 'bytes=0-1, 0-1', MULTI),
  range('p+1.bin', 'bytes= 1-2'),
  range('p+1.bin', 'bytes=1 - 2'),
  range('p+1.bin', 'bytes=1-2 '),
  range('p+1.bin', 'bytes =1-2'),
  range('p+1.bin', 'BYTES=1-2'),
  range('p+1.bin', 'lines=1-2'),
  range('p+1.bin', 'bytes=x-2', INVALID),
  range('p+1.bin', 'bytes=-', INVALID),
  range('p+1.bin', 'bytes=1-2-3', INVALID),
  range('p+1.bin', 'bytes=99999999999999999999-'),
  range('p+1.bin', 'bytes=-99999999999999999999', HUGE),
  range('p+1.bin', 'bytes=0001-0002'),
  range('p+1.bin', 'bytes=1-2,', EMPTY_ELEMENT),
  range('p+1.bin', 'bytes=,1-2', EMPTY_ELEMENT),
  range('p+1.bin', 'bytes=\t1-2', {
    why: 'a tab around the numbers is let through as a space is; nginx answers 416 to a tab',
    rawio: { status: 206, length: '2', range: 'bytes 1-2/4097', body: { file: 'p+1.bin', from: 1, to: 2 } },
  }),
  range('p+1.bin', 'bytes=1-2;x', INVALID),
  range('p+1.bin', 'bytes=0-99999999999999999999', HUGE),
  range('empty.bin', 'bytes=0-0'),
  range('empty.bin', 'bytes=-1'),
  range('empty.bin', 'bytes=0-'),
  range('one.bin', 'bytes=0-'),
  range('one.bin', 'bytes=-5'),
  range('big.bin', 'bytes=65536-2097151'),
  range('big.bin', 'bytes=-70000'),
  {
    name: 'Range given twice',
    target: '/p+1.bin',
    fields: 'Range: bytes=0-0\r\nRange: bytes=1-1\r\n',
    transfer: true,
    differs: { why: 'a Range field given twice is ignored (200, the whole file); nginx takes the first', rawio: WHOLE },
  },
  {
    name: 'If-Range with another date',
    target: '/p+1.bin',
    fields: 'Range: bytes=0-0\r\nIf-Range: Sat, 01 Jan 2000 00:00:00 GMT\r\n',
  },
  {
    name: "If-Range with the file's date",
    target: '/p+1.bin',
    fields: `Range: bytes=0-0\r\nIf-Range: ${HTTP_MTIME}\r\n`,
    differs: NO_VALIDATORS,
  },
  {
    name: "If-Range with the file's ETag",
    target: '/p+1.bin',
    fields: `Range: bytes=0-0\r\nIf-Range: ${ETAG}\r\n`,
    differs: NO_VALIDATORS,
  },

  // ---- path normalisation
  { name: '/dir/../p+1.bin', target: '/dir/../p+1.bin' },
  { name: '/./one.bin', target: '/./one.bin' },
  { name: '//one.bin', target: '//one.bin' },
  { name: '/dir//x.txt', target: '/dir//x.txt' },
  { name: '/dir/%2e%2e/one.bin', target: '/dir/%2e%2e/one.bin' },
  { name: '/dir%2Fx.txt', target: '/dir%2Fx.txt' },
  { name: '/one.bin%00', target: '/one.bin%00', differs: BAD_PATH },
  { name: '/one.bin%00.txt', target: '/one.bin%00.txt', differs: BAD_PATH },
  { name: 'an invalid escape %zz', target: '/%zz', differs: BAD_PATH },
  { name: 'a cut escape %4', target: '/one.bin%4', differs: BAD_PATH },
  { name: 'escaped letters', target: '/%6Fne.bin' },
  { name: 'a query', target: '/one.bin?x=1&y=/../..' },
  { name: 'a fragment', target: '/one.bin#frag' },
  { name: 'a trailing slash on a file', target: '/one.bin/' },
  { name: 'a file then /.', target: '/one.bin/.' },
  { name: 'a directory with an index, with a slash', target: '/dir/', transfer: true },
  {
    name: 'a directory with an index, without a slash',
    target: '/dir',
    differs: {
      why: 'a directory without its trailing slash is served as with it (no 301 redirect)',
      rawio: { status: 200, length: '13', body: { file: 'dir/index.html' } },
    },
  },
  { name: 'the root', target: '/', differs: undefined },
  {
    name: 'a directory without an index, with a slash',
    target: '/noindex/',
  },
  {
    name: 'a directory without an index, without a slash',
    target: '/noindex',
    differs: {
      why: 'a directory without its trailing slash is refused as with it (403, no 301 redirect)',
      rawio: { status: 403 },
    },
  },
  { name: 'absolute-form target', target: 'http://h/one.bin' },
  { name: 'absolute-form target without a path', target: 'http://h' },
  { name: 'asterisk-form target', target: '*' },
  { name: 'a relative target', target: 'one.bin' },
  { name: 'a missing file', target: '/nope' },
  { name: 'a backslash', target: '/dir\\x.txt', differs: BACKSLASH },

  // ---- out of the root, by every spelling
  ...(
    [
      ['/../secret.txt', ABOVE],
      ['/%2e%2e/secret.txt', ABOVE],
      ['/%2E%2E/secret.txt', ABOVE],
      ['/.%2e/secret.txt', ABOVE],
      ['/..%2fsecret.txt', ABOVE],
      ['/dir/../../secret.txt', ABOVE],
      ['/dir/%2e%2e/%2e%2e/secret.txt', ABOVE],
      ['/..%5csecret.txt', BACKSLASH],
      ['/%252e%252e/secret.txt', undefined],
      ['http://h/../secret.txt', ABOVE],
      ['/out-link', LEAVES],
      ['/dir/up/secret.txt', LEAVES],
    ] as const
  ).map(([t, differs]): Case => ({ name: `out of the root: ${t}`, target: t, ...(differs ? { differs } : {}) })),
  { name: 'a symlink inside the root', target: '/in-link', transfer: true },
  { name: 'a file through a symlink to a directory inside the root', target: '/dir-link/x.txt' },
  { name: 'a symlink to a directory inside the root, with a slash', target: '/dir-link/' },
  { name: 'a directory whose index.html leaves the root', target: '/out-index/', differs: LEAVES },
  {
    name: 'a directory whose index.html is a directory',
    target: '/dir-index/',
    differs: {
      why: 'an index.html that is no regular file is refused (403), with no redirect; nginx answers 301 to /dir-index/index.html/',
      rawio: { status: 403 },
    },
  },
  {
    name: 'a symlink with an absolute target inside the root',
    target: '/abs-link',
    differs: {
      why: 'a symlink with an absolute target is refused (403) even when it lands inside the root: RESOLVE_BENEATH judges the link itself; nginx follows it',
      rawio: { status: 403 },
    },
  },
  { name: 'a symlink to itself', target: '/loop' },
  { name: 'a dangling symlink', target: '/dangling' },

  // ---- not regular files
  {
    name: 'a FIFO',
    target: '/fifo',
    differs: {
      why: 'what is no regular file or directory is refused with 403; nginx answers 404',
      rawio: { status: 403 },
    },
  },
  {
    name: 'a directory whose index.html is a FIFO',
    target: '/fifo-index/',
    differs: {
      why: 'what is no regular file or directory is refused with 403; nginx answers 404',
      rawio: { status: 403 },
    },
  },
  {
    name: 'a socket',
    target: '/sock',
    differs: {
      why: 'what is no regular file or directory is refused with 403; nginx answers 500 and closes',
      rawio: { status: 403, end: 'open' },
    },
  },

  // ---- methods
  ...['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'BREW'].map((m): Case => ({
    name: `${m} of a file`,
    target: '/one.bin',
    method: m,
  })),
  { name: 'POST with a body', target: '/one.bin', method: 'POST', fields: 'Content-Length: 5\r\n\r\nhello' },
  {
    name: 'a lower-case get',
    target: '/one.bin',
    method: 'get',
    differs: {
      why: 'methods are case-sensitive: `get` is one rawio does not serve (405); nginx takes it as malformed (400, close)',
      rawio: { status: 405, end: 'open' },
    },
  },

  // ---- framing
  { name: 'GET with a body', target: '/one.bin', fields: 'Content-Length: 5\r\n\r\nhello' },
  {
    name: 'GET with a chunked body',
    target: '/one.bin',
    fields: 'Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  },
  { name: 'HTTP/1.1 without Host', raw: 'GET /one.bin HTTP/1.1\r\n\r\n', target: '' },
  { name: 'Host twice', target: '/one.bin', fields: 'Host: y\r\n' },
  { name: 'a name of 300 bytes', target: `/${'a'.repeat(300)}`, differs: TOO_LONG },
  { name: 'a path of 5000 bytes', target: `/${'a/'.repeat(2500)}`, differs: TOO_LONG },
  { name: 'a path parameter', target: '/one.bin;x=1' },

  // ---- connection
  { name: 'Connection: close', target: '/one.bin', fields: 'Connection: close\r\n', transfer: true },
  { name: 'HTTP/1.0', raw: 'GET /one.bin HTTP/1.0\r\n\r\n', target: '' },
  { name: 'HTTP/1.0 keep-alive', raw: 'GET /one.bin HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', target: '' },

  // ---- conditional requests
  {
    name: 'If-Modified-Since another date',
    target: '/p+1.bin',
    fields: 'If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n',
  },
  {
    name: "If-Modified-Since the file's date",
    target: '/p+1.bin',
    fields: `If-Modified-Since: ${HTTP_MTIME}\r\n`,
    differs: NO_VALIDATORS,
  },
  {
    name: "If-None-Match the file's ETag",
    target: '/p+1.bin',
    fields: `If-None-Match: ${ETAG}\r\n`,
    differs: NO_VALIDATORS,
  },
  { name: 'If-None-Match another ETag', target: '/p+1.bin', fields: 'If-None-Match: "x"\r\n' },
];

/** The request bytes of `k` for `method`. */
function request(k: Case, method: string): Buffer {
  if (k.raw !== undefined) return Buffer.from(k.raw.replace(/^GET/, method), 'latin1');
  const target = typeof k.target === 'string' ? Buffer.from(k.target, 'latin1') : k.target;
  return Buffer.concat([
    Buffer.from(`${method} `),
    target,
    Buffer.from(` HTTP/1.1\r\nHost: x\r\n${k.fields ?? ''}`),
    Buffer.from(k.fields?.includes('\r\n\r\n') ? '' : '\r\n'),
  ]);
}

/** Each case as GET and HEAD (or its own method), with its name. */
const SENDS = CASES.flatMap((k) =>
  (k.method ? [k.method] : ['GET', 'HEAD']).map((method) => ({
    k,
    method,
    head: method === 'HEAD',
    title: `${method} ${k.name}${k.differs ? ` — differs: ${k.differs.why}` : ''}`,
  })),
);
type Send = (typeof SENDS)[number];

/** What rawio should answer to `s`, given nginx's answer. */
function expected(s: Send, nginx: Outcome): Outcome {
  const d = s.k.differs?.rawio;
  if (!d) return nginx;
  const { body, ...rest } = d;
  const o: Outcome = { ...nginx, ...rest };
  if (o.status !== 200 && o.status !== 206) {
    delete o.length;
    delete o.range;
    delete o.body;
  } else if (o.status === 200) delete o.range;
  if (body && !s.head) {
    const bytes = FILES[body.file]!;
    o.body = digest(bytes.subarray(body.from ?? 0, (body.to ?? bytes.length - 1) + 1));
  }
  if (s.head) delete o.body;
  return o;
}

/** Runs `fn` over `items`, `n` at a time. */
async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** A sparse file of `size` bytes (holes read as zeros): large without costing disk. */
function sparse(path: string, size: number): void {
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, size);
    writeSync(fd, Buffer.from('start'), 0, 5, 0);
  } finally {
    closeSync(fd);
  }
}

/**
 * The sizes of the files that change: large enough that what loopback buffers (and a
 * method's reads ahead) hold when the file changes is a small part of the one truncated and
 * of the one ahead of it in the queue; the queued one and the grown one need not be.
 */
const CHANGING = { truncate: 16 * MiB, grow: 4 * MiB, 'truncate queued': MiB, lead: 16 * MiB };

type Change = 'truncate' | 'grow' | 'truncate queued';
const CHANGES: Change[] = ['truncate', 'grow', 'truncate queued'];

/**
 * GET of a file that is truncated (to a page and a byte: no multiple of what O_DIRECT
 * aligns to) or grown (by 1 MiB) once the first bytes of its answer have arrived; 'truncate
 * queued': GET of another large file with the GET of this one pipelined behind it, this one
 * truncated once the first bytes of the other's answer have arrived (after its request was
 * sent, before its answer's turn). The outcome's body is 'short' when the connection was
 * closed before Content-Length bytes came.
 */
async function changing(port: number, dir: string, name: string, how: Change): Promise<Outcome> {
  const path = join(dir, name);
  const lead = how === 'truncate queued' ? `${name}-lead` : undefined;
  sparse(path, CHANGING[how]);
  if (lead) sparse(join(dir, lead), CHANGING.lead);
  const get = (n: string) => `GET /${n} HTTP/1.1\r\nHost: x\r\n\r\n`;
  const got = await ask(
    port,
    Buffer.from(`${lead ? get(lead) : ''}${get(name)}`),
    false,
    () => {
      const fd = openSync(path, 'r+');
      try {
        ftruncateSync(fd, how === 'grow' ? CHANGING.grow + MiB : 4 * KiB + 1);
      } finally {
        closeSync(fd);
      }
    },
    lead ? 1 : 0,
  );
  rmSync(path, { force: true });
  if (lead) rmSync(join(dir, lead), { force: true });
  // How much came before the close depends on the buffers: only 'short' is compared.
  if (got.body?.startsWith('short ')) got.body = 'short';
  return got;
}

/**
 * rawio opens a file when its request is read, which can be before the answers ahead of it
 * are sent; nginx opens it when its turn comes. A file truncated in between: nginx sends
 * what is left, rawio cuts the answer short and closes.
 */
const QUEUED_SHORT = `status 200 | length ${CHANGING['truncate queued']} | body short | closed`;

describe.skipIf(why.nginx)(
  titled('static: rawio against nginx, request by request, on every model and transfer method', why.nginx),

  () => {
    let base: string;
    let root: string;
    let nginx: ChildProcess | undefined;
    let sock: net.Server | undefined;
    const want = new Map<Send, Outcome>();
    const wantChanging = new Map<Change, Outcome>();

    beforeAll(async () => {
      base = mkdtempSync(join(tmpdir(), 'rawio-static-nginx-'));
      root = join(base, 'root');
      for (const [name, data] of Object.entries(FILES)) {
        mkdirSync(join(root, name, '..'), { recursive: true });
        writeFileSync(join(root, name), data);
      }
      chmodSync(join(root, 'locked.txt'), 0o000);
      utimesSync(join(root, 'p+1.bin'), MTIME, MTIME);
      writeFileSync(join(base, 'secret.txt'), 'SECRET\n');
      symlinkSync(join(base, 'secret.txt'), join(root, 'out-link'));
      symlinkSync('p+1.bin', join(root, 'in-link'));
      symlinkSync(base, join(root, 'dir', 'up'));
      symlinkSync('dir', join(root, 'dir-link'));
      symlinkSync(join(root, 'one.bin'), join(root, 'abs-link'));
      symlinkSync('loop', join(root, 'loop'));
      symlinkSync('nowhere', join(root, 'dangling'));
      mkdirSync(join(root, 'dir-index', 'index.html'), { recursive: true });
      mkdirSync(join(root, 'fifo-index'));
      spawnSync('mkfifo', [join(root, 'fifo-index', 'index.html')]);
      mkdirSync(join(root, 'out-index'));
      symlinkSync(join(base, 'secret.txt'), join(root, 'out-index', 'index.html'));
      spawnSync('mkfifo', [join(root, 'fifo')]);
      sock = net.createServer().listen(join(root, 'sock'));
      await new Promise((r) => sock!.once('listening', r));

      const port = await freePort();
      const prefix = join(base, 'nginx');
      mkdirSync(join(prefix, 'logs'), { recursive: true });
      const conf = join(prefix, 'nginx.conf');
      writeFileSync(
        conf,
        `daemon off;\nmaster_process off;\nworker_processes 1;\nerror_log ${prefix}/logs/error.log crit;\n` +
          `pid ${prefix}/nginx.pid;\nevents { worker_connections 1024; }\n` +
          `http { access_log off; keepalive_requests 100000; keepalive_timeout 60s;\n` +
          `  client_body_temp_path ${prefix}; proxy_temp_path ${prefix}; fastcgi_temp_path ${prefix};\n` +
          `  uwsgi_temp_path ${prefix}; scgi_temp_path ${prefix};\n` +
          `  default_type application/octet-stream; sendfile on;\n` +
          `  server { listen 127.0.0.1:${port}; root "${root}"; location / { } } }\n`,
      );
      nginx = spawn(NGINX, ['-p', prefix, '-c', conf], { stdio: 'ignore' });
      const up = await eventually(async () => {
        try {
          return (await ask(port, Buffer.from(PROBE), false)).end === 'open';
        } catch {
          return false;
        }
      }, 20_000);
      if (!up) throw new Error(`nginx did not answer on port ${port}`);
      await pool(SENDS, 8, async (s) => {
        want.set(s, await ask(port, request(s.k, s.method), s.head));
      });
      for (const how of CHANGES)
        wantChanging.set(how, await changing(port, root, `changing-nginx-${how.replace(' ', '-')}.bin`, how));
    });

    afterAll(async () => {
      if (nginx) {
        nginx.kill('SIGKILL');
        await exited(nginx);
      }
      sock?.close();
      if (base) rmSync(base, { recursive: true, force: true });
    });

    it('nginx sends files and cuts a truncated one short, as the cases assume', () => {
      expect(shown(want.get(SENDS.find((s) => s.k.name === 'big.bin' && !s.head)!)!)).toBe(
        `status 200 | length ${FILES['big.bin']!.length} | body ${digest(FILES['big.bin']!)} | open`,
      );
      expect(shown(wantChanging.get('truncate')!)).toBe(
        `status 200 | length ${CHANGING.truncate} | body short | closed`,
      );
      expect(shown(wantChanging.get('truncate queued')!)).toMatch(
        /^status 200 \| length 4097 \| body 4097 bytes \w+ \| open$/,
      );
    });

    it('each named difference is one: nginx answers otherwise', () => {
      const same = SENDS.filter((s) => s.k.differs && shown(expected(s, want.get(s)!)) === shown(want.get(s)!));
      expect(same.map((s) => s.title)).toEqual([]);
    });

    // proactor and multi-proactor send every body with their ring (no transfer method): once
    // each. A model's servers, one per method, start and stop together.
    const ringModels: readonly string[] = ['proactor', 'multi-proactor'];
    const methods = transferMethodNames.filter((t) => t !== 'auto');

    describe.each(modelNames)('%s', (model) => {
      const transfers: (TransferMethodName | 'its ring')[] = ringModels.includes(model) ? ['its ring'] : methods;
      const servers = new Map<string, Server>();
      /** The fds open before the servers: every one they open (files, pipes, rings) must be closed after. */
      let before: Map<number, string>;
      beforeAll(async () => {
        before = openFds();
        await Promise.all(
          transfers.map(async (transfer) => {
            const how = transfer === 'its ring' ? {} : { transfer };
            servers.set(transfer, await serve({ model, protocol: 'static', root, workers: 1, pool: 1, ...how }));
          }),
        );
      });
      afterAll(async () => {
        await Promise.all([...servers.values()].map((s) => s.close()));
        // the clients' sockets close a moment after they are destroyed
        await eventually(() => leakedSince(before).length === 0, 10_000);
        expect(leakedSince(before)).toEqual([]);
      });

      // The first method runs every case; the others those that reach a transfer.
      it.each(transfers)('%s: answers the cases as nginx does', async (transfer) => {
        const port = servers.get(transfer)!.port;
        const failures: string[] = [];
        await pool(
          SENDS.filter((s) => transfer === transfers[0] || s.k.transfer),
          4,
          async (s) => {
            const got = shown(await ask(port, request(s.k, s.method), s.head));
            const exp = shown(expected(s, want.get(s)!));
            if (got !== exp) failures.push(`${s.title}\n  nginx-based: ${exp}\n  rawio:       ${got}`);
          },
        );
        expect(failures.join('\n')).toBe('');
      });

      it.each(transfers)('%s: a file truncated or grown while it is sent, as nginx', async (transfer) => {
        const port = servers.get(transfer)!.port;
        for (const how of CHANGES) {
          const name = `changing-${model}-${transfer}-${how}.bin`.replaceAll(' ', '-');
          const got = shown(await changing(port, root, name, how));
          // 'truncate queued' differs on purpose when rawio opened the file early (QUEUED_SHORT)
          if (how === 'truncate queued' && got === QUEUED_SHORT) continue;
          expect(got, how).toBe(shown(wantChanging.get(how)!));
        }
      });
    });
  },
);
