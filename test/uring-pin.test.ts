/**
 * Every public entry point that hands a caller's buffer to the kernel pins it (src/sys/pin.ts):
 * once the call has returned, a transfer of the buffer's ArrayBuffer (structuredClone with a
 * transfer list, as postMessage does) copies it or throws, and never detaches it while the
 * operation is in flight; the operation's bytes still land in (or leave from) the caller's
 * buffer. One row per entry point — the Ring's promise and batch APIs, registerBuffers, the
 * Proactor's operations, the buffers a multishot recv lends its callback, zero-copy sends —
 * each on a fresh ArrayBuffer, so that a pin made by another row cannot stand in for a
 * missing one. Real TCP loopback sockets: a receive is armed before the peer writes, and a
 * send is started on a socket whose send buffer is full, so the kernel holds the buffer when
 * it is transferred. A transfer that does detach moves the memory to the clone, which is kept
 * alive until the process ends: a missing pin fails the row, it cannot corrupt the heap.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leakedSince, openFds } from './helpers/fds.js';
import { pattern } from './helpers/uring.js';
import { Proactor, Ring, constants, sys } from './helpers/rawio.js';
import { titled, why } from './helpers/skips.js';
import { TransferRing } from '../dist/src/sys/ring-native.js';

const SIZE = 2048;
const EAGAIN = -(constants as Record<string, number>).EAGAIN!;
const IORING_CQE_F_MORE = 2;
const sendZc = why.sendZc === undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The clones of every transfer that did detach: their memory may still be the kernel's. */
const kept: ArrayBuffer[] = [];

/** A fresh buffer of its own ArrayBuffer (never a slice of Node's pool, which Node marks itself). */
function fresh(n: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(n));
}

/** Tries to transfer `ab` away; true when it is still attached (the transfer copied or threw). */
function survives(ab: ArrayBufferLike): boolean {
  const before = ab.byteLength;
  try {
    kept.push(structuredClone(ab as ArrayBuffer, { transfer: [ab as ArrayBuffer] }));
  } catch {
    // refused (Node 22 and later): fine
  }
  return before > 0 && ab.byteLength === before;
}

