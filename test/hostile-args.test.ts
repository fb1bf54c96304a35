/**
 * Bad input, by class, across every call where the class showed up (real syscalls, no mocks):
 *
 * - argument errors carry Node's codes also where a call reaches the addon without a check
 *   in front (Keyspace, ZerocopySocket.send, the load generator's options) and where a
 *   check threw a bare TypeError / RangeError (signals, Ring.reap, resolveTarget …);
 * - nonsense is refused, not coerced: a fractional or string count, NaN as a CPU, 0 as an
 *   errno, a number where a name goes;
 * - a call that cannot work fails with a SystemError-shaped error (code, errno, syscall),
 *   never a bare Error;
 * - options are checked before anything starts or is taken: a load generator run with a bad
 *   option never starts (the process exits at once), a Connection refused its reactor or an
 *   option leaves no fd behind;
 * - a count that would loop forever (hdrTable's ticksPerHalf) is a RangeError — run in a
 *   child process with a deadline, so that a hang fails the test instead of the runner;
 * - a buffer the kernel holds (an io_uring read in flight, a MSG_ZEROCOPY send) cannot be
 *   detached by transferring its ArrayBuffer: the transfer copies, the kernel's bytes land in
 *   the caller's buffer and never in memory another owner got after the transfer freed it
 *   (a child process: what is tested is heap corruption).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatHdrTable, hdrTable, loadgen, percentile, resolveTarget } from '../dist/src/loadgen/index.js';
import {
  Connection,
  ErrnoError,
  Keyspace,
  Proactor,
  Reactor,
  Ring,
  check,
  constants,
  errnoError,
  errnoName,
  sys,
  waitWritable,
} from './helpers/rawio.js';
import { leakedSince, openFds } from './helpers/fds.js';
import { titled, why } from './helpers/skips.js';

const TYPE = { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' };
const RANGE = { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' };
type Want = typeof TYPE | typeof RANGE | { name: 'TypeError'; code: 'ERR_INVALID_ARG_VALUE' };

/** The error `fn` throws or its promise rejects with. */
async function failure(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  return 'returned';
}

function shape(e: unknown): unknown {
  if (!(e instanceof Error)) return e;
  return { name: e.constructor.name, code: (e as { code?: string }).code };
}

/**
 * Runs `code` (an ES module) in a child Node given `flags`, killed at a 20 s deadline (which
 * fails with `hung`, else its stderr), and returns what it printed, parsed as JSON.
 */
function runChild(code: string, opts: { hung?: string; flags?: string[] } = {}): unknown {
  const args = [...(opts.flags ?? []), '--input-type=module', '-e', code];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 20_000 });
  expect(r.signal, opts.hung ?? r.stderr).toBeNull();
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

async function expectAll(table: [string, () => unknown, Want][]): Promise<void> {
  const got: Record<string, unknown> = {};
  const want: Record<string, unknown> = {};
  for (const [name, fn, w] of table) {
    got[name] = shape(await failure(fn));
    want[name] = w;
  }
  expect(got).toEqual(want);
}

let dir: string;
let file: number;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rawio-hostile-args-'));
  writeFileSync(join(dir, 'f'), Buffer.alloc(8192, 1));
  file = sys.open(join(dir, 'f'), constants.O_RDONLY);
});
afterAll(() => {
  sys.close(file);
  rmSync(dir, { recursive: true, force: true });
});

