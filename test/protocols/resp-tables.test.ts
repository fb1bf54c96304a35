/**
 * The RESP protocol's two keyspaces answer alike: the shared-memory Keyspace and the
 * thread-local table (`localKeyspace`), driven by the same random command sequences over a
 * few keys, reply for reply. Also the local table on its own (growth, deletes, capacity,
 * closed, bad arguments) and which models pick it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { constants as os } from 'node:os';
import { LocalKeyspace, createProtocol, serve, type ModelName, type SyncProtocol } from '../helpers/rawio.js';
import { titled, why } from '../helpers/skips.js';
import { feed, fuzzRuns, text } from './feed.js';
import type { RespProtocol } from '../../dist/src/protocols/resp.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const cmd = (...args: (string | Buffer)[]): Buffer =>
  Buffer.concat([
    b(`*${args.length}\r\n`),
    ...args.flatMap((a) => [b(`$${Buffer.byteLength(a)}\r\n`), Buffer.from(a), b('\r\n')]),
  ]);

/** Every reply of the stream, read once all of them are made: a reply must not change after it is handed out. */
function replies(p: SyncProtocol, stream: Buffer): string[] {
  const made = feed(p.createCodec(), stream).frames.map((f) => p.handle(f));
  return made.map((r) => text(r.data));
}

// Few keys, so that commands meet each other's data; values that are and are not integers,
// at and past the int64 edges.
const key = fc.constantFrom('a', 'b', 'k:1', '', '\x00\r\n');
const value = fc.oneof(
  fc.constantFrom('0', '1', '-1', '-0', '007', ' 1', 'x', '', '9223372036854775807', '-9223372036854775808'),
  fc.constantFrom('9223372036854775808', '4503599627370495', '4503599627370496', '99999999999999999999'),
  fc.integer().map(String),
  fc.string({ maxLength: 12 }),
  fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u).toString('latin1')),
);
const delta = fc.oneof(
  fc.constantFrom('1', '-1', '9007199254740991', '-9007199254740991', 'x', '01'),
  fc.integer().map(String),
);
const command: fc.Arbitrary<Buffer> = fc.oneof(
  fc.tuple(key, value).map(([k, v]) => cmd('SET', k, v)),
  fc.tuple(key, value, fc.constantFrom('NX', 'XX', 'nx', 'EX')).map(([k, v, o]) => cmd('SET', k, v, o)),
  key.map((k) => cmd('GET', k)),
  fc.array(key, { minLength: 1, maxLength: 4 }).map((ks) => cmd('DEL', ...ks)),
  fc.array(key, { minLength: 1, maxLength: 4 }).map((ks) => cmd('EXISTS', ...ks)),
  fc.tuple(fc.constantFrom('INCR', 'DECR'), key).map(([c, k]) => cmd(c, k)),
  fc.tuple(fc.constantFrom('INCRBY', 'DECRBY'), key, delta).map(([c, k, d]) => cmd(c, k, d)),
  fc.array(fc.tuple(key, value), { minLength: 1, maxLength: 3 }).map((kv) => cmd('MSET', ...kv.flat())),
  fc.array(key, { minLength: 1, maxLength: 4 }).map((ks) => cmd('MGET', ...ks)),
  fc.constantFrom(cmd('DBSIZE'), cmd('FLUSHALL'), cmd('PING'), cmd('GET')),
  // GET and SET as clients may frame them: any case, lengths with leading zeros, inline.
  fc
    .tuple(fc.constantFrom('SET', 'set', 'SeT'), key, value, fc.constantFrom('0', '00', ''))
    .map(([c, k, v, z]) =>
      Buffer.concat([
        b(`*3\r\n$${z}3\r\n${c}\r\n$${z}${Buffer.byteLength(k)}\r\n${k}\r\n`),
        b(`$${z}`),
        cmd(v).subarray(4),
      ]),
    ),
  fc.tuple(fc.constantFrom('GET', 'get', 'gEt'), key).map(([c, k]) => cmd(c, k)),
  fc
    .tuple(fc.constantFrom('SET', 'get'), fc.constantFrom('a', 'b'))
    .map(([c, k]) => b(c === 'SET' ? `${c} ${k} v\r\n` : `${c} ${k}\r\n`)),
);

