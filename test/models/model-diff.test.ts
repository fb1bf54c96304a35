/**
 * Every model on the wire, against `single`: for the same client behaviour, every model must
 * send the same bytes and end the connection the same way (README, "Connection limits": one
 * connection contract, src/models/conn-core.ts). A seeded generator writes client scripts per
 * protocol (echo, http, resp, static, and http with a handler module that makes every kind of
 * reply, test/fixtures/user/diff-handler.mjs): valid requests, pipelined batches, requests
 * cut at random bytes with short pauses between the pieces, malformed requests, a head or
 * body past small limits, a closing request (`Connection: close`, HTTP/1.0, QUIT, a handler's
 * `connection: close`, a body that fails) in mid-pipeline with requests after it, RESP inline
 * commands, echo streams; a half-close at a random point; and reading paused, now and then
 * behind a flood of replies larger than the kernel's socket buffers, so that the output,
 * in-flight and file budgets fill. Each script is one connection, and ends with the client's
 * half-close (at its random point, or after its last byte) and is read until the server
 * closes: a server owes a half-closed client its replies and then its EOF (README, "On
 * close"), so the transcript needs no quiet period. What is compared: every byte received
 * (the HTTP `Date` value alone normalised) and how the connection ended: `eof`, `reset`, or
 * `open` (no end within a generous deadline); for resp, also what the script left in the
 * keyspace (its keys, read on a second connection after it).
 *
 * Nothing in a script depends on timing: the pauses only change where the server's reads cut
 * the stream and when its budgets fill, which must change nothing the client sees. So an
 * `Expect: 100-continue` request is sent as a client that waits for the 100 sends it: its
 * head, then (once the 100 has come, or the connection ended) its body; sent at once, its 100
 * would depend on where the server's read cut it (docs/PROTOCOLS.md: only while the body has
 * not arrived).
 *
 * No difference is accepted: every model has matched `single` on every seed tried.
 *
 * Replay: the seed is printed with each failing script (RAWIO_DIFF_SEED=<seed>, and
 * `-t "<protocol> script <n>"` for the one script); RAWIO_DIFF_SCRIPTS sets the scripts per
 * protocol, RAWIO_DIFF_LIMITS (JSON, e.g. `{"maxInFlight":1}`) the servers' limits;
 * RAWIO_DIFF_ZEROCOPY, RAWIO_DIFF_RING (JSON) and RAWIO_DIFF_TRANSFER set zerocopyThreshold,
 * ring options and the transfer method where a model takes them; RAWIO_DIFF_VERBOSE prints a
 * line per script (how `single` ended, its statuses, the steps).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelNames, serve, type ModelName, type ServeOptions, type Server } from '../helpers/rawio.js';
import { multiProactorUnsupported } from '../../dist/src/models/multi-proactor.js';
import { Received } from '../helpers/clients.js';
import { titled } from '../helpers/skips.js';

const SEED = Number(process.env.RAWIO_DIFF_SEED ?? 20_261_205);
const SCRIPTS = Number(process.env.RAWIO_DIFF_SCRIPTS ?? 25);
const REFERENCE: ModelName = 'single';
/** The servers' limits, small so that scripts reach them; RAWIO_DIFF_LIMITS (JSON) overrides some, or `workers` and `pool`. */
const LIMITS = {
  maxInFlight: 4,
  maxOutput: 64 << 10,
  maxFiles: 2,
  maxHeader: 1024,
  maxRequest: 16 << 10,
  ...(JSON.parse(process.env.RAWIO_DIFF_LIMITS ?? '{}') as Record<string, number>),
};
/** RAWIO_DIFF_ZEROCOPY: a zerocopyThreshold for every model that takes one (all but the blocking ones). */
const ZEROCOPY = Number(process.env.RAWIO_DIFF_ZEROCOPY ?? 0);
const BLOCKING = new Set<ModelName>(['iterative', 'thread-per-connection']);
/** RAWIO_DIFF_RING (JSON): ring options for the ring models; RAWIO_DIFF_TRANSFER: the others' transfer method. */
const RING = process.env.RAWIO_DIFF_RING
  ? (JSON.parse(process.env.RAWIO_DIFF_RING) as ServeOptions['ring'])
  : undefined;