describe('argument errors carry their code, checked in JS or in the addon', () => {
  it('Keyspace methods (checked by the addon alone)', async () => {
    const ks = Keyspace.create(undefined, { size: 1 << 16 });
    const k = Buffer.from('k');
    try {
      await expectAll([
        ['get(key: string)', () => ks.get('k' as never, Buffer.alloc(8)), TYPE],
        ['get(out: ArrayBuffer)', () => ks.get(k, new ArrayBuffer(8) as never), TYPE],
        ['set(value: number)', () => ks.set(k, 3 as never), TYPE],
        ['set(flags: 1.5)', () => ks.set(k, k, 1.5), RANGE],
        ['set(flags: NaN)', () => ks.set(k, k, NaN), RANGE],
        ['del(key: null)', () => ks.del(null as never), TYPE],
        ['exists(key: {})', () => ks.exists({} as never), TYPE],
        ['incr(delta: "1")', () => ks.incr(k, '1' as never, Buffer.alloc(32)), TYPE],
        ['incr(delta: 0.5)', () => ks.incr(k, 0.5, Buffer.alloc(32)), RANGE],
        ['incr(delta: 2n ** 63n)', () => ks.incr(k, 2n ** 63n, Buffer.alloc(32)), RANGE],
        ['delMany(keys: key)', () => ks.delMany(k as never), TYPE],
        ['delPrefix(prefix: string)', () => ks.delPrefix('k' as never), TYPE],
        ['existsMany(keys: [string])', () => ks.existsMany(['k'] as never), TYPE],
        ['mset(kv: {})', () => ks.mset({} as never), TYPE],
        ['mset([key, 3])', () => ks.mset([k, 3 as never]), TYPE],
        ['mget(lens: Uint8Array)', () => ks.mget([k], Buffer.alloc(8), new Uint8Array(1) as never), TYPE],
        ['incrIfSumBelow(keys: key)', () => ks.incrIfSumBelow(k, k as never, 1, Buffer.alloc(24)), TYPE],
        ['incrIfSumBelow(keys: [string])', () => ks.incrIfSumBelow(k, ['k'] as never, 1, Buffer.alloc(24)), TYPE],
        ['incrIfSumBelow(max: "1")', () => ks.incrIfSumBelow(k, [k], '1' as never, Buffer.alloc(24)), TYPE],
        ['incrIfSumBelow(max: -1)', () => ks.incrIfSumBelow(k, [k], -1, Buffer.alloc(24)), RANGE],
        ['incrIfSumBelow(max: 0.5)', () => ks.incrIfSumBelow(k, [k], 0.5, Buffer.alloc(24)), RANGE],
        ['incrIfSumBelow(out: 8 bytes)', () => ks.incrIfSumBelow(k, [k], 1, Buffer.alloc(8)), RANGE],
      ]);
    } finally {
      ks.close();
    }
  });

  it('ZerocopySocket.send (slice checked by the addon, flags in JS, not coerced)', async () => {
    const [a, b] = sys.socketpair();
    const zs = new sys.ZerocopySocket(a);
    const buf = Buffer.alloc(4);
    try {
      await expectAll([
        ['send(buf: string)', () => zs.send('abcd' as never, 0, 4), TYPE],
        ['send(off: -1)', () => zs.send(buf, -1, 4), RANGE],
        ['send(len past the end)', () => zs.send(buf, 2, 4), RANGE],
        ['send(len: NaN)', () => zs.send(buf, 0, NaN), RANGE],
        ['send(flags: 1.5)', () => zs.send(buf, 0, 4, 1.5), RANGE],
        ['send(flags: "64")', () => zs.send(buf, 0, 4, '64' as never), TYPE],
        ['send(flags: null)', () => zs.send(buf, 0, 4, null as never), TYPE],
      ]);
    } finally {
      zs.release();
      sys.close(a);
      sys.close(b);
    }
  });

  it('the load generator: options read by its addon, and its JS checks', async () => {
    const base = { port: 1, protocol: 'http' as const, requests: 1 };
    await expectAll([
      ['loadgen(3)', () => loadgen(3 as never), TYPE],
      ['connections: 0', () => loadgen({ ...base, connections: 0 }), RANGE],
      ['connections: 1.5', () => loadgen({ ...base, connections: 1.5 }), RANGE],
      ['threads: "2"', () => loadgen({ ...base, threads: '2' as never }), TYPE],
      ['protocol: 3', () => loadgen({ ...base, protocol: 3 as never }), TYPE],
      ['host: a name', () => loadgen({ ...base, host: 'localhost' }), RANGE],
      ['payload: a string', () => loadgen({ ...base, protocol: 'raw', payload: 'x' as never }), TYPE],
      ['command: 3', () => loadgen({ ...base, protocol: 'resp', command: 3 as never }), TYPE],
      ['command: { del }', () => loadgen({ ...base, protocol: 'resp', command: { del: 1 } as never }), RANGE],
      ['cpus: [NaN]', () => loadgen({ ...base, cpus: [NaN] }), RANGE],
      ['cpus: [1.5]', () => loadgen({ ...base, cpus: [1.5] }), RANGE],
      ['cpus: [-1]', () => loadgen({ ...base, cpus: [-1] }), RANGE],
      ['signal: {}', () => loadgen({ ...base, signal: {} as never }), TYPE],
      ['durationMs: null', () => loadgen({ ...base, requests: undefined, durationMs: null as never }), TYPE],
      ['warmupMs: null', () => loadgen({ ...base, warmupMs: null as never }), TYPE],
      ['resolveTarget(3)', () => resolveTarget(3 as never), TYPE],
      ['resolveTarget("nope")', () => resolveTarget('nope'), RANGE],
      ['resolveTarget(port 0)', () => resolveTarget('127.0.0.1:0'), RANGE],
    ]);
  });

  it.skipIf(why.ring)(
    titled('Ring: signals, reap and wait, registered buffers, option combinations', why.ring),
    async () => {
      const ring = new Ring({ attach: false });
      const [a, b] = sys.socketpair();
      try {
        await expectAll([
          ['nop({ signal: {} })', () => ring.nop({ signal: {} as never }), TYPE],
          ['send({ signal: 3 })', () => ring.send(a, Buffer.alloc(1), { signal: 3 as never }), TYPE],
          ['sendZc({ signal: {} })', () => ring.sendZc(a, Buffer.alloc(1), { signal: {} as never }), TYPE],
          ['reap(out: [])', () => ring.reap([] as never), TYPE],
          ['reap(minComplete: "1")', () => ring.reap(new Int32Array(6), '1' as never), TYPE],
          ['reap(minComplete: 1.5)', () => ring.reap(new Int32Array(6), 1.5), RANGE],
          ['reap(minComplete: Infinity)', () => ring.reap(new Int32Array(6), Infinity), RANGE],
          ['wait(minComplete: null)', () => ring.wait(null as never), TYPE],
          ['wait(minComplete: -1)', () => ring.wait(-1), RANGE],
          ['readFixed(none registered)', () => ring.readFixed(file, 0, 0, 16, 0), RANGE],
          ['prepRead(sqeFlags: null)', () => ring.prepRead(file, Buffer.alloc(8), 0, 8, 1, null as never), TYPE],
          ['prepWrite(sqeFlags: 0.5)', () => ring.prepWrite(file, Buffer.alloc(8), 0, 8, 1, 0.5), RANGE],
          [
            'Ring({ deferTaskrun })',
            () => new Ring({ deferTaskrun: true }),
            { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' },
          ],
        ]);
      } finally {
        ring.close();
        sys.close(a);
        sys.close(b);
      }
    },
  );
});

describe('nonsense is refused, not coerced', () => {
  it('errno helpers take an errno, the rest their types', async () => {
    await expectAll([
      ['errnoError("9")', () => errnoError('9' as never, 'read'), TYPE],
      ['errnoError(NaN)', () => errnoError(NaN, 'read'), RANGE],
      ['errnoError(0)', () => errnoError(0, 'read'), RANGE],
      ['errnoError(-1.5)', () => errnoError(-1.5, 'read'), RANGE],
      ['new ErrnoError(-1e6)', () => new ErrnoError(-1e6, 'read'), RANGE],
      ['check(NaN)', () => check(NaN, 'read'), RANGE],
      ['check("3")', () => check('3' as never, 'read'), TYPE],
      ['check(Symbol)', () => check(Symbol('s') as never, 'read'), TYPE],
      ['errnoName(undefined)', () => errnoName(undefined as never), TYPE],
      ['errnoName(0)', () => errnoName(0), RANGE],
      [
        'directIoError(position "0")',
        () => sys.directIoError(-22, 'pread', file, Buffer.alloc(8), 0, 8, '0' as never),
        TYPE,
      ],
      [
        'directIoError(ret null)',
        () => sys.directIoError(null as never, 'pread', file, Buffer.alloc(8), 0, 8, 0),
        TYPE,
      ],
    ]);
    // What they are for still works: results pass, errnos build their error.
    expect(check(0, 'read')).toBe(0);
    expect(check(7, 'read')).toBe(7);
    expect(errnoError(9, 'read').code).toBe('EBADF');
    expect(errnoName(-9)).toBe('EBADF');
  });

  it('sys calls and loop methods with a value of the wrong kind', async () => {
    const r = new Reactor();
    try {
      await expectAll([
        ['netdevFeature(feature: 3)', () => sys.netdevFeature('lo', 3 as never), TYPE],
        ['netdevFeature(feature: "x")', () => sys.netdevFeature('lo', 'x' as never), RANGE],
        // 15 characters, 30 bytes: past IFNAMSIZ, refused before any ioctl (not EINVAL named ioctl)
        ['netdevFeature(ifname: 30 bytes)', () => sys.netdevFeature('é'.repeat(15), 'sg'), RANGE],
        ['setrlimit(limit: null)', () => sys.setrlimit(constants.RLIMIT_NOFILE, null as never), TYPE],
        ['setrlimit(limit: {})', () => sys.setrlimit(constants.RLIMIT_NOFILE, {} as never), TYPE],
        ['maskOf("3")', () => r.maskOf('3' as never), TYPE],
        ['maskOf(1.5)', () => r.maskOf(1.5), RANGE],
        ['waitWritable("3")', () => waitWritable('3' as never), TYPE],
        ['waitWritable(-1)', () => waitWritable(-1), RANGE],
      ]);
    } finally {
      r.close();
    }
  });

  it('the histogram helpers check what they compute with', async () => {
    const h = new Float64Array([1000, 5, 2000, 5]);
    await expectAll([
      ['percentile([], 0.5)', () => percentile([] as never, 0.5), TYPE],
      ['percentile(h, "0.5")', () => percentile(h, '0.5' as never), TYPE],
      ['percentile(h, 2)', () => percentile(h, 2), RANGE],
      ['percentile(h, NaN)', () => percentile(h, NaN), RANGE],
      ['hdrTable(null)', () => hdrTable(null as never), TYPE],
      ['hdrTable(h, 0)', () => hdrTable(h, 0), RANGE],
      ['hdrTable(h, 2.5)', () => hdrTable(h, 2.5), RANGE],
      ['formatHdrTable(h, "1")', () => formatHdrTable(h, '1' as never), TYPE],
    ]);
    expect(percentile(h, 0.5)).toBe(1);
    expect(hdrTable(h).at(-1)!.percentile).toBe(1);
  });

  it('a ticksPerHalf that would never reach 100% is refused (a child process: a hang fails)', () => {
    const dist = fileURLToPath(new URL('../dist/src/loadgen/index.js', import.meta.url));
    const code = `
      const { hdrTable } = await import(${JSON.stringify(dist)});
      const h = new Float64Array([1000, 5, 2000, 5]);
      const out = [];
      for (const t of [-1, 1e9, Infinity]) {
        try { hdrTable(h, t); out.push('returned'); } catch (e) { out.push(e.code); }
      }
      console.log(JSON.stringify(out));`;
    const got = runChild(code, { hung: 'hung (killed at the deadline)' });
    expect(got).toEqual(['ERR_OUT_OF_RANGE', 'ERR_OUT_OF_RANGE', 'ERR_OUT_OF_RANGE']);
  }, 30_000);
});

describe('spans a caller gives LocalKeyspace.replyAt / setAt', () => {
  it('are checked: a span past the buffer or a frame without its header is refused, never scanned for ever', () => {
    // A child process with a deadline: setAt scanned for the value header's CR past the end
    // of the buffer, reading undefined for ever, so a hang fails the test, not the runner.
    const index = fileURLToPath(new URL('../dist/src/index.js', import.meta.url));
    const code = `
      const { LocalKeyspace } = await import(${JSON.stringify(index)});
      const ks = new LocalKeyspace();
      const req = Buffer.from('k $1\\r\\nv\\r\\n'); // key [0, 1), value framed at [2, 9)
      const noCr = Buffer.from('k $1 v.....');
      const got = {};
      const calls = {
        'replyAt(to past the end)': () => ks.replyAt(req, 0, 1e9),
        'replyAt(from > to)': () => ks.replyAt(req, 1, 0),
        'replyAt(from: 0.5)': () => ks.replyAt(req, 0.5, 1),
        'replyAt(from: NaN)': () => ks.replyAt(req, NaN, 1),
        'replyAt(buf: string)': () => ks.replyAt('k', 0, 1),
        'replyAt(from: Symbol)': () => ks.replyAt(req, Symbol('s'), 1),
        'setAt(end past the end)': () => ks.setAt(req, 0, 1, 2, 1e9),
        'setAt(at: -1)': () => ks.setAt(req, 0, 1, -1, 9),
        'setAt(no CR in the frame)': () => ks.setAt(noCr, 0, 1, 2, noCr.length),
        'setAt(flags: 3)': () => ks.setAt(req, 0, 1, 2, 9, 3),
      };
      for (const [name, fn] of Object.entries(calls)) {
        try { got[name] = fn(); } catch (e) { got[name] = e.constructor.name + ' ' + e.code; }
      }
      // What the RESP codec hands in still works.
      got.set = ks.setAt(req, 0, 1, 2, 9);
      got.get = Buffer.from(ks.replyAt(req, 0, 1).data).toString('latin1');
      console.log(JSON.stringify(got));`;
    const type = 'TypeError ERR_INVALID_ARG_TYPE';
    const range = 'RangeError ERR_OUT_OF_RANGE';
    expect(runChild(code, { hung: 'hung (killed at the deadline)' })).toEqual({
      'replyAt(to past the end)': range,
      'replyAt(from > to)': range,
      'replyAt(from: 0.5)': range,
      'replyAt(from: NaN)': range,
      'replyAt(buf: string)': type,
      'replyAt(from: Symbol)': type,
      'setAt(end past the end)': range,
      'setAt(at: -1)': range,
      'setAt(no CR in the frame)': 'TypeError ERR_INVALID_ARG_VALUE',
      'setAt(flags: 3)': range,
      set: 1,
      get: '$1\r\nv\r\n',
    });
  }, 30_000);
});

describe('a call that cannot work fails with a SystemError-shaped error', () => {
  it('waitWritable on a regular file: an ErrnoError EPERM from uv_poll_init, with errno and syscall', async () => {
    const e = await failure(() => waitWritable(file));
    expect(e).toBeInstanceOf(ErrnoError);
    expect(e).toMatchObject({ code: 'EPERM', errno: -1, syscall: 'uv_poll_init' });
    expect((e as Error).message).toMatch(/^EPERM: .*, uv_poll_init$/);
  });

  it.skipIf(why.ring)(
    titled('a closed Ring and Proactor: EBADF from every call, never a stale fd', why.ring),
    async () => {
      const EBADF = { name: 'ErrnoError', code: 'EBADF' };
      const ring = new Ring(); // attached: its eventfd is registered
      expect(ring.eventFd).toBeGreaterThanOrEqual(0);
      ring.close();
      const pr = new Proactor();
      pr.attach();
      pr.stop();
      pr.close();
      // The fds the closed objects had are free again: the next ones opened take their numbers.
      const [r, w] = sys.pipe();
      const buf = Buffer.alloc(8);
      try {
        const table: [string, () => unknown][] = [
          ['ring.prepRead', () => ring.prepRead(file, buf, 0, 8, 1)],
          ['ring.prepSend', () => ring.prepSend(w, buf, 0, 8, 1)],
          ['ring.prepAccept', () => ring.prepAccept(r, 1)],
          ['ring.prepTimeout', () => ring.prepTimeout(1, 1)],
          ['ring.prepCancel', () => ring.prepCancel(1, 2)],
          ['ring.prepNop', () => ring.prepNop(1)],
          ['ring.registerBuffers', () => ring.registerBuffers([buf])],
          ['ring.registerFiles', () => ring.registerFiles([file])],
          ['ring.nop', () => ring.nop()],
          ['proactor.attach', () => pr.attach()],
          ['proactor.run', () => pr.run()],
          ['proactor.registerFileSlots', () => pr.registerFileSlots(4)],
          ['proactor.read', () => pr.read(r, buf, 0, 8, -1, () => {})],
        ];
        const got: Record<string, unknown> = {};
        for (const [name, fn] of table) got[name] = shape(await failure(fn));
        expect(got).toEqual(Object.fromEntries(table.map(([name]) => [name, EBADF])));
        // The submit / reap side answers -EBADF, and the closed eventfd's number is not handed out.
        expect([ring.submit(), ring.reap(new Int32Array(6)), ring.eventFd]).toEqual([-9, -9, -1]);
      } finally {
        pr.stop();
        sys.close(r);
        sys.close(w);
      }
    },
  );

  it('madvise and munmap given a SharedArrayBuffer view: a TypeError, not a bare Error', async () => {
    const shared = new Uint8Array(new SharedArrayBuffer(64));
    await expectAll([
      ['madvise(shared)', () => sys.madvise(shared as Buffer, 'normal'), TYPE],
      ['munmap(shared)', () => sys.munmap(shared as Buffer), TYPE],
    ]);
  });
});

describe('an output the addon writes itself is never read-only memory', () => {
  // A Buffer from mmap() is PROT_READ: the kernel answers a read(2) into it with EFAULT, but
  // a result the addon stores itself (a Keyspace value, a ring's or a poller's events) would
  // fault and kill the process. Each such output over a mapping is a TypeError instead, and
  // the operation does not happen (the INCR does not count). A child process: a crash fails.
  it('Keyspace outputs, Ring.reap and Epoll.wait over an mmap() Buffer', () => {
    const index = fileURLToPath(new URL('../dist/src/index.js', import.meta.url));
    const code = `
      const { sys, Keyspace, Ring, Epoll, constants } = await import(${JSON.stringify(index)});
      const m = sys.mmap(sys.open(${JSON.stringify(join(dir, 'f'))}, constants.O_RDONLY), 0, 8192);
      const i32 = new Int32Array(m.buffer, 0, 64);
      const ks = Keyspace.create(undefined, { size: 1 << 16 });
      const k = Buffer.from('k');
      ks.set(k, Buffer.from('1'));
      const ring = Ring.supported() ? new Ring({ attach: false }) : undefined;
      const ep = new Epoll();
      const efd = sys.eventfd(1);
      ep.add(efd, constants.EPOLLIN);
      const got = {};
      const calls = {
        'ks.get(out)': () => ks.get(k, m),
        'ks.get(out: a slice)': () => ks.get(k, m.subarray(100, 200)),
        'ks.incr(out)': () => ks.incr(k, 1, m),
        'ks.incrIfSumBelow(out)': () => ks.incrIfSumBelow(k, [k], 100, m),
        'ks.mget(out)': () => ks.mget([k], m, new Int32Array(1)),
        'ks.mget(lens)': () => ks.mget([k], Buffer.alloc(8), i32),
        'ring.reap(out)': () => {
          if (!ring) throw Object.assign(new TypeError('no ring'), { code: 'ERR_INVALID_ARG_VALUE' });
          ring.prepNop(1);
          ring.submit(1);
          return ring.reap(i32, 1);
        },
        'epoll.wait(out)': () => ep.wait(i32, 0),
      };
      for (const [name, fn] of Object.entries(calls)) {
        try { got[name] = fn(); } catch (e) { got[name] = e.constructor.name + ' ' + e.code; }
      }
      const out = Buffer.alloc(8);
      got.after = [ks.get(k, out), out.toString('latin1', 0, 1)];
      console.log(JSON.stringify(got));`;
    const refused = 'TypeError ERR_INVALID_ARG_VALUE';
    expect(runChild(code)).toEqual({
      'ks.get(out)': refused,
      'ks.get(out: a slice)': refused,
      'ks.incr(out)': refused,
      'ks.incrIfSumBelow(out)': refused,
      'ks.mget(out)': refused,
      'ks.mget(lens)': refused,
      'ring.reap(out)': refused,
      'epoll.wait(out)': refused,
      after: [1, '1'],
    });
  }, 30_000);
});

describe('options are checked before anything starts or is taken', () => {
  it('a load generator run refused for a bad option never starts: the process exits at once', () => {
    const dist = fileURLToPath(new URL('../dist/src/loadgen/index.js', import.meta.url));
    // A listener that never answers: a run that did start would last its whole durationMs.
    const code = `
      import net from 'node:net';
      const { loadgen } = await import(${JSON.stringify(dist)});
      const srv = net.createServer(() => {}).listen(0, '127.0.0.1');
      await new Promise((r) => srv.once('listening', r));
      const port = srv.address().port;
      srv.unref();
      const codes = [];
      for (const bad of [{ signal: {} }, { durationMs: null, requests: undefined }, { cpus: [NaN] }]) {
        try {
          await loadgen({ port, protocol: 'http', durationMs: 60000, ...bad });
          codes.push('resolved');
        } catch (e) {
          codes.push(e.code);
        }
      }
      console.log(JSON.stringify(codes));`;
    const got = runChild(code, { hung: 'still running at the deadline: a refused run had started' });
    expect(got).toEqual(['ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_TYPE', 'ERR_OUT_OF_RANGE']);
  }, 30_000);

  it('new Connection(reactor, net.Socket) refused leaves no fd behind', async () => {
    const srv = net.createServer(() => {}).listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    const port = (srv.address() as net.AddressInfo).port;
    const connect = async () => {
      const s = net.connect(port, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      return s;
    };
    const closed = new Reactor();
    closed.close();
    const live = new Reactor();
    const before = openFds();
    const errors: unknown[] = [];
    try {
      // A closed reactor (epoll_ctl EBADF after the takeover), a reactor that is not one,
      // an option of the wrong type: each refused, and none keeps the socket's duplicate.
      for (const [reactor, opts] of [
        [closed, {}],
        [{}, {}],
        [live, { onData: 3 }],
        [live, { readSize: 0 }],
      ] as const) {
        const s = await connect();
        errors.push(shape(await failure(() => new Connection(reactor as Reactor, s, opts as never))));
        s.destroy();
      }
      await new Promise((r) => setTimeout(r, 50)); // the destroyed sockets' handles close
      expect(errors).toEqual([{ name: 'ErrnoError', code: 'EBADF' }, TYPE, TYPE, RANGE]);
      expect(leakedSince(before)).toEqual([]);
    } finally {
      live.close();
      await new Promise((r) => srv.close(r));
    }
  });
});

describe("an array's accessors run before any buffer in it is read", () => {
  // A list of buffers (writev's, a Keyspace's keys) may have an accessor at an index: reading
  // it runs JS, which can grow the array or detach a buffer read before it. The addon read
  // each buffer's address as it went: a grown array wrote past its vector (heap corruption),
  // and a detached buffer's memory, freed and taken by another owner, went out or was stored.
  // Child processes with gc exposed: a crash fails the test.
  const index = fileURLToPath(new URL('../dist/src/index.js', import.meta.url));
  function child(body: string): unknown {
    const code = `
      const { sys, Keyspace, LocalKeyspace } = await import(${JSON.stringify(index)});
      const SIZE = 1 << 16;
      // Detaches u8 (its memory goes to a copy that is dropped), collects it, and fills
      // buffers of its size with 0x53 where the freed memory is reused.
      const detach = (u8) => {
        structuredClone(u8.buffer, { transfer: [u8.buffer] });
        globalThis.gc();
        globalThis.sprayed = Array.from({ length: 64 }, () => new Uint8Array(new ArrayBuffer(SIZE)).fill(0x53));
      };
      const out = await (async () => { ${body} })();
      console.log(JSON.stringify(out));`;
    return runChild(code, { flags: ['--expose-gc'] });
  }

  it('sys.writev: an accessor that detaches an earlier buffer on a second read', () => {
    const got = child(`
      const [r, w] = sys.pipe({ size: 1 << 20 });
      const victim = new Uint8Array(new ArrayBuffer(SIZE)).fill(0x41);
      const bufs = [victim];
      let reads = 0;
      Object.defineProperty(bufs, 1, { enumerable: true, get() {
        if (++reads === 2) detach(victim);
        return Buffer.from('!');
      } });
      const n = sys.writev(w, bufs);
      const rb = Buffer.alloc(1 << 20);
      const m = sys.read(r, rb);
      const sent = rb.subarray(0, m);
      return { n, m, foreign: sent.filter((b) => b !== 0x41 && b !== 0x21).length, reads };`);
    // Read once: the array as checked is the array written, victim's own bytes and the '!'.
    expect(got).toEqual({ n: 65537, m: 65537, foreign: 0, reads: 1 });
  }, 30_000);

  // The shared table reads a list in the addon, LocalKeyspace in JS: both read it once, its
  // length first, so a call either uses the list as checked or throws having changed nothing.
  it.each([
    ['Keyspace', 'Keyspace.create(undefined, { size: 1 << 20 })'],
    ['LocalKeyspace', 'new LocalKeyspace({ size: 1 << 20 })'],
  ])(
    '%s key lists: an accessor that grows the array, or detaches a key or value before it',
    (_name, make) => {
      const got = child(`
      const ks = ${make};
      const grow = () => {
        const keys = [Buffer.from('a')];
        let grown = false;
        Object.defineProperty(keys, 1, { get() {
          if (!grown) { grown = true; for (let i = 0; i < 10000; i++) keys.push(Buffer.from('k' + i)); }
          return Buffer.from('b');
        } });
        return keys;
      };
      ks.set(Buffer.from('a'), Buffer.from('1'));
      const existsMany = ks.existsMany(grow());
      const delMany = ks.delMany(grow());
      // mset [k, v, k2, v2]: reading k2 detaches v, read before it.
      const value = new Uint8Array(new ArrayBuffer(SIZE)).fill(0x41);
      const kv = [Buffer.from('v'), value];
      Object.defineProperty(kv, 2, { get() { detach(value); return Buffer.from('w'); } });
      kv[3] = Buffer.from('2');
      const code = (f) => { try { return f(); } catch (e) { return e.name + ' ' + e.code; } };
      const mset = code(() => ks.mset(kv));
      const vout = Buffer.alloc(SIZE);
      const vlen = ks.get(Buffer.from('v'), vout);
      // incrIfSumBelow(key, keys): reading keys detaches key, an argument read before them.
      const key = new Uint8Array(new ArrayBuffer(SIZE)).fill(0x4b);
      const keys = [];
      Object.defineProperty(keys, 0, { get() { detach(key); return Buffer.from('n'); } });
      const incr = code(() => ks.incrIfSumBelow(key, keys, 10, Buffer.alloc(24)));
      const info = ks.info();
      // A sparse array of length 2^32 - 1: sized up front, its vector was 64 GiB (bad_alloc, an
      // abort); its first hole is the TypeError now.
      let sparse;
      try { const a = []; a.length = 2 ** 32 - 1; ks.delMany(a); sparse = 'returned'; } catch (e) { sparse = e.code; }
      ks.close();
      return { existsMany, delMany, mset, vlen, foreign: vout.subarray(0, Math.max(0, vlen)).filter((b) => b !== 0x41).length, incr, keys: info.keys, sparse };`);
      // The array as it was when its length was read; a buffer detached before its bytes are
      // taken is a TypeError, with nothing stored (no key of either call exists after).
      expect(got).toEqual({
        existsMany: 1,
        delMany: 1,
        mset: 'TypeError ERR_INVALID_ARG_TYPE',
        vlen: -2, // -ENOENT
        foreign: 0,
        incr: 'TypeError ERR_INVALID_ARG_TYPE',
        keys: 0,
        sparse: 'ERR_INVALID_ARG_TYPE',
      });
    },
    30_000,
  );
});

describe('a buffer the kernel holds cannot be detached under it', () => {
  const index = fileURLToPath(new URL('../dist/src/index.js', import.meta.url));
  /** Runs `body` (an async function body with rawio's exports in scope) in a child with gc exposed. */
  function child(body: string): unknown {
    const code = `
      const rawio = await import(${JSON.stringify(index)});
      const { sys, Ring, Proactor } = rawio;
      const out = await (async () => { ${body} })();
      console.log(JSON.stringify(out));
      process.exit(0);`;
    return runChild(code, { flags: ['--expose-gc'] });
  }

  // A 16 KiB read in flight from a pipe; its ArrayBuffer is transferred away and the copy
  // dropped; after a GC, buffers of the same size are allocated (where freed memory would be
  // reused) and the pipe is written. The read must land in the caller's own view.
  const spray = `
    const SIZE = 16384;
    const [r, w] = sys.pipe({ size: 1 << 16 });
    const u8 = new Uint8Array(new ArrayBuffer(SIZE));
    const done = start(r, u8, SIZE);
    try { structuredClone(u8.buffer, { transfer: [u8.buffer] }); } catch { /* refused: fine */ }
    for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((res) => setTimeout(res, 10)); }
    const sprayed = Array.from({ length: 256 }, () => new Uint8Array(new ArrayBuffer(SIZE)));
    sys.write(w, Buffer.alloc(SIZE, 0x5a));
    const n = await done;
    sys.close(r); sys.close(w);
    return { n, length: u8.length, landed: u8.length === SIZE && u8.every((b) => b === 0x5a),
             elsewhere: sprayed.filter((b) => b.includes(0x5a)).length };`;

  it.skipIf(why.ring)(
    titled('Ring.read, a batch prepRead and Proactor.read', why.ring),
    () => {
      const want = { n: 16384, length: 16384, landed: true, elsewhere: 0 };
      const ring = `const ring = new Ring(); const start = (fd, b, n) => ring.read(fd, b, 0, n, -1);`;
      expect(child(`${ring} ${spray}`)).toEqual(want);
      const batch = `
      const ring = new Ring({ attach: false });
      const start = (fd, b, n) => {
        ring.prepRead(fd, b, -1, n, 1);
        ring.submit(0);
        return (async () => {
          const cqes = new Int32Array(3);
          for (;;) {
            if (ring.reap(cqes, 0) === 1) return cqes[1];
            await new Promise((res) => setTimeout(res, 5));
          }
        })();
      };`;
      expect(child(`${batch} ${spray}`)).toEqual(want);
      const proactor = `
      const pr = new Proactor(); pr.attach();
      const start = (fd, b, n) => new Promise((res) => pr.read(fd, b, 0, n, -1, res));`;
      expect(child(`${proactor} ${spray}`)).toEqual(want);
    },
    60_000,
  );

  // Shrinking is not a transfer: a resizable ArrayBuffer resized smaller (or a mapping
  // unmapped) under a Proactor send or write that the kernel took only part of. The rest
  // cannot be resubmitted; preparing it threw a RangeError out of the completion's dispatch,
  // which killed the process. The transfer ends with -EFAULT instead (a child: a crash fails).
  it.skipIf(why.ring)(
    titled('a Proactor send or write whose buffer shrank in flight ends with -EFAULT', why.ring),
    () => {
      const got = child(`
      const pr = new Proactor();
      pr.attach();
      const out = {};
      for (const kind of ['send', 'write']) {
        const [a, b] = kind === 'send' ? sys.socketpair() : sys.pipe({ size: 4096 });
        const [fd, peer] = kind === 'send' ? [a, b] : [b, a];
        if (kind === 'send') { sys.setBufferSizes(a, { send: 4096 }); sys.setBufferSizes(b, { recv: 4096 }); }
        while (sys.write(fd, Buffer.alloc(4096)) > 0); // full: the transfer waits in the kernel
        const ab = new ArrayBuffer(1 << 16, { maxByteLength: 1 << 17 });
        const u = new Uint8Array(ab, 0, 1 << 16);
        const done = new Promise((res) => kind === 'send' ? pr.send(fd, u, 0, u.length, res) : pr.write(fd, u, 0, u.length, -1, res));
        await new Promise((res) => setTimeout(res, 20));
        ab.resize(100);
        const rb = Buffer.alloc(1 << 16);
        let res;
        done.then((r) => (res = r));
        for (let i = 0; i < 2000 && res === undefined; i++) {
          while (sys.read(peer, rb) > 0);
          await new Promise((r) => setTimeout(r, 5));
        }
        out[kind] = res;
        sys.close(a); sys.close(b);
      }
      pr.close();
      return out;`);
      expect(got).toEqual({ send: -14, write: -14 });
    },
    60_000,
  );

  // munmap() detaches its Buffer, but an io_uring send of it may still be waiting in the
  // kernel, which reads the addresses when the socket has room. Were they unmapped, the next
  // mapping (here, another file's view) could take them, and its bytes would go out.
  it.skipIf(why.ring)(
    titled("munmap of a Buffer a Ring send still reads: the peer never gets the next mapping's bytes", why.ring),
    () => {
      const pub = join(dir, 'public');
      const secret = join(dir, 'secret');
      writeFileSync(pub, Buffer.alloc(1 << 16, 0x41));
      writeFileSync(secret, Buffer.alloc(1 << 16, 0x53));
      const got = child(`
      const [a, b] = sys.socketpair();
      sys.setBufferSizes(a, { send: 4096 });
      sys.setBufferSizes(b, { recv: 4096 });
      while (sys.write(a, Buffer.alloc(4096)) > 0); // full: the send waits in the kernel
      const ring = new Ring();
      const m = sys.mmap(sys.open(${JSON.stringify(pub)}, 0), 0, 1 << 16);
      const sent = ring.send(a, m).then((n) => n, (e) => e.code);
      await new Promise((res) => setTimeout(res, 20));
      sys.munmap(m);
      const s = sys.mmap(sys.open(${JSON.stringify(secret)}, 0), 0, 1 << 16);
      const rb = Buffer.alloc(1 << 16);
      let secretBytes = 0;
      let res;
      sent.then((r) => (res = r));
      for (let i = 0; i < 2000 && res === undefined; i++) {
        let n;
        while ((n = sys.read(b, rb)) > 0) secretBytes += rb.subarray(0, n).filter((x) => x === 0x53).length;
        await new Promise((r) => setTimeout(r, 5));
      }
      ring.close();
      return { sent: res, secretBytes, mappedNext: s.length };`);
      expect(got).toEqual({ sent: 'EFAULT', secretBytes: 0, mappedNext: 1 << 16 });
    },
    60_000,
  );

  it('a MSG_ZEROCOPY send keeps its buffer attached until the completion', () => {
    const got = child(`
      const lfd = sys.listenTcp('127.0.0.1', 0);
      const c = sys.connectTcp('127.0.0.1', sys.localPort(lfd), { blocking: true });
      let a = -1;
      while ((a = sys.accept(lfd)) < 0) await new Promise((res) => setTimeout(res, 5));
      const buf = new Uint8Array(new ArrayBuffer(4096)).fill(7);
      const zs = new sys.ZerocopySocket(c);
      const n = zs.send(buf, 0, buf.length);
      const held = zs.pending; // not reaped yet: the buffer is held for its completion
      try { structuredClone(buf.buffer, { transfer: [buf.buffer] }); } catch { /* refused: fine */ }
      const length = buf.length;
      zs.release();
      for (const fd of [a, c, lfd]) sys.close(fd);
      return { n, enabled: zs.enabled, held, length };`);
    // TCP takes SO_ZEROCOPY (since 4.14): the send is held and its buffer stays attached.
    expect(got).toEqual({ n: 4096, enabled: true, held: 1, length: 4096 });
  }, 30_000);
});
