/**
 * The per-client connection limit's pieces below the models: the addon's peerAddress (the
 * 16-byte key, an IPv4 client the same however it arrived), the threads' shared ClientTable
 * (its limit, its bound when full, tombstones reused, exact under worker threads racing for
 * the last slot, every slot back at the end), and Stats.admit over real accepted sockets.
 */
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { constants as os } from 'node:os';
import { sys } from '../helpers/rawio.js';
import { titled, why } from '../helpers/skips.js';
import { native } from '../../dist/src/sys/native.js';
import { ClientTable } from '../../dist/src/models/client-table.js';
import { REFUSED_CONN, Stats } from '../../dist/src/models/stats.js';
import { eventually } from '../helpers/wait.js';

const AF_INET = 2;
const AF_INET6 = 10;
const tableUrl = new URL('../../dist/src/models/client-table.js', import.meta.url).href;

/** A 16-byte client key: ::ffff:10.x.y.z for n. */
function addr(n: number): Uint8Array {
  const a = new Uint8Array(16);
  a[10] = a[11] = 0xff;
  a[12] = 10;
  a[13] = (n >> 16) & 0xff;
  a[14] = (n >> 8) & 0xff;
  a[15] = n & 0xff;
  return a;
}

const sockets: net.Socket[] = [];
const fds: number[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const fd of fds.splice(0)) sys.close(fd);
});

/** Connects a node client to `port` (from `localAddress`) and accepts it on `listenFd`: the server's fd. */
async function acceptFrom(listenFd: number, port: number, host: string, localAddress?: string): Promise<number> {
  const sock = net.connect(localAddress ? { port, host, localAddress } : { port, host });
  sock.on('error', () => undefined);
  sockets.push(sock);
  let fd = -1;
  expect(await eventually(() => (fd = sys.accept(listenFd)) >= 0, 20_000)).toBe(true);
  fds.push(fd);
  return fd;
}

describe('peerAddress', () => {
  it('writes the peer as 16 bytes: an IPv4 client as ::ffff:a.b.c.d', async () => {
    const l4 = sys.listenTcp('127.0.0.1', 0);
    fds.push(l4);
    const out = new Uint8Array(16);
    expect(native.peerAddress(await acceptFrom(l4, sys.localPort(l4), '127.0.0.1', '127.0.0.2'), out)).toBe(AF_INET);
    expect([...out]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 2]);
  });

  it.skipIf(why.ipv6)(titled('writes an IPv4 client on an IPv6 listener as the same 16 bytes', why.ipv6), async () => {
    const l4 = sys.listenTcp('127.0.0.1', 0);
    fds.push(l4);
    const out = new Uint8Array(16);
    expect(native.peerAddress(await acceptFrom(l4, sys.localPort(l4), '127.0.0.1', '127.0.0.2'), out)).toBe(AF_INET);

    const l6 = sys.listenTcp('::', 0); // dual-stack: an IPv4 client arrives as ::ffff:127.0.0.2
    fds.push(l6);
    const mapped = new Uint8Array(16);
    const fd = await acceptFrom(l6, sys.localPort(l6), '127.0.0.1', '127.0.0.2');
    expect(native.peerAddress(fd, mapped)).toBe(AF_INET6);
    expect(mapped).toEqual(out);
    const six = new Uint8Array(16);
    expect(native.peerAddress(await acceptFrom(l6, sys.localPort(l6), '::1'), six)).toBe(AF_INET6);
    expect([...six]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  });

  it('answers -errno for what has no IP peer, and throws on bad arguments', () => {
    const out = new Uint8Array(16);
    const l = sys.listenTcp('127.0.0.1', 0);
    fds.push(l);
    expect(native.peerAddress(l, out)).toBe(-os.errno.ENOTCONN);
    const [a, b] = sys.socketpair();
    fds.push(a, b);
    expect(native.peerAddress(a, out)).toBe(-os.errno.EAFNOSUPPORT);
    const [r, w] = sys.pipe();
    fds.push(r, w);
    expect(native.peerAddress(r, out)).toBe(-os.errno.ENOTSOCK);
    expect(native.peerAddress(0x7ffffff0, out)).toBe(-os.errno.EBADF);
    expect(() => native.peerAddress(l, new Uint8Array(15))).toThrow(RangeError);
    expect(() => native.peerAddress(l, 'x' as never)).toThrow(TypeError);
    expect(() => native.peerAddress(l, new Int32Array(4) as never)).toThrow(TypeError);
    expect(() => native.peerAddress(-1, out)).toThrow(RangeError);
    expect(() => native.peerAddress('3' as never, out)).toThrow(TypeError);
  });
});

