/**
 * rawio's HTTP/1.1 request framing against two references, on every model: node:http
 * (llhttp, strict: `insecureHTTPParser: false`, its head limit set to rawio's 8 KiB) and
 * nginx where it is installed. Each case is one connection: its bytes written at once, a
 * probe request after them (`GET /probe`: answered only if the connection is still open
 * and framed where it should be), then a half-close, then everything read until the server
 * closes. rawio runs an echoing handler (test/fixtures/user/echo-request.mjs) and the
 * node:http server echoes its own requests the same way, so what is compared is the framing
 * decision itself: how many requests each server saw, each one's method, target, version
 * and body bytes, and for rejected input its status (400, 413, 414, 431, 501, 505) and that
 * nothing after it was answered. nginx cannot echo: it answers `return 204`, and only the
 * statuses are compared. Interim responses (`100 Continue`) are left out: node:http sends
 * one whenever it is asked, rawio only while the body has not arrived.
 *
 * Where rawio differs on purpose (docs/PROTOCOLS.md, "HTTP framing against node:http and
 * nginx"), the case names the difference and holds rawio to its own answer instead. On the
 * points where two parsers that disagree let a request be smuggled past a proxy (both
 * framings, Content-Length twice, chunk sizes, bare CR or LF, obs-fold), rawio takes RFC
 * 9112's strict answer: 400 and close.
 *
 * A seeded generator adds mutations of valid requests; there rawio must frame what llhttp
 * frames, or refuse sooner (it is the stricter of the two on targets, Host values and
 * versions), never frame a request llhttp refuses (but for a method llhttp does not know)
 * or frame one differently.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpCodec, modelNames, serve, type Server } from '../helpers/rawio.js';
import { titled, why } from '../helpers/skips.js';
import { exited } from '../helpers/procs.js';
import { freePort } from '../../dist/bench/lib/external.js';
import { eventually } from '../helpers/wait.js';
import { feed, hex, splits } from './feed.js';
// @ts-expect-error: a JavaScript fixture without types
import { echo } from '../fixtures/user/echo-request.mjs';

const HANDLER = new URL('../fixtures/user/echo-request.mjs', import.meta.url);
const NGINX = '/usr/sbin/nginx';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const PROBE = 'GET /probe HTTP/1.1\r\nHost: p\r\n\r\n';

/** One response per line: `200 [method, target, version, body]` for an echo, the status alone otherwise. */
function responses(data: Buffer): string {
  const out: string[] = [];
  for (let i = 0; i < data.length;) {
    const end = data.indexOf('\r\n\r\n', i);
    if (end < 0 || data.toString('latin1', i, i + 5) !== 'HTTP/') {
      out.push(`<unparsed ${JSON.stringify(data.toString('latin1', i, i + 60))}>`);
      break;
    }
    const head = data.toString('latin1', i, end + 2);
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length:[ \t]*(\d+)\r\n/i.exec(head);
    const bodiless = status < 200 || status === 204;
    i = end + 4 + (bodiless ? 0 : length ? Number(length[1]) : data.length);
    if (status < 200) continue; // interim (see the file comment)
    const e = /\r\nx-echo:[ \t]*(\S+)\r\n/i.exec(head);
    out.push(e ? `${status} ${Buffer.from(e[1]!, 'base64').toString()}` : String(status));
  }
  return out.join('\n');
}

/** The statuses of `responses`, one per line: what nginx, which cannot echo, is compared on. */
const statuses = (r: string): string =>
  r
    .split('\n')
    .filter(Boolean)
    .map((l) => (l.startsWith('204') ? '200' : l.slice(0, 3))) // nginx's 204 is its 200 (no body, for HEAD)
    .join('\n');

/** Connects, writes `send` at once, half-closes, reads until the server closes: the responses. */
function talk(port: number, send: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const c = net.connect(port, '127.0.0.1', () => c.end(send));
    const timer = setTimeout(() => {
      c.destroy();
      const sent = JSON.stringify(send.toString('latin1', 0, 80));
      reject(new Error(`no close within 15 s after sending ${sent}: ${responses(Buffer.concat(chunks))}`));
    }, 15_000);
    c.on('data', (d: Buffer) => chunks.push(d));
    c.on('close', () => {
      clearTimeout(timer);
      resolve(responses(Buffer.concat(chunks)));
    });
    c.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') return; // 'close' follows
      clearTimeout(timer);
      reject(e);
    });
  });
}

/**
 * node:http echoing each request as the rawio handler does. A parse error is answered as
 * node:http's own clientError handler would (431 for a head too large, else 400), but only
 * after the responses to the requests before it (node:http's default writes it at once,
 * over a response still being made), and not at all for a request cut short by the end of
 * the stream (HPE_INVALID_EOF_STATE): rawio closes such a connection without a word.
 */
