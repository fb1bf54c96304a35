/**
 * rawio's resp server against a real redis-server: the same bytes sent to both over raw TCP,
 * the replies compared byte for byte (and whether each closed the connection). Each case is
 * one connection: its bytes written at once, then a half-close, then everything read until
 * the server closes. Where rawio differs on purpose (docs/PROTOCOLS.md, "resp and
 * redis-server"), the case names the difference and holds rawio to its own reply instead.
 *
 * Skipped when redis-server is not installed (CI installs it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RespCodec, modelNames, serve, type Server } from '../helpers/rawio.js';
import { titled, why } from '../helpers/skips.js';
import { feed, hex, splits } from './feed.js';
import { eventually } from '../helpers/wait.js';

const REDIS = '/usr/bin/redis-server';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
/** A multibulk command of its arguments. */
const cmd = (...args: (string | Buffer)[]): Buffer =>
  Buffer.concat([
    b(`*${args.length}\r\n`),
    ...args.flatMap((a) => {
      const x = typeof a === 'string' ? b(a) : a;
      return [b(`$${x.length}\r\n`), x, b('\r\n')];
    }),
  ]);
const cat = (...parts: (string | Buffer)[]): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? b(p) : p)));
/** Runs of 32 or more of one character as `<c × n>`, so a megabyte reply prints short. */
function runs(s: string): string {
  let out = '';
  for (let i = 0; i < s.length;) {
    let j = i + 1;
    while (j < s.length && s[j] === s[i]) j++;
    out += j - i >= 32 ? `<${s[i]} × ${j - i}>` : s.slice(i, j);
    i = j;
  }
  return out;
}
/** The conversation as text, bytes outside printable ASCII escaped, and how it ended. */
const shown = (r: Talk): string =>
  runs(JSON.stringify(r.data.toString('latin1')).slice(1, -1)).replaceAll('\\r\\n', '\\r\\n\n') + `\n<${r.end}>`;

interface Talk {
  data: Buffer;
  /** 'closed': the server closed after the client's half-close or on its own; 'reset': ECONNRESET. */
  end: 'closed' | 'reset';
}

/**
 * Connects, writes `send` at once, half-closes, reads until the server closes. With `quit`,
 * the client does not half-close (redis-server drops output it has not written yet when it
 * reads the end of the stream: a large reply is cut short): `send` then ends with a QUIT.
 */
function talk(to: number | string, send: Buffer, quit = false): Promise<Talk> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const opened = () => (quit ? c.write(send) : c.end(send));
    const c = typeof to === 'string' ? net.connect(to, opened) : net.connect(to, '127.0.0.1', opened);
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`no close within 15 s after ${Buffer.concat(chunks).length} bytes`));
    }, 15_000);
    const done = (end: Talk['end']) => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), end });
    };
    c.on('data', (d: Buffer) => chunks.push(d));
    c.on('close', () => done('closed'));
    c.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') return; // 'close' follows
      clearTimeout(timer);
      reject(e);
    });
  });
}

interface Case {
  name: string;
  send: Buffer;
  /** Set when rawio differs on purpose: what rawio answers instead (its whole conversation). */
  differs?: { why: string; rawio: string | RegExp };
  /** `send` ends with a QUIT and the client does not half-close (see talk). */
  quit?: boolean;
}

const c = (name: string, send: Buffer | string, differs?: Case['differs']): Case => ({
  name,
  send: typeof send === 'string' ? b(send) : send,
  ...(differs ? { differs } : {}),
});

const MANY = 2000;
const manyKeys = Array.from({ length: MANY }, (_, i) => `k${i % 1500}`); // with duplicates

