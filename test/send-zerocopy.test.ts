// Zero-copy send, three ways over real TCP loopback sockets: sys.send with MSG_ZEROCOPY and
// its error-queue completions, sendBuffer (the in-memory body path), and Ring.sendZc
// (IORING_OP_SEND_ZC). Every size from 1 byte to 16 MiB arrives byte for byte; the large ones
// go out in several short sends (a small send buffer and a slow reader: 16 MiB through a
// 64 KiB send buffer is over a hundred of them) and every send is accounted for by a
// completion. Buffer lifetimes under forced GC run in a child process
// with --expose-gc (test/fixtures/send-zc-gc-child.mjs).
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { release } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leakedSince, openFds } from './helpers/fds.js';
import { sha256, tcpPeer } from './helpers/peer.js';
import { eventually } from './helpers/wait.js';
import { Proactor, Ring, constants, probe, sendBuffer, sys } from './helpers/rawio.js';
import { titled, why } from './helpers/skips.js';

const C = constants as Record<string, number>;
const EAGAIN = -C.EAGAIN!;
const ENOBUFS = -C.ENOBUFS!;
const SIZES = [1, 4095, 4096, 65_537, (1 << 20) + 3, 16 << 20];
const big = randomFillSync(Buffer.allocUnsafe(16 << 20));
const tick = () => new Promise((r) => setImmediate(r));
const sendZcOk = why.sendZc === undefined;
// IORING_SEND_ZC_REPORT_USAGE, the SEND_ZC copied verdict, came with 6.2
const [major = 0, minor = 0] = release().split('.').map(Number);
const usageReported = major > 6 || (major === 6 && minor >= 2);
let fdsBefore: Map<number, string>;

beforeAll(() => {
  fdsBefore = openFds();
});
afterAll(() => {
  expect(leakedSince(fdsBefore)).toEqual([]);
});

// A peer that reads slowly through a small send buffer, so that large sends come back short.
async function slowPeer() {
  const peer = await tcpPeer({ slow: true });
  sys.setBufferSizes(peer.sockFd, { send: 64 * 1024 });
  return peer;
}

describe('sys.send with MSG_ZEROCOPY', () => {
  for (const size of SIZES) {
    it(`sends ${size} bytes exactly, every send completed`, async () => {
      const { sockFd, received } = await slowPeer();
      const body = big.subarray(0, size);
      let off = 0;
      let sends = 0;
      let short = 0;
      let completed = 0;
      while (off < size) {
        const r = sys.send(sockFd, body, { offset: off, zerocopy: true });
        if (r > 0) {
          sends++;
          if (r < size - off) short++;
          off += r;
        } else if (r === EAGAIN || r === ENOBUFS) await new Promise((res) => setTimeout(res, 1));
        else throw new Error(`send: ${r}`);
        completed += sys.zerocopyCompletions(sockFd).completed;
      }
      for (let i = 0; i < 10_000; i++) {
        const c = sys.zerocopyCompletions(sockFd);
        completed += c.completed;
        if (c.pending === 0) break;
        await new Promise((res) => setTimeout(res, 1));
      }
      expect(completed).toBe(sends); // one id per successful send, each reported once
      if (size >= 1 << 20) expect(short).toBeGreaterThan(0);
      sys.close(sockFd);
      await expect(received).resolves.toEqual({ bytes: size, sha256: sha256(body) });
    });
  }

  it('reports nothing on a socket without zero-copy sends, and checks its arguments', () => {
    const [a, b] = sys.socketpair();
    expect(sys.zerocopyCompletions(a)).toEqual({ completed: 0, copied: 0, pending: 0 });
    // AF_UNIX refuses SO_ZEROCOPY: the send is a plain one, nothing to wait for
    expect(sys.send(a, Buffer.from('hi'), { zerocopy: true })).toBe(2);
    expect(sys.zerocopyCompletions(a).pending).toBe(0);
    expect(() => sys.send(a, 'x' as never)).toThrow(TypeError);
    expect(() => sys.send(a, Buffer.alloc(1), { offset: 2 })).toThrow(RangeError);
    expect(() => sys.send(a, Buffer.alloc(1), { zerocopy: 1 as never })).toThrow(TypeError);
    expect(() => sys.zerocopyCompletions(-1)).toThrow(RangeError);
    sys.close(a);
    sys.close(b);
  });
});