const TRANSFER = process.env.RAWIO_DIFF_TRANSFER as ServeOptions['transfer'] | undefined;
const RINGS = new Set<ModelName>(['proactor', 'multi-proactor']);
/** How long a half-closed connection may take to be answered and closed: a bound, not a timing. */
const DEADLINE_MS = 20_000;

const multiProactorWhy = multiProactorUnsupported();

// ---- the generator

/** mulberry32: a tiny seeded PRNG. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    int,
    chance: (p: number): boolean => next() < p,
    pick: <T>(a: readonly T[]): T => a[int(a.length)]!,
    /** `n` bytes (latin1), printable or any. */
    bytes: (n: number, binary = false): string => {
      let s = '';
      for (let i = 0; i < n; i++) s += String.fromCharCode(binary ? int(256) : 0x20 + int(95));
      return s;
    },
  };
}
type Rng = ReturnType<typeof rng>;

/** One step of a script; byte strings are latin1. */
type Step =
  | { send: string }
  | { wait: number }
  | { pauseReading: true }
  | { resumeReading: true }
  | { shut: true }
  /** Waits (up to a deadline) until the server's `n`th `100 Continue` has come, or its end. */
  | { await100: number };

/** The four built-in protocols, and `http` with a handler module (HANDLER) as a fifth. */
type Protocol = 'echo' | 'http' | 'resp' | 'static' | 'handler';
const PROTOCOLS: readonly Protocol[] = ['echo', 'http', 'resp', 'static', 'handler'];
const HANDLER = new URL('../fixtures/user/diff-handler.mjs', import.meta.url);

const KiB = 1024;
const FILES: Record<string, string> = {
  'a.txt': 'hello, static\n',
  'empty.txt': '',
  'mid.bin': rng(1).bytes(20 * KiB, true),
  'big.bin': rng(2).bytes(150 * KiB, true),
  'sub/b.html': '<p>b</p>\n',
};

const get = (target: string, fields = '', version = 'HTTP/1.1'): string =>
  `${'GET'} ${target} ${version}\r\nHost: h\r\n${fields}\r\n`;

/** A malformed HTTP request: each is answered with an error status and a close. */
const BAD_HTTP = [
  'GET / HTTP/1.1\r\nHost: h\r\nX : y\r\n\r\n',
  'GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n',
  'POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
  'POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
  'GET / HTTP/2.0\r\nHost: h\r\n\r\n',
  'GET /\r\nHost: h\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: a b\r\n\r\n',
  '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03',
  'GET / HTTP/1.1\nHost: h\n\n',
  'POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
];

function chunkedBody(R: Rng, total: number): string {
  let s = '';
  for (let left = total; left > 0;) {
    const n = Math.min(left, 1 + R.int(4000));
    s += `${n.toString(16)}\r\n${R.bytes(n, true)}\r\n`;
    left -= n;
  }
  return s + '0\r\n\r\n';
}

