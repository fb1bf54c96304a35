/**
 * A detached buffer, everywhere a buffer is taken. A view whose ArrayBuffer was transferred
 * away (`structuredClone(ab, { transfer: [ab] })`, `postMessage`, `ab.transfer()`) or
 * released by `sys.munmap` has length 0; taken as an empty buffer it made a read return 0
 * (EOF to the caller), a write send nothing and report success, a key be stored empty. Every
 * public entry point that takes a Uint8Array refuses one with a TypeError coded
 * ERR_INVALID_ARG_TYPE, at the call and before anything happens: nothing is written to the
 * pipe, socket or file, nothing is stored in a keyspace, no fd is left open. A genuinely
 * empty Uint8Array(0) is still an empty buffer, as before (a read of 0 bytes returns 0).
 *
 * The entry points: sys (read, write, writev, pread, pwrite, the direct IO calls,
 * addressAlignment, send, ZerocopySocket.send), sendBuffer, Connection.write, every buffer
 * argument of Keyspace and LocalKeyspace, the built-in protocols' codec push() and handle(),
 * Ring's promise and batch operations and registerBuffers, the Proactor's operations.
 *
 * One table: each row is one entry point (one buffer argument of it), called once with a
 * detached view and once with an empty one. Real syscalls on real fds; the io_uring rows
 * skip where io_uring is not available.
 *
 * Lists of buffers (sys.writev, Ring.readv / writev, Ring.registerBuffers, LocalKeyspace's
 * key lists): a non-array is a TypeError; the length and each element are read once (a getter
 * at an index runs once); a getter that detaches an element read before it is a TypeError
 * with nothing written, read, registered or stored (an earlier registration kept).
 *
 * Deliberately not refused: `sys.munmap` of a Buffer it already released (a detached one)
 * is documented as a no-op, so that unmapping twice is harmless; `sys.madvise` of one was a
 * TypeError already ("a whole, live Buffer returned by mmap()").
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants as os, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  Connection,
  EchoProtocol,
  HttpCodec,
  HttpProtocol,
  Keyspace,
  LocalKeyspace,
  Proactor,
  Reactor,
  RespCodec,
  RespProtocol,
  Ring,
  StaticProtocol,
  constants,
  sendBuffer,
  sys,
  type KeyspaceLike,
  type Protocol,
} from './helpers/rawio.js';
import { leakedSince, openFds } from './helpers/fds.js';
import { titled, why } from './helpers/skips.js';

const TYPE = { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' };
const EAGAIN = -os.errno.EAGAIN;

/** A view of an ArrayBuffer transferred away: length 0, and no memory behind it. */
function detached(n = 16): Uint8Array {
  const u = new Uint8Array(n);
  structuredClone(u.buffer, { transfer: [u.buffer] });
  return u;
}

/** What `fn` returned (awaited), or the name and code of what it threw / rejected with. */
async function outcome(fn: () => unknown): Promise<unknown> {
  try {
    return await fn();
  } catch (e) {
    return { name: (e as Error).name, code: (e as { code?: string }).code };
  }
}

const FILE_BYTES = 'hello, file';

/** The fds a row works on: a pipe, a connected TCP pair (`a` sends, `b` is its peer), a temp file holding FILE_BYTES. */
interface Fds {
  r: number;
  w: number;
  a: number;
  b: number;
  file: number;
  path: string;
}

/** Whatever the row wrote reached nothing: the pipe and the peer socket hold no bytes, the file is as it was. */
function untouched(f: Fds): void {
  const buf = Buffer.alloc(64);
  expect(sys.read(f.r, buf), 'the pipe is empty').toBe(EAGAIN);
  expect(sys.read(f.b, buf), 'the peer socket received nothing').toBe(EAGAIN);
  expect(readFileSync(f.path, 'latin1'), 'the file is unchanged').toBe(FILE_BYTES);
}

interface Row {
  /** The entry point and the argument that is detached. */
  name: string;
  /** Calls the entry point with `buf` where the tested buffer goes. */
  call: (f: Fds, buf: Uint8Array) => unknown;
  /** What the call gives for an empty (not detached) Uint8Array(0), as before. */
  empty: unknown;
  /** Why this row cannot run here (a kernel without the operation), or undefined. */
  skip?: string;
  /** Before the empty call: what it needs (a recv of 0 bytes waits for data to be there). */
  prime?: (f: Fds) => void;
  /** Extra checks after the detached call: nothing happened. */
  after?: (f: Fds) => void;
}