describe('resp keyspaces: shared and thread-local', () => {
  const shared = createProtocol('resp', { keyspaceSize: 1 << 20 }) as RespProtocol;
  const local = createProtocol('resp', { keyspaceSize: 1 << 20, localKeyspace: true }) as RespProtocol;
  afterAll(() => {
    shared.close();
    local.close();
  });

  it('answer every command sequence alike (property)', () => {
    fc.assert(
      fc.property(fc.array(command, { minLength: 1, maxLength: 30 }), (cmds) => {
        const stream = Buffer.concat([cmd('FLUSHALL'), ...cmds, cmd('DBSIZE'), cmd('MGET', 'a', 'b', 'k:1', '')]);
        expect(replies(local, stream)).toEqual(replies(shared, stream));
      }),
      { numRuns: fuzzRuns },
    );
  });

  it('the local table answers SET past its capacity with -OOM, and GET what was stored before it', () => {
    const l = createProtocol('resp', { keyspaceSize: 1 << 16, localKeyspace: true }) as RespProtocol;
    try {
      const big = 'x'.repeat(1000);
      const stream = Buffer.concat([
        ...Array.from({ length: 80 }, (_, i) => cmd('SET', `k${i}`, `${i}${big}`)),
        cmd('GET', 'k0'),
        cmd('GET', 'k79'),
        cmd('DBSIZE'),
      ]);
      const got = replies(l, stream);
      const stored = got.slice(0, 80).filter((r) => r === '+OK\r\n').length;
      expect(stored).toBeGreaterThan(50);
      expect(got.slice(stored, 80).every((r) => r.startsWith('-OOM'))).toBe(true);
      expect(got.slice(80)).toEqual([`$1001\r\n0${big}\r\n`, '$-1\r\n', `:${stored}\r\n`]);
    } finally {
      l.close();
    }
  });

  it('the local table is not in shared memory, and takes no name', () => {
    expect(local.options.keyspace).toBeUndefined();
    expect(local.options.localKeyspace).toBe(true);
    expect(local.keyspace.name).toBe('');
    expect(shared.options.keyspace).toBe(shared.keyspace.name);
    expect(() => createProtocol('resp', { localKeyspace: true, keyspace: shared.keyspace.name })).toThrow(RangeError);
    expect(() => createProtocol('resp', { localKeyspace: 'yes' as unknown as boolean })).toThrow(TypeError);
  });
});