/** One HTTP request for the built-in `http` protocol (hello at `/`, POST echoed, 404, 405). */
function httpRequest(R: Rng, closing: boolean): string {
  const size = (): number => R.pick([0, 1, 100, 3 * KiB, 12 * KiB, 16 * KiB]);
  switch (closing ? R.pick([8, 9, 10, 11, 12, 14]) : R.int(8) || R.pick([0, 13])) {
    case 0:
    case 1:
      return get('/');
    case 2:
      return get('/').replace('GET', 'HEAD');
    case 3:
      return get(`/missing-${R.int(100)}`);
    case 4:
      return get('/').replace('GET', R.pick(['DELETE', 'PUT', 'FROB']));
    case 5:
    case 6: {
      const n = size();
      return `POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: ${n}\r\n\r\n${R.bytes(n, true)}`;
    }
    case 7:
      return `POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n${chunkedBody(R, size())}`;
    case 8:
      return get('/', 'Connection: close\r\n');
    case 9:
      return R.chance(0.5) ? get('/', '', 'HTTP/1.0') : get('/', 'Connection: keep-alive\r\n', 'HTTP/1.0');
    case 10:
      return R.pick(BAD_HTTP);
    case 11:
      // a head past maxHeader (431), or a request line past it (414)
      return R.chance(0.5) ? get('/', `X: ${'v'.repeat(1100)}\r\n`) : get(`/${'a'.repeat(1100)}`);
    case 12: {
      // a body past maxRequest (413), declared or chunked
      const n = 16 * KiB + 1 + R.int(8 * KiB);
      return R.chance(0.5)
        ? `POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: ${n}\r\n\r\n${R.bytes(n, true)}`
        : `POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n${chunkedBody(R, n)}`;
    }
    case 13:
      return `POST /p HTTP/1.1\r\nHost: h\r\nExpect: frobnicate\r\nContent-Length: 3\r\n\r\nabc`;
    default:
      return `POST /p HTTP/1.0\r\nContent-Length: 5\r\n${R.chance(0.5) ? 'Connection: keep-alive\r\n' : ''}\r\nhello`;
  }
}

/** One request for the handler module (HANDLER: its targets), or one of the built-in http's. */
function handlerRequest(R: Rng, closing: boolean): string {
  const n = (): number => R.pick([0, 1, 1000, 20 * KiB, 100 * KiB]);
  switch (closing ? R.pick([4, 6, 8, 9]) : R.pick([0, 1, 2, 3, 5, 7, 9, 10, 11])) {
    case 0:
      return get(`/sync?q=${R.int(100)}`);
    case 1:
      return get(`/async?ms=${R.int(30)}`);
    case 2:
      return get(`/big?n=${n()}`);
    case 3:
      return get(`/stream?n=${R.int(40)}&ms=${R.pick([0, 0, 1, 5])}`);
    case 4:
      return get(`/stream-throw?n=${R.int(10)}&ms=${R.pick([0, 2])}`);
    case 5: {
      const size = FILES['big.bin']!.length;
      return get(`/file?n=${R.pick([0, 10, 100 * KiB, size])}&o=${R.pick([0, 0, 1, 4095, 4096])}`);
    }
    case 6:
      return get('/close');
    case 7:
      return get(R.pick(['/throw', '/reject']));
    case 8: {
      // HTTP/1.0 (an unframed stream, closed after), a HEAD, or a file body past the file's end
      const target = R.pick(['/stream?n=3', '/big?n=100', '/file?n=100', '/sync']);
      if (R.chance(0.3)) return get(`/file?n=1000&o=${FILES['big.bin']!.length - R.int(1000)}`);
      return get(target, '', R.pick(['HTTP/1.0', 'HTTP/1.1'])).replace('GET', R.pick(['GET', 'HEAD']));
    }
    case 10:
      return get(R.pick(['/stream?n=3', '/big?n=100', '/file?n=100'])).replace('GET', 'HEAD');
    default:
      return httpRequest(R, closing);
  }
}

/** One request for `static` (root: FILES). */
function staticRequest(R: Rng, closing: boolean): string {
  const file = (): string => `/${R.pick(Object.keys(FILES))}`;
  switch (closing ? R.pick([6, 7, 8, 9, 10]) : R.pick([0, 1, 2, 3, 4, 5, 11])) {
    case 0:
    case 1:
    case 2:
      return get(file());
    case 3:
      return get(file()).replace('GET', 'HEAD');
    case 4: {
      const range = R.pick(['bytes=0-9', 'bytes=-5', 'bytes=5-', 'bytes=100000-', 'bytes=3-1', 'bytes=0-1,4-5', 'x']);
      return get(file(), `Range: ${range}\r\n`);
    }
    case 5:
      return get(R.pick(['/missing', '/a.txt/', '/sub', '/sub/', '/../a.txt', '/sub/../a.txt', '/a%2etxt']));
    case 6:
      return get(file(), 'Connection: close\r\n');
    case 7:
      return R.chance(0.5) ? get(file(), '', 'HTTP/1.0') : get(file(), 'Connection: keep-alive\r\n', 'HTTP/1.0');
    case 8:
      return R.pick(BAD_HTTP);
    case 9:
      return R.chance(0.5) ? get('/a.txt', `X: ${'v'.repeat(1100)}\r\n`) : get(`/${'a'.repeat(1100)}`);
    case 10: {
      const n = R.pick([3, 20 * KiB]); // a body: read and ignored, or past maxRequest
      return `POST /a.txt HTTP/1.1\r\nHost: h\r\nContent-Length: ${n}\r\n\r\n${R.bytes(n)}`;
    }
    default:
      return get(`http://h${file()}`);
  }
}