describe('sendBuffer', () => {
  for (const zerocopy of [true, false]) {
    for (const size of SIZES) {
      it(`sends ${size} bytes exactly${zerocopy ? ' with MSG_ZEROCOPY' : ''}`, async () => {
        const { sockFd, received } = await slowPeer();
        const body = big.subarray(0, size);
        const taken: number[] = [];
        const r = await sendBuffer(sockFd, body, { zerocopy, onSent: (n) => taken.push(n) });
        expect(r.bytes).toBe(size);
        // onSent: each send the kernel took, in order, adding up to the whole body
        expect(taken.every((n) => n > 0)).toBe(true);
        expect(taken.reduce((a, n) => a + n, 0)).toBe(size);
        if (size === 16 << 20) expect(taken.length).toBeGreaterThan(1); // through a 64 KiB send buffer: short sends
        if (zerocopy) {
          expect(r.zerocopySends).toBeGreaterThan(0);
          // loopback: the kernel copies on delivery and says so (SO_EE_CODE_ZEROCOPY_COPIED)
          expect(r.copied).toBe(r.zerocopySends);
        } else expect(r.zerocopySends).toBe(0);
        expect(sys.zerocopyCompletions(sockFd).pending).toBe(0); // resolved once the kernel was done
        sys.close(sockFd);
        await expect(received).resolves.toEqual({ bytes: size, sha256: sha256(body) });
      });
    }
  }

  it('stops on an aborted signal, and checks its arguments', async () => {
    const { sockFd, received } = await slowPeer();
    const ac = new AbortController();
    const p = sendBuffer(sockFd, big.subarray(0, 16 << 20), { zerocopy: true, signal: ac.signal });
    await tick();
    ac.abort();
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    expect(sys.zerocopyCompletions(sockFd).pending).toBe(0); // still waited for the kernel
    await expect(sendBuffer(sockFd, 'x' as never)).rejects.toThrow(TypeError);
    await expect(sendBuffer(sockFd, big, { length: big.length + 1 })).rejects.toThrow(RangeError);
    await expect(sendBuffer(sockFd, big, { signal: {} as never })).rejects.toThrow(TypeError);
    await expect(sendBuffer(sockFd, big, { onSent: 1 as never })).rejects.toThrow(TypeError);
    sys.close(sockFd);
    await received;
  });

  it('rejects at once when aborted while a peer that never reads keeps the socket full', async () => {
    const before = openFds();
    const [a, b] = sys.socketpair();
    const ac = new AbortController();
    let settled: unknown;
    sendBuffer(a, big, { signal: ac.signal }).then(
      (r) => (settled = r),
      (e: unknown) => (settled = e),
    );
    // A byte more would not fit either: the send is waiting for writability.
    expect(await eventually(() => sys.write(a, Buffer.alloc(1)) === EAGAIN)).toBe(true);
    ac.abort();
    expect(await eventually(() => settled !== undefined)).toBe(true);
    expect(settled).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    sys.close(a);
    sys.close(b);
    expect(leakedSince(before)).toEqual([]); // the poll handle's duplicate fd too
  });
});