let dir: string;
let lfd: number;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rawio-detached-'));
  lfd = sys.listenTcp('127.0.0.1', 0);
});
afterAll(() => {
  sys.close(lfd);
  rmSync(dir, { recursive: true, force: true });
});

/** Fresh fds for each test of the suite it is called in (the getter gives the current test's), checking that no fd leaked. */
function useFds(): () => Fds {
  let f: Fds;
  let before: Map<number, string>;
  let n = 0;
  beforeEach(() => {
    before = openFds();
    const [r, w] = sys.pipe();
    // TCP, not a socketpair: IORING_OP_SEND_ZC and MSG_ZEROCOPY want an inet socket.
    const a = sys.connectTcp('127.0.0.1', sys.localPort(lfd), { blocking: true });
    const b = sys.accept(lfd); // loopback: queued once connect returned
    expect(b).toBeGreaterThan(0);
    sys.setBlocking(a, false);
    const path = join(dir, `f${n++}`);
    writeFileSync(path, FILE_BYTES);
    f = { r, w, a, b, path, file: sys.open(path, constants.O_RDWR) };
  });
  afterEach(() => {
    for (const fd of [f.r, f.w, f.a, f.b, f.file]) sys.close(fd);
    expect(leakedSince(before)).toEqual([]);
  });
  return () => f;
}

/** Runs each row's two calls with fresh fds, checking that nothing else happened and no fd leaked. */
function runRows(rows: readonly Row[]): void {
  const fds = useFds();
  for (const row of rows) {
    const skip = row.skip;
    it.skipIf(skip)(titled(`${row.name}: a detached view is a TypeError, and nothing happens`, skip), async () => {
      const f = fds();
      expect(await outcome(() => row.call(f, detached()))).toEqual(TYPE);
      untouched(f);
      row.after?.(f);
    });
    it.skipIf(skip)(titled(`${row.name}: an empty Uint8Array(0) is still an empty buffer`, skip), async () => {
      const f = fds();
      row.prime?.(f);
      expect(await outcome(() => row.call(f, new Uint8Array(0)))).toEqual(row.empty);
    });
  }
}

const live = (s = 'x') => Buffer.from(s);
/** A byte waiting on the socket `b`. */
const pending = (f: Fds) => expect(sys.write(f.a, live())).toBe(1);

describe('sys', () => {
  const sendZc = (f: Fds, buf: Uint8Array) => {
    const zs = new sys.ZerocopySocket(f.a);
    try {
      return zs.send(buf, 0, 0);
    } finally {
      zs.release();
    }
  };
  runRows([
    { name: 'sys.read', call: (f, buf) => sys.read(f.r, buf), empty: 0 },
    { name: 'sys.read (socket)', call: (f, buf) => sys.read(f.b, buf), empty: 0 },
    { name: 'sys.write', call: (f, buf) => sys.write(f.w, buf), empty: 0 },
    { name: 'sys.writev (second buffer)', call: (f, buf) => sys.writev(f.w, [live(), buf]), empty: 1 },
    { name: 'sys.pread', call: (f, buf) => sys.pread(f.file, buf, 0, undefined, 0), empty: 0 },
    { name: 'sys.pwrite', call: (f, buf) => sys.pwrite(f.file, buf, 0, undefined, 0), empty: 0 },
    { name: 'sys.directRead', call: (f, buf) => sys.directRead(f.file, buf, 0, undefined, 0), empty: 0 },
    { name: 'sys.directWrite', call: (f, buf) => sys.directWrite(f.file, buf, 0, undefined, 0), empty: 0 },
    {
      name: 'sys.directIoError',
      call: (f, buf) => sys.directIoError(-os.errno.EIO, 'pread', f.file, buf, 0, 0, 0).code,
      empty: 'EIO',
    },
    { name: 'sys.addressAlignment', call: (_f, buf) => sys.addressAlignment(buf) > 0, empty: true },
    { name: 'sys.send', call: (f, buf) => sys.send(f.a, buf), empty: 0 },
    { name: 'sys.send (zerocopy)', call: (f, buf) => sys.send(f.a, buf, { zerocopy: true }), empty: 0 },
    { name: 'ZerocopySocket.send', call: sendZc, empty: 0 },
    {
      name: 'sendBuffer',
      call: (f, buf) => sendBuffer(f.a, buf),
      empty: { bytes: 0, zerocopySends: 0, copied: 0 },
    },
  ]);
});

