import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { constants as os } from 'node:os';
import { ErrnoError, Keyspace, LocalKeyspace, createProtocol, type KeyspaceLike } from '../helpers/rawio.js';
import { leakedSince, openFds } from '../helpers/fds.js';

const b = (s: string): Buffer => Buffer.from(s);
const dist = new URL('../../dist/src/index.js', import.meta.url).href;
/** Where a keyspace shows in the filesystem: /dev/shm for a named one, its /proc fd link for an anonymous one. */
const shm = (name: string): string => (name.startsWith('/proc/') ? name : `/dev/shm${name}`);

/** Adds 1 to `key` n times in a worker thread (script) or child process (argv), attached by name. */
const INCR = `
  const run = async (url, name, n) => {
    const { Keyspace } = await import(url);
    const ks = Keyspace.attach(name);
    const key = Buffer.from('counter');
    const out = Buffer.alloc(24);
    for (let i = 0; i < n; i++) if (ks.incr(key, 1, out) < 0) throw new Error('incr failed');
    ks.close();
  };`;

function incrInThread(name: string, n: number): Promise<void> {
  const code = `${INCR}
    const { workerData, parentPort } = require('node:worker_threads');
    run(workerData.url, workerData.name, workerData.n).then(() => parentPort.postMessage('done'));`;
  const w = new Worker(code, { eval: true, workerData: { url: dist, name, n } });
  return new Promise((resolve, reject) => {
    w.once('message', () => resolve());
    w.once('error', reject);
  });
}

async function incrInProcess(name: string, n: number): Promise<void> {
  const code = `${INCR} run(process.argv[1], process.argv[2], Number(process.argv[3]));`;
  await promisify(execFile)(process.execPath, ['-e', code, dist, name, String(n)]);
}

/**
 * One contender for `max` slots shared by `contenders` (a worker thread's script or a child
 * process's argv), attached by name. First `loops` times: take a slot with incrIfSumBelow
 * (its own key among every contender's), read all keys (one lock: a true instant), give
 * the slot back. Then `rounds` bursts: every contender waits for all the others at a
 * barrier in the keyspace, then tries once for one of `max` fresh slots, keeping it.
 * Resolves with what it saw.
 */
const CONTEND = `
  const contend = async (url, name, id, contenders, max, loops, rounds) => {
    const { Keyspace } = await import(url);
    const ks = Keyspace.attach(name);
    const out = Buffer.alloc(24);
    const keys = (prefix) => Array.from({ length: contenders }, (_, i) => Buffer.from(prefix + ':' + i));
    const value = (key) => {
      const n = ks.get(key, out);
      return n < 0 ? 0 : Number(out.subarray(0, n).toString());
    };
    const barrier = (key) => {
      if (ks.incr(key, 1, out) < 0) throw new Error('incr failed');
      while (value(key) < contenders);
    };
    const slots = keys('slot');
    const held = Buffer.alloc(24 * contenders);
    const lens = new Int32Array(contenders);
    let taken = 0, refused = 0, peak = 0;
    barrier(Buffer.from('start'));
    for (let i = 0; i < loops; i++) {
      const r = ks.incrIfSumBelow(slots[id], slots, max, out);
      if (r < 0) throw new Error('incrIfSumBelow failed: ' + r);
      if (r === 0) {
        refused++;
        continue;
      }
      taken++;
      if (ks.mget(slots, held, lens) < 0) throw new Error('mget failed');
      let sum = 0;
      for (let j = 0, at = 0; j < contenders; at += Math.max(lens[j], 0), j++)
        if (lens[j] > 0) sum += Number(held.subarray(at, at + lens[j]).toString());
      peak = Math.max(peak, sum);
      if (ks.incr(slots[id], -1, out) < 0) throw new Error('incr failed');
    }
    let won = 0;
    for (let r = 0; r < rounds; r++) {
      barrier(Buffer.from('round:' + r));
      const burst = keys('burst:' + r);
      const got = ks.incrIfSumBelow(burst[id], burst, max, out);
      if (got < 0) throw new Error('incrIfSumBelow failed: ' + got);
      if (got > 0) won++;
    }
    ks.close();
    return { taken, refused, peak, won };
  };`;

interface Contended {
  taken: number;
  refused: number;
  peak: number;
  won: number;
}
type ContendArgs = [name: string, id: number, contenders: number, max: number, loops: number, rounds: number];