const bulk = (a: string): string => `$${a.length}\r\n${a}\r\n`;
const cmd = (...args: string[]): string => `*${args.length}\r\n${args.map(bulk).join('')}`;

/** One RESP command; keys are the script's own (`prefix`), so scripts do not meet in the keyspace. */
function respCommand(R: Rng, prefix: string, closing: boolean): string {
  const key = (): string => `${prefix}:k${R.int(3)}`;
  const value = (): string => R.bytes(R.pick([0, 5, 300, 6 * KiB, 15 * KiB]), true);
  switch (closing ? R.pick([10, 11, 12, 13, 14]) : R.pick([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 15])) {
    case 0:
      return cmd('PING');
    case 1:
      return cmd('ECHO', value());
    case 2:
    case 3:
      return R.chance(0.8) ? cmd('SET', key(), value()) : cmd('SET', key(), value(), R.pick(['NX', 'XX']));
    case 4:
    case 5:
      return cmd('GET', key());
    case 6:
      return cmd(R.pick(['DEL', 'EXISTS']), key(), key());
    case 7:
      return R.chance(0.5) ? cmd(R.pick(['INCR', 'DECR']), key()) : cmd('INCRBY', key(), String(R.int(100) - 50));
    case 8:
      return R.chance(0.5) ? cmd('MSET', key(), value(), key(), value()) : cmd('MGET', key(), key(), key());
    case 9:
      return R.pick([
        cmd('SELECT', '0'),
        cmd('SELECT', '1'),
        cmd('CONFIG', 'GET', 'save'),
        cmd('FROB', 'x'),
        cmd('GET'),
      ]);
    case 10:
      return cmd('QUIT');
    case 11:
      // inline commands
      return R.pick(['PING\r\n', `ECHO hello\r\n`, `SET ${key()} inline\r\n`, `GET ${key()}\r\n`, 'QUIT\r\n', '\r\n']);
    case 12:
      // malformed multibulk
      return R.pick([
        '*2\r\n$3\r\nGET\r\nx\r\n',
        '*1\r\n$x\r\n',
        '*2\r\n$3\r\nGETT\r\n$1\r\na\r\n',
        '*-5\r\n',
        '*1\r\n:1\r\n',
      ]);
    case 13:
      // an argument past maxRequest (16 KiB)
      return cmd('SET', key(), R.bytes(16 * KiB + 1 + R.int(4 * KiB), true));
    case 14:
      // an inline command past maxRequest
      return `ECHO ${'i'.repeat(16 * KiB + R.int(KiB))}\r\n`;
    default:
      // a large reply, several times: fills the output budget of a client that does not read
      return cmd('SET', `${prefix}:big`, R.bytes(15 * KiB)) + cmd('GET', `${prefix}:big`).repeat(1 + R.int(6));
  }
}

/**
 * A pipelined batch whose replies pass what the kernel holds for a client that does not
 * read (the server's send buffer grows to tcp_wmem's 4 MiB on loopback), so that the
 * output, in-flight and file budgets fill while the script has paused reading.
 */