describe('sys.mmap Buffers', () => {
  it('madvise of an unmapped Buffer is a TypeError; munmap of one is the documented no-op', () => {
    const path = join(dir, 'mapped');
    writeFileSync(path, 'mapped bytes');
    const fd = sys.open(path, constants.O_RDONLY);
    try {
      const m = sys.mmap(fd, 0, 12);
      sys.munmap(m);
      expect(m.length).toBe(0); // detached
      expect(m.buffer.byteLength).toBe(0);
      expect(() => sys.madvise(m, 'normal')).toThrow(expect.objectContaining(TYPE));
      expect(sys.munmap(m)).toBeUndefined(); // a second munmap: documented as harmless
      // And an unmapped Buffer is a detached view to every other call.
      const [r, w] = sys.pipe();
      try {
        expect(() => sys.write(w, m)).toThrow(expect.objectContaining(TYPE));
        expect(() => sys.read(r, m)).toThrow(expect.objectContaining(TYPE));
        expect(sys.read(r, Buffer.alloc(8))).toBe(EAGAIN);
      } finally {
        sys.close(r);
        sys.close(w);
      }
    } finally {
      sys.close(fd);
    }
  });
});

describe('Connection', () => {
  let reactor: Reactor;
  beforeEach(() => {
    reactor = new Reactor();
  });
  afterEach(() => reactor.close());
  /** A Connection on the socket `a` (destroyed after the call, which leaves `a` to the row's cleanup). */
  const withConn = (f: Fds, fn: (c: Connection) => unknown) => {
    const conn = new Connection(reactor, f.a);
    try {
      return fn(conn);
    } finally {
      // Not destroy(): it would close the row's fd; stop watching it instead.
      reactor.unwatch(f.a);
    }
  };
  runRows([
    { name: 'Connection.write', call: (f, buf) => withConn(f, (c) => c.write(buf)), empty: true },
    {
      name: 'Connection.write (corked)',
      call: (f, buf) =>
        withConn(f, (c) => {
          c.cork();
          try {
            return c.write(buf);
          } finally {
            c.uncork();
          }
        }),
      empty: true,
    },
  ]);
});