const CASES: Case[] = [
  // ---- names and arity
  c('PING, ECHO', cat(cmd('PING'), cmd('ping', 'hi'), cmd('PiNg', ''), cmd('ECHO', 'x'), cmd('echo', ''))),
  c('PING and ECHO with too many / too few arguments', cat(cmd('PING', 'a', 'b'), cmd('ECHO'), cmd('ECHO', 'a', 'b'))),
  c(
    'arity of GET SET INCR DECR INCRBY DECRBY',
    cat(
      cmd('GET'),
      cmd('GET', 'a', 'b'),
      cmd('SET', 'a'),
      cmd('SET'),
      cmd('INCR'),
      cmd('INCR', 'a', 'b'),
      cmd('DECR'),
      cmd('DECR', 'a', 'b'),
      cmd('INCRBY', 'a'),
      cmd('INCRBY', 'a', '1', '2'),
      cmd('DECRBY', 'a'),
      cmd('DECRBY', 'a', '1', '2'),
    ),
  ),
  c(
    'arity of MSET MGET DEL EXISTS',
    cat(cmd('MSET'), cmd('MSET', 'a'), cmd('MSET', 'a', '1', 'b'), cmd('MGET'), cmd('DEL'), cmd('EXISTS')),
  ),
  c(
    'arity and arguments of DBSIZE FLUSHALL FLUSHDB SELECT',
    cat(
      cmd('SET', 'a', '1'),
      cmd('DBSIZE', 'x'),
      cmd('FLUSHALL', 'x'),
      cmd('FLUSHDB', 'ASYNC', 'x'),
      cmd('DBSIZE'),
      cmd('SELECT'),
      cmd('SELECT', '0', '1'),
      cmd('SELECT', 'x'),
      cmd('SELECT', '00'),
      cmd('SELECT', '-0'),
      cmd('SELECT', '-1'),
      cmd('SELECT', '2147483648'),
      cmd('SELECT', '99999999999999999999'),
      cmd('FLUSHALL', 'sync'),
      cmd('DBSIZE'),
      cmd('SET', 'a', '1'),
      cmd('FLUSHDB', 'Async'),
      cmd('DBSIZE'),
    ),
  ),
  c('SELECT 0 and 16', cat(cmd('SELECT', '0'), cmd('SELECT', '16'))),
  c('SELECT 1', cat(cmd('SELECT', '1'), cmd('SELECT', '0')), {
    why: 'rawio has one database, 0',
    rawio: '-ERR DB index is out of range\r\n+OK\r\n',
  }),
  c('command names in any case', cat(cmd('sEt', 'k', 'v'), cmd('gET', 'k'), cmd('Incr', 'n'), cmd('MgEt', 'k', 'n'))),
  c('an empty command *0 and a null *-1 are skipped', cat('*0\r\n*-1\r\n', cmd('PING'))),
  c('a null $-1 argument', cat('*2\r\n$3\r\nGET\r\n$-1\r\n', cmd('PING'))),
  c('an empty command name', cat(cmd(''), cmd('PING')), {
    why: "rawio's unknown-command error names the command only, not its arguments",
    rawio: "-ERR unknown command ''\r\n+PONG\r\n",
  }),
  c('CONFIG GET names in any case', cat(cmd('config', 'get', 'SAVE'), cmd('CONFIG', 'Get', 'AppendOnly'))),
  c(
    'CONFIG GET of names an object has',
    cat(
      ...['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'].map((n) => cmd('CONFIG', 'GET', n)),
      cmd('PING'),
    ),
  ),
  c(
    'an 8 MiB argument, the most rawio takes',
    cat(cmd('SET', 'k', Buffer.alloc(8 << 20, 'v')), cmd('STRLEN', 'k'), cmd('EXISTS', 'k'), cmd('QUIT')),
    {
      why: 'rawio has no STRLEN',
      rawio: "+OK\r\n-ERR unknown command 'STRLEN'\r\n:1\r\n+OK\r\n",
    },
  ),
  c('unknown command', cat(cmd('NOPE'), cmd('PING')), {
    why: "rawio's unknown-command error names the command only, not its arguments",
    rawio: "-ERR unknown command 'NOPE'\r\n+PONG\r\n",
  }),
  c('unknown command with arguments', cat(cmd('NOPE', 'a', 'b')), {
    why: "rawio's unknown-command error names the command only, not its arguments",
    rawio: "-ERR unknown command 'NOPE'\r\n",
  }),

  // ---- integers
  c(
    'INCR on values that are not integers',
    cat(
      ...[' 1', '+1', '01', '-0', '1.5', '1e3', '', 'abc', '1 ', '0x10', '--1', '9223372036854775808', '٣'].flatMap(
        (v) => [cmd('SET', 'n', v), cmd('INCR', 'n'), cmd('GET', 'n')],
      ),
    ),
  ),
  c(
    'INCR / DECR at int64 bounds and past them',
    cat(
      cmd('SET', 'n', '9223372036854775806'),
      cmd('INCR', 'n'),
      cmd('INCR', 'n'),
      cmd('GET', 'n'),
      cmd('SET', 'n', '-9223372036854775807'),
      cmd('DECR', 'n'),
      cmd('DECR', 'n'),
      cmd('GET', 'n'),
      cmd('SET', 'n', '0'),
      cmd('INCR', 'n'),
      cmd('SET', 'n', '-1'),
      cmd('INCR', 'n'),
      cmd('INCR', 'n'),
    ),
  ),
  c(
    'INCRBY / DECRBY amounts',
    cat(
      ...[
        '1',
        '-1',
        '0',
        '+1',
        ' 1',
        '01',
        '-0',
        '1.0',
        '',
        '9223372036854775807',
        '-9223372036854775808',
        '9223372036854775808',
        '-9223372036854775809',
        '18446744073709551616',
        '99999999999999999999',
        '9007199254740993',
        '-9007199254740993',
      ].flatMap((d) => [cmd('SET', 'n', '5'), cmd('INCRBY', 'n', d), cmd('SET', 'n', '-5'), cmd('DECRBY', 'n', d)]),
    ),
  ),
  c(
    'INCRBY to exact values past 2^53',
    cat(
      cmd('SET', 'n', '9007199254740991'),
      cmd('INCRBY', 'n', '2'),
      cmd('INCRBY', 'n', '9007199254740993'),
      cmd('DECRBY', 'n', '-4611686018427387904'),
      cmd('DECRBY', 'n', '-9223372036854775807'),
      cmd('SET', 'n', '0'),
      cmd('DECRBY', 'n', '-9223372036854775808'),
      cmd('DECRBY', 'n', '9223372036854775807'),
      cmd('DECR', 'n'),
      cmd('DECR', 'n'),
      cmd('GET', 'n'),
    ),
  ),
  c('INCR on a missing key, then GET', cat(cmd('INCR', 'new'), cmd('DECR', 'new2'), cmd('MGET', 'new', 'new2'))),

  // ---- SET options
  c(
    'SET NX / XX',
    cat(
      cmd('SET', 'a', '1', 'NX'),
      cmd('SET', 'a', '2', 'nx'),
      cmd('SET', 'a', '3', 'XX'),
      cmd('SET', 'b', '3', 'xx'),
      cmd('SET', 'a', '4', 'NX', 'XX'),
      cmd('SET', 'a', '4', 'NX', 'NX'),
      cmd('SET', 'a', '5', 'XX', 'XX'),
      cmd('SET', 'a', '6', 'BOGUS'),
      cmd('MGET', 'a', 'b'),
    ),
  ),
  c('SET EX (no expiries in rawio)', cat(cmd('SET', 'a', '1', 'EX', '10'), cmd('GET', 'a')), {
    why: 'rawio keeps no expiries: SET EX / PX / KEEPTTL / GET are a syntax error',
    rawio: '-ERR syntax error\r\n$-1\r\n',
  }),

  // ---- binary keys and values
  c(
    'binary keys and values: NUL, CR, LF, empty',
    cat(
      cmd('SET', b('\0\r\n'), b('\r\n\0\r')),
      cmd('GET', b('\0\r\n')),
      cmd('SET', '', ''),
      cmd('GET', ''),
      cmd('EXISTS', '', b('\0\r\n'), 'x'),
      cmd('SET', b('\xff\xfe'), b('\x80')),
      cmd('MGET', '', b('\xff\xfe'), b('\0\r\n')),
      cmd('DEL', '', ''),
      cmd('EXISTS', ''),
      cmd('ECHO', b('\0\r\n')),
      cmd('PING', b('\r\n')),
    ),
  ),
  {
    ...c(
      'a 1 MiB key and a 4 MiB value',
      cat(
        cmd('SET', Buffer.alloc(1 << 20, 'k'), Buffer.alloc(4 << 20, 'v')),
        cmd('EXISTS', Buffer.alloc(1 << 20, 'k')),
        cmd('GET', Buffer.alloc(1 << 20, 'k')),
        cmd('QUIT'),
      ),
    ),
    quit: true,
  },
  c(
    'MSET / MGET / DEL / EXISTS with duplicates and thousands of keys',
    cat(
      cmd('MSET', ...manyKeys.flatMap((k, i) => [k, `v${i}`])),
      cmd('DBSIZE'),
      cmd('MGET', ...manyKeys, 'absent'),
      cmd('EXISTS', ...manyKeys, 'absent'),
      cmd('DEL', ...manyKeys, 'absent'),
      cmd('DBSIZE'),
    ),
  ),
  c(
    'MSET of one key twice keeps the last',
    cat(cmd('MSET', 'a', '1', 'a', '2', 'a', '3'), cmd('GET', 'a'), cmd('DBSIZE')),
  ),

  // ---- inline commands
  c('inline: plain words, tabs, several spaces', 'PING\r\nECHO   hello\r\nSET\ta\t\tb\r\n  GET a  \r\n'),
  c('inline: LF-only line ends', 'PING\nSET a b\nGET a\n'),
  c('inline: empty lines and lines of spaces between commands', '\r\n\r\nPING\r\n   \r\n\n\t\r\nPING\r\n'),
  c(
    'inline: double quotes and escapes',
    'ECHO "a b"\r\nECHO "\\x41\\x4a\\n\\t\\"q\\\\"\r\nECHO "\\xZZ"\r\nECHO "\\q"\r\n',
  ),
  c('inline: single quotes', "ECHO 'a b'\r\nECHO 'it\\'s'\r\nECHO 'no\\n'\r\n"),
  c('inline: empty quoted argument', 'SET "" ""\r\nGET ""\r\nECHO \'\'\r\n'),
  c('inline: unbalanced double quote', 'PING\r\nECHO "abc\r\nPING\r\n'),
  c('inline: unbalanced single quote', "ECHO 'abc\r\nPING\r\n"),
  c('inline: a closing quote not followed by a space', 'ECHO "a"b\r\nPING\r\n'),
  c('inline: a quote closed in the middle of a word', 'ECHO a"b"c\r\nPING\r\n'),
  c('inline: a quote opened in the middle of a word', 'SET k a"b c"\r\nGET k\r\nECHO x\'y z\'\r\n'),
  c(
    'inline: \\v and \\f inside a word, and between words',
    'ECHO a\vb\r\nECHO \f\va\f\r\nSET\tk\vl\fm\r\nGET k\vl\fm\r\n',
  ),
  c('inline: a NUL byte', 'ECHO a\0b\r\nECHO "x\0y"\r\n', {
    why: 'a NUL byte in an inline line is a byte of its argument (redis-server stops reading the connection at one)',
    rawio: '$3\r\na\0b\r\n$3\r\nx\0y\r\n',
  }),
  c('inline: a CR inside quotes', 'ECHO "a\r"\nECHO "a\r\r\nPING\r\n'),
  c('inline: a backslash at the end of a quoted part', 'ECHO "a\\"\r\nECHO "a\\\r\n'),
  c('inline: \\x escape cut short', 'ECHO "\\x4"\r\nECHO "\\x"\r\n'),
  c('inline: mixed with multibulk', cat('PING\r\n', cmd('ECHO', 'm'), 'ECHO i\r\n')),
  c('inline: a line with only a CR', '\r\rPING\r\n'),
  c('inline: a 60 000-byte line', cat('ECHO ', 'x'.repeat(60_000), '\r\nPING\r\n')),
  c('inline: a 100 000-byte line', cat('ECHO ', 'x'.repeat(100_000), '\r\nPING\r\n')),
  c('inline: PING and ECHO arity', 'PING a\r\nPING a b\r\nECHO\r\nping\r\n'),
  c('inline: an error in the middle of a pipeline', 'SET a 1\r\nINCR a\r\nGET\r\nINCRBY a x\r\nGET a\r\n'),

  // ---- multibulk framing errors
  c('multibulk: a non-digit count', '*x\r\n'),
  c('multibulk: count with a trailing space', '*1 \r\n$4\r\nPING\r\n'),
  c('multibulk: count with a leading +', '*+1\r\n$4\r\nPING\r\n'),
  c('multibulk: count -2', '*-2\r\nPING\r\n'),
  c('multibulk: count 2147483648', '*2147483648\r\n'),
  c('multibulk: count 1048577', '*1048577\r\n', {
    why: 'rawio takes at most maxArgs arguments (1 048 576 by default; Redis 7 takes up to 2^31 - 1)',
    rawio: '-ERR Protocol error: invalid multibulk length\r\n',
  }),
  c('multibulk: count of 20 digits', '*99999999999999999999\r\n'),
  c('multibulk: a non-digit bulk length', '*1\r\n$x\r\nPING\r\n'),
  c('multibulk: bulk length with a leading +', '*1\r\n$+4\r\nPING\r\n'),
  c('multibulk: bulk length -1 inside a command', '*1\r\n$-1\r\n'),
  c('multibulk: bulk length -2', '*1\r\n$-2\r\n'),
  c('multibulk: a bulk length then no data, then close', '*1\r\n$4\r\n'),
  c('multibulk: fewer arguments than the count, then close', '*3\r\n$3\r\nSET\r\n$1\r\na\r\n'),
  c('multibulk: an argument not starting with $', '*1\r\n:4\r\nPING\r\n'),
  c('multibulk: bulk data not followed by CRLF', '*1\r\n$4\r\nPINGxx\r\n', {
    why: 'rawio checks the CRLF after bulk data (Redis skips two bytes whatever they are)',
    rawio: '-ERR Protocol error: bulk not followed by CRLF\r\n',
  }),
  {
    ...c(
      'a key of 8 MiB, the longest rawio takes',
      cat(
        cmd('SET', Buffer.alloc(8 << 20, 'k'), 'v'),
        cmd('EXISTS', Buffer.alloc(8 << 20, 'k'), 'k'),
        cmd('DEL', Buffer.alloc(8 << 20, 'k')),
        cmd('QUIT'),
      ),
    ),
    quit: true,
  },
  c(
    'multibulk: a command past 16 MiB, its arguments each within 8 MiB',
    cat('*3\r\n$3\r\nSET\r\n$8388608\r\n', Buffer.alloc(8 << 20, 'k'), '\r\n$8388608\r\n'),
    {
      why: 'rawio bounds a command by maxRequest (16 MiB by default), which redis-server does not',
      rawio: '-ERR Protocol error: command too large\r\n',
    },
  ),
  c('multibulk: bulk length past 512 MiB', '*1\r\n$536870913\r\n', {
    why: 'rawio bounds a bulk argument by maxBulk (8 MiB by default), not proto-max-bulk-len (512 MiB)',
    rawio: '-ERR Protocol error: invalid bulk length\r\n',
  }),
  c('multibulk: bulk length 9 MiB (past rawio maxBulk), then close', '*1\r\n$9437184\r\n', {
    why: 'rawio bounds a bulk argument by maxBulk (8 MiB by default), not proto-max-bulk-len (512 MiB)',
    rawio: '-ERR Protocol error: invalid bulk length\r\n',
  }),
  c('multibulk: a bulk length of 20 digits', '*1\r\n$99999999999999999999\r\n'),
  c('multibulk: a count line with no CR', '*1\n$4\r\nPING\r\n'),
  c('multibulk: a count with a leading zero', '*01\r\n$4\r\nPING\r\n'),
  c('multibulk: a count of -0', '*-0\r\nPING\r\n'),
  c('multibulk: a count of 00', '*00\r\nPING\r\n'),
  c('multibulk: a bulk length with a leading zero', '*1\r\n$04\r\nPING\r\n'),
  c('multibulk: a bulk length of -0', '*1\r\n$-0\r\n\r\n'),
  c('multibulk: a bulk length of 00', '*1\r\n$00\r\n\r\n'),
  c('multibulk: an empty count', '*\r\nPING\r\n'),
  c('multibulk: an empty bulk length', '*1\r\n$\r\n\r\n'),
  c('multibulk: a bulk length with a trailing space', '*1\r\n$4 \r\nPING\r\n'),
  c('multibulk: a bulk line with no CR', '*1\r\n$4\nPING\r\n'),
  c('multibulk: commands after a framing error are not answered', cat(cmd('PING'), '*1\r\n$x\r\n', cmd('PING'))),

  // ---- pipelining
  c(
    'pipeline: an error in the middle does not stop the rest',
    cat(
      cmd('SET', 'a', '1'),
      cmd('INCR', 'a'),
      cmd('GET'),
      cmd('NOPE'),
      cmd('SET', 'b', 'x'),
      cmd('INCR', 'b'),
      cmd('MGET', 'a', 'b'),
    ),
    {
      why: "rawio's unknown-command error names the command only, not its arguments",
      rawio:
        "+OK\r\n:2\r\n-ERR wrong number of arguments for 'get' command\r\n-ERR unknown command 'NOPE'\r\n+OK\r\n-ERR value is not an integer or out of range\r\n*2\r\n$1\r\n2\r\n$1\r\nx\r\n",
    },
  ),
  c(
    'pipeline: QUIT in the middle, nothing after it answered',
    cat(cmd('PING'), cmd('SET', 'q', '1'), cmd('QUIT'), cmd('PING'), cmd('GET', 'q')),
  ),
  c('pipeline: inline QUIT in the middle', 'PING\r\nquit\r\nPING\r\n'),
  c('pipeline: 5000 INCRs in one write', cat(...Array.from({ length: 5000 }, () => cmd('INCR', 'p')), cmd('GET', 'p'))),
  c(
    'DBSIZE and FLUSHALL',
    cat(cmd('MSET', 'a', '1', 'b', '2'), cmd('DBSIZE'), cmd('FLUSHALL'), cmd('DBSIZE'), cmd('FLUSHDB')),
  ),
  c('COMMAND, COMMAND COUNT, COMMAND DOCS', cat(cmd('COMMAND', 'COUNT'), cmd('COMMAND', 'DOCS'), cmd('command')), {
    why: 'rawio describes no commands: COMMAND answers an empty array, COMMAND COUNT 0',
    rawio: ':0\r\n*0\r\n*0\r\n',
  }),
  c(
    'CONFIG GET of a glob pattern, and of two names',
    cat(cmd('CONFIG', 'GET', 'sav*'), cmd('CONFIG', 'GET', 'save', 'appendonly')),
    {
      why: 'rawio answers CONFIG GET of one exact name only',
      rawio: "*0\r\n-ERR unsupported CONFIG subcommand 'GET'\r\n",
    },
  ),
  c('CONFIG GET save / appendonly', cat(cmd('CONFIG', 'GET', 'save'), cmd('CONFIG', 'GET', 'appendonly'))),
];