describe('LocalKeyspace', () => {
  const k = (i: number): Buffer => b(`key:${i}`);
  /** setAt on the frame of `SET key value`, as the RESP protocol calls it. */
  const setAt = (ks: InstanceType<typeof LocalKeyspace>, key: string, value: string, flags = 0): number => {
    const f = cmd('SET', key, value);
    const from = `*3\r\n$3\r\nSET\r\n$${key.length}\r\n`.length;
    return ks.setAt(f, from, from + key.length, from + key.length + 2, f.length, flags);
  };

  it('grows past its first buckets, deletes from any place in a chain, and counts bytes back to zero', () => {
    const ks = new LocalKeyspace({ size: 64 << 20 });
    const n = 20_000;
    for (let i = 0; i < n; i++) expect(ks.set(k(i), b(`v${i}`))).toBe(1);
    expect(ks.info().keys).toBe(n);
    const out = Buffer.alloc(16);
    for (let i = 0; i < n; i += 7) expect(out.subarray(0, ks.get(k(i), out)).toString()).toBe(`v${i}`);
    for (let i = 0; i < n; i += 2) expect(ks.del(k(i))).toBe(1);
    for (let i = 0; i < n; i++) expect(ks.exists(k(i))).toBe(i % 2);
    for (let i = 0; i < n; i += 2) expect(ks.set(k(i), b('again'))).toBe(1); // reuses freed entries
    for (let i = 0; i < n; i++) expect(ks.del(k(i))).toBe(1);
    expect(ks.info()).toEqual({ keys: 0, used: 0, capacity: 64 << 20 });
    ks.close();
  });

  it('fails a write past its capacity with -ENOMEM, and takes writes again once room is made', () => {
    const ks = new LocalKeyspace({ size: 1 << 16 });
    const big = Buffer.alloc(1000, 120);
    let i = 0;
    while (ks.set(k(i), big) === 1) i++;
    expect(ks.set(k(i), big)).toBe(-os.errno.ENOMEM);
    expect(ks.info().used).toBeLessThanOrEqual(1 << 16);
    expect(ks.mset([b('m'), big])).toBe(-os.errno.ENOMEM);
    expect(ks.del(k(0))).toBe(1);
    expect(ks.set(k(i), big)).toBe(1);
    ks.close();
  });

  it('keeps a value it handed out unchanged when the key is written again', () => {
    const ks = new LocalKeyspace();
    ks.set(b('k'), b('first'));
    const sent = ks.bulk(b('k'))!;
    ks.set(b('k'), b('other'));
    expect(ks.incr(b('n'), 5, Buffer.alloc(24))).toBe(1);
    expect(text(sent)).toBe('$5\r\nfirst\r\n');
    expect(text(ks.bulk(b('k'))!)).toBe('$5\r\nother\r\n');
    ks.close();
  });

  it('overwrites a value in place only while no reply holds it, and counts its bytes the same', () => {
    const ks = new LocalKeyspace();
    const setK = (v: string): number => setAt(ks, 'k', v);
    expect(setK('aaa')).toBe(1);
    const used = ks.info().used;
    expect(setK('bbb')).toBe(1); // never handed out: in place
    expect(ks.info().used).toBe(used);
    const held = ks.replyAt(b('k'), 0, 1)!;
    expect(text(held.data)).toBe('$3\r\nbbb\r\n');
    expect(setK('ccc')).toBe(1); // handed out: a new record, the held one unchanged
    expect(text(held.data)).toBe('$3\r\nbbb\r\n');
    const next = ks.replyAt(b('k'), 0, 1)!;
    expect(next).not.toBe(held);
    expect(text(next.data)).toBe('$3\r\nccc\r\n');
    expect(setK('dddd')).toBe(1); // another length: a new record, its bytes counted
    expect(ks.info().used).toBe(used + 1);
    expect(setK('eeee')).toBe(1); // the new record was never handed out: in place
    expect(text(next.data)).toBe('$3\r\nccc\r\n');
    const out = Buffer.alloc(8);
    expect(out.subarray(0, ks.get(b('k'), out)).toString()).toBe('eeee');
    // get() and mget() copy the value at once: they leave it writable in place
    expect(setK('ffff')).toBe(1);
    const lens = new Int32Array(1);
    expect(ks.mget([b('k')], out, lens)).toBe(4);
    expect(out.subarray(0, 4).toString()).toBe('ffff');
    ks.close();
  });

  it('setAt honours NX and XX, and a deleted key comes back as a fresh record', () => {
    const ks = new LocalKeyspace();
    expect(setAt(ks, 'k', 'v1', 2)).toBe(0); // XX, absent
    expect(setAt(ks, 'k', 'v1', 1)).toBe(1); // NX, absent
    expect(setAt(ks, 'k', 'v0', 1)).toBe(0); // NX, present
    const held = ks.replyAt(b('k'), 0, 1)!;
    expect(ks.del(b('k'))).toBe(1);
    expect(setAt(ks, 'k', 'v2', 2)).toBe(0);
    expect(setAt(ks, 'k', 'v2')).toBe(1);
    expect(setAt(ks, 'k', 'v3', 2)).toBe(1); // in place
    expect(text(held.data)).toBe('$2\r\nv1\r\n');
    expect(text(ks.bulk(b('k'))!)).toBe('$2\r\nv3\r\n');
    expect(ks.info().used).toBe(24 + 1 + 2);
    ks.close();
  });

  it('INCR writes in place too, and never into a value a reply holds', () => {
    const ks = new LocalKeyspace();
    const out = Buffer.alloc(24);
    expect(ks.set(b('n'), b('10'))).toBe(1);
    expect(ks.incr(b('n'), 1, out)).toBe(2);
    const held = ks.bulk(b('n'))!;
    expect(ks.incr(b('n'), 1, out)).toBe(2);
    expect(text(held)).toBe('$2\r\n11\r\n');
    expect(ks.incr(b('n'), 1, out)).toBe(2);
    expect(text(ks.bulk(b('n'))!)).toBe('$2\r\n13\r\n');
    ks.close();
  });

  it('refuses bad arguments, and answers -EBADF once closed', () => {
    const ks = new LocalKeyspace();
    expect(() => ks.set('k' as unknown as Uint8Array, b('v'))).toThrow(TypeError);
    expect(() => ks.set(b('k'), b('v'), 3)).toThrow(RangeError);
    expect(() => ks.incr(b('k'), 1, Buffer.alloc(8))).toThrow(RangeError);
    expect(() => ks.incr(b('k'), 0.5, Buffer.alloc(24))).toThrow(RangeError);
    expect(() => ks.mset([b('k')])).toThrow(RangeError);
    expect(() => ks.mget([b('k')], Buffer.alloc(8), new Int32Array(0))).toThrow(RangeError);
    expect(() => new LocalKeyspace({ size: 10 })).toThrow(RangeError);
    ks.close();
    ks.close();
    expect(ks.get(b('k'), Buffer.alloc(8))).toBe(-os.errno.EBADF);
    expect(ks.set(b('k'), b('v'))).toBe(-os.errno.EBADF);
    expect(ks.incr(b('k'), 1, Buffer.alloc(24))).toBe(-os.errno.EBADF);
    expect(() => ks.info()).toThrow(/EBADF/);
  });
});