describe('Keyspace and LocalKeyspace', () => {
  const kinds: [string, () => KeyspaceLike][] = [
    ['Keyspace', () => Keyspace.create(undefined, { size: 1 << 16 })],
    ['LocalKeyspace', () => new LocalKeyspace({ size: 1 << 16 })],
  ];
  for (const [kind, make] of kinds) {
    describe(kind, () => {
      let ks: KeyspaceLike;
      beforeEach(() => {
        ks = make();
        expect(ks.set(live('k'), live('7'))).toBe(1);
      });
      afterEach(() => ks.close());
      const out = () => Buffer.alloc(24);
      /** Nothing stored but 'k' = '7', as beforeEach left it. */
      const stored = () => {
        expect(ks.info().keys).toBe(1);
        const o = out();
        expect(o.subarray(0, ks.get(live('k'), o)).toString()).toBe('7');
      };
      const lens = () => new Int32Array(4);
      const rows: Row[] = [
        { name: `${kind}.get (key)`, call: (_f, buf) => ks.get(buf, out()), empty: -os.errno.ENOENT },
        { name: `${kind}.get (out)`, call: (_f, buf) => ks.get(live('k'), buf), empty: 1 },
        { name: `${kind}.set (key)`, call: (_f, buf) => ks.set(buf, live('v')), empty: 1 },
        { name: `${kind}.set (value)`, call: (_f, buf) => ks.set(live('n'), buf), empty: 1 },
        { name: `${kind}.del`, call: (_f, buf) => ks.del(buf), empty: 0 },
        { name: `${kind}.exists`, call: (_f, buf) => ks.exists(buf), empty: 0 },
        { name: `${kind}.delMany`, call: (_f, buf) => ks.delMany([live('k'), buf]), empty: 1 },
        { name: `${kind}.delPrefix`, call: (_f, buf) => ks.delPrefix(buf), empty: 1 },
        { name: `${kind}.existsMany`, call: (_f, buf) => ks.existsMany([live('k'), buf]), empty: 1 },
        { name: `${kind}.incr (key)`, call: (_f, buf) => ks.incr(buf, 1, out()), empty: 1 },
        {
          name: `${kind}.incr (out)`,
          call: (_f, buf) => ks.incr(live('k'), 1, buf),
          empty: { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }, // out must hold 24 bytes
        },
        {
          name: `${kind}.incrIfSumBelow (key)`,
          call: (_f, buf) => ks.incrIfSumBelow(buf, [live('k')], 100, out()),
          empty: 1,
        },
        {
          name: `${kind}.incrIfSumBelow (keys)`,
          call: (_f, buf) => ks.incrIfSumBelow(live('k'), [buf], 100, out()),
          empty: 1,
        },
        {
          name: `${kind}.mset (key)`,
          call: (_f, buf) => ks.mset([live('n'), live('1'), buf, live('v')]),
          empty: 0,
        },
        {
          name: `${kind}.mset (value)`,
          call: (_f, buf) => ks.mset([live('n'), live('1'), live('m'), buf]),
          empty: 0,
        },
        { name: `${kind}.mget (keys)`, call: (_f, buf) => ks.mget([live('k'), buf], out(), lens()), empty: 1 },
        { name: `${kind}.mget (out)`, call: (_f, buf) => ks.mget([live('k')], buf, lens()), empty: 1 },
      ];
      runRows(rows.map((r) => ({ ...r, after: stored }))); // each detached call stored nothing
    });
  }

  describe('LocalKeyspace, straight from a frame', () => {
    let ks: LocalKeyspace;
    beforeEach(() => {
      ks = new LocalKeyspace({ size: 1 << 16 });
    });
    afterEach(() => {
      expect(ks.info().keys).toBe(0);
      ks.close();
    });
    runRows([
      { name: 'LocalKeyspace.bulk', call: (_f, buf) => ks.bulk(buf), empty: undefined },
      { name: 'LocalKeyspace.replyAt', call: (_f, buf) => ks.replyAt(buf, 0, 0), empty: undefined },
      {
        name: 'LocalKeyspace.setAt',
        call: (_f, buf) => ks.setAt(buf, 0, 0, 0, 0),
        empty: { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }, // no room for a value
      },
    ]);
  });
});

describe('protocol codecs', () => {
  const codecs: [string, () => { push(chunk: Uint8Array): unknown }][] = [
    ['HttpCodec', () => new HttpCodec()],
    ['RespCodec', () => new RespCodec()],
    ['echo', () => new EchoProtocol().createCodec()],
    ['http', () => new HttpProtocol().createCodec()],
    ['resp', () => new RespProtocol({ localKeyspace: true }).createCodec()],
  ];
  runRows(
    codecs.map(([name, make]) => ({
      name: `${name} push`,
      call: (_f: Fds, buf: Uint8Array) => make().push(buf),
      empty: { frames: [] },
    })),
  );
});

describe('protocol handle', () => {
  // Codecs never make an empty frame; one given anyway is answered as the request it is.
  const protocols: [string, () => Protocol, string][] = [
    ['echo', () => new EchoProtocol(), ''],
    ['http', () => new HttpProtocol(), 'HTTP/1.1 405 Method Not Allowed'],
    ['resp', () => new RespProtocol({ localKeyspace: true }), "-ERR unknown command ''"],
    ['static', () => new StaticProtocol({ root: dir }), 'HTTP/1.1 405 Method Not Allowed'],
  ];
  /** The first line of the reply `p` gives `frame`. */
  const firstLine = async (make: () => Protocol, frame: Uint8Array) => {
    const p = make();
    try {
      const r = await p.handle(frame);
      return Buffer.from(r.data ?? [])
        .toString('latin1')
        .split('\r\n')[0];
    } finally {
      p.close();
    }
  };
  runRows(
    protocols.map(([name, make, reply]) => ({
      name: `${name} handle`,
      call: (_f: Fds, buf: Uint8Array) => firstLine(make, buf),
      empty: reply,
    })),
  );
});