function contendInThread(...args: ContendArgs): Promise<Contended> {
  const code = `${CONTEND}
    const { workerData, parentPort } = require('node:worker_threads');
    contend(workerData.url, ...workerData.args).then((r) => parentPort.postMessage(r));`;
  const w = new Worker(code, { eval: true, workerData: { url: dist, args } });
  return new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
}

async function contendInProcess(...args: ContendArgs): Promise<Contended> {
  const code = `${CONTEND}
    contend(process.argv[1], process.argv[2], ...process.argv.slice(3).map(Number))
      .then((r) => process.stdout.write(JSON.stringify(r)));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', code, dist, ...args.map(String)]);
  return JSON.parse(stdout) as Contended;
}

/**
 * The KeyspaceLike contract, one table of cases run on both implementations: the shared
 * keyspace (16 buckets, so that chains are long) and a one-thread LocalKeyspace. Code
 * written against KeyspaceLike must get the same answers from either.
 */
const tables: [string, (size: number) => KeyspaceLike][] = [
  ['Keyspace', (size) => Keyspace.create(undefined, { size, buckets: 16 })],
  ['LocalKeyspace', (size) => new LocalKeyspace({ size })],
];

describe.each(tables)('%s: the KeyspaceLike contract', (_name, make) => {
  it('has every method the shared Keyspace has', () => {
    const methods = (proto: object) =>
      Reflect.ownKeys(proto).filter((k) => k !== 'constructor' && typeof Reflect.get(proto, k) === 'function');
    using ks = make(1 << 16);
    for (const m of methods(Keyspace.prototype)) expect(typeof Reflect.get(ks, m), String(m)).toBe('function');
    expect(typeof ks.name).toBe('string');
  });

  it('incrIfSumBelow takes a slot only while the keys it sums are below max', () => {
    using ks = make(1 << 20);
    const out = Buffer.alloc(24);
    const text = (n: number) => out.subarray(0, n).toString();
    const keys = [b('a'), b('b'), b('none')]; // 'none' is never set: it counts as 0
    expect(ks.incrIfSumBelow(b('a'), keys, 3, out)).toBe(1);
    expect(text(1)).toBe('1');
    expect(ks.incrIfSumBelow(b('a'), keys, 3, out)).toBe(1);
    expect(text(1)).toBe('2');
    ks.set(b('b'), b('1')); // another counter's slot
    expect(ks.incrIfSumBelow(b('a'), keys, 3, out)).toBe(0); // 2 + 1: at the limit
    expect(ks.incrIfSumBelow(b('b'), keys, 3, out)).toBe(0);
    const value = (k: string) => text(ks.get(b(k), out));
    expect([value('a'), value('b'), ks.exists(b('none'))]).toEqual(['2', '1', 0]); // nothing changed
    expect(ks.incr(b('b'), -1, out)).toBe(1); // b gives its slot back
    expect(ks.incrIfSumBelow(b('a'), keys, 3, out)).toBe(1);
    expect(text(1)).toBe('3');
    expect(ks.incrIfSumBelow(b('fresh'), [], 1, out)).toBe(1); // no keys: the sum is 0
    expect(ks.incrIfSumBelow(b('c'), [b('a')], 4, out)).toBe(1); // its own key need not be summed
    expect(ks.incrIfSumBelow(b('c'), [b('a')], 3, out)).toBe(0);
    expect(ks.incrIfSumBelow(b('d'), [b('d')], 0, out)).toBe(0); // max 0: never
    ks.set(b('neg'), b('-2'));
    expect(ks.incrIfSumBelow(b('d'), [b('a'), b('neg')], 2, out)).toBe(1); // 3 - 2 < 2
    expect(value('d')).toBe('1');
    ks.set(b('d'), b('9'));
    expect(ks.incrIfSumBelow(b('d'), [b('d')], 10, out)).toBe(2);
    expect(value('d')).toBe('10');
  });

  it('delPrefix deletes every key that begins with the prefix (bytes, not text), and only those', () => {
    using ks = make(1 << 20);
    const out = Buffer.alloc(24);
    for (let i = 0; i < 200; i++) ks.set(b(`client:1:${i}`), b('1'));
    for (let i = 0; i < 50; i++) ks.set(b(`client:10:${i}`), b('1')); // a longer worker index: not under 'client:1:'
    ks.set(Buffer.from([0x63, 0x3a, 0x00, 0xff]), b('x')); // binary keys
    ks.set(b('client:1'), b('short')); // shorter than the prefix
    expect(ks.delPrefix(b('client:1:'))).toBe(200);
    expect(ks.info().keys).toBe(52);
    expect(ks.exists(b('client:10:7'))).toBe(1);
    expect(ks.exists(b('client:1'))).toBe(1);
    expect(ks.delPrefix(b('client:1:'))).toBe(0); // nothing left under it
    expect(ks.delPrefix(Buffer.from([0x63, 0x3a, 0x00]))).toBe(1);
    // The freed blocks serve new keys, and the chains are whole: every remaining key is found.
    for (let i = 0; i < 200; i++) expect(ks.incr(b(`n:${i}`), 1, out)).toBe(1);
    for (let i = 0; i < 50; i++) expect(ks.exists(b(`client:10:${i}`))).toBe(1);
    expect(ks.delPrefix(b(''))).toBe(251); // the empty prefix: every key
    expect(ks.info().keys).toBe(0);
  });

  it('incrIfSumBelow fails like incr on a value that is not an integer, and on overflow', () => {
    using ks = make(1 << 20);
    const out = Buffer.alloc(24);
    ks.set(b('own'), b('1'));
    for (const bad of ['', ' 1', '01', '+1', '-0', '1x', '99999999999999999999']) {
      ks.set(b('bad'), b(bad));
      expect(ks.incrIfSumBelow(b('own'), [b('own'), b('bad')], 100, out)).toBe(-os.errno.EINVAL);
      expect(ks.incrIfSumBelow(b('bad'), [b('own')], 100, out)).toBe(-os.errno.EINVAL); // its own value
    }
    expect(out.subarray(0, ks.get(b('own'), out)).toString()).toBe('1'); // untouched
    ks.set(b('big'), b('9223372036854775807'));
    expect(ks.incrIfSumBelow(b('own'), [b('big'), b('own')], 100, out)).toBe(-os.errno.ERANGE); // the sum
    expect(ks.incrIfSumBelow(b('big'), [b('own')], 100, out)).toBe(-os.errno.ERANGE); // the add
    expect(out.subarray(0, ks.get(b('own'), out)).toString()).toBe('1');
  });

  it('incrIfSumBelow refuses bad arguments before touching the table', () => {
    using ks = make(1 << 16);
    const out = Buffer.alloc(24);
    const call =
      (...args: unknown[]) =>
      () =>
        Reflect.apply(ks.incrIfSumBelow, ks, args) as number;
    expect(call(b('k'), [b('k')], 1, out)()).toBe(1); // each call below differs from this one in one place
    for (const [args, type] of [
      [['k', [b('k')], 1, out], TypeError],
      [[b('k'), b('k'), 1, out], TypeError],
      [[b('k'), ['k'], 1, out], TypeError],
      [[b('k'), [b('k'), null], 1, out], TypeError],
      [[b('k'), [b('k')], '1', out], TypeError],
      [[b('k'), [b('k')], 1n, out], TypeError],
      [[b('k'), [b('k')], 1, [0]], TypeError],
      [[b('k'), [b('k')], 1], TypeError],
      [[b('k'), [b('k')], NaN, out], RangeError],
      [[b('k'), [b('k')], -1, out], RangeError],
      [[b('k'), [b('k')], 1.5, out], RangeError],
      [[b('k'), [b('k')], Infinity, out], RangeError],
      [[b('k'), [b('k')], 2 ** 53 + 2, out], RangeError],
      [[b('k'), [b('k')], 1, Buffer.alloc(23)], RangeError],
    ] as const) {
      expect(call(...args), String(args)).toThrow(type);
    }
    expect(out.subarray(0, ks.get(b('k'), out)).toString()).toBe('1'); // none of them counted
  });

  it('checks a key before answering -EBADF once closed, as every method does', () => {
    const ks = make(1 << 16);
    ks.close();
    expect(() => ks.get('k' as unknown as Uint8Array, Buffer.alloc(8))).toThrow(TypeError);
    expect(() => ks.set('k' as unknown as Uint8Array, b('v'))).toThrow(TypeError);
    expect(ks.get(b('k'), Buffer.alloc(8))).toBe(-os.errno.EBADF);
  });

  it('refuses a detached key with a TypeError in every method, storing nothing (test/detached-buffers.test.ts has the rest)', () => {
    const ks = make(1 << 16);
    const detached = () => {
      const u = new Uint8Array(8);
      structuredClone(u.buffer, { transfer: [u.buffer] });
      return u;
    };
    const out = Buffer.alloc(24);
    const TYPE = expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    expect(() => ks.set(detached(), b('v'))).toThrow(TYPE);
    expect(() => ks.incr(detached(), 1, out)).toThrow(TYPE);
    expect(() => ks.exists(detached())).toThrow(TYPE);
    expect(() => ks.delPrefix(detached())).toThrow(TYPE);
    expect(ks.info().keys).toBe(0);
    // The empty key itself is a key like any other.
    expect(ks.set(b(''), b('v'))).toBe(1);
    expect(ks.get(b(''), out)).toBe(1);
    expect(ks.delPrefix(b(''))).toBe(1);
    expect(ks.info().keys).toBe(0);
    ks.close();
  });

  it('leaves the table as it was after every refused operation (full, NX / XX, not an integer, overflow, at the limit)', () => {
    const keys = Array.from({ length: 24 }, (_, i) => b(`key${i}`));
    const snapshot = (ks: KeyspaceLike): string => {
      const out = Buffer.alloc(1 << 20);
      const lens = new Int32Array(keys.length);
      const n = ks.mget(keys, out, lens);
      return `${JSON.stringify(ks.info())} ${lens.join(',')} ${out.subarray(0, n).toString('latin1')}`;
    };
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const value = (): Buffer => Buffer.alloc([rnd(10), rnd(3000), rnd(30_000)][rnd(3)]!, 97 + rnd(26));
    const ints = ['9223372036854775807', '-9223372036854775808', '5', 'x', '01'];
    const deltas = [1, -1, 2 ** 53, -(2 ** 53), (1n << 63n) - 1n, -(1n << 63n)];
    let refused = 0;
    for (let round = 0; round < 10; round++) {
      const ks = make(1 << 16);
      for (let step = 0; step < 300; step++) {
        const k = keys[rnd(keys.length)]!;
        const out = Buffer.alloc(24);
        const before = snapshot(ks);
        let r: number;
        let ok: boolean;
        switch (rnd(5)) {
          case 0:
            ok = (r = ks.set(k, value(), rnd(3))) === 1;
            break;
          case 1: {
            const kv = Array.from({ length: 2 * (1 + rnd(3)) }, (_, i) => (i % 2 ? value() : keys[rnd(keys.length)]!));
            ok = (r = ks.mset(kv)) === 0;
            break;
          }
          case 2:
            ok = (r = ks.incr(k, deltas[rnd(deltas.length)]!, out)) > 0;
            break;
          case 3:
            ok = (r = ks.set(k, b(ints[rnd(ints.length)]!))) === 1;
            break;
          default:
            ok = (r = ks.incrIfSumBelow(k, [keys[rnd(keys.length)]!, k], rnd(20), out)) > 0;
        }
        if (r < 0) expect([-os.errno.ENOMEM, -os.errno.EINVAL, -os.errno.ERANGE]).toContain(r);
        if (!ok) {
          refused++;
          expect(snapshot(ks)).toBe(before);
        }
      }
      ks.close();
    }
    expect(refused).toBeGreaterThan(100);
  });

  it('answers -EBADF once closed, and closes twice', () => {
    const ks = make(1 << 16);
    const out = Buffer.alloc(24);
    ks.set(b('a'), b('1'));
    ks.close();
    ks.close();
    expect(ks.delPrefix(b(''))).toBe(-os.errno.EBADF);
    expect(ks.incrIfSumBelow(b('a'), [b('a')], 5, out)).toBe(-os.errno.EBADF);
    expect(ks.incr(b('a'), 1, out)).toBe(-os.errno.EBADF);
    expect(ks.get(b('a'), out)).toBe(-os.errno.EBADF);
    expect(() => ks.info()).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });
});

describe('shared-memory keyspace', () => {
  afterAll(() => {
    // every segment this process created was unlinked
    expect(readdirSync('/dev/shm').filter((n) => n.startsWith(`rawio-ks-${process.pid}-`))).toEqual([]);
  });

  it('creates a named segment, attaches to it, and the creator unlinks it on close', () => {
    const before = openFds();
    const ks = Keyspace.create(`/rawio-ks-test-${process.pid}`);
    expect(ks.name).toMatch(/^\/rawio-ks-/);
    expect(existsSync(shm(ks.name))).toBe(true);
    const other = Keyspace.attach(ks.name);
    expect(other.owner).toBe(false);
    expect(ks.set(b('k'), b('v'))).toBe(1);
    const out = Buffer.alloc(8);
    expect(other.get(b('k'), out)).toBe(1);
    expect(out.subarray(0, 1).toString()).toBe('v');
    other.close();
    expect(existsSync(shm(ks.name))).toBe(true);
    ks.close();
    ks.close(); // idempotent
    expect(existsSync(shm(ks.name))).toBe(false);
    expect(ks.get(b('k'), out)).toBe(-os.errno.EBADF);
    expect(leakedSince(before)).toEqual([]); // the mapping holds no fd
    expect(() => Keyspace.attach(ks.name)).toThrow(ErrnoError);
    expect(() => Keyspace.attach(ks.name)).toThrow(/ENOENT/);
  });

  it('is anonymous by default: a memfd reopened through /proc, nothing left in /dev/shm', () => {
    const before = openFds();
    const shmBefore = readdirSync('/dev/shm').length;
    const ks = Keyspace.create(undefined, { size: 1 << 16 });
    expect(ks.name).toBe(`/proc/${process.pid}/fd/${ks.name.split('/').at(-1)}`);
    expect(readdirSync('/dev/shm').length).toBe(shmBefore);
    const other = Keyspace.attach(ks.name);
    expect(ks.set(b('k'), b('anon'))).toBe(1);
    const out = Buffer.alloc(8);
    expect(other.get(b('k'), out)).toBe(4);
    other.close();
    expect(() => Keyspace.create(ks.name)).toThrow(/EEXIST/);
    ks.close();
    expect(leakedSince(before)).toEqual([]); // the creator's memfd is closed with it
  });

  it('gives back the space of a value that shrank in place: a later write compacts it away', () => {
    using ks = Keyspace.create(undefined, { size: 2 << 20 });
    expect(ks.set(b('big'), Buffer.alloc(800 << 10))).toBe(1); // a 1 MiB block
    expect(ks.set(b('big'), b('now small'))).toBe(1); // in place: its block stays 1 MiB
    expect(ks.info().capacity).toBeLessThan(2 * (1 << 20)); // no room for another 1 MiB block past it…
    expect(ks.set(b('x'), Buffer.alloc(700 << 10))).toBe(1); // …but big needs only 64 bytes now
    const out = Buffer.alloc(16);
    expect(ks.get(b('big'), out)).toBe(9);
    expect(out.subarray(0, 9).toString()).toBe('now small');
    expect(ks.get(b('x'), Buffer.alloc(0))).toBe(700 << 10);
  });

  it('writes all of an MSET or none even when a compaction runs in the middle of it', () => {
    using ks = Keyspace.create(undefined, { size: 1 << 20, buckets: 1024 });
    const out = Buffer.alloc(32 << 10);
    // k in a 32 KiB block, the rest full of 1 KiB blocks then 32-byte ones; then k overwritten
    // in place by a small value (a compaction would shrink its block to 128 bytes), and 16 KiB
    // of 1 KiB blocks freed apart from each other.
    expect(ks.set(b('k'), Buffer.alloc(20 << 10, 1))).toBe(1);
    let n = 0;
    while (ks.set(b(`f${n}`), Buffer.alloc(900)) === 1) n++;
    for (let i = 0; ks.set(b(`s${i}`), b('v')) === 1; i++);
    expect(ks.set(b('k'), Buffer.alloc(100, 2))).toBe(1);
    for (let i = 0; i < 16; i++) expect(ks.del(b(`f${3 * i}`))).toBe(1);
    // x takes a 16 KiB block, compacting as the free space is scattered; k's new value fits its
    // block as it is, and is written in place unless that compaction shrank it.
    const r = ks.mset([b('x'), Buffer.alloc(10 << 10, 3), b('k'), Buffer.alloc(20 << 10, 4)]);
    if (r === 0) {
      expect(ks.get(b('x'), out)).toBe(10 << 10);
      expect(ks.get(b('k'), out)).toBe(20 << 10);
      expect(out.subarray(0, 20 << 10).every((c) => c === 4)).toBe(true);
    } else {
      expect(r).toBe(-os.errno.ENOMEM);
      expect(ks.exists(b('x'))).toBe(0); // none of it written
      expect(ks.get(b('k'), out)).toBe(100);
    }
    expect(r).toBe(0); // it fits: the compaction shrinks no block under an MSET
  });

  it('gets, sets, overwrites, deletes and counts', () => {
    using ks = Keyspace.create(undefined, { size: 1 << 20 });
    const out = Buffer.alloc(64);
    expect(ks.get(b('a'), out)).toBe(-os.errno.ENOENT);
    ks.set(b('a'), b('short'));
    ks.set(b('a'), b('a much longer value than before, moved to a larger block'));
    expect(ks.get(b('a'), out)).toBe(56);
    ks.set(b('a'), b('x'));
    expect(ks.get(b('a'), out)).toBe(1);
    expect(ks.get(b('a'), Buffer.alloc(0))).toBe(1); // length reported even when out is too small
    expect(ks.exists(b('a'))).toBe(1);
    expect(ks.del(b('a'))).toBe(1);
    expect(ks.del(b('a'))).toBe(0);
    expect(ks.mset([b('x'), b('1'), b('y'), b('22')])).toBe(0);
    const lens = new Int32Array(3);
    expect(ks.mget([b('x'), b('none'), b('y')], out, lens)).toBe(3);
    expect([...lens]).toEqual([1, -1, 2]);
    expect(out.subarray(0, 3).toString()).toBe('122');
    expect(ks.mget([b('x'), b('y')], Buffer.alloc(1), lens)).toBe(3); // asks for room
    expect(ks.info().keys).toBe(2);
    expect(ks.incr(b('x'), 41, out)).toBe(2);
    expect(out.subarray(0, 2).toString()).toBe('42');
    expect(ks.incr(b('fresh'), -5, out)).toBe(2);
    expect(out.subarray(0, 2).toString()).toBe('-5');
    for (const bad of ['', ' 1', '01', '+1', '-0', '1x', '99999999999999999999']) {
      ks.set(b('bad'), b(bad));
      expect(ks.incr(b('bad'), 1, out)).toBe(-os.errno.EINVAL);
    }
    ks.set(b('max'), b('9223372036854775807'));
    expect(ks.incr(b('max'), 1, out)).toBe(-os.errno.ERANGE);
  });

  it('fails with ENOMEM when full and reuses freed blocks', () => {
    using ks = Keyspace.create(undefined, { size: 1 << 16 });
    const v = Buffer.alloc(500, 1);
    let n = 0;
    while (ks.set(b(`k${n}`), v) === 1) n++;
    expect(ks.set(b('more'), v)).toBe(-os.errno.ENOMEM);
    expect(n).toBeGreaterThan(50);
    for (let i = 0; i < n; i++) expect(ks.del(b(`k${i}`))).toBe(1);
    expect(ks.info()).toMatchObject({ keys: 0, used: 0 });
    for (let i = 0; i < n; i++) expect(ks.set(b(`j${i}`), v)).toBe(1); // the freed blocks again
    let small = 0;
    while (ks.set(b(`s${small}`), b('1')) === 1) small++; // the last 32-byte blocks
    const out = Buffer.alloc(24);
    expect(ks.incr(b('counter'), 1, out)).toBe(-os.errno.ENOMEM);
    expect(ks.incrIfSumBelow(b('counter'), [b('counter')], 10, out)).toBe(-os.errno.ENOMEM);
    expect(ks.exists(b('counter'))).toBe(0);
    expect(ks.del(b('s0'))).toBe(1);
    expect(ks.incrIfSumBelow(b('counter'), [b('counter')], 10, out)).toBe(1); // room again
  });

  it('gives freed space of one block size to another: emptied, it takes a large value; overwrites that grow do not run it out', () => {
    using ks = Keyspace.create(undefined, { size: 1 << 20 });
    let n = 0;
    while (ks.set(b(`k${n}`), Buffer.alloc(10)) === 1) n++; // full of the smallest blocks
    for (let i = 0; i < n; i++) expect(ks.del(b(`k${i}`))).toBe(1);
    const big = Buffer.alloc(100_000, 7);
    expect(ks.set(b('big'), big)).toBe(1); // an empty keyspace holds a value a tenth its size
    const out = Buffer.alloc(big.length);
    expect(ks.get(b('big'), out)).toBe(big.length);
    expect(out.equals(big)).toBe(true);
    expect(ks.del(b('big'))).toBe(1);
    // 50 keys rewritten with ever longer values, 400 KB live at the end of 1 MiB
    for (let size = 16; size <= 8192; size += 16) {
      for (let k = 0; k < 50; k++) expect(ks.set(b(`m${k}`), Buffer.alloc(size, k))).toBe(1);
    }
    expect(ks.info()).toMatchObject({ keys: 50, used: 50 * (24 + 8192) + 10 * 2 + 40 * 3 }); // keys m0-m9, m10-m49
    for (let k = 0; k < 50; k++) {
      expect(ks.get(b(`m${k}`), out)).toBe(8192);
      expect(out.subarray(0, 8192).equals(Buffer.alloc(8192, k))).toBe(true);
    }
    // and the space of a large block deleted goes to small ones again
    n = 0;
    while (ks.set(b(`s${n}`), Buffer.alloc(10)) === 1) n++;
    expect(ks.info().keys).toBe(50 + n);
    for (let k = 0; k < 50; k++) expect(ks.del(b(`m${k}`))).toBe(1);
    let more = 0;
    while (ks.set(b(`t${more}`), Buffer.alloc(10)) === 1) more++;
    expect(more).toBeGreaterThan(n); // the 50 blocks of 16 KiB, 32 bytes at a time
    for (let i = 0; i < n; i++) expect(ks.get(b(`s${i}`), out)).toBe(10);
  });

  it('incr takes a bigint delta within int64, in both tables', () => {
    for (const ks of [Keyspace.create(undefined, { size: 1 << 16 }), new LocalKeyspace({ size: 1 << 16 })]) {
      const out = Buffer.alloc(24);
      expect(ks.incr(b('n'), -(2n ** 63n), out)).toBe(20);
      expect(out.subarray(0, 20).toString()).toBe('-9223372036854775808');
      expect(ks.incr(b('n'), -1n, out)).toBe(-os.errno.ERANGE);
      expect(ks.incr(b('n'), 2n ** 63n - 1n, out)).toBe(2);
      expect(out.subarray(0, 2).toString()).toBe('-1');
      expect(() => ks.incr(b('n'), 2n ** 63n, out)).toThrow(RangeError);
      expect(() => ks.incr(b('n'), -(2n ** 63n) - 1n, out)).toThrow(RangeError);
      ks.close();
    }
  });

  it('sizes both tables alike: 64 KiB to 4 GiB - 1, a RangeError past them', () => {
    expect(() => new LocalKeyspace({ size: 2 ** 32 })).toThrow(RangeError);
    expect(() => Keyspace.create(undefined, { size: 2 ** 32 })).toThrow(RangeError);
    for (const localKeyspace of [false, true]) {
      expect(() => createProtocol('resp', { localKeyspace, keyspaceSize: 2 ** 32 })).toThrow(RangeError);
      expect(() => createProtocol('resp', { localKeyspace, keyspaceSize: (1 << 16) - 1 })).toThrow(RangeError);
    }
  });

  it('refuses bad arguments before touching memory', () => {
    using ks = Keyspace.create(undefined, { size: 1 << 16 });
    expect(() => Keyspace.create('no-slash')).toThrow(RangeError);
    expect(() => Keyspace.create('/a/b')).toThrow(RangeError);
    expect(() => Keyspace.create(undefined, { size: 100 })).toThrow(RangeError);
    expect(() => Keyspace.create(undefined, { buckets: 100 })).toThrow(RangeError);
    // Each in range, together too many buckets for the size: a RangeError, not an errno.
    expect(() => Keyspace.create(undefined, { size: 1 << 16, buckets: 1 << 24 })).toThrow(RangeError);
    expect(() => Keyspace.create(undefined, { size: 1 << 16, buckets: 1 << 14 })).toThrow(/4 KiB of size/);
    Keyspace.create(undefined, { size: 1 << 16, buckets: 1 << 13 }).close(); // 32 KiB of buckets: room left
    expect(() => Keyspace.attach(42 as unknown as string)).toThrow(TypeError);
    expect(() => ks.get('k' as unknown as Uint8Array, Buffer.alloc(1))).toThrow(TypeError);
    expect(() => ks.incr(b('k'), 1, Buffer.alloc(4))).toThrow(RangeError);
    expect(() => ks.incr(b('k'), NaN, Buffer.alloc(24))).toThrow(RangeError);
    expect(() => ks.mset([b('odd')])).toThrow(RangeError);
    expect(() => ks.mget([b('k')], Buffer.alloc(1), new Int32Array(0))).toThrow(RangeError);
    expect(() => Keyspace.create(ks.name)).toThrow(/EEXIST/);
  });

  it('is one keyspace for protocols on several worker threads', async () => {
    const p = createProtocol('resp', { keyspaceSize: 1 << 20 });
    const name = p.options.keyspace!;
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.url).then(({ createProtocol }) => {
        const p = createProtocol('resp', workerData.options);
        const c = p.createCodec();
        const say = (s) => c.push(Buffer.from(s)).frames.map((f) => Buffer.from(p.handle(f).data).toString()).join('');
        const got = say('GET from-main\\r\\n');
        say('SET from-worker yes\\r\\n');
        p.close();
        parentPort.postMessage(got);
      });`;
    const main = p.createCodec();
    p.handle(main.push(b('SET from-main hello\r\n')).frames[0]);
    const w = new Worker(code, { eval: true, workerData: { url: dist, options: p.options } });
    const got = await new Promise((resolve, reject) => w.once('message', resolve).once('error', reject));
    expect(got).toBe('$5\r\nhello\r\n');
    expect(Buffer.from(p.handle(main.push(b('GET from-worker\r\n')).frames[0]).data).toString()).toBe('$3\r\nyes\r\n');
    expect(existsSync(shm(name))).toBe(true); // the worker's close did not unlink it
    p.close();
    expect(existsSync(shm(name))).toBe(false);
  });

  it('INCR is atomic across 2 threads and 2 processes', async () => {
    using ks = Keyspace.create(undefined, { size: 1 << 16 });
    const n = 5000;
    await Promise.all([
      incrInThread(ks.name, n),
      incrInThread(ks.name, n),
      incrInProcess(ks.name, n),
      incrInProcess(ks.name, n),
    ]);
    const out = Buffer.alloc(24);
    const len = ks.get(b('counter'), out);
    expect(out.subarray(0, len).toString()).toBe(String(4 * n));
  });

  it('resp DEL and EXISTS of several keys are atomic across threads: EXISTS a b never sees half an MSET or DEL', async () => {
    const p = createProtocol('resp');
    const frame = (...args: string[]): Buffer =>
      Buffer.from(`*${args.length}\r\n${args.map((a) => `$${a.length}\r\n${a}\r\n`).join('')}`);
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.url).then(({ createProtocol }) => {
        const p = createProtocol('resp', { keyspace: workerData.name });
        const f = (...a) => Buffer.from('*' + a.length + '\\r\\n' + a.map((x) => '$' + x.length + '\\r\\n' + x + '\\r\\n').join(''));
        const mset = f('MSET', 'a', '1', 'b', '1');
        const del = f('DEL', 'a', 'b');
        for (let i = 0; i < workerData.n; i++) { p.handle(mset); p.handle(del); }
        p.close();
        parentPort.postMessage('done');
      });`;
    const w = new Worker(code, { eval: true, workerData: { url: dist, name: p.options.keyspace, n: 200_000 } });
    let done = false;
    w.once('message', () => (done = true));
    const seen = new Map<string, number>();
    const exists = frame('EXISTS', 'a', 'b');
    while (!done) {
      const r = Buffer.from(p.handle(exists).data).toString();
      seen.set(r, (seen.get(r) ?? 0) + 1);
      await new Promise<void>((resolve) => setImmediate(resolve)); // lets the worker's message in
    }
    await w.terminate();
    p.close();
    expect(seen.get(':1\r\n') ?? 0).toBe(0);
  });

  it('incrIfSumBelow is exact across 2 threads and 2 processes: never past max, never short of it', async () => {
    using ks = Keyspace.create(undefined, { size: 1 << 20 });
    const contenders = 4;
    const max = 3; // one short of the contenders: each burst is a race for the last slot
    const loops = 2000;
    const rounds = 200;
    const args = (id: number): ContendArgs => [ks.name, id, contenders, max, loops, rounds];
    const seen = await Promise.all([
      contendInThread(...args(0)),
      contendInThread(...args(1)),
      contendInProcess(...args(2)),
      contendInProcess(...args(3)),
    ]);
    for (const s of seen) {
      expect(s.taken + s.refused).toBe(loops);
      expect(s.peak).toBeLessThanOrEqual(max); // the slots held, read under the lock: a refused try leaves no trace
    }
    expect(seen.reduce((n, s) => n + s.taken, 0)).toBeGreaterThan(0);
    const out = Buffer.alloc(24);
    const sum = (prefix: string): number => {
      let total = 0;
      for (let i = 0; i < contenders; i++) {
        const n = ks.get(b(`${prefix}:${i}`), out);
        if (n > 0) total += Number(out.subarray(0, n).toString());
      }
      return total;
    };
    expect(sum('slot')).toBe(0); // every slot taken was given back
    // Each burst: 4 contenders at once for 3 free slots, and exactly 3 get one. Taking a slot
    // as an INCR, then a read of the sum after it, may refuse both racers for the last slot.
    for (let r = 0; r < rounds; r++) expect(sum(`burst:${r}`), `round ${r}`).toBe(max);
    expect(seen.reduce((n, s) => n + s.won, 0)).toBe(rounds * max);
  });
});