/**
 * Random command sequences (seeded, so every run sends the same): SET with and without NX /
 * XX / EX, GET, INCR / DECR / INCRBY / DECRBY on integers and not, MSET / MGET / DEL / EXISTS
 * over a few keys (empty, binary), ECHO, PING, DBSIZE and inline commands, names in either case.
 */
function randomSequences(count: number, length: number): Buffer[] {
  let seed = 20_261_205;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const pick = <T>(a: readonly T[]): T => a[rnd(a.length)]!;
  const keys = ['a', 'b', 'c', '', '\0', 'k\r\n'];
  const ints = ['0', '1', '-1', '9223372036854775807', '-9223372036854775808', '9223372036854775806', '42'];
  const others = ['01', ' 1', 'x', '', '\0\r\n', '-0', '1e2', '1.5'];
  const value = (): string =>
    rnd(3) === 0 ? pick(others) : rnd(4) === 0 ? 'v'.repeat(rnd(300)) : rnd(2) ? pick(ints) : String(rnd(1e9));
  const name = (n: string): string => (rnd(4) ? n : n.toLowerCase());
  const some = (n: number, make: () => string[]): string[] => Array.from({ length: 1 + rnd(n) }, make).flat();
  const one = (): Buffer => {
    switch (rnd(14)) {
      case 0:
        return cmd(name('SET'), pick(keys), value());
      case 1:
        return cmd(name('SET'), pick(keys), value(), pick(['NX', 'XX', 'nx', 'EX']));
      case 2:
        return cmd(name('GET'), pick(keys));
      case 3:
        return cmd(name('INCR'), pick(keys));
      case 4:
        return cmd(name('DECR'), pick(keys));
      case 5:
        return cmd(name('INCRBY'), pick(keys), value());
      case 6:
        return cmd(name('DECRBY'), pick(keys), value());
      case 7:
        return cmd(name('MSET'), ...some(4, () => [pick(keys), value()]));
      case 8:
        return cmd(name('MGET'), ...some(5, () => [pick(keys)]));
      case 9:
        return cmd(name('DEL'), ...some(5, () => [pick(keys)]));
      case 10:
        return cmd(name('EXISTS'), ...some(5, () => [pick(keys)]));
      case 11:
        return rnd(2) ? cmd('PING') : cmd('ECHO', value());
      case 12:
        return cmd('DBSIZE');
      default:
        return b(pick(['GET a\r\n', 'SET "a b" c\r\n', "INCR 'a'\r\n", 'MGET a b c\r\n', 'EXISTS a a\r\n']));
    }
  };
  return Array.from({ length: count }, () => cat(cmd('FLUSHALL'), ...Array.from({ length }, one)));
}
const RANDOM = randomSequences(40, 30);

