import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { constants as os } from 'node:os';
import { ErrnoError, Keyspace, createProtocol } from '../helpers/rawio.js';
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
  });

  it('refuses bad arguments before touching memory', () => {
    using ks = Keyspace.create(undefined, { size: 1 << 16 });
    expect(() => Keyspace.create('no-slash')).toThrow(RangeError);
    expect(() => Keyspace.create('/a/b')).toThrow(RangeError);
    expect(() => Keyspace.create(undefined, { size: 100 })).toThrow(RangeError);
    expect(() => Keyspace.create(undefined, { buckets: 100 })).toThrow(RangeError);
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
});