function llhttpServer(): http.Server {
  /** Per connection, the responses being written: those of the requests whose body has ended. */
  const writing = new WeakMap<net.Socket, Promise<void>[]>();
  const server = http.createServer({ insecureHTTPParser: false, maxHeaderSize: 8192 }, (req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const list = writing.get(req.socket) ?? [];
      writing.set(req.socket, list);
      list.push(new Promise<void>((done) => res.on('close', done)));
      res.writeHead(200, {
        'x-echo': echo(req.method, req.url, req.httpVersion, Buffer.concat(parts)),
        'content-length': 0,
      });
      res.end();
    });
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    if (err.code === 'HPE_INVALID_EOF_STATE') {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    // The bodies of the requests before the bad one end on a later tick: wait for them (a
    // request whose body is the bad part never ends, and is not waited for).
    setImmediate(() => {
      void Promise.all(writing.get(socket) ?? []).then(() => {
        if (!socket.writable) socket.destroy();
        else socket.end(`HTTP/1.1 ${status} Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      });
    });
  });
  return server;
}

/** nginx on one process, `return 204` for every request (no body: a HEAD response is framed as any other), limits as rawio's where they have one. */
async function startNginx(): Promise<{ port: number; child: ChildProcess; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'rawio-httpdiff-'));
  mkdirSync(join(dir, 'logs'));
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;\nmaster_process off;\nworker_processes 1;\nerror_log ${dir}/logs/error.log crit;\n` +
      `pid ${dir}/nginx.pid;\nevents { worker_connections 256; }\n` +
      `http { access_log off; client_max_body_size 8m; large_client_header_buffers 4 8k;\n` +
      `  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir};\n` +
      `  uwsgi_temp_path ${dir}; scgi_temp_path ${dir};\n` +
      `  server { listen 127.0.0.1:${port}; location / { return 204; } } }\n`,
  );
  const child = spawn(NGINX, ['-p', dir, '-c', conf], { stdio: 'ignore' });
  const up = await eventually(async () => {
    try {
      return (await talk(port, b(PROBE))) === '204';
    } catch {
      return false;
    }
  }, 20_000);
  if (!up) throw new Error(`nginx did not answer on port ${port}`);
  return { port, child, dir };
}

interface Case {
  name: string;
  send: Buffer;
  /** Set where rawio differs from llhttp on purpose: why, and rawio's own responses. */
  llhttp?: { why: string; rawio: string };
  /** Set where rawio's statuses differ from nginx's on purpose: why. */
  nginx?: string;
}

/** A case: its bytes, then the probe. */
const c = (name: string, send: string | Buffer, o: Omit<Case, 'name' | 'send'> = {}): Case => ({
  name,
  send: Buffer.concat([typeof send === 'string' ? b(send) : send, b(PROBE)]),
  ...o,
});

/** rawio's echo of one request, as `responses` shows it. */
const ok = (method: string, target: string, version: string, body = ''): string =>
  `200 ${JSON.stringify([method, target, version, body])}`;
const PROBED = ok('GET', '/probe', '1.1');
/** The responses: lines joined. */
const r = (...lines: string[]): string => lines.join('\n');

const get = (target = '/', fields = '', version = 'HTTP/1.1'): string =>
  `GET ${target} ${version}\r\nHost: h\r\n${fields}\r\n`;
const post = (fields: string, body: string): string => `POST /p HTTP/1.1\r\nHost: h\r\n${fields}\r\n${body}`;
const TE = 'Transfer-Encoding: chunked\r\n';
const chunked = (body: string, fields = TE): string => post(fields, body);

// The differences, each named once (docs/PROTOCOLS.md lists them).
const WHY_METHOD = 'rawio takes any token as a method (RFC 9110 9.1); llhttp knows a fixed list';
const WHY_VERSION_MINOR =
  'rawio serves HTTP/1.x for any digit x as 1.1 (RFC 9110 2.5: a minor version it does not know is served as the highest it does); llhttp refuses it';
const WHY_MAJOR =
  'rawio answers a major version other than 1 with 505 (RFC 9110 15.6.6); llhttp serves HTTP/0.9 and 2.0 requests and refuses 3.0 with 400';
const WHY_09 =
  'a request line without a version is a 400: rawio serves no HTTP/0.9; llhttp does, and nginx answers it in HTTP/0.9 (no status line)';
const WHY_413 = 'rawio refuses a body declared past maxBody (8 MiB) at once; llhttp has no limit and waits for it';
const WHY_CODING =
  'rawio decodes no coding but chunked: a coding before chunked is a 501, as nginx answers; llhttp passes the coded body on';
const WHY_TE10 =
  'Transfer-Encoding in an HTTP/1.0 request is a 400 (RFC 9112 6.1: its framing is faulty), as nginx answers; llhttp decodes it';
const WHY_EXT =
  'rawio takes chunk extensions as RFC 9112 7.1.1 writes them: whitespace before `;` and around `=` (llhttp refuses it), a value after every `=` (llhttp takes none)';
const WHY_HUGE_CHUNK =
  'a chunk size past 2^53 is a 400 (rawio cannot hold it exactly), as nginx answers; llhttp takes sizes up to 2^64 - 1 and waits for the data';
const WHY_TRAILER =
  'rawio drops trailer fields unread, Content-Length among them (RFC 9110 6.5.1: never merged into the head); llhttp refuses that one';
const WHY_SPACES = 'rawio takes a request line of single spaces only (RFC 9112 3); llhttp and nginx take runs of them';
const WHY_HOSTS = 'two Host fields are a 400 (RFC 9112 3.2: a MUST), as nginx answers; llhttp takes them';
const WHY_TARGET = 'rawio takes a request target only in the form its method allows (RFC 9112 3.2); llhttp takes any';
const WHY_HOST = 'rawio refuses a Host value that is no host (RFC 9112 3.2: a 400), as nginx does; llhttp takes any';
const WHY_414 =
  'a request line past the head limit is a 414 (RFC 9112 3: a target too long), as nginx answers; llhttp counts it in the head (431)';
const WHY_417 =
  'rawio answers an expectation it cannot meet with 417 and goes on (the request is whole); node:http closes after its 417, nginx ignores Expect';
const NGX_CHUNKED =
  "nginx's `return` discards a chunked body without checking its lines (whitespace after a size, bare LF, controls, trailers that are no fields, sizes past its limit); rawio refuses them as llhttp does";
const NGX_RETURN = "nginx's `return` answers before the body has come";
const NGX_TE =
  'nginx answers any Transfer-Encoding but exactly `chunked` with 501; rawio decodes a list ending in one chunked (RFC 9110 5.6.1) and answers one whose last coding is not chunked, or chunked twice, with 400 (RFC 9112 6.3)';
const NGX_TAB = 'nginx refuses a tab before a Content-Length value (RFC 9110 5.5 allows it)';
const NGX_LF =
  "nginx takes a bare LF as a head line's end (RFC 9112 2.2 allows it); rawio refuses it, as llhttp does: a parser that does not would see other fields";
const NGX_FIELDS =
  'nginx skips a field line it finds invalid (ignore_invalid_headers) and takes control bytes in values; rawio refuses them, as llhttp does';
const NGX_SPACES = 'nginx takes runs of spaces in a request line, and after it; rawio and llhttp do not (RFC 9112 3)';
const NGX_METHOD = 'nginx refuses a method with bytes other than upper-case letters, _ and -';
const NGX_OBS_TEXT =
  'nginx takes bytes past ASCII in a target; rawio and llhttp refuse them (RFC 9112 3.2: visible ASCII)';
const NGX_EMPTY_HOST = 'nginx refuses an empty Host; RFC 9110 7.2 allows one';
const NGX_STAR = 'nginx refuses the asterisk-form of OPTIONS';
const NGX_VERSION =
  'nginx reads a version as numbers (1.10 is a 1.x); rawio and llhttp take one digit each (RFC 9112 2.3)';
const NGX_431 = 'nginx answers a head past its buffers with 400; rawio answers 431 (RFC 6585), as llhttp does';
const NGX_ABSOLUTE = 'nginx takes an absolute-form target of any scheme';

const CASES: Case[] = [
  // ---- plain requests and pipelining
  c('GET', get()),
  c(
    'GET, HEAD, DELETE, OPTIONS pipelined',
    get('/a') +
      get('/b').replace('GET', 'HEAD') +
      get('/c').replace('GET', 'DELETE') +
      get('*').replace('GET', 'OPTIONS'),
    { nginx: NGX_STAR },
  ),
  c('POST with Content-Length', post('Content-Length: 5\r\n', 'hello')),
  c('POST with Content-Length: 0', post('Content-Length: 0\r\n', '')),
  c('POST without a length: no body, what follows is the next request', post('', '')),
  c('GET with a body', get('/', 'Content-Length: 3\r\n') + 'abc'),
  c('a body of binary bytes, CRLF and NUL among them', post('Content-Length: 8\r\n', '\r\n\0\xff\r\n\n\r')),
  c('a body that looks like a request', post('Content-Length: 33\r\n', 'GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n')),
  c('empty lines before a request line', '\r\n\r\n' + get()),
  c('a bare LF before a request line', '\n' + get()),
  c('three requests in one write', get('/1') + post('Content-Length: 1\r\n', 'x') + get('/3')),
  c(
    'Content-Length shorter than the data: the rest is the next request',
    post('Content-Length: 2\r\n', 'abGET /x HTTP/1.1\r\nHost: h\r\n\r\n'),
  ),
  c('Content-Length longer than the data: the probe becomes body', post('Content-Length: 40\r\n', 'abc'), {
    nginx: NGX_RETURN,
  }),

  // ---- Content-Length
  c('Content-Length twice, equal', post('Content-Length: 5\r\nContent-Length: 5\r\n', 'hello')),
  c('Content-Length twice, different', post('Content-Length: 5\r\nContent-Length: 6\r\n', 'hello!')),
  c('Content-Length twice, in one field', post('Content-Length: 5, 5\r\n', 'hello')),
  c('Content-Length: 5,5', post('Content-Length: 5,5\r\n', 'hello')),
  c('Content-Length: +5', post('Content-Length: +5\r\n', 'hello')),
  c('Content-Length: -1', post('Content-Length: -1\r\n', 'hello')),
  c('Content-Length with spaces around it', post('Content-Length:    5   \r\n', 'hello')),
  c('Content-Length with a tab before it', post('Content-Length:\t5\r\n', 'hello'), { nginx: NGX_TAB }),
  c('Content-Length: 5 5', post('Content-Length: 5 5\r\n', 'hello')),
  c('Content-Length: 0x5', post('Content-Length: 0x5\r\n', 'hello')),
  c('Content-Length: 5.0', post('Content-Length: 5.0\r\n', 'hello')),
  c('Content-Length: 1e1', post('Content-Length: 1e1\r\n', 'hello')),
  c('Content-Length with leading zeros', post('Content-Length: 0005\r\n', 'hello')),
  c('an empty Content-Length', post('Content-Length: \r\n', 'hello')),
  c('Content-Length past maxBody (8 MiB)', post('Content-Length: 9437184\r\n', 'hello'), {
    llhttp: { why: WHY_413, rawio: '413' },
  }),
  c('Content-Length of 20 digits', post('Content-Length: 99999999999999999999\r\n', 'hello')),
  c('Content-Length past 2^64', post('Content-Length: 18446744073709551621\r\n', 'hello')),
  c('Content-Length with obs-text', post('Content-Length: 5\xa0\r\n', 'hello')),

  // ---- Transfer-Encoding, with and without Content-Length
  c('chunked', chunked('5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n')),
  c('Chunked in another case', chunked('5\r\nhello\r\n0\r\n\r\n', 'Transfer-Encoding: ChUnKeD\r\n')),
  c('chunked, an empty body', chunked('0\r\n\r\n')),
  c('Content-Length then Transfer-Encoding', chunked('5\r\nhello\r\n0\r\n\r\n', 'Content-Length: 5\r\n' + TE)),
  c('Transfer-Encoding then Content-Length', chunked('5\r\nhello\r\n0\r\n\r\n', TE + 'Content-Length: 5\r\n')),
  c('Transfer-Encoding with Content-Length: 0', chunked('0\r\n\r\n', TE + 'Content-Length: 0\r\n')),
  c('Transfer-Encoding in HTTP/1.0', 'POST /p HTTP/1.0\r\n' + TE + '\r\n5\r\nhello\r\n0\r\n\r\n', {
    llhttp: { why: WHY_TE10, rawio: '400' },
  }),
  c(
    'Transfer-Encoding: chunked, identity',
    chunked('5\r\nhello\r\n0\r\n\r\n', 'Transfer-Encoding: chunked, identity\r\n'),
    { nginx: NGX_TE },
  ),
  c('Transfer-Encoding: identity', post('Transfer-Encoding: identity\r\nContent-Length: 5\r\n', 'hello'), {
    nginx: NGX_TE,
  }),
  c('Transfer-Encoding: gzip, chunked', chunked('5\r\nhello\r\n0\r\n\r\n', 'Transfer-Encoding: gzip, chunked\r\n'), {
    llhttp: { why: WHY_CODING, rawio: '501' },
  }),
  c('Transfer-Encoding: chunked twice, in two fields', chunked('5\r\nhello\r\n0\r\n\r\n', TE + TE)),
  c(
    'Transfer-Encoding: chunked, chunked',
    chunked('5\r\nhello\r\n0\r\n\r\n', 'Transfer-Encoding: chunked, chunked\r\n'),
    { nginx: NGX_TE },
  ),
  c('Transfer-Encoding: xchunked', chunked('5\r\nhello\r\n0\r\n\r\n', 'Transfer-Encoding: xchunked\r\n'), {
    nginx: NGX_TE,
  }),
  c(
    'Transfer-Encoding with an empty list element',
    chunked('5\r\nhello\r\n0\r\n\r\n', 'Transfer-Encoding: , chunked\r\n'),
    { nginx: NGX_TE },
  ),
  c(
    'Transfer-Encoding with a tab before chunked',
    chunked('5\r\nhello\r\n0\r\n\r\n', 'Transfer-Encoding:\tchunked\r\n'),
    { nginx: NGX_TE },
  ),
  c(
    'Transfer-Encoding: chunked with a trailing space',
    chunked('5\r\nhello\r\n0\r\n\r\n', 'Transfer-Encoding: chunked \r\n'),
  ),
  c(
    'Transfer-Encoding with a space before the colon',
    chunked('5\r\nhello\r\n0\r\n\r\n', 'Transfer-Encoding : chunked\r\n'),
  ),
  c('Transfer_Encoding is another field', chunked('5\r\nhello\r\n0\r\n\r\n', 'Transfer_Encoding: chunked\r\n')),
  c(
    'Transfer-Encoding folded onto a second line',
    chunked('5\r\nhello\r\n0\r\n\r\n', 'Transfer-Encoding:\r\n chunked\r\n'),
  ),

  // ---- chunk sizes and lines
  c('chunk extensions', chunked('5;a=1;b="x y"\r\nhello\r\n0;z\r\n\r\n')),
  c('chunk extension after whitespace', chunked('5 ;a=1\r\nhello\r\n0\r\n\r\n'), {
    llhttp: { why: WHY_EXT, rawio: r(ok('POST', '/p', '1.1', 'hello'), PROBED) },
  }),
  c('chunk extension with a quoted pair', chunked('5;a="x\\"y";b=z\r\nhello\r\n0\r\n\r\n')),
  c('chunk extension with whitespace around =', chunked('5;a = 1\r\nhello\r\n0\r\n\r\n'), {
    llhttp: { why: WHY_EXT, rawio: r(ok('POST', '/p', '1.1', 'hello'), PROBED) },
  }),
  c('chunk extension with an empty value', chunked('5;a=\r\nhello\r\n0\r\n\r\n'), {
    llhttp: { why: WHY_EXT, rawio: '400' },
    nginx: NGX_CHUNKED,
  }),
  c('chunk extension with whitespace after it', chunked('5;a=1 \r\nhello\r\n0\r\n\r\n'), { nginx: NGX_CHUNKED }),
  c('chunk size with leading zeros', chunked('0005\r\nhello\r\n000\r\n\r\n')),
  c('chunk size in upper-case hex', chunked('A\r\n0123456789\r\n0\r\n\r\n')),
  c('chunk size 0x5', chunked('0x5\r\nhello\r\n0\r\n\r\n')),
  c('chunk size -5', chunked('-5\r\nhello\r\n0\r\n\r\n')),
  c('chunk size +5', chunked('+5\r\nhello\r\n0\r\n\r\n')),
  c('an empty chunk size', chunked('\r\nhello\r\n0\r\n\r\n')),
  c('chunk size followed by a space', chunked('5 \r\nhello\r\n0\r\n\r\n'), { nginx: NGX_CHUNKED }),
  c('chunk size of 17 hex digits (past 64 bits)', chunked('10000000000000005\r\nhello\r\n0\r\n\r\n')),
  c('chunk size of 16 hex digits', chunked('fffffffffffffff5\r\nhello\r\n0\r\n\r\n'), {
    llhttp: { why: WHY_HUGE_CHUNK, rawio: '400' },
  }),
  c('chunk size past maxBody', chunked('900001\r\nhello\r\n0\r\n\r\n'), {
    llhttp: { why: WHY_413, rawio: '413' },
    nginx: NGX_CHUNKED,
  }),
  c('chunk data not followed by CRLF', chunked('5\r\nhelloXX\r\n0\r\n\r\n')),
  c('chunk data followed by a bare LF', chunked('5\r\nhello\n0\r\n\r\n'), { nginx: NGX_CHUNKED }),
  c('chunk size line ended by a bare LF', chunked('5\nhello\r\n0\r\n\r\n'), { nginx: NGX_CHUNKED }),
  c('last chunk ended by a bare LF', chunked('5\r\nhello\r\n0\n\r\n'), { nginx: NGX_CHUNKED }),
  c('chunked body ended by a bare LF', chunked('5\r\nhello\r\n0\r\n\n'), { nginx: NGX_CHUNKED }),
  c('chunk size line with a bare CR', chunked('5\rhello\r\n0\r\n\r\n')),
  c('chunk extension with a bare CR', chunked('5;a\rb\r\nhello\r\n0\r\n\r\n')),
  c('chunk extension with a NUL', chunked('5;a\0b\r\nhello\r\n0\r\n\r\n'), { nginx: NGX_CHUNKED }),
  c('trailer fields', chunked('5\r\nhello\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n')),
  c('a Content-Length trailer', chunked('5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n'), {
    llhttp: { why: WHY_TRAILER, rawio: r(ok('POST', '/p', '1.1', 'hello'), PROBED) },
  }),
  c('a trailer without a colon', chunked('5\r\nhello\r\n0\r\nnope\r\n\r\n'), { nginx: NGX_CHUNKED }),
  c('a folded trailer', chunked('5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n'), { nginx: NGX_CHUNKED }),
  c('chunked, then a pipelined GET', chunked('1\r\na\r\n0\r\n\r\n') + get('/next')),

  // ---- line ends
  c('head lines ended by a bare LF', 'GET / HTTP/1.1\nHost: h\n\n', { nginx: NGX_LF }),
  c('request line ended by a bare LF', 'GET / HTTP/1.1\nHost: h\r\n\r\n', { nginx: NGX_LF }),
  c('one field line ended by a bare LF', 'GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n', { nginx: NGX_LF }),
  c('head ended by a bare LF', 'GET / HTTP/1.1\r\nHost: h\r\n\n', { nginx: NGX_LF }),
  c('a bare LF hiding a Content-Length', post('X: a\nContent-Length: 5\r\n', 'hello'), { nginx: NGX_LF }),
  c('a bare CR in a field value', get('/', 'X: a\rb\r\n')),
  c('a bare CR ending a field line', get('/', 'X: a\rContent-Length: 5\r\n') + 'hello'),
  c('a bare CR ending the request line', 'GET / HTTP/1.1\rHost: h\r\n\r\n'),
  c('CR CR LF', 'GET / HTTP/1.1\r\r\nHost: h\r\n\r\n'),

  // ---- obs-fold and field names
  c('obs-fold with a space', get('/', 'X: a\r\n b\r\n')),
  c('obs-fold with a tab', get('/', 'X: a\r\n\tb\r\n')),
  c('obs-fold as the first field line', 'GET / HTTP/1.1\r\n Host: h\r\n\r\n'),
  c('obs-fold of a Content-Length', post('Content-Length:\r\n 5\r\n', 'hello')),
  c('a space before the colon', get('/', 'X : y\r\n')),
  c('a tab before the colon', get('/', 'X\t: y\r\n')),
  c('Content-Length with a space before the colon', post('Content-Length : 5\r\n', 'hello')),
  c('an empty field name', get('/', ': y\r\n')),
  c('a field line without a colon', get('/', 'Xy\r\n'), { nginx: NGX_FIELDS }),
  c('a field name with @', get('/', 'X@Y: 1\r\n'), { nginx: NGX_FIELDS }),
  c('a field name with obs-text', get('/', 'X\xe9: 1\r\n'), { nginx: NGX_FIELDS }),
  c('a field value with NUL', get('/', 'X: a\0b\r\n')),
  c('a field value with \\x01', get('/', 'X: a\x01b\r\n'), { nginx: NGX_FIELDS }),
  c('a field value with DEL', get('/', 'X: a\x7fb\r\n'), { nginx: NGX_FIELDS }),
  c('a field value with a tab and obs-text', get('/', 'X: a\tb\xe9\xff\r\n')),

  // ---- request line
  c('two spaces after the method', 'GET  / HTTP/1.1\r\nHost: h\r\n\r\n', {
    llhttp: { why: WHY_SPACES, rawio: '400' },
    nginx: NGX_SPACES,
  }),
  c('two spaces before the version', 'GET /  HTTP/1.1\r\nHost: h\r\n\r\n', {
    llhttp: { why: WHY_SPACES, rawio: '400' },
    nginx: NGX_SPACES,
  }),
  c('a space after the version', 'GET / HTTP/1.1 \r\nHost: h\r\n\r\n', { nginx: NGX_SPACES }),
  c('a tab between method and target', 'GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n'),
  c('a space before the method', ' GET / HTTP/1.1\r\nHost: h\r\n\r\n'),
  c('a lower-case method', 'get / HTTP/1.1\r\nHost: h\r\n\r\n', {
    llhttp: { why: WHY_METHOD, rawio: r(ok('get', '/', '1.1'), PROBED) },
    nginx: NGX_METHOD,
  }),
  c('an unknown method', 'FROB / HTTP/1.1\r\nHost: h\r\n\r\n', {
    llhttp: { why: WHY_METHOD, rawio: r(ok('FROB', '/', '1.1'), PROBED) },
  }),
  c('a method with a digit and -', 'M-1 / HTTP/1.1\r\nHost: h\r\n\r\n', {
    llhttp: { why: WHY_METHOD, rawio: r(ok('M-1', '/', '1.1'), PROBED) },
    nginx: NGX_METHOD,
  }),
  c('a method with a colon', 'GE:T / HTTP/1.1\r\nHost: h\r\n\r\n'),
  c('NUL in the target', 'GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n'),
  c('\\x01 in the target', 'GET /a\x01b HTTP/1.1\r\nHost: h\r\n\r\n'),
  c('DEL in the target', 'GET /a\x7fb HTTP/1.1\r\nHost: h\r\n\r\n'),
  c('obs-text in the target', 'GET /a\xe9 HTTP/1.1\r\nHost: h\r\n\r\n', { nginx: NGX_OBS_TEXT }),
  c('a request line without a version', 'GET /\r\nHost: h\r\n\r\n', {
    llhttp: { why: WHY_09, rawio: '400' },
    nginx: WHY_09,
  }),
  c('HTTP/1.0', get('/', '', 'HTTP/1.0')),
  c('HTTP/1.0 with keep-alive', get('/', 'Connection: keep-alive\r\n', 'HTTP/1.0')),
  c('HTTP/1.0 without Host', 'GET / HTTP/1.0\r\n\r\n'),
  c('HTTP/1.1 without Host', 'GET / HTTP/1.1\r\n\r\n'),
  c('HTTP/1.1 with two Hosts', get('/', 'Host: h\r\n'), { llhttp: { why: WHY_HOSTS, rawio: '400' } }),
  c('HTTP/1.1 with an empty Host', 'GET / HTTP/1.1\r\nHost:\r\n\r\n', { nginx: NGX_EMPTY_HOST }),
  c('a Host with a space', 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n', {
    llhttp: { why: WHY_HOST, rawio: '400' },
  }),
  c('HTTP/1.2', get('/', '', 'HTTP/1.2'), {
    llhttp: { why: WHY_VERSION_MINOR, rawio: r(ok('GET', '/', '1.1'), PROBED) },
  }),
  c('HTTP/2.0', get('/', '', 'HTTP/2.0'), { llhttp: { why: WHY_MAJOR, rawio: '505' } }),
  c('HTTP/3.0', get('/', '', 'HTTP/3.0'), { llhttp: { why: WHY_MAJOR, rawio: '505' } }),
  c('HTTP/0.9', get('/', '', 'HTTP/0.9'), {
    llhttp: { why: WHY_MAJOR, rawio: '505' },
    nginx: 'nginx answers HTTP/0.9 in a request line with 400',
  }),
  c('HTTP/1.10', get('/', '', 'HTTP/1.10'), { nginx: NGX_VERSION }),
  c('HTTP/01.1', get('/', '', 'HTTP/01.1')),
  c('HTTP/1', get('/', '', 'HTTP/1')),
  c('http/1.1 in lower case', get('/', '', 'http/1.1')),
  c('absolute-form', get('http://h/a?b')),
  c('absolute-form, https', get('https://h:8443/a')),
  c('absolute-form of another scheme', get('ftp://h/a'), {
    llhttp: { why: WHY_TARGET, rawio: '400' },
    nginx: NGX_ABSOLUTE,
  }),
  c('absolute-form without a host', get('http:///a'), { llhttp: { why: WHY_TARGET, rawio: '400' } }),
  c('asterisk-form with OPTIONS', 'OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n', { nginx: NGX_STAR }),
  c('asterisk-form with GET', get('*'), { llhttp: { why: WHY_TARGET, rawio: '400' } }),
  c('authority-form with GET', get('h:80')),
  c('a target without a slash', get('a/b')),

  // ---- limits
  c('a request line of 8100 bytes', get('/' + 'a'.repeat(8080))),
  c('a request line of 8300 bytes', get('/' + 'a'.repeat(8280)), {
    llhttp: { why: WHY_414, rawio: '414' },
  }),
  c('a request line of 20 000 bytes', get('/' + 'a'.repeat(20_000)), {
    llhttp: { why: WHY_414, rawio: '414' },
  }),
  c('a head of 8100 bytes', get('/', `X: ${'v'.repeat(8050)}\r\n`)),
  c('a head of 8300 bytes', get('/', `X: ${'v'.repeat(8250)}\r\n`), { nginx: NGX_431 }),
  c('a head of 200 fields', get('/', Array.from({ length: 200 }, (_, i) => `F${i}: ${i}\r\n`).join(''))),
  c('a head past the limit, then a request', get('/', `X: ${'v'.repeat(9000)}\r\n`) + get('/after'), {
    nginx: NGX_431,
  }),

  // ---- Connection and Expect
  c('Connection: close', get('/', 'Connection: close\r\n')),
  c('Connection: Close, in another case', get('/', 'Connection: Close\r\n')),
  c('Connection: keep-alive, close', get('/', 'Connection: keep-alive, close\r\n')),
  c('Connection: keep-alive', get('/', 'Connection: keep-alive\r\n')),
  c('Connection: close in a second field', get('/', 'Connection: te\r\nConnection: close\r\n')),
  c('HTTP/1.0 with Connection: close', get('/', 'Connection: close\r\n', 'HTTP/1.0')),
  c('Expect: 100-continue with a body', post('Expect: 100-continue\r\nContent-Length: 5\r\n', 'hello')),
  c('Expect: 100-continue, chunked', chunked('5\r\nhello\r\n0\r\n\r\n', 'Expect: 100-continue\r\n' + TE)),
  c('Expect: something else', post('Expect: frobnicate\r\nContent-Length: 5\r\n', 'hello'), {
    llhttp: { why: WHY_417, rawio: r('417', PROBED) },
    nginx: WHY_417,
  }),
  c('Expect in HTTP/1.0', 'POST /p HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello'),

  // ---- a bad request in a pipeline
  c('pipelined, the first bad', 'GET / HTTP/1.1\r\nHost: h\r\nX : y\r\n\r\n' + get('/2')),
  c('pipelined, the second bad', get('/1') + 'GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n' + get('/3')),
  c('pipelined, the first with both framings', chunked('0\r\n\r\n', 'Content-Length: 5\r\n' + TE) + get('/2')),
  c('pipelined after a chunked body with a bad size', chunked('zz\r\nhello\r\n0\r\n\r\n') + get('/2')),
  c('garbage', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03'),
];

/**
 * Mutations of valid requests (seeded, so every run sends the same): bytes of the framing
 * (CR, LF, space, tab, colon, NUL, digits, `;`, `,`) inserted, deleted or replaced at random
 * places, lines duplicated, field names and codings changed in case.
 */
function mutations(count: number): Buffer[] {
  let seed = 20_261_205;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const pick = <T>(a: readonly T[]): T => a[rnd(a.length)]!;
  const bases = [
    get('/a?b=c', 'Accept: */*\r\n'),
    post('Content-Length: 5\r\n', 'hello'),
    chunked('5\r\nhello\r\n3;e=1\r\nabc\r\n0\r\nT: 1\r\n\r\n'),
    post('Content-Length: 3\r\nConnection: keep-alive\r\n', 'xyz') + get('/second'),
    chunked('1\r\nz\r\n0\r\n\r\n', 'Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n'),
  ];
  const bytes = ['\r', '\n', '\r\n', ' ', '\t', ':', '\0', '0', '5', 'a', ';', ',', '\x7f', '\xe9', 'x'];
  const mutate = (s: string): string => {
    const at = rnd(s.length + 1);
    switch (rnd(6)) {
      case 0:
        return s.slice(0, at) + pick(bytes) + s.slice(at);
      case 1:
        return s.slice(0, at) + s.slice(at + 1 + rnd(2));
      case 2:
        return s.slice(0, at) + pick(bytes) + s.slice(at + 1);
      case 3: {
        // a line twice
        const start = s.lastIndexOf('\n', at) + 1;
        const end = s.indexOf('\n', at);
        return end < 0 ? s : s.slice(0, end + 1) + s.slice(start, end + 1) + s.slice(end + 1);
      }
      case 4:
        return s.slice(0, at) + s.slice(at, at + 12).toUpperCase() + s.slice(at + 12);
      default:
        return s.slice(0, at) + s.slice(at, at + 12).toLowerCase() + s.slice(at + 12);
    }
  };
  return Array.from({ length: count }, () => {
    let s = pick(bases);
    for (let n = 1 + rnd(3); n > 0; n--) s = mutate(s);
    return b(s + PROBE);
  });
}
const RANDOM = mutations(60);

/**
 * Whether rawio's answer to a mutation is within bounds: its requests those llhttp framed,
 * in order, until rawio refuses one (with an error status, nothing after it) or one llhttp
 * refuses only for its method (WHY_METHOD); never fewer without an error of its own.
 */
function withinBounds(rawio: string, ref: string): boolean {
  const got = rawio.split('\n').filter(Boolean);
  const want = ref.split('\n').filter(Boolean);
  for (const [i, line] of got.entries()) {
    if (line === want[i]) continue;
    if (line.length === 3) return i === got.length - 1;
    const method = (JSON.parse(line.slice(4)) as string[])[0]!;
    return want[i]?.length === 3 && !http.METHODS.includes(method);
  }
  return got.length === want.length;
}

/** Each case's and each mutation's responses from node:http (and nginx's statuses, where it runs). */
const llhttp = new Map<Buffer, string>();
const nginx = new Map<Buffer, string>();

beforeAll(async () => {
  const server = llhttpServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as net.AddressInfo;
  for (const k of [...CASES.map((k) => k.send), ...RANDOM]) llhttp.set(k, await talk(port, k));
  server.closeAllConnections();
  await new Promise((done) => server.close(done));
  if (why.nginx) return; // its cases skip saying why
  const n = await startNginx();
  try {
    for (const k of CASES) nginx.set(k.send, statuses(await talk(n.port, k.send)));
  } finally {
    n.child.kill('SIGKILL');
    await exited(n.child);
    rmSync(n.dir, { recursive: true, force: true });
  }
}, 60_000);

describe.each(modelNames)('http framing against llhttp and nginx: %s', (model) => {
  let server: Server | undefined;
  beforeAll(async () => {
    server = await serve({ model, protocol: 'http', handler: HANDLER, workers: 2, pool: 2 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each(
    CASES.map((k) => {
      const notes = [k.llhttp && `differs from llhttp: ${k.llhttp.why}`, k.nginx && `from nginx: ${k.nginx}`];
      return [[k.name, ...notes.filter(Boolean)].join(' — '), k] as const;
    }),
  )('%s', async (_, k) => {
    const got = await talk(server!.port, k.send);
    const want = k.llhttp?.rawio ?? llhttp.get(k.send)!;
    expect(got).toBe(want);
    // The difference named is still one (else the case should say so no more).
    if (k.llhttp) expect(llhttp.get(k.send), 'llhttp answers as rawio now').not.toBe(want);
  });

  it(`frames ${RANDOM.length} mutated requests as llhttp does, or refuses them sooner`, async () => {
    const wrong: string[] = [];
    for (const [i, send] of RANDOM.entries()) {
      const got = await talk(server!.port, send);
      const want = llhttp.get(send)!;
      if (!withinBounds(got, want))
        wrong.push(`mutation ${i}: ${JSON.stringify(send.toString('latin1'))}\nrawio:\n${got}\nllhttp:\n${want}`);
    }
    expect(wrong.join('\n\n')).toBe('');
  });

  it.skipIf(why.nginx)(titled('answers with the statuses nginx answers', why.nginx), async () => {
    const wrong: string[] = [];
    for (const k of CASES) {
      if (k.nginx) continue;
      const got = statuses(await talk(server!.port, k.send));
      if (got !== nginx.get(k.send))
        wrong.push(`${k.name}: rawio ${got.replaceAll('\n', ',')}, nginx ${nginx.get(k.send)!.replaceAll('\n', ',')}`);
    }
    expect(wrong).toEqual([]);
  });
});

// A model pushes what each read returned: the cases' frames and errors must not depend on
// where the stream was cut (the codec's resumable paths against its one-pass path). A cut
// inside a body announced with Expect: 100-continue adds the interim frame that asks for
// `100 Continue`, and only that.
const requests = (frames: Buffer[]): string[] => hex(frames.filter((f) => f[0] !== 0xff));
describe('http: the cases above framed the same wherever the stream is cut', () => {
  it.each(CASES.map((k) => [k.name, k] as const))('%s', (_, k) => {
    const whole = feed(new HttpCodec(), k.send);
    const cuts = k.send.length <= 400 ? [...splits(k.send.length)] : [[], [k.send.length >> 1], [100, 200, 4000, 8200]];
    for (const at of cuts) {
      const got = feed(new HttpCodec(), k.send, at);
      const where = at.length > 8 ? `${at.length} points` : at.join(',');
      expect(requests(got.frames), `cut at ${where}`).toEqual(requests(whole.frames));
      expect(got.error?.data.subarray(0, 12), `cut at ${where}`).toEqual(whole.error?.data.subarray(0, 12));
    }
  });
});
