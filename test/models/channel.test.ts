import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { Channel, type Message } from '../../dist/src/models/channel.js';
import { sys } from '../helpers/rawio.js';

const producer = new URL('../fixtures/channel-producer.mjs', import.meta.url);
const consumer = new URL('../fixtures/channel-consumer.mjs', import.meta.url);

function drain(ch: Channel, seen: number[], bad: string[], msg: Message): number {
  let n = 0;
  while (ch.pop(msg)) {
    const expected = seen[msg.tag]!;
    if (msg.a !== expected || msg.b !== expected * 2) bad.push(`producer ${msg.tag}: got ${msg.a}, want ${expected}`);
    if (msg.payload.length !== expected % 97 || msg.payload.some((x) => x !== (expected & 0xff)))
      bad.push(`payload of ${msg.tag}/${expected}`);
    seen[msg.tag] = expected + 1;
    n++;
  }
  return n;
}

describe('Channel (shared-memory MPSC queue)', () => {
  it('moves every message from two producer threads, in order per producer, through a small ring', async () => {
    const init = Channel.create(1024); // small: forces wrap-around and full-channel retries
    const ch = new Channel(init);
    const count = 20_000;
    const workers = [0, 1].map((id) => new Worker(producer, { workerData: { init, id, count } }));
    const done = Promise.all(workers.map((w) => new Promise((r) => w.once('message', r))));
    let finished = false;
    void done.then(() => (finished = true));
    const seen = [0, 0];
    const bad: string[] = [];
    const msg = {} as Message;
    let total = 0;
    while (total < 2 * count) {
      total += drain(ch, seen, bad, msg);
      if (total < 2 * count) {
        ch.waitForMessage(50);
        await new Promise((r) => setImmediate(r));
      }
    }
    await done;
    expect(finished).toBe(true);
    expect(bad).toEqual([]);
    expect(seen).toEqual([count, count]);
    expect(ch.pop(msg)).toBe(false);
    await Promise.all(workers.map((w) => w.terminate()));
  });

  it('never sleeps through a message: two producers trickling to a consumer that waits with no timeout', async () => {
    // Each message finds the consumer asleep or about to be, so producers' signals race its
    // arming again and again, a late one among them (from a producer whose message was
    // already taken). A lost wakeup leaves the consumer asleep for good: the run never ends.
    const init = Channel.create(1 << 16);
    const count = 100_000;
    const take = new Worker(consumer, { workerData: { init, total: 2 * count } });
    const result = new Promise<{ seen: number[]; sleeps: number }>((r) => take.once('message', r));
    const workers = [0, 1].map((id) => new Worker(producer, { workerData: { init, id, count, trickle: true } }));
    // A consumer asleep for good also leaves the producers spinning on a full channel.
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), 30_000)));
    const got = await Promise.race([result, hung]);
    clearTimeout(timer);
    await Promise.all([...workers, take].map((w) => w.terminate()));
    expect(got).not.toBe('hung');
    const { seen, sleeps } = got as { seen: number[]; sleeps: number };
    expect(seen).toEqual([count, count]);
    expect(sleeps).toBeGreaterThan(0); // it did sleep between messages: the race was run
  }, 60_000);

  it('refuses a message when full and wakes an eventfd consumer only when armed', () => {
    const efd = sys.eventfd();
    try {
      const ch = new Channel(Channel.create(160, efd));
      const counter = new Uint8Array(8);
      expect(ch.push(1, 1, 0, 0, 0, 0, 0, new Uint8Array(16))).toBe(true); // 80 bytes, not armed
      expect(sys.read(efd, counter)).toBeLessThan(0); // no signal: EAGAIN
      ch.arm();
      expect(ch.push(2, 2)).toBe(true); // 64 bytes, armed: signals
      expect(sys.read(efd, counter)).toBe(8);
      expect(ch.push(3, 3)).toBe(false); // 144 + 64 > 160
      const msg = {} as Message;
      expect(ch.pop(msg) && msg.tag).toBe(1);
      expect(ch.pop(msg) && msg.tag).toBe(2);
      expect(ch.push(3, 3)).toBe(true);
      expect(() => ch.push(4, 0, 0, 0, 0, 0, 0, new Uint8Array(200))).toThrow(RangeError);
    } finally {
      sys.close(efd);
    }
  });
});
