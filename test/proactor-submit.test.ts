// Proactor `submitEvery` (entries submitted in the middle of a long batch of completions)
// and the batch clock that the run() loops read once per batch: correctness only.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as batchClock from '../dist/src/sys/batch-clock.js';
import { leakedSince, openFds } from './helpers/fds.js';
import { Proactor, Reactor, Ring, constants, serve, sys } from './helpers/rawio.js';
import { titled, why } from './helpers/skips.js';
import { exchange, httpGets } from './helpers/clients.js';

const CONNS = 24;

/**
 * Every pair's message is written before run(), so the first wait reaps all the recvs in
 * one batch and the echo sends are prepared inside it: with a small `submitEvery` most of
 * them go to the kernel before the batch ends.
 */
async function echoBatch(submitEvery: number): Promise<void> {
  const px = new Proactor({ submitEvery });
  const pairs = Array.from({ length: CONNS }, () => sys.socketpair());
  const msgs = pairs.map((_, i) => Buffer.from(`message ${i} `.repeat(i + 1)));
  pairs.forEach(([, b], i) => expect(sys.write(b, msgs[i]!)).toBe(msgs[i]!.length));
  let left = CONNS;
  for (const [a] of pairs) {
    const buf = Buffer.alloc(4096);
    px.recv(a, buf, (n) => {
      expect(n).toBeGreaterThan(0);
      px.send(a, buf, 0, n, (sent) => {
        expect(sent).toBe(n);
        if (--left === 0) px.stop();
      });
    });
  }
  await px.run();
  expect(left).toBe(0);
  pairs.forEach(([, b], i) => {
    const got = Buffer.alloc(4096);
    const n = sys.read(b, got);
    expect(got.subarray(0, n).toString()).toBe(msgs[i]!.toString());
  });
  px.close();
  for (const [a, b] of pairs) {
    sys.close(a);
    sys.close(b);
  }
}

describe.skipIf(why.ring)(titled('Proactor submitEvery', why.ring), () => {
  let before: Map<number, string>;
  beforeEach(() => (before = openFds()));
  afterEach(() => expect(leakedSince(before)).toEqual([]));

  it.each([0, 1, 3, 16, 1000])('echoes every message of one batch with submitEvery %i', async (n) => {
    await echoBatch(n);
  });

  it('rejects a submitEvery that is not a count', () => {
    expect(() => new Proactor({ submitEvery: 'x' as unknown as number })).toThrow(TypeError);
    expect(() => new Proactor({ submitEvery: 1.5 })).toThrow(RangeError);
    expect(() => new Proactor({ submitEvery: -1 })).toThrow(RangeError);
    expect(() => new Proactor({ submitEvery: 40000 })).toThrow(RangeError);
  });
});

describe('batch clock', () => {
  it('reads the clock itself while no loop runs', () => {
    const a = Date.now();
    const t = batchClock.now();
    expect(t).toBeGreaterThanOrEqual(a);
    expect(t).toBeLessThanOrEqual(Date.now());
  });

  it('is read once per batch under Reactor.run, and by the clock again after it', async () => {
    const r = new Reactor();
    const [a, b] = sys.socketpair();
    sys.write(b, Buffer.from('x'));
    const seen: number[] = [];
    r.watch(a, constants.EPOLLIN!, () => {
      const before = Date.now();
      seen.push(batchClock.now());
      // Within one batch the value stays put, whatever the clock does meanwhile.
      while (Date.now() === before) {
        /* until the millisecond turns */
      }
      seen.push(batchClock.now());
      expect(seen[0]).toBeLessThanOrEqual(before);
      r.stop();
    });
    await r.run();
    expect(seen[1]).toBe(seen[0]);
    expect(batchClock.now()).toBeGreaterThan(seen[0]!); // no loop: the clock itself
    r.close();
    sys.close(a);
    sys.close(b);
  });

  it.skipIf(why.ring)(titled('is read once per batch under Proactor.run', why.ring), async () => {
    const px = new Proactor();
    const seen: number[] = [];
    px.timeout(1, () => {
      const before = Date.now();
      seen.push(batchClock.now());
      while (Date.now() === before) {
        /* until the millisecond turns */
      }
      seen.push(batchClock.now());
      px.stop();
    });
    await px.run();
    expect(seen[1]).toBe(seen[0]);
    expect(batchClock.now()).toBeGreaterThan(seen[0]!);
    px.close();
  });
});

describe('HTTP Date under a running loop', () => {
  // A loop blocked in its wait for longer than a second must read the clock again when it
  // wakes: a Date from before the wait would be seconds old.
  it.for(['single', 'proactor'] as const)(
    '%s: the Date after an idle wait is the current second',
    async (model, ctx) => {
      if (model === 'proactor' && !Ring.supported()) return ctx.skip('io_uring is not available here');
      const server = await serve({ model, protocol: 'http', port: 0 });
      try {
        await exchange(server.port, httpGets(1));
        await new Promise((r) => setTimeout(r, 2500));
        // The second the request was sent in, or a later one: never a second from before it
        // (the Date has a second's resolution), however long the exchange takes here.
        const sent = Math.floor(Date.now() / 1000) * 1000;
        const got = (await exchange(server.port, httpGets(1))).toString('latin1');
        const date = Date.parse(/\r\nDate: ([^\r]+)\r\n/.exec(got)![1]!);
        expect(date).toBeGreaterThanOrEqual(sent);
        expect(date).toBeLessThanOrEqual(Date.now());
      } finally {
        await server.close();
      }
    },
  );
});