function flood(protocol: Protocol, R: Rng, prefix: string): string {
  // `one` repeated until its replies (`reply` bytes each) pass 5 to 6 MiB
  const times = (one: string, reply: number): string => one.repeat(Math.ceil(((5 + R.int(2) / 2) << 20) / reply));
  if (protocol === 'echo') return times(R.bytes(64 * KiB, true), 64 * KiB);
  if (protocol === 'handler')
    return R.chance(0.5)
      ? times(get(`/big?n=${16 * KiB}`) + get(`/async?ms=${R.int(3)}`), 16 * KiB)
      : get(`/stream?n=${5 * KiB + R.int(KiB)}`) + get(`/file?n=${FILES['big.bin']!.length}`).repeat(4);
  if (protocol === 'static') return times(get('/big.bin'), FILES['big.bin']!.length);
  if (protocol === 'resp')
    return cmd('SET', `${prefix}:flood`, R.bytes(15 * KiB)) + times(cmd('GET', `${prefix}:flood`), 15 * KiB);
  const n = 8 * KiB + R.int(8 * KiB);
  return times(`POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: ${n}\r\n\r\n${R.bytes(n, true)}` + get('/'), n);
}

/** One piece of an echo stream. */
const echoPiece = (R: Rng): string => R.bytes(R.pick([1, 10, 1000, 30 * KiB, 100 * KiB]), R.chance(0.5));

/**
 * A script: a few requests, sent at once, in pieces cut at random bytes with short pauses
 * between them, or request by request; reading paused for a while at a random point; a
 * half-close at a random point (else after the last byte).
 */
function script(protocol: Protocol, seed: number, index: number): Step[] {
  const R = rng(seed);
  const requests: string[] = [];
  /** Where an `Expect: 100-continue` head ends: the client waits for the 100 there. */
  const holds: number[] = [];
  for (let n = 1 + R.int(9); n > 0; n--) {
    if ((protocol === 'http' || protocol === 'handler') && R.chance(0.06)) {
      const body = R.bytes(R.pick([1, 100, 5 * KiB, 20 * KiB]), true);
      const head = `POST /${protocol === 'http' ? 'p' : 'sync'} HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`;
      holds.push(requests.join('').length + head.length);
      requests.push(head + body);
      continue;
    }
    // Now and then a request that closes the connection or is refused: what comes after it
    // is never answered, so most requests are not.
    const closing = R.chance(0.12);
    if (protocol === 'echo') requests.push(echoPiece(R));
    else if (protocol === 'http') requests.push(httpRequest(R, closing));
    else if (protocol === 'static') requests.push(staticRequest(R, closing));
    else if (protocol === 'handler') requests.push(handlerRequest(R, closing));
    else requests.push(respCommand(R, `s${index}`, closing));
  }
  // A client waiting for a 100 must be reading: no pause, no flood, where there is one.
  const flooded = holds.length === 0 && R.chance(0.25);
  if (flooded) requests.splice(R.int(requests.length + 1), 0, flood(protocol, R, `s${index}`));
  const stream = requests.join('');
  const cuts = new Set<number>();
  switch (R.int(3)) {
    case 0:
      break; // at once
    case 1:
      for (let n = 1 + R.int(6); n > 0; n--) cuts.add(1 + R.int(Math.max(1, stream.length - 1)));
      break;
    default: {
      let at = 0;
      for (const r of requests.slice(0, -1)) cuts.add((at += r.length));
    }
  }
  for (const h of holds) cuts.add(h);
  const ends = [...cuts].filter((c) => c > 0 && c < stream.length).sort((a, b) => a - b);
  ends.push(stream.length);
  const sends: Step[][] = [];
  let from = 0;
  for (const end of ends) {
    sends.push([{ send: stream.slice(from, end) }]);
    const n = holds.indexOf(end) + 1;
    if (n > 0) sends.at(-1)!.push({ await100: n });
    from = end;
  }
  // Reading paused before one of the sends, resumed after a later one (for a flood, from
  // the first to the last).
  if (flooded) {
    sends[0]!.unshift({ pauseReading: true });
    sends.at(-1)!.push({ wait: 200 + R.int(300) }, { resumeReading: true });
  } else if (holds.length === 0 && R.chance(0.4)) {
    const a = R.int(sends.length);
    const b = a + R.int(sends.length - a);
    sends[a]!.unshift({ pauseReading: true });
    sends[b]!.push({ wait: 50 + R.int(250) }, { resumeReading: true });
  }
  const steps: Step[] = [];
  for (const [i, s] of sends.entries()) {
    if (i > 0 && R.chance(0.6)) steps.push({ wait: R.int(20) });
    steps.push(...s);
  }
  // A half-close at a random point: whatever comes after it is not sent.
  if (R.chance(0.25)) {
    const at = R.int(steps.length + 1);
    const kept = steps.slice(0, at);
    // Or inside a send: the request it cuts is never whole.
    const next = steps[at];
    if (next && 'send' in next && next.send.length > 1 && R.chance(0.5))
      kept.push({ send: next.send.slice(0, 1 + R.int(next.send.length - 1)) });
    // A resume cut off is not sent either; the runner resumes reading at the end anyway.
    return [...kept, { shut: true }];
  }
  return [...steps, { shut: true }];
}