/** Rejects after `ms`: a row that never completes fails instead of hanging the file. */
function deadline<T>(p: Promise<T>, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no completion')), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

let lfd = -1;
/** A connected TCP pair: `a` (where the operation runs) and `b` (the peer), both non-blocking. */
async function pair(): Promise<{ a: number; b: number; close: () => void }> {
  const b = sys.connectTcp('127.0.0.1', sys.localPort(lfd), { blocking: true });
  let a = -1;
  while ((a = sys.accept(lfd)) < 0) await sleep(2);
  sys.setBlocking(b, false);
  return { a, b, close: () => [a, b].forEach((fd) => sys.close(fd)) };
}

/** Fills `fd`'s send path until the kernel refuses more: the bytes written. */
function fill(fd: number): number {
  const junk = Buffer.alloc(65536, 0x2e);
  let total = 0;
  for (;;) {
    const n = sys.write(fd, junk);
    if (n === EAGAIN) return total;
    if (n < 0) throw new Error(`write: ${n}`);
    total += n;
  }
}

/** Reads `skip + n` bytes from `fd` (non-blocking, polled) and returns the last `n`. */
async function drain(fd: number, skip: number, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(1 << 16);
  const until = Date.now() + 10_000;
  for (let got = 0; got < skip + n;) {
    const r = sys.read(fd, buf);
    if (r > 0) {
      chunks.push(Buffer.from(buf.subarray(0, r)));
      got += r;
    } else if (r === EAGAIN && Date.now() < until) await sleep(1);
    else throw new Error(`read: ${r}`);
  }
  return Buffer.concat(chunks).subarray(skip, skip + n);
}

/** Where an operation runs, made once for the file. */
interface Env {
  ring: Ring;
  batch: Ring;
  batchOp: (prep: (ud: number) => boolean) => Promise<number>;
  pr: Proactor;
}
let env: Env;

/**
 * A row: `start` begins the operation on `a` over `bufs` (the caller's buffers, `SIZE` bytes
 * in all) and returns its result; `out` rows send the buffers' bytes, the others receive into them.
 */
interface Row {
  name: string;
  out: boolean;
  /** How many buffers share the SIZE bytes (readv / writev take two). */
  parts?: number;
  /** Runs before the transfer, with the buffers (registerBuffers). */
  setup?: (bufs: Uint8Array[]) => void;
  start: (a: number, bufs: Uint8Array[]) => Promise<number>;
  /** SEND_ZC (6.0). */
  zc?: boolean;
}

const cbOp = (f: (cb: (res: number) => void) => void) => new Promise<number>((res) => f(res));

const ROWS: Row[] = [
  // Ring, promise API
  { name: 'Ring.read', out: false, start: (a, [b]) => env.ring.read(a, b!, 0, SIZE, -1) },
  { name: 'Ring.recv', out: false, start: (a, [b]) => env.ring.recv(a, b!) },
  { name: 'Ring.readv', out: false, parts: 2, start: (a, bufs) => env.ring.readv(a, bufs, -1) },
  {
    name: 'Ring.registerBuffers + readFixed',
    out: false,
    setup: (bufs) => env.ring.registerBuffers(bufs),
    start: (a) => env.ring.readFixed(a, 0, 0, SIZE, -1),
  },
  { name: 'Ring.write', out: true, start: (a, [b]) => env.ring.write(a, b!, 0, SIZE, -1) },
  { name: 'Ring.send', out: true, start: (a, [b]) => env.ring.send(a, b!) },
  { name: 'Ring.writev', out: true, parts: 2, start: (a, bufs) => env.ring.writev(a, bufs, -1) },
  { name: 'Ring.sendZc', out: true, zc: true, start: async (a, [b]) => (await env.ring.sendZc(a, b!)).bytes },
  // Ring, batch API
  { name: 'Ring.prepRead', out: false, start: (a, [b]) => env.batchOp((ud) => env.batch.prepRead(a, b!, -1, SIZE, ud)) },
  { name: 'Ring.prepRecv', out: false, start: (a, [b]) => env.batchOp((ud) => env.batch.prepRecv(a, b!, 0, SIZE, ud)) },
  {
    name: 'Ring.registerBuffers + prepReadFixed',
    out: false,
    setup: (bufs) => env.batch.registerBuffers(bufs),
    start: (a) => env.batchOp((ud) => env.batch.prepReadFixed(a, 0, -1, SIZE, ud)),
  },
  { name: 'Ring.prepWrite', out: true, start: (a, [b]) => env.batchOp((ud) => env.batch.prepWrite(a, b!, -1, SIZE, ud)) },
  { name: 'Ring.prepSend', out: true, start: (a, [b]) => env.batchOp((ud) => env.batch.prepSend(a, b!, 0, SIZE, ud)) },
  {
    name: 'Ring.prepSendZc',
    out: true,
    zc: true,
    start: (a, [b]) => env.batchOp((ud) => env.batch.prepSendZc(a, b!, 0, SIZE, ud)),
  },
  // Proactor
  { name: 'Proactor.read', out: false, start: (a, [b]) => cbOp((cb) => env.pr.read(a, b!, 0, SIZE, -1, cb)) },
  { name: 'Proactor.recv', out: false, start: (a, [b]) => cbOp((cb) => env.pr.recv(a, b!, cb)) },
  { name: 'Proactor.write', out: true, start: (a, [b]) => cbOp((cb) => env.pr.write(a, b!, 0, SIZE, -1, cb)) },
  { name: 'Proactor.send', out: true, start: (a, [b]) => cbOp((cb) => env.pr.send(a, b!, 0, SIZE, cb)) },
  { name: 'Proactor.sendZc', out: true, zc: true, start: (a, [b]) => cbOp((cb) => env.pr.sendZc(a, b!, 0, SIZE, cb)) },
]; // prettier-ignore

/**
 * MSG_ZEROCOPY: `send` returns at once and the kernel holds the buffer until the completion
 * on the socket's error queue; `pending` reaps and says how many sends still wait.
 */
interface ZerocopyRow {
  name: string;
  send: (a: number, buf: Uint8Array) => number;
  pending: (a: number) => number;
}
const sockets = new Map<number, InstanceType<typeof sys.ZerocopySocket>>();
const ZEROCOPY_ROWS: ZerocopyRow[] = [
  {
    name: 'ZerocopySocket.send',
    send: (a, buf) => sockets.set(a, new sys.ZerocopySocket(a)).get(a)!.send(buf, 0, SIZE),
    pending: (a) => (sockets.get(a)!.reap(), sockets.get(a)!.pending),
  },
  {
    name: 'sys.send({ zerocopy: true })',
    send: (a, buf) => sys.send(a, buf, { zerocopy: true }),
    pending: (a) => sys.zerocopyCompletions(a).pending,
  },
];

/** What a row found: the buffers survived the transfer, and the bytes are the ones sent. */
interface Found {
  attached: boolean;
  bytes: boolean;
}
/** A row that threw (a detached buffer's view, a deadline) shows as its error. */
const orError = (p: Promise<Found>) => p.catch((e: unknown) => ({ error: String(e) }));

async function runRow(row: Row): Promise<Found> {
  const { a, b, close } = await pair();
  try {
    const parts = row.parts ?? 1;
    const bufs = Array.from({ length: parts }, () => fresh(SIZE / parts));
    const data = pattern(SIZE, row.name.length);
    if (row.out) bufs.forEach((buf, i) => buf.set(data.subarray((i * SIZE) / parts, ((i + 1) * SIZE) / parts)));
    row.setup?.(bufs);
    const skip = row.out ? fill(a) : 0;
    const done = row.start(a, bufs);
    // At once: the caller has control back, and the operation cannot end before the peer acts.
    const attached = bufs.map((buf) => survives(buf.buffer)).every(Boolean);
    let bytes: boolean;
    if (row.out) {
      const [wire, n] = await Promise.all([drain(b, skip, SIZE), deadline(done)]);
      bytes = n === SIZE && wire.equals(data);
    } else {
      sys.write(b, data);
      const n = await deadline(done);
      bytes = n === SIZE && attached && Buffer.concat(bufs).equals(data);
    }
    return { attached, bytes };
  } finally {
    close();
  }
}

async function runZerocopyRow(row: ZerocopyRow): Promise<Found> {
  const { a, b, close } = await pair();
  try {
    const buf = fresh(SIZE);
    const data = pattern(SIZE, 7);
    buf.set(data);
    const n = row.send(a, buf);
    const attached = survives(buf.buffer);
    const wire = await drain(b, 0, SIZE);
    const until = Date.now() + 10_000;
    while (row.pending(a) > 0 && Date.now() < until) await sleep(1);
    return { attached, bytes: n === SIZE && wire.equals(data) };
  } finally {
    close();
  }
}

/** Proactor.recvMultishot: the callback transfers its chunk's ArrayBuffer; the next chunk still arrives right. */
async function runMultishotRow(pr: Proactor): Promise<Found> {
  const { a, b, close } = await pair();
  const first = pattern(SIZE, 3);
  const second = pattern(SIZE, 4);
  try {
    let attached = false;
    const got: Buffer[] = [];
    let id = -1;
    const ended = new Promise<void>((resolve) => {
      id = pr.recvMultishot(a, (n, data) => {
        if (n <= 0) return resolve();
        got.push(Buffer.from(data));
        const total = got.reduce((s, c) => s + c.length, 0);
        if (total === SIZE) {
          attached = survives(data.buffer); // lent to this call; the kernel keeps receiving into it
          sys.write(b, second);
        }
        if (total === 2 * SIZE) setImmediate(() => pr.cancel(id)); // re-armed by then, in either mode
      });
    });
    sys.write(b, first);
    await deadline(ended);
    return { attached, bytes: Buffer.concat(got).equals(Buffer.concat([first, second])) };
  } finally {
    close();
  }
}

describe.skipIf(why.ring)(titled('a caller’s buffer stays attached while the kernel holds it', why.ring), () => {
  let fdsBefore: Map<number, string>;
  let fallback: Proactor;
  beforeAll(() => {
    fdsBefore = openFds();
    lfd = sys.listenTcp('127.0.0.1', 0);
    const waiting = new Map<number, { res?: number; resolve: (n: number) => void }>();
    let nextUd = 1;
    const batch = new Ring({
      onCompletion: (ud, res, flags) => {
        const w = waiting.get(ud);
        if (w === undefined) return;
        w.res ??= res; // SEND_ZC: the result first, then the notification
        if ((flags & IORING_CQE_F_MORE) !== 0) return;
        waiting.delete(ud);
        w.resolve(w.res);
      },
    });
    const batchOp = (prep: (ud: number) => boolean) =>
      new Promise<number>((resolve, reject) => {
        const ud = nextUd++;
        waiting.set(ud, { resolve });
        if (!prep(ud)) return reject(new Error('SQ full'));
        batch.submit();
      });
    const pr = new Proactor();
    pr.attach();
    fallback = new Proactor({ recvBuffers: { count: 0 } });
    fallback.attach();
    env = { ring: new Ring(), batch, batchOp, pr };
  });
  afterAll(() => {
    env.ring.close();
    env.batch.close();
    env.pr.close();
    fallback.close();
    sys.close(lfd);
    expect(leakedSince(fdsBefore)).toEqual([]);
  });

  it('every entry point: the transfer copies or throws, the bytes are right', async () => {
    const got: Record<string, unknown> = {};
    for (const row of ROWS) if (row.zc !== true || sendZc) got[row.name] = await orError(runRow(row));
    for (const row of ZEROCOPY_ROWS) got[row.name] = await orError(runZerocopyRow(row));
    got['Proactor.recvMultishot (provided buffers)'] = await orError(runMultishotRow(env.pr));
    got['Proactor.recvMultishot (its own buffer)'] = await orError(runMultishotRow(fallback));
    const want = Object.fromEntries(Object.keys(got).map((k) => [k, { attached: true, bytes: true }]));
    expect(got).toEqual(want);
  }, 60_000);

  // The other side of the rule: rawio's own buffers that no other code sees (pin.ts's list)
  // take the unpinned route, so they stay as transferable as any fresh ArrayBuffer. Checked
  // once the operation is over: a detach then takes nothing from the kernel.
  it('the transfer ring’s own route (readOwn, sendOwn) leaves its buffers unpinned, the bytes right', async () => {
    const ring = new TransferRing({ entries: 8 });
    const { a, b, close } = await pair();
    try {
      const data = pattern(SIZE, 11);
      const inBuf = fresh(SIZE);
      const reading = ring.readOwn(a, inBuf, 0, SIZE, -1);
      sys.write(b, data);
      const nIn = await deadline(reading);
      const outBuf = fresh(SIZE);
      outBuf.set(data);
      const nOut = await deadline(ring.sendOwn(a, outBuf));
      const wire = await drain(b, 0, SIZE);
      const got = {
        read: nIn === SIZE && Buffer.from(inBuf).equals(data),
        sent: nOut === SIZE && wire.equals(data),
        readPinned: survives(inBuf.buffer),
        sendPinned: survives(outBuf.buffer),
      };
      expect(got).toEqual({ read: true, sent: true, readPinned: false, sendPinned: false });
    } finally {
      close();
      ring.close();
    }
  }, 30_000);
});

describe('pin() itself', () => {
  it('marks each view’s ArrayBuffer: a view seen before, another view of a pinned buffer, a new buffer', async () => {
    const { pin, lentToKernel } = await import('../dist/src/sys/pin.js');
    const a = fresh(64);
    const a2 = new Uint8Array(a.buffer, 8, 16); // another view of the same memory
    const b = fresh(64);
    pin(a);
    pin(a); // seen before: nothing more to do
    expect([lentToKernel(a), lentToKernel(a2), lentToKernel(b)]).toEqual([true, true, false]);
    pin(a2);
    expect(survives(a2.buffer)).toBe(true);
    const b2 = new Uint8Array(b.buffer, 4, 4);
    pin(b2); // the first view of b pinned is not b itself: b's buffer is marked all the same
    expect([lentToKernel(b), survives(b.buffer)]).toEqual([true, true]);
    // an unpinned buffer does detach (the check above is not vacuous)
    const c = fresh(16);
    expect(survives(c.buffer)).toBe(false);
  });
});