describe.skipIf(why.sendZc)(titled('Ring.sendZc (IORING_OP_SEND_ZC, 6.0)', why.sendZc), () => {
  for (const size of SIZES) {
    it(`sends ${size} bytes exactly and resolves after the notifications`, async () => {
      const ring = new Ring();
      const { sockFd, received } = await slowPeer();
      const body = big.subarray(0, size);
      const r = await ring.sendZc(sockFd, body);
      expect(r.bytes).toBe(size);
      if (size >= 1 << 20) expect(r.sends).toBeGreaterThan(1); // short sends resubmitted
      // loopback: IORING_NOTIF_USAGE_ZC_COPIED on every notification (6.2+)
      expect(r.copied).toBe(usageReported ? r.sends : 0);
      expect(ring.inflight).toBe(0); // every notification reaped
      sys.close(sockFd);
      await expect(received).resolves.toEqual({ bytes: size, sha256: sha256(body) });
      ring.close();
    });
  }

  it('posts the result with IORING_CQE_F_MORE, then the notification (batch API)', async () => {
    const ring = new Ring({ attach: false });
    const { sockFd, received } = await tcpPeer();
    const body = big.subarray(0, 100_000);
    expect(ring.prepSendZc(sockFd, body, 0, body.length, 7)).toBe(true);
    ring.submit();
    const out = new Int32Array(3 * 8);
    const cqes: number[][] = [];
    while (cqes.length < 2) {
      const n = ring.reap(out, 1);
      for (let i = 0; i < n; i++) cqes.push([out[3 * i]!, out[3 * i + 1]!, out[3 * i + 2]!]);
    }
    const F_MORE = 2;
    const F_NOTIF = 8;
    expect(cqes[0]![0]).toBe(7);
    expect(cqes[0]![1]).toBeGreaterThan(0);
    expect(cqes[0]![2]! & F_MORE).toBe(F_MORE);
    expect(cqes[1]![0]).toBe(7);
    expect(cqes[1]![2]! & F_NOTIF).toBe(F_NOTIF);
    expect(ring.inflight).toBe(0);
    const sent = cqes[0]![1]!;
    if (sent < body.length) await ring.sendZc(sockFd, body, { offset: sent });
    sys.close(sockFd);
    await expect(received).resolves.toEqual({ bytes: body.length, sha256: sha256(body) });
    ring.close();
  });

  it('rejects with the errno of a failed send after its notification', async () => {
    const ring = new Ring();
    const [a, b] = sys.socketpair();
    // AF_UNIX does not do zero copy
    await expect(ring.sendZc(a, Buffer.alloc(10))).rejects.toMatchObject({ syscall: 'send_zc' });
    expect(ring.inflight).toBe(0);
    expect(() => ring.sendZc(a, 'x' as never)).toThrow(TypeError);
    expect(() => ring.sendZc(a, Buffer.alloc(1), { length: 2 })).toThrow(RangeError);
    sys.close(a);
    sys.close(b);
    ring.close();
  });
});

describe.skipIf(why.sendZc)(titled('Proactor.sendZc', why.sendZc), () => {
  for (const size of [1, (1 << 20) + 3, 16 << 20]) {
    it(`sends ${size} bytes exactly and calls back after the notifications`, async () => {
      const pr = new Proactor();
      pr.attach();
      const { sockFd, received } = await slowPeer();
      const body = big.subarray(0, size);
      const res = await new Promise<number>((resolve) => pr.sendZc(sockFd, body, 0, size, resolve));
      expect(res).toBe(size);
      expect(pr.ring.inflight).toBe(0); // the callback came after the last notification
      expect(pr.zerocopy.sends).toBeGreaterThan(size >= 1 << 20 ? 1 : 0);
      expect(pr.zerocopy.copied).toBe(usageReported ? pr.zerocopy.sends : 0); // loopback: the kernel copied
      sys.close(sockFd);
      await expect(received).resolves.toEqual({ bytes: size, sha256: sha256(body) });
      pr.close();
    });
  }

  it('reports a failed send after its notification', async () => {
    const pr = new Proactor();
    pr.attach();
    const [a, b] = sys.socketpair();
    const res = await new Promise<number>((resolve) => pr.sendZc(a, Buffer.alloc(10), 0, 10, resolve));
    expect(res).toBeLessThan(0); // AF_UNIX does not do zero copy
    expect(pr.ring.inflight).toBe(0);
    sys.close(a);
    sys.close(b);
    pr.close();
  });
});

it('probe() and `rawio probe` say which zero-copy sends the kernel takes', () => {
  const z = probe().zerocopySend;
  expect(z.msgZerocopy).toBe(true); // TCP has taken SO_ZEROCOPY since 4.14
  expect(z.sendZc).toBe(Ring.supported() ? sendZcOk : null);
  const out = execFileSync(process.execPath, ['dist/src/cli.js', 'probe'], { encoding: 'utf8' });
  expect(out).toMatch(/^zero-copy send {2}MSG_ZEROCOPY yes, io_uring SEND_ZC (yes|no|unknown)$/m);
});

describe('buffer lifetimes under forced GC', () => {
  it('keeps every in-flight buffer alive, sends it intact, then lets it go', () => {
    const out = execFileSync(process.execPath, ['--expose-gc', 'test/fixtures/send-zc-gc-child.mjs'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    const { count, results } = JSON.parse(out.trim().split('\n').pop()!) as {
      count: number;
      results: { name: string; heldDuring: number; bad: number; finalizedAfter: number }[];
    };
    expect(results.map((r) => r.name)).toEqual(sendZcOk ? ['send', 'sendBuffer', 'sendZc'] : ['send', 'sendBuffer']);
    for (const r of results) {
      expect(r, r.name).toMatchObject({ heldDuring: count, bad: 0, finalizedAfter: count });
    }
  });
});