/** A script for a failure message: long runs of one byte shortened, strings as JSON. */
function show(steps: Step[]): string {
  return steps
    .map((s) => {
      if (!('send' in s)) return JSON.stringify(s);
      const t = s.send.replace(/(.)\1{15,}/gs, (run, c: string) => `${c}<×${run.length}>`);
      const short = t.length > 600 ? `${t.slice(0, 300)}<…${t.length - 600} more…>${t.slice(-300)}` : t;
      return `{"send":${JSON.stringify(short)}} (${s.send.length} bytes)`;
    })
    .join('\n');
}

// ---- the runner

interface Transcript {
  received: string;
  end: 'eof' | 'reset' | 'open';
}

const AWAIT_100_MS = 10_000;
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
const count100 = (b: Buffer): number => {
  let n = 0;
  for (let i = b.indexOf(CONTINUE); i >= 0; i = b.indexOf(CONTINUE, i + 1)) n++;
  return n;
};

const DATE = /\r\nDate: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n/g;

/** Runs `steps` on one connection to `port`, reads until the server closes (or the deadline). */
function run(port: number, steps: Step[], protocol: Protocol): Promise<Transcript> {
  return new Promise((resolve, reject) => {
    const got = new Received();
    let end: Transcript['end'] | undefined;
    let done: () => void = () => {};
    const ended = new Promise<void>((r) => (done = r));
    const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    c.on('data', (d: Buffer) => got.push(d));
    c.on('end', () => {
      end ??= 'eof';
      done();
    });
    c.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') return reject(e);
      end ??= 'reset';
      done();
    });
    c.on('close', () => done());
    c.once('connect', () => {
      void (async () => {
        for (const s of steps) {
          if (end) break;
          if ('send' in s) c.write(Buffer.from(s.send, 'latin1'));
          else if ('wait' in s) await new Promise((r) => setTimeout(r, s.wait));
          else if ('pauseReading' in s) c.pause();
          else if ('resumeReading' in s) c.resume();
          else if ('await100' in s) {
            const until = Date.now() + AWAIT_100_MS;
            while (!end && Date.now() < until && count100(got.bytes) < s.await100)
              await new Promise((r) => setTimeout(r, 5));
          } else c.end();
        }
        c.resume();
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([ended, new Promise<void>((r) => (timer = setTimeout(r, DEADLINE_MS)))]);
        clearTimeout(timer);
        c.destroy();
        let received = got.bytes.toString('latin1');
        if (protocol !== 'echo' && protocol !== 'resp') received = received.replace(DATE, '\r\nDate: <date>\r\n');
        resolve({ received, end: end ?? 'open' });
      })().catch(reject);
    });
  });
}

/** Where two transcripts first differ, with some context. */
function difference(model: ModelName, got: Transcript, want: Transcript): string {
  const a = got.received;
  const b = want.received;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const around = (s: string): string => JSON.stringify(s.slice(Math.max(0, i - 120), i + 200));
  const bytes =
    a === b
      ? 'the same bytes'
      : `${a.length} bytes (${REFERENCE}: ${b.length}), first different at ${i}:\n  ${model}: ${around(a)}\n  ${REFERENCE}: ${around(b)}`;
  return `${model}: ended ${got.end} (${REFERENCE}: ${want.end}), ${bytes}`;
}