describe('ClientTable', () => {
  it('counts each address against the limit, refuses past it, and frees a slot on release', () => {
    const t = ClientTable.create(2);
    const a1 = t.reserve(addr(1));
    const a2 = t.reserve(addr(1));
    expect(a1).toBeGreaterThan(0);
    expect(a2).toBe(a1); // one entry per address: its ticket
    expect(t.reserve(addr(1))).toBe(0);
    expect(t.reserve(addr(2))).toBeGreaterThan(0); // another client
    expect([t.count(addr(1)), t.count(addr(2)), t.clients]).toEqual([2, 1, 2]);
    t.release(a1);
    expect(t.count(addr(1))).toBe(1);
    expect(t.reserve(addr(1))).toBe(a1);
    t.release(0); // not a ticket: nothing
    t.release(1 << 30);
    expect(t.count(addr(1))).toBe(2);
    expect(() => t.reserve(new Uint8Array(4))).toThrow(RangeError);
  });

  it('when full (maxClients addresses hold connections), refuses a new address but serves those it holds', () => {
    const t = ClientTable.create(2, 4);
    const held = [1, 2, 3, 4].map((n) => t.reserve(addr(n)));
    expect(held.every((k) => k > 0)).toBe(true);
    expect(t.reserve(addr(5))).toBe(0); // full: refused, never served uncounted
    expect(t.reserve(addr(2))).toBe(held[1]); // a held address still takes its limit
    expect(t.reserve(addr(2))).toBe(0);
    t.release(held[0]!); // address 1's last connection: its entry is free
    expect(t.clients).toBe(3);
    expect(t.reserve(addr(5))).toBeGreaterThan(0);
    expect(t.count(addr(1))).toBe(0);
  });

  it('reuses freed entries: endless new addresses through a small table, beside ones held all along', () => {
    const t = ClientTable.create(1, 4);
    const kept = [t.reserve(addr(100_001)), t.reserve(addr(100_002)), t.reserve(addr(100_003))];
    for (let n = 0; n < 20_000; n++) {
      const k = t.reserve(addr(n));
      expect(k).toBeGreaterThan(0);
      if (n % 3 === 0) expect(t.reserve(addr(n))).toBe(0); // its limit holds while it is in
      t.release(k);
    }
    expect(t.clients).toBe(3);
    expect([100_001, 100_002, 100_003].map((n) => t.count(addr(n)))).toEqual([1, 1, 1]);
    expect(t.reserve(addr(100_002))).toBe(0);
    for (const k of kept) t.release(k);
    expect(t.clients).toBe(0);
  });

  it('keeps empty slots through endless churn: tombstones that live entries follow are swept, so a new address never scans the table', () => {
    const t = ClientTable.create(1, 64); // 128 slots
    const held = Array.from({ length: 48 }, (_, i) => t.reserve(addr(1_000_000 + i)));
    expect(held.every((k) => k > 0)).toBe(true);
    // A window of 12 new addresses at a time: each leaves a tombstone where it sat, most of
    // them with a live entry after them.
    const window: number[] = [];
    let most = 0;
    for (let n = 0; n < 50_000; n++) {
      const k = t.reserve(addr(n));
      expect(k).toBeGreaterThan(0);
      window.push(k);
      if (window.length > 12) t.release(window.shift()!);
      most = Math.max(most, t.occupied);
    }
    expect(most).toBeLessThan(128); // an empty slot ends every probe
    for (const k of [...window, ...held]) t.release(k);
    expect([t.clients, t.occupied]).toEqual([0, 0]);
  });

  it('is exact across worker threads: never past a limit, each last slot taken once, every slot back at the end', async () => {
    const THREADS = 4;
    const ROUNDS = 300;
    const LOOPS = 20_000;
    const t = ClientTable.create(3, 64);
    // [in use of the shared address, the most seen in use], then per round the threads that won it.
    const ctl = new Int32Array(new SharedArrayBuffer(4 * (2 + ROUNDS)));
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.url).then(({ ClientTable }) => {
        const t = ClientTable.attach(workerData.table);
        const ctl = new Int32Array(workerData.ctl);
        const key = (n) => { const a = new Uint8Array(16); a[0] = 1; a[13] = n >> 16; a[14] = n >> 8; a[15] = n; return a; };
        const shared = key(0xfffff);
        for (let i = 0; i < workerData.loops; i++) {
          const k = t.reserve(shared);
          if (k > 0) {
            const n = Atomics.add(ctl, 0, 1) + 1;
            for (let m = Atomics.load(ctl, 1); n > m; m = Atomics.load(ctl, 1)) Atomics.compareExchange(ctl, 1, m, n);
            // A new address now and then, taken and given back: entries come and go meanwhile.
            const own = t.reserve(key(workerData.id * 100000 + (i % 50) + 1));
            if (own > 0) t.release(own);
            Atomics.sub(ctl, 0, 1);
            t.release(k);
          }
        }
        // Each round's address, limit 3 shared by 4 threads that never give it back: 3 wins.
        for (let r = 0; r < workerData.rounds; r++) if (t.reserve(key(0x70000 + r)) > 0) Atomics.add(ctl, 2 + r, 1);
        parentPort.postMessage('done');
      });`;
    const workers = Array.from(
      { length: THREADS },
      (_, id) =>
        new Worker(code, {
          eval: true,
          workerData: { url: tableUrl, table: t.buffer, ctl: ctl.buffer, loops: LOOPS, rounds: 10, id },
        }),
    );
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            w.once('message', () => resolve());
            w.once('error', reject);
          }),
      ),
    );
    await Promise.all(workers.map((w) => w.terminate()));
    expect(Atomics.load(ctl, 1)).toBeLessThanOrEqual(3);
    expect(Atomics.load(ctl, 1)).toBeGreaterThanOrEqual(1);
    expect(Array.from(ctl.subarray(2, 12))).toEqual(Array(10).fill(3));
    const shared = new Uint8Array(16);
    shared[0] = 1;
    shared[13] = 0x0f;
    shared[14] = 0xff;
    shared[15] = 0xff;
    expect(t.count(shared)).toBe(0); // every slot of the shared address came back
    expect(t.clients).toBe(10); // the rounds' addresses, held for good
  }, 120_000);
});

describe('Stats.admit with maxConnectionsPerClient', () => {
  it('keys real connections by their peer address: one client refused past its limit, another served, a close frees a slot', async () => {
    const l = sys.listenTcp('127.0.0.1', 0);
    fds.push(l);
    const port = sys.localPort(l);
    const shared = new Stats(2).limit(Infinity, 2);
    const a = Stats.attach(shared.share()); // two threads' views of one table
    const b = Stats.attach(shared.share());
    const from = (ip: string) => acceptFrom(l, port, '127.0.0.1', ip);
    const t1 = a.admit(0, await from('127.0.0.1'));
    const t2 = b.admit(1, await from('127.0.0.1'));
    expect(t1).toBeGreaterThan(0);
    expect(t2).toBe(t1);
    expect(a.admit(0, await from('127.0.0.1'))).toBe(REFUSED_CONN);
    expect(b.admit(1, await from('127.0.0.2'))).toBeGreaterThan(0);
    expect(shared.snapshot()).toMatchObject({ connections: 3, accepted: [1, 2], refused: 1 });
    b.closed(t1);
    expect(a.admit(0, await from('127.0.0.1'))).toBe(t1);
    expect(shared.snapshot()).toMatchObject({ connections: 3, accepted: [2, 2], refused: 1 });
    // A socket with no IP peer cannot be counted: refused, and nothing held.
    const [x, y] = sys.socketpair();
    fds.push(x, y);
    expect(a.admit(0, x)).toBe(REFUSED_CONN);
    expect(shared.snapshot()).toMatchObject({ connections: 3, refused: 2 });
  });

  it('with maxConnections too: a refusal by either gives back what the other took', async () => {
    const l = sys.listenTcp('127.0.0.1', 0);
    fds.push(l);
    const port = sys.localPort(l);
    const s = new Stats(1).limit(2, 1);
    const t = s.admit(0, await acceptFrom(l, port, '127.0.0.1', '127.0.0.1'));
    expect(s.admit(0, await acceptFrom(l, port, '127.0.0.1', '127.0.0.1'))).toBe(REFUSED_CONN); // per client
    expect(s.snapshot().connections).toBe(1); // its server-wide slot given back
    expect(s.admit(0, await acceptFrom(l, port, '127.0.0.1', '127.0.0.2'))).toBeGreaterThan(0);
    expect(s.admit(0, await acceptFrom(l, port, '127.0.0.1', '127.0.0.3'))).toBe(REFUSED_CONN); // server-wide
    s.closed(t);
    expect(s.admit(0, await acceptFrom(l, port, '127.0.0.1', '127.0.0.1'))).toBe(t);
    expect(s.snapshot()).toMatchObject({ connections: 2, refused: 2 });
  });
});
