import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readdirSync } from 'node:fs';
import { constants as buffers } from 'node:buffer';
import v8 from 'node:v8';
import vm from 'node:vm';
import { RespCodec, createProtocol, type RespLimits, type SyncProtocol } from '../helpers/rawio.js';
import { titled } from '../helpers/skips.js';
import { feed, fuzzRuns, hex, splits, text } from './feed.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const cmd = (...args: (string | Buffer)[]): Buffer =>
  Buffer.concat([
    b(`*${args.length}\r\n`),
    ...args.flatMap((a) => [b(`$${Buffer.byteLength(a)}\r\n`), Buffer.from(a), b('\r\n')]),
  ]);

function run(p: SyncProtocol, stream: Buffer | string, cuts: number[] = []): string[] {
  const { frames, error } = feed(p.createCodec(), typeof stream === 'string' ? b(stream) : stream, cuts);
  const out = frames.map((f) => text(p.handle(f).data));
  return error ? [...out, `CLOSE ${text(error.data)}`] : out;
}

// Every test runs on both keyspaces: the shared-memory one and the thread-local table.
for (const localKeyspace of [false, true])
  describe(`resp protocol (${localKeyspace ? 'thread-local' : 'shared'} keyspace)`, () => {
    const p = createProtocol('resp', { localKeyspace });
    afterAll(() => {
      p.close();
      expect(readdirSync('/dev/shm').filter((n) => n.startsWith(`rawio-ks-${process.pid}-`))).toEqual([]);
    });

    it('answers the redis-benchmark commands', () => {
      const stream = Buffer.concat([
        cmd('PING'),
        cmd('SET', 'key:1', 'xxx'),
        cmd('GET', 'key:1'),
        cmd('GET', 'nope'),
        cmd('INCR', 'counter'),
        cmd('INCR', 'counter'),
        cmd('MSET', 'a', '1', 'b', '2'),
        cmd('MGET', 'a', 'nope', 'b'),
        cmd('CONFIG', 'GET', 'save'),
        cmd('CONFIG', 'GET', 'maxmemory'),
        cmd('COMMAND', 'DOCS'),
        cmd('COMMAND'),
      ]);
      expect(run(p, stream)).toEqual([
        '+PONG\r\n',
        '+OK\r\n',
        '$3\r\nxxx\r\n',
        '$-1\r\n',
        ':1\r\n',
        ':2\r\n',
        '+OK\r\n',
        '*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n',
        '*2\r\n$4\r\nsave\r\n$0\r\n\r\n',
        '*0\r\n',
        '*0\r\n',
        '*0\r\n',
      ]);
    });

    it('answers ECHO, DEL, EXISTS, SET NX/XX, INCRBY/DECR, DBSIZE, SELECT, QUIT', () => {
      expect(run(p, 'FLUSHALL\r\nSET k v\r\nEXISTS k k nope\r\nDEL k nope\r\nEXISTS k\r\nDBSIZE\r\n')).toEqual([
        '+OK\r\n',
        '+OK\r\n',
        ':2\r\n',
        ':1\r\n',
        ':0\r\n',
        ':0\r\n',
      ]);
      expect(
        run(p, 'ECHO "a b"\r\nPING hi\r\nSET n 1 NX\r\nSET n 2 NX\r\nSET m 1 XX\r\nSET n 3 XX\r\nGET n\r\n'),
      ).toEqual(['$3\r\na b\r\n', '$2\r\nhi\r\n', '+OK\r\n', '$-1\r\n', '$-1\r\n', '+OK\r\n', '$1\r\n3\r\n']);
      expect(run(p, 'INCRBY n 10\r\nDECR n\r\nDECRBY n 20\r\nSELECT 0\r\nSELECT 1\r\n')).toEqual([
        ':13\r\n',
        ':12\r\n',
        ':-8\r\n',
        '+OK\r\n',
        '-ERR DB index is out of range\r\n',
      ]);
      const c = p.createCodec();
      const quit = p.handle(c.push(b('QUIT\r\n')).frames[0]);
      expect(quit.close).toBe(true);
    });

    it('reports errors the way Redis does', () => {
      expect(
        run(p, 'SET s abc\r\nINCR s\r\nSET big 9223372036854775807\r\nINCR big\r\nGET\r\nSET k v EX 10\r\nMSET a\r\n'),
      ).toEqual([
        '+OK\r\n',
        '-ERR value is not an integer or out of range\r\n',
        '+OK\r\n',
        '-ERR increment or decrement would overflow\r\n',
        "-ERR wrong number of arguments for 'get' command\r\n",
        '-ERR syntax error\r\n',
        "-ERR wrong number of arguments for 'mset' command\r\n",
      ]);
      // An amount follows the same integer rule as a stored value: no sign but '-', no leading zero, no -0
      expect(
        run(p, 'INCRBY d -0\r\nINCRBY d +1\r\nDECRBY d 01\r\nINCRBY d " 1"\r\nINCRBY d 0\r\nDECRBY d -2\r\n'),
      ).toEqual([...Array<string>(4).fill('-ERR value is not an integer or out of range\r\n'), ':0\r\n', ':2\r\n']);
      // A command name cannot inject a reply: CR and LF are masked.
      expect(run(p, cmd('FOO\r\n+OK', 'x'))).toEqual(["-ERR unknown command 'FOO??+OK'\r\n"]);
    });

    it('stores binary keys and values byte-exact, large ones too', () => {
      const key = Buffer.from([0, 13, 10, 255]);
      const value = Buffer.alloc(300_000, 7);
      value[0] = 0;
      const [ok, got] = run(p, Buffer.concat([cmd('SET', key, value), cmd('GET', key)]));
      expect(ok).toBe('+OK\r\n');
      expect(got).toBe(`$${value.length}\r\n${text(value)}\r\n`);
    });

    it('refuses FLUSHALL / FLUSHDB with an argument other than SYNC or ASYNC, flushing nothing; checks DBSIZE and SELECT', () => {
      expect(run(p, 'SET kept 1\r\nFLUSHALL oops\r\nFLUSHDB ASYNC x\r\nEXISTS kept\r\nDBSIZE x\r\n')).toEqual([
        '+OK\r\n',
        '-ERR syntax error\r\n',
        '-ERR syntax error\r\n',
        ':1\r\n',
        "-ERR wrong number of arguments for 'dbsize' command\r\n",
      ]);
      expect(
        run(p, 'SELECT x\r\nSELECT 2147483648\r\nSELECT 0 1\r\nSELECT 1\r\nSELECT 0\r\nFLUSHDB async\r\nDBSIZE\r\n'),
      ).toEqual([
        '-ERR value is not an integer or out of range\r\n',
        '-ERR value is out of range, value must between -2147483648 and 2147483647\r\n',
        "-ERR wrong number of arguments for 'select' command\r\n",
        '-ERR DB index is out of range\r\n',
        '+OK\r\n',
        '+OK\r\n',
        ':0\r\n',
      ]);
    });

    it('holds no memory after a large MGET or GET: the reply is built in buffers of its own', async () => {
      v8.setFlagsFromString('--expose-gc');
      const collect = vm.runInNewContext('gc') as () => void;
      // Backing stores are freed after the collection, off the thread: give them their turn.
      const gc = async () => {
        for (let i = 0; i < 3; i++) {
          collect();
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      const big = createProtocol('resp', { localKeyspace });
      try {
        const value = Buffer.alloc(8 << 20, 'v');
        expect(run(big, cmd('SET', 'v', value))).toEqual(['+OK\r\n']);
        await gc();
        const before = process.memoryUsage().arrayBuffers;
        const keys = Array<string>(8).fill('v');
        const [reply] = run(big, Buffer.concat([cmd('MGET', ...keys)]));
        expect(reply).toBe(`*8\r\n${`$${8 << 20}\r\n${'v'.repeat(8 << 20)}\r\n`.repeat(8)}`);
        expect(run(big, cmd('GET', 'v'))[0]).toBe(`$${8 << 20}\r\n${'v'.repeat(8 << 20)}\r\n`);
        await gc();
        // 64 MiB of reply made and dropped: no more than the value's 8 MiB may stay behind.
        expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 << 20);
      } finally {
        big.close();
      }
    });

    const huge = buffers.MAX_LENGTH > 2 ** 33 && 'typed arrays here reach past 8 GiB: no reply is too large to build';
    it.skipIf(huge)(
      titled('answers an error to an MGET whose reply no buffer can hold, and goes on', huge),

      () => {
        const big = createProtocol('resp', { localKeyspace });
        try {
          expect(run(big, cmd('SET', 'v', Buffer.alloc(8 << 20)))).toEqual(['+OK\r\n']);
          const n = Math.ceil((buffers.MAX_LENGTH + 1) / (8 << 20));
          expect(run(big, Buffer.concat([cmd('MGET', ...Array<string>(n).fill('v')), cmd('PING')]))).toEqual([
            `-ERR reply too large to build (${n * (8 << 20)} bytes)\r\n`,
            '+PONG\r\n',
          ]);
        } finally {
          big.close();
        }
      },
    );

    it('answers CONFIG GET with the name as asked, and an empty array for a name an object has', () => {
      expect(run(p, Buffer.concat([cmd('CONFIG', 'GET', 'SAVE'), cmd('config', 'get', 'appendOnly')]))).toEqual([
        '*2\r\n$4\r\nSAVE\r\n$0\r\n\r\n',
        '*2\r\n$10\r\nappendOnly\r\n$2\r\nno\r\n',
      ]);
      for (const name of ['constructor', '__proto__', 'tostring', 'maxmemory'])
        expect(run(p, cmd('CONFIG', 'GET', name))).toEqual(['*0\r\n']);
    });

    it('parses inline commands with quotes, and refuses unbalanced ones', () => {
      expect(run(p, 'SET "k 1" \'v\\\'s\'\r\n\r\nGET "k\\x201"\n')).toEqual(['+OK\r\n', "$3\r\nv's\r\n"]);
      expect(run(p, 'GET "oops\r\nPING\r\n')).toEqual(['CLOSE -ERR Protocol error: unbalanced quotes in request\r\n']);
    });

    it('splits inline arguments as Redis does: a quote may open mid-word, \\v and \\f belong to a word', () => {
      // A quote opened inside a word joins its quoted part to the word; its closing quote ends it.
      expect(run(p, 'SET k a"b c"\r\nGET k\r\nECHO x\'y z\'\r\n')).toEqual([
        '+OK\r\n',
        '$4\r\nab c\r\n',
        '$4\r\nxy z\r\n',
      ]);
      expect(run(p, 'ECHO a"b"c\r\nPING\r\n')).toEqual(['CLOSE -ERR Protocol error: unbalanced quotes in request\r\n']);
      // Only space, tab, CR and LF end an unquoted word; \v and \f separate words only before one.
      expect(run(p, 'ECHO a\vb\r\nECHO \f\va\f\r\n')).toEqual(['$3\r\na\vb\r\n', '$2\r\na\f\r\n']);
      // One CR before the LF is the line's end, not a byte of a quoted part.
      expect(run(p, 'ECHO "a\r"\nECHO "a\r\r\n')).toEqual([
        '$2\r\na\r\r\n',
        'CLOSE -ERR Protocol error: unbalanced quotes in request\r\n',
      ]);
    });

    it('frames a pipelined stream the same at every split', () => {
      const stream = Buffer.concat([
        cmd('SET', 'sp', 'value'),
        b('PING\r\n'),
        cmd('GET', 'sp'),
        b('*0\r\n'),
        cmd('ECHO', ''),
      ]);
      const whole = feed(p.createCodec(), stream).frames;
      expect(whole).toHaveLength(4);
      for (const cuts of splits(stream.length))
        expect(hex(feed(p.createCodec(), stream, cuts).frames)).toEqual(hex(whole));
    });

    const malformed: [string, string, string][] = [
      ['a huge bulk length', '*2\r\n$3\r\nGET\r\n$99999999999\r\n', 'invalid bulk length'],
      ['a negative bulk length', '*2\r\n$3\r\nGET\r\n$-1\r\n', 'invalid bulk length'],
      ['a huge array count', '*99999999\r\n', 'invalid multibulk length'],
      ['a non-numeric count', '*x\r\n', 'invalid multibulk length'],
      ['a missing $', '*1\r\n:3\r\n', "expected '$', got ':'"],
      ['a count line that never ends', `*${'1'.repeat(40)}`, 'too big mbulk count string'],
      ['a count line ended by a bare LF', '*1\n$4\r\n', 'invalid multibulk length'],
      ['a count with a leading zero', '*01\r\n$4\r\nPING\r\n', 'invalid multibulk length'],
      ['a count of -0', '*-0\r\n', 'invalid multibulk length'],
      ['a bulk length with a leading zero', '*1\r\n$04\r\nPING\r\n', 'invalid bulk length'],
      ['a bulk length of -0', '*1\r\n$-0\r\n\r\n', 'invalid bulk length'],
      ['a bulk length of 00', '*1\r\n$00\r\n\r\n', 'invalid bulk length'],
      ['a bulk length line ended by a bare LF', '*1\r\n$4\nPING\r\n', 'invalid bulk length'],
      ['a bulk without CRLF', '*1\r\n$4\r\nPINGxx', 'bulk not followed by CRLF'],
      ['an inline line over 64 KiB', 'A'.repeat(70_000), 'too big inline request'],
    ];
    for (const [what, input, msg] of malformed) {
      it(`answers a protocol error and closes: ${what}`, () => {
        expect(run(p, 'PING\r\n' + input + 'PING\r\n')).toEqual(['+PONG\r\n', `CLOSE -ERR Protocol error: ${msg}\r\n`]);
      });
    }

    it('searches an inline line trickled byte by byte once, not once per byte', () => {
      // Counted, not timed: the bytes Uint8Array#indexOf is asked to search.
      const original = Uint8Array.prototype.indexOf;
      let searched = 0;
      Uint8Array.prototype.indexOf = function (this: Uint8Array, v: number, from = 0) {
        searched += this.length - from;
        return original.call(this, v, from);
      };
      const c = new RespCodec();
      const frames: Uint8Array[] = [];
      try {
        const line = b(`ECHO ${'a'.repeat(20_000)}\r\nPING\r\n`);
        for (let i = 0; i < line.length; i++) frames.push(...c.push(line.subarray(i, i + 1)).frames);
      } finally {
        Uint8Array.prototype.indexOf = original;
      }
      expect(frames.map((f) => text(p.handle(f).data).length)).toEqual([20_000 + 10, 7]);
      expect(searched).toBeLessThan(200_000); // about one byte each; a rescan per byte is 2 * 10^8
    });

    it('refuses a declared bulk over the limit before any of it arrives', () => {
      const c = new RespCodec({ maxBulk: 16, maxRequest: 64 });
      expect(text(c.push(b('*1\r\n$17\r\n')).error!.data)).toMatch(/invalid bulk length/);
      const d = new RespCodec({ maxRequest: 64 });
      expect(text(d.push(b('*3\r\n$30\r\n' + 'a'.repeat(30) + '\r\n$40\r\n')).error!.data)).toMatch(/too large/);
    });

    it('holds an inline line to maxRequest as a multibulk command, before its end arrives', () => {
      // The same reply and close for both forms, and no line buffered past the limit.
      const multibulk = new RespCodec({ maxRequest: 64 });
      expect(text(multibulk.push(cmd('SET', 'k', 'v'.repeat(60))).error!.data)).toBe(
        '-ERR Protocol error: command too large\r\n',
      );
      const inline = new RespCodec({ maxRequest: 64 });
      expect(inline.push(b('SET k ' + 'v'.repeat(58))).error).toBeUndefined(); // 64 bytes, no LF yet
      expect(inline.buffered).toBe(64);
      const r = inline.push(b('v'));
      expect(r.error).toMatchObject({ close: true });
      expect(text(r.error!.data)).toBe('-ERR Protocol error: command too large\r\n');
      expect(inline.buffered).toBe(0);
      // Within the limit, LF included, the line is a command.
      expect(feed(new RespCodec({ maxRequest: 64 }), b('SET k ' + 'v'.repeat(56) + '\r\n')).frames).toHaveLength(1);
      expect(feed(new RespCodec({ maxRequest: 64 }), b('SET k ' + 'v'.repeat(57) + '\r\n')).error).toBeDefined();
    });

    it('answers OOM when the keyspace is full, and recovers after DEL', () => {
      const small = createProtocol('resp', { keyspaceSize: 1 << 16, localKeyspace });
      const value = 'v'.repeat(1000);
      const replies: string[] = [];
      for (let i = 0; i < 100; i++) replies.push(...run(small, cmd('SET', `k${i}`, value)));
      expect(replies[0]).toBe('+OK\r\n');
      expect(replies.at(-1)).toMatch(/^-OOM /);
      expect(run(small, 'FLUSHALL\r\n')).toEqual(['+OK\r\n']);
      expect(run(small, cmd('SET', 'k', value))).toEqual(['+OK\r\n']);
      small.close();
    });

    it('takes INCRBY and DECRBY amounts over the whole int64 range, as Redis does', () => {
      const by = (c: string, d: string): string => run(p, cmd(c, 'n', d))[0]!;
      expect(run(p, cmd('SET', 'n', '0'))).toEqual(['+OK\r\n']);
      expect(by('INCRBY', '9223372036854775807')).toBe(':9223372036854775807\r\n');
      expect(by('INCRBY', '1')).toBe('-ERR increment or decrement would overflow\r\n');
      expect(by('DECRBY', '9223372036854775807')).toBe(':0\r\n');
      expect(by('DECRBY', '-9223372036854775808')).toBe('-ERR decrement would overflow\r\n');
      expect(by('INCRBY', '-9223372036854775808')).toBe(':-9223372036854775808\r\n');
      expect(by('INCRBY', '9223372036854775808')).toBe('-ERR value is not an integer or out of range\r\n');
      expect(by('DECRBY', '9007199254740993')).toBe('-ERR increment or decrement would overflow\r\n');
      expect(by('INCRBY', '9007199254740993')).toBe(':-9214364837600034815\r\n');
      expect(run(p, cmd('DEL', 'n'))).toEqual([':1\r\n']);
    });

    it('answers OOM to an MSET that does not fit whole, and writes none of its pairs', () => {
      const small = createProtocol('resp', { keyspaceSize: 1 << 16, localKeyspace });
      expect(run(small, cmd('SET', 'a', 'old'))).toEqual(['+OK\r\n']);
      const big = 'v'.repeat(32_730); // two of them fit neither table (64 KiB), one does
      expect(run(small, cmd('MSET', 'a', 'new', 'b', 'x', 'c', big, 'd', big))).toEqual([
        expect.stringMatching(/^-OOM /),
      ]);
      expect(run(small, cmd('MGET', 'a', 'b', 'c', 'd'))).toEqual(['*4\r\n$3\r\nold\r\n$-1\r\n$-1\r\n$-1\r\n']);
      expect(run(small, 'DBSIZE\r\n')).toEqual([':1\r\n']);
      // a key written twice takes its room once: this one fits
      expect(run(small, cmd('MSET', 'c', big, 'c', big, 'd', 'x'))).toEqual(['+OK\r\n']);
      expect(run(small, cmd('MGET', 'a', 'd'))).toEqual(['*2\r\n$3\r\nold\r\n$1\r\nx\r\n']);
      expect(run(small, 'DBSIZE\r\n')).toEqual([':3\r\n']);
      small.close();
    });

    const arg = fc.uint8Array({ maxLength: 20 }).map((u) => Buffer.from(u));
    const command = fc.array(arg, { minLength: 1, maxLength: 5 }).map((args) => cmd(...args));
    const cutsOf = (raw: number[], n: number): number[] => raw.map((x) => x % n).sort((x, y) => x - y);
    const byteCuts = (n: number): number[] => Array.from({ length: Math.max(n - 1, 0) }, (_, i) => i + 1);

    // A command that arrives whole is read in one pass; one that arrives in pieces, or that
    // is odd in any way, by the resumable path. Both must frame and refuse alike.
    const edges: [string, RespLimits, string][] = [
      ['the common form', {}, '*2\r\n$3\r\nGET\r\n$1\r\nk\r\n'],
      ['leading zeros', {}, '*02\r\n$003\r\nGET\r\n$01\r\nk\r\n'],
      ['an empty argument', {}, '*2\r\n$4\r\nECHO\r\n$0\r\n\r\n'],
      ['*0 and *-1', {}, '*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n'],
      ['$-0', {}, '*2\r\n$4\r\nECHO\r\n$-0\r\n\r\n'],
      ['a count of 8 digits', {}, '*00000001\r\n$4\r\nPING\r\n'],
      ['a length of 10 digits', {}, '*1\r\n$0000000004\r\nPING\r\n'],
      ['a bulk at maxBulk', { maxBulk: 4 }, '*1\r\n$4\r\nPING\r\n'],
      ['a bulk past maxBulk', { maxBulk: 3 }, '*1\r\n$4\r\nPING\r\n'],
      ['a command at maxRequest', { maxRequest: 14 }, '*1\r\n$4\r\nPING\r\n'],
      ['a command past maxRequest', { maxRequest: 13 }, '*1\r\n$4\r\nPING\r\n'],
      ['an inline line at maxRequest', { maxRequest: 6 }, 'PING\r\nPING\r\n'],
      ['an inline line past maxRequest by its LF', { maxRequest: 5 }, 'PING\r\n'],
      ['an inline line past maxRequest before maxInline', { maxRequest: 4, maxInline: 8 }, 'PINGPINGPING\r\n'],
      ['an inline line past maxInline before maxRequest', { maxRequest: 8, maxInline: 4 }, 'PINGPINGPING\r\n'],
      ['an inline line past both at one byte', { maxRequest: 4, maxInline: 4 }, 'PINGPING\r\n'],
      ['a count at maxArgs', { maxArgs: 1 }, '*1\r\n$4\r\nPING\r\n'],
      ['a count past maxArgs', { maxArgs: 1 }, '*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n'],
      ['a bare LF', {}, '*1\n$4\r\nPING\r\n'],
      ['a plus sign', {}, '*+1\r\n$4\r\nPING\r\n'],
      ['a missing length', {}, '*1\r\n$\r\nPING\r\n'],
      ['bytes where CRLF belongs', {}, '*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n'],
      ['a command cut short', {}, '*2\r\n$3\r\nGET\r\n$5\r\nke'],
    ];
    for (const [what, limits, input] of edges)
      it(`frames and refuses alike whole and one byte at a time: ${what}`, () => {
        const stream = b(input);
        const whole = feed(new RespCodec(limits), stream);
        const bytewise = feed(new RespCodec(limits), stream, byteCuts(stream.length));
        expect(hex(bytewise.frames)).toEqual(hex(whole.frames));
        expect(bytewise.error && text(bytewise.error.data)).toEqual(whole.error && text(whole.error.data));
      });
    const timeout = Math.max(60_000, fuzzRuns * 3);

    it(
      'frames commands split anywhere the same (property)',
      () => {
        fc.assert(
          fc.property(
            fc.array(command, { minLength: 1, maxLength: 5 }),
            fc.array(fc.nat(), { maxLength: 8 }),
            (cmds, raw) => {
              const stream = Buffer.concat(cmds);
              const whole = feed(new RespCodec(), stream);
              expect(whole.frames).toHaveLength(cmds.length);
              expect(hex(feed(new RespCodec(), stream, cutsOf(raw, stream.length)).frames)).toEqual(hex(whole.frames));
            },
          ),
          { numRuns: fuzzRuns },
        );
      },
      timeout,
    );

    it(
      'never throws on mutated or arbitrary bytes, and frames them the same however split (fuzz)',
      () => {
        const fuzzy = createProtocol('resp', { keyspaceSize: 1 << 20, localKeyspace });
        const inline = fc.array(fc.constantFrom(...'ab "\'\\x0\r\n\t'), { maxLength: 40 }).map((a) => b(a.join('')));
        const mutated = fc
          .tuple(
            fc.array(fc.oneof(command, inline), { minLength: 1, maxLength: 4 }),
            fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean()), {
              minLength: 1,
              maxLength: 4,
            }),
          )
          .map(([parts, edits]) => {
            const bytes = [...Buffer.concat(parts)];
            for (const [at, byte, insert] of edits) bytes.splice(at % (bytes.length + 1), insert ? 0 : 1, byte);
            return Buffer.from(bytes);
          });
        const input = fc.oneof(
          mutated,
          fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u)),
        );
        fc.assert(
          fc.property(input, fc.array(fc.nat(), { maxLength: 8 }), (stream, raw) => {
            const limits = { maxBulk: 64, maxInline: 128, maxRequest: 256 };
            const whole = feed(new RespCodec(limits), stream);
            const split = feed(new RespCodec(limits), stream, cutsOf(raw, Math.max(stream.length, 1)));
            expect(hex(split.frames)).toEqual(hex(whole.frames));
            expect(split.error && text(split.error.data)).toEqual(whole.error && text(whole.error.data));
            // One byte a push: every command through the resumable path, none whole at once.
            const bytewise = feed(new RespCodec(limits), stream, byteCuts(stream.length));
            expect(hex(bytewise.frames)).toEqual(hex(whole.frames));
            expect(bytewise.error && text(bytewise.error.data)).toEqual(whole.error && text(whole.error.data));
            for (const f of whole.frames) expect(fuzzy.handle(f).data.length).toBeGreaterThan(0);
            if (whole.error) expect(whole.error.close).toBe(true);
          }),
          { numRuns: fuzzRuns },
        );
        fuzzy.close();
      },
      timeout,
    );
  });