describe.skipIf(why.ring)(titled('Ring', why.ring), () => {
  let ring: Ring;
  beforeAll(() => {
    ring = new Ring({ entries: 16 });
  });
  afterAll(() => ring?.close());
  afterEach(() => expect(ring.inflight).toBe(0));
  /** A batch entry: prepared, submitted, and its completion's result. */
  const batch = async (prep: (ud: number) => boolean): Promise<number> => {
    expect(prep(1)).toBe(true);
    ring.submit(1);
    const out = new Int32Array(3);
    expect(ring.reap(out, 1)).toBe(1);
    expect(out[0]).toBe(1); // its user data
    return out[1]!;
  };
  runRows([
    { name: 'Ring.read', call: (f, buf) => ring.read(f.file, buf, 0, undefined, 0), empty: 0 },
    { name: 'Ring.write', call: (f, buf) => ring.write(f.file, buf, 0, undefined, 0), empty: 0 },
    { name: 'Ring.readv', call: (f, buf) => ring.readv(f.file, [Buffer.alloc(1), buf], 20), empty: 0 },
    { name: 'Ring.writev', call: (f, buf) => ring.writev(f.w, [live(), buf], -1), empty: 1 },
    { name: 'Ring.recv', call: (f, buf) => ring.recv(f.b, buf), empty: 0, prime: pending },
    { name: 'Ring.send', call: (f, buf) => ring.send(f.a, buf), empty: 0 },
    {
      name: 'Ring.registerBuffers',
      call: (_f, buf) => ring.registerBuffers([Buffer.alloc(16), buf]),
      empty: undefined,
    },
    { name: 'Ring.prepRead', call: (f, buf) => batch((ud) => ring.prepRead(f.file, buf, 0, 0, ud)), empty: 0 },
    { name: 'Ring.prepWrite', call: (f, buf) => batch((ud) => ring.prepWrite(f.file, buf, 0, 0, ud)), empty: 0 },
    {
      name: 'Ring.prepRecv',
      call: (f, buf) => batch((ud) => ring.prepRecv(f.b, buf, 0, 0, ud)),
      empty: 0,
      prime: pending,
    },
    { name: 'Ring.prepSend', call: (f, buf) => batch((ud) => ring.prepSend(f.a, buf, 0, 0, ud)), empty: 0 },
    { name: 'Ring.sendZc', call: (f, buf) => ring.sendZc(f.a, buf).then((r) => r.bytes), empty: 0, skip: why.sendZc },
  ]);
});

describe.skipIf(why.ring)(titled('Proactor', why.ring), () => {
  let px: Proactor;
  beforeEach(() => {
    px = new Proactor({ entries: 16 });
  });
  afterEach(() => px.close());
  /** Starts the op, runs the proactor until it is idle, and gives the completion's result. */
  const run = async (start: (cb: (r: number) => void) => number): Promise<number> => {
    let res = NaN;
    start((r) => (res = r));
    await px.run();
    return res;
  };
  runRows([
    { name: 'Proactor.recv', call: (f, buf) => run((cb) => px.recv(f.b, buf, cb)), empty: 0, prime: pending },
    { name: 'Proactor.send', call: (f, buf) => run((cb) => px.send(f.a, buf, 0, 0, cb)), empty: 0 },
    { name: 'Proactor.read', call: (f, buf) => run((cb) => px.read(f.file, buf, 0, 0, 0, cb)), empty: 0 },
    { name: 'Proactor.write', call: (f, buf) => run((cb) => px.write(f.file, buf, 0, 0, 0, cb)), empty: 0 },
    {
      name: 'Proactor.sendZc',
      call: (f, buf) => run((cb) => px.sendZc(f.a, buf, 0, 0, cb)),
      empty: 0,
      skip: why.sendZc,
    },
  ]);
});

// A list of buffers (sys.writev's, Ring.readv / writev's, Ring.registerBuffers', LocalKeyspace's
// keys) is read once: its length, then each element, into a copy the call uses from then on.
// Whether an element is detached is checked after every element was read, so an accessor at
// one index that detaches an element before it is a TypeError before anything happens.