describe.skipIf(why.redis)(
  titled('resp: rawio against redis-server, byte for byte, on every model', why.redis),

  () => {
    let redis: ChildProcess | undefined;
    let dir: string | undefined;
    /** redis-server's conversation for each case, each run on a flushed keyspace. */
    const want = new Map<Case, Talk>();
    /** redis-server's conversation for each of RANDOM. */
    const randomWant: Talk[] = [];

    beforeAll(async () => {
      // On a Unix socket of its own: a TCP port found free beforehand may be taken by the time
      // redis-server binds it (another test file's connection, side by side, may get it as its
      // source port), and redis-server then exits.
      dir = mkdtempSync(join(tmpdir(), 'rawio-redis-'));
      const sock = join(dir, 'redis.sock');
      redis = spawn(
        REDIS,
        ['--port', '0', '--unixsocket', sock, '--save', '', '--appendonly', 'no', '--daemonize', 'no'],
        { stdio: 'ignore', cwd: dir },
      );
      const up = await eventually(async () => {
        try {
          return (await talk(sock, cmd('PING'))).data.toString() === '+PONG\r\n';
        } catch {
          return false;
        }
      }, 20_000);
      if (!up) throw new Error(`redis-server did not answer on ${sock}`);
      for (const k of CASES) {
        await talk(sock, cmd('FLUSHALL'));
        want.set(k, await talk(sock, k.send, k.quit));
      }
      for (const send of RANDOM) randomWant.push(await talk(sock, send));
    });

    afterAll(() => {
      redis?.kill('SIGKILL');
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    describe.each(modelNames)('%s', (model) => {
      let server: Server | undefined;
      beforeAll(async () => {
        server = await serve({ model, protocol: 'resp', workers: 2, pool: 2 });
      });
      afterAll(async () => {
        await server?.close();
      });

      it(`answers ${RANDOM.length} random command sequences as redis-server does`, async () => {
        for (const [i, send] of RANDOM.entries())
          expect(shown(await talk(server!.port, send)), `sequence ${i}`).toBe(shown(randomWant[i]!));
      });

      it.each(CASES.map((k) => [k.differs ? `${k.name} — differs: ${k.differs.why}` : k.name, k] as const))(
        '%s',
        async (_, k) => {
          await talk(server!.port, cmd('FLUSHALL'));
          const got = await talk(server!.port, k.send, k.quit);
          if (k.differs === undefined) {
            expect(shown(got)).toBe(shown(want.get(k)!));
            return;
          }
          const text = got.data.toString('latin1');
          if (typeof k.differs.rawio === 'string') expect(text).toBe(k.differs.rawio);
          else expect(text).toMatch(k.differs.rawio);
        },
      );
    });
  },
);

// A model pushes what each read returned: the cases' frames and errors must not depend on
// where the stream was cut (the codec's resumable path against its one-pass path).
describe('resp: the cases above framed the same wherever the stream is cut', () => {
  it.each(CASES.map((k) => [k.name, k] as const))('%s', (_, k) => {
    const whole = feed(new RespCodec(), k.send);
    const same = (cuts: number[]) => {
      const got = feed(new RespCodec(), k.send, cuts);
      expect(hex(got.frames), `cut at ${cuts.length > 8 ? `${cuts.length} points` : cuts.join(',')}`).toEqual(
        hex(whole.frames),
      );
      expect(got.error?.data).toEqual(whole.error?.data);
    };
    if (k.send.length <= 2048) for (const cuts of splits(k.send.length)) same(cuts);
    else {
      let seed = k.send.length;
      for (let round = 0; round < 8; round++) {
        const cuts: number[] = [];
        for (let at = 0; ;) {
          seed = (seed * 1103515245 + 12345) & 0x7fffffff;
          at += 1 + (seed % 70_000);
          if (at >= k.send.length) break;
          cuts.push(at);
        }
        same(cuts);
      }
    }
  });
});