// ---- the servers and the comparison

const models = modelNames.filter((m) => m !== 'multi-proactor' || multiProactorWhy === undefined);
let root = '';

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'rawio-modeldiff-'));
  mkdirSync(join(root, 'sub'));
  for (const [name, data] of Object.entries(FILES)) writeFileSync(join(root, name), Buffer.from(data, 'latin1'));
  process.env.RAWIO_DIFF_FILE = join(root, 'big.bin'); // HANDLER's /file (read in every thread and worker)
});
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
  delete process.env.RAWIO_DIFF_FILE;
});

describe.each(PROTOCOLS)('%s: every model sends what single sends', (protocol) => {
  const servers = new Map<ModelName, Server>();
  beforeAll(async () => {
    const started = await Promise.allSettled(
      models.map(async (model) => {
        const s = await serve({
          model,
          ...(protocol === 'handler' ? { protocol: 'http', handler: HANDLER } : { protocol }),
          workers: 2,
          pool: 2,
          ...LIMITS,
          ...(ZEROCOPY && !BLOCKING.has(model) ? { zerocopyThreshold: ZEROCOPY } : {}),
          ...(RING && RINGS.has(model) ? { ring: RING } : {}),
          ...(TRANSFER && !RINGS.has(model) ? { transfer: TRANSFER } : {}),
          ...(protocol === 'static' ? { root } : {}),
        });
        servers.set(model, s);
      }),
    );
    for (const r of started) if (r.status === 'rejected') throw r.reason;
  });
  afterAll(async () => {
    await Promise.all([...servers.values()].map((s) => s.close()));
  });

  it.skipIf(multiProactorWhy)(titled('multi-proactor takes part', multiProactorWhy), () => {
    expect(models).toContain('multi-proactor');
  });

  const pi = PROTOCOLS.indexOf(protocol);
  it.each(Array.from({ length: SCRIPTS }, (_, i) => i))(`${protocol} script %i (seed ${SEED})`, async (i) => {
    const seed = (Math.imul(SEED, 0x9e3779b1) ^ Math.imul(pi * 1000 + i + 1, 0x85ebca6b)) >>> 0;
    const steps = script(protocol, seed, i);
    // For resp, what the script left in the keyspace too, read on a second connection: a
    // command after a closing one (QUIT, a protocol error) must not have run on any model.
    const after: Step[] = [{ send: cmd('MGET', ...['k0', 'k1', 'k2', 'big', 'flood'].map((k) => `s${i}:${k}`)) }];
    const results = await Promise.all(
      models.map(async (m) => {
        const t = await run(servers.get(m)!.port, steps, protocol);
        if (protocol !== 'resp') return [m, t] as const;
        const kept = await run(servers.get(m)!.port, [...after, { shut: true }], protocol);
        return [m, { ...t, received: `${t.received}\n-- the keys after it: ${kept.received} (${kept.end})` }] as const;
      }),
    );
    const want = results.find(([m]) => m === REFERENCE)![1];
    if (process.env.RAWIO_DIFF_VERBOSE)
      console.log(
        `${protocol} ${i}: ${want.end} ${want.received.length} B, statuses ${(want.received.match(/HTTP\/1\.1 \d+|^[-+:$*][^\r]{0,12}/gm) ?? []).slice(0, 12).join(',')} | ${steps.map((s) => ('send' in s ? `send ${s.send.length}` : Object.keys(s)[0] + ('wait' in s ? s.wait : ''))).join('; ')}`,
      );
    const wrong = results.filter(([, t]) => t.received !== want.received || t.end !== want.end);
    const report = wrong.map(([m, t]) => difference(m, t, want));
    if (report.length > 0)
      report.unshift(
        `RAWIO_DIFF_SEED=${SEED}, ${protocol} script ${i}; ${REFERENCE} ended ${want.end} with ${want.received.length} bytes; the script:\n${show(steps)}`,
      );
    expect(report.join('\n')).toBe('');
    // The reference itself ended: a half-closed client is answered and closed (README, "On close").
    expect(want.end, show(steps)).not.toBe('open');
  });
});