/** One entry point that takes a list of buffers, opened on a test's fds. */
interface ListCall {
  /** Calls the entry point with `list` where its list of buffers goes. */
  call: (list: unknown) => unknown;
  /** After a refused call: nothing was written, read, registered or stored. */
  nothing: () => unknown;
  /** After a normal call with `list`: its result and what it did. */
  done: (result: unknown, list: Uint8Array[]) => unknown;
  close?: () => void;
}

interface ListSite {
  name: string;
  skip?: string;
  /** A list for a normal call: each element owns its ArrayBuffer, so detaching one detaches nothing else. */
  elements: () => Uint8Array[];
  open: (f: Fds) => ListCall;
}

/** A Uint8Array of `s`'s bytes, alone in its ArrayBuffer (a small Buffer may share Node's pool). */
const own = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
/** Buffers of `n` zero bytes each, one per length given. */
const zeros = (...lens: number[]): Uint8Array[] => lens.map((n) => new Uint8Array(n));
const text = (u: Uint8Array) => Buffer.from(u).toString('latin1');

function runLists(sites: readonly ListSite[]): void {
  const fds = useFds();
  /** Runs `fn` with the site opened on this test's fds, closing what it opened. */
  const withSite = async (site: ListSite, fn: (c: ListCall) => unknown) => {
    const c = site.open(fds());
    try {
      await fn(c);
    } finally {
      c.close?.();
    }
  };
  for (const site of sites) {
    const skip = site.skip;
    it.skipIf(skip)(titled(`${site.name}: a list that is not an array is a TypeError`, skip), () =>
      withSite(site, async (c) => {
        const first = site.elements()[0]!;
        for (const notArray of [{ length: 1, 0: first }, first, undefined, 'ab']) {
          expect(await outcome(() => c.call(notArray)), String(notArray)).toEqual(TYPE);
        }
        await c.nothing();
      }),
    );
    it.skipIf(skip)(
      titled(
        `${site.name}: an element's getter that detaches an earlier element is a TypeError, and nothing happens`,
        skip,
      ),
      () =>
        withSite(site, async (c) => {
          const els = site.elements();
          const was = els.map((e) => Uint8Array.from(e));
          const list = [...els];
          Object.defineProperty(list, 1, {
            get() {
              const ab = els[0]!.buffer as ArrayBuffer;
              structuredClone(ab, { transfer: [ab] });
              return els[1];
            },
          });
          expect(await outcome(() => c.call(list))).toEqual(TYPE);
          expect(els[0]!.byteLength, 'the getter detached the first element').toBe(0);
          for (let i = 1; i < els.length; i++) expect(els[i], `element ${i} is as it was`).toEqual(was[i]);
          await c.nothing();
        }),
    );
    it.skipIf(skip)(titled(`${site.name}: the length and each element are read once`, skip), () =>
      withSite(site, async (c) => {
        const els = site.elements();
        const calls = els.map(() => 0);
        const list: Uint8Array[] = [];
        els.forEach((e, i) => Object.defineProperty(list, i, { enumerable: true, get: () => (calls[i]!++, e) }));
        const reads: PropertyKey[] = [];
        const watched = new Proxy(list, {
          get(t, k, r) {
            reads.push(k);
            return Reflect.get(t, k, r) as unknown;
          },
        });
        await c.done(await outcome(() => c.call(watched)), els);
        expect(calls).toEqual(els.map(() => 1));
        expect(reads).toEqual(['length', ...els.map((_e, i) => String(i))]);
      }),
    );
    it.skipIf(skip)(titled(`${site.name}: a plain array of live buffers works as before`, skip), () =>
      withSite(site, async (c) => {
        const els = site.elements();
        await c.done(await outcome(() => c.call(els)), els);
      }),
    );
  }
}