/** Whether this process maps a shared keyspace (the memfd the shared table lives in). */
function mapsSharedKeyspace(): boolean {
  return readFileSync('/proc/self/maps', 'utf8').includes('rawio-keyspace');
}

/** SET then GET on two connections in turn: the second sees the first's write. */
async function setThenGet(port: number): Promise<string> {
  const talk = (bytes: Buffer, want: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1');
      let got = '';
      s.on('data', (d) => {
        got += d.toString('latin1');
        if (got.length >= want) {
          s.destroy();
          resolve(got);
        }
      });
      s.on('error', reject);
      s.write(bytes);
    });
  await talk(cmd('SET', 'seen', 'yes'), 5);
  return talk(cmd('GET', 'seen'), 9);
}

describe('the models pick the thread-local table where one thread handles every request', () => {
  const cases: [ModelName, number, boolean][] = [
    ['single', 1, true],
    ['iterative', 1, true],
    ['multi-reactor', 1, true],
    ['multi-reactor', 2, false],
    ['worker-pool', 1, false],
  ];
  for (const [model, workers, local] of cases) {
    it(`${model} with ${workers} worker(s): ${local ? 'thread-local' : 'shared'}, one keyspace across connections`, async () => {
      expect(mapsSharedKeyspace()).toBe(false);
      const server = await serve({ model, protocol: 'resp', workers, pool: 1 });
      try {
        expect(mapsSharedKeyspace()).toBe(!local);
        expect(await setThenGet(server.port)).toBe('$3\r\nyes\r\n');
      } finally {
        await server.close();
      }
    });
  }
});

/** Sends `stream` on a new connection and reads until `want` bytes have come back. */
function exchange(port: number, stream: Buffer, want: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const parts: Buffer[] = [];
    let got = 0;
    s.on('data', (d) => {
      parts.push(d);
      got += d.length;
      if (got >= want) {
        s.destroy();
        resolve(Buffer.concat(parts).toString('latin1'));
      }
    });
    s.on('error', reject);
    s.write(stream);
  });
}

// A GET's reply is the stored record itself: a SET of the same key later in the same
// pipelined batch must not change the reply still waiting in the corked batch (small
// replies are copied into it, larger ones held by reference) or in the reply queue.
describe('SET, GET, SET, GET of one key in one write: each GET answers the value before it', () => {
  const models: ModelName[] = ['single', 'iterative'];
  for (const model of models)
    for (const size of [1, 3000])
      it(`${model}, ${size}-byte values`, async () => {
        const server = await serve({ model, protocol: 'resp' });
        try {
          const [a, c] = ['a'.repeat(size), 'c'.repeat(size)];
          const stream = Buffer.concat([
            cmd('SET', 'k', a),
            cmd('GET', 'k'),
            cmd('SET', 'k', c),
            cmd('GET', 'k'),
            cmd('SET', 'k', a),
            cmd('SET', 'k', c),
            cmd('GET', 'k'),
          ]);
          const want = `+OK\r\n$${size}\r\n${a}\r\n+OK\r\n$${size}\r\n${c}\r\n+OK\r\n+OK\r\n$${size}\r\n${c}\r\n`;
          expect(await exchange(server.port, stream, want.length)).toBe(want);
        } finally {
          await server.close();
        }
      });
});

// RESP frames are views of the bytes read: frames left waiting for a budget must not see
// those bytes reused (by the next read, or by another connection's recv on the proactor).
describe('pipelined RESP past a small in-flight budget, two connections at once', () => {
  const models: ModelName[] = ['single', 'worker-pool', 'multi-reactor', 'proactor', 'thread-per-connection'];
  for (const model of models) {
    // The proactor needs io_uring; without it serve() fails with the kernel's reason.
    const needs = model === 'proactor' ? why.ring : undefined;
    it.skipIf(needs)(titled(model, needs), async () => {
      const server = await serve({ model, protocol: 'resp', workers: 1, pool: 1, maxInFlight: 2 });
      try {
        const run = (who: string): Promise<string> => {
          const cmds: Buffer[] = [];
          let want = '';
          for (let i = 0; i < 300; i++) {
            const v = `${who}-${i}-${'x'.repeat(i % 40)}`;
            cmds.push(cmd('SET', `${who}:${i}`, v), cmd('GET', `${who}:${i}`));
            want += `+OK\r\n$${v.length}\r\n${v}\r\n`;
          }
          return exchange(server.port, Buffer.concat(cmds), want.length).then((got) => {
            expect(got).toBe(want);
            return got;
          });
        };
        await Promise.all([run('a'), run('b')]);
      } finally {
        await server.close();
      }
    });
  }
});