describe('lists of buffers', () => {
  /** A fresh ring for one test: registration state is the ring's own. */
  const ringSite = (f: Fds, fn: (ring: Ring) => Omit<ListCall, 'close'>): ListCall => {
    const ring = new Ring({ entries: 8 });
    const c = fn(ring);
    return {
      ...c,
      nothing: async () => {
        await c.nothing();
        expect(ring.inflight).toBe(0);
      },
      close: () => ring.close(),
    };
  };
  runLists([
    {
      name: 'sys.writev',
      elements: () => [own('ab'), own('cd'), own('ef')],
      open: () => {
        const [a, b] = sys.socketpair();
        const got = () => {
          const buf = Buffer.alloc(64);
          const n = sys.read(b, buf);
          return n < 0 ? n : buf.toString('latin1', 0, n);
        };
        return {
          call: (list) => sys.writev(a, list as Uint8Array[]),
          nothing: () => expect(got(), 'the peer received nothing').toBe(EAGAIN),
          done: (r) => {
            expect(r).toBe(6);
            expect(got()).toBe('abcdef');
          },
          close: () => {
            sys.close(a);
            sys.close(b);
          },
        };
      },
    },
    {
      name: 'Ring.writev',
      skip: why.ring,
      elements: () => [own('ab'), own('cd'), own('ef')],
      open: (f) =>
        ringSite(f, (ring) => ({
          call: (list) => ring.writev(f.file, list as Uint8Array[], 0),
          nothing: () => untouched(f),
          done: (r) => {
            expect(r).toBe(6);
            expect(readFileSync(f.path, 'latin1')).toBe('abcdef file');
          },
        })),
    },
    {
      name: 'Ring.readv',
      skip: why.ring,
      elements: () => zeros(2, 2, 2),
      open: (f) => {
        expect(sys.write(f.w, Buffer.from('uvwxyz'))).toBe(6);
        return ringSite(f, (ring) => ({
          call: (list) => ring.readv(f.r, list as Uint8Array[], -1),
          nothing: () => {
            const buf = Buffer.alloc(64);
            const n = sys.read(f.r, buf);
            expect(buf.toString('latin1', 0, Math.max(0, n)), 'the pipe still holds its bytes').toBe('uvwxyz');
          },
          done: (r, list) => {
            expect(r).toBe(6);
            expect(list.map(text)).toEqual(['uv', 'wx', 'yz']);
          },
        }));
      },
    },
    {
      name: 'Ring.registerBuffers',
      skip: why.ring,
      elements: () => zeros(4, 4, 4),
      open: (f) =>
        ringSite(f, (ring) => {
          const kept = new Uint8Array(5);
          ring.registerBuffers([kept]); // registered before; a refused call leaves it so
          return {
            call: (list) => ring.registerBuffers(list as Uint8Array[]),
            nothing: async () => {
              expect(await ring.readFixed(f.file, 0, 0, 5), 'the earlier buffer is still registered').toBe(5);
              expect(text(kept)).toBe('hello');
              expect(await outcome(() => ring.readFixed(f.file, 1, 0, 4)), 'and it alone').toEqual({
                name: 'RangeError',
                code: 'ERR_OUT_OF_RANGE',
              });
            },
            done: async (r, list) => {
              expect(r).toBeUndefined();
              expect(await ring.readFixed(f.file, 2, 7, 4)).toBe(4);
              expect(list.map(text)).toEqual(['\0\0\0\0', '\0\0\0\0', 'file']);
            },
          };
        }),
    },
    {
      name: 'LocalKeyspace.mset',
      elements: () => [own('k1'), own('v1'), own('k2'), own('v2')],
      open: () => {
        const ks = new LocalKeyspace({ size: 1 << 16 });
        const get = (k: string) => {
          const out = Buffer.alloc(24);
          const n = ks.get(own(k), out);
          return n < 0 ? n : out.toString('latin1', 0, n);
        };
        return {
          call: (list) => ks.mset(list as Uint8Array[]),
          nothing: () => expect(ks.info().keys, 'nothing stored').toBe(0),
          done: (r) => {
            expect(r).toBe(0);
            expect([ks.info().keys, get('k1'), get('k2')]).toEqual([2, 'v1', 'v2']);
          },
          close: () => ks.close(),
        };
      },
    },
    {
      name: 'LocalKeyspace.delMany',
      elements: () => [own('k1'), own('k2'), own('k3')],
      open: () => {
        const ks = new LocalKeyspace({ size: 1 << 16 });
        for (const k of ['k1', 'k2', 'k3']) expect(ks.set(own(k), own('v'))).toBe(1);
        return {
          call: (list) => ks.delMany(list as Uint8Array[]),
          nothing: () => expect(ks.info().keys, 'nothing deleted').toBe(3),
          done: (r) => {
            expect(r).toBe(3);
            expect(ks.info().keys).toBe(0);
          },
          close: () => ks.close(),
        };
      },
    },
  ]);
});
