/**
 * The pool thread's side of a streamed body (BodySender): small chunks gathered into one
 * BODY message, and everything the producer yielded sent once, in order, whatever the
 * gather's boundaries — chunks larger than the gather buffer, the bytes before an error, a
 * stop while bytes are gathered, a producer slower than a loop turn. The reactor's side is
 * played by the `send` callback: it copies each message (the channel would) and hands its
 * credit back at once.
 */
import { describe, expect, it } from 'vitest';
import { BodySender, createCredits, CREDIT_SLOTS, GATHER } from '../../dist/src/models/body-feed.js';
import { CHUNK } from '../../dist/src/models/messages.js';
import { checkReply } from '../../dist/src/protocols/user-checks.js';
import { eventually } from '../helpers/wait.js';

interface Sent {
  data: Uint8Array;
  last: 'end' | 'error' | false;
}

function harness(onSend?: (slot: number, gen: number, s: Sent) => void) {
  const sab = createCredits();
  const credits = new Int32Array(sab);
  const sender = new BodySender(sab);
  const sent: Sent[] = [];
  const send = (slot: number, gen: number, piece: Uint8Array, last: 'end' | 'error' | false): void => {
    const s = { data: piece.slice(), last };
    sent.push(s);
    Atomics.sub(credits, slot, piece.length);
    Atomics.notify(credits, slot);
    onSend?.(slot, gen, s);
  };
  const bytes = () => Buffer.concat(sent.map((s) => s.data));
  return { sender, credits, sent, send, bytes };
}

/** The byte at position i of a test body. */
const at = (i: number) => (i * 7 + (i >> 8)) & 0xff;

describe('BodySender', () => {
  it('gathers small chunks in order, every byte once, the producer reusing its buffer', async () => {
    const { sender, credits, sent, send, bytes } = harness();
    const own = new Uint8Array(5000); // reused for every chunk
    let total = 0;
    let yields = 0;
    async function* body() {
      for (let i = 0; total < 200_000; i++) {
        const n = i % 11 === 0 ? 0 : 1 + ((i * 131) % 4999);
        for (let k = 0; k < n; k++) own[k] = at(total + k);
        total += n;
        yields++;
        yield own.subarray(0, n);
      }
    }
    await sender.stream(body(), send);
    const expected = Buffer.from(Array.from({ length: total }, (_, i) => at(i)));
    expect(bytes().equals(expected)).toBe(true);
    expect(sent.at(-1)!.last).toBe('end');
    expect(sent.slice(0, -1).every((s) => s.last === false && s.data.length > 0 && s.data.length <= GATHER)).toBe(true);
    expect(sent.length).toBeLessThan(yields / 4);
    expect(Array.from(credits.subarray(0, CREDIT_SLOTS)).every((c) => c === 0)).toBe(true);
  });

  it('gathers a producer of one-byte chunks into GATHER-sized messages', async () => {
    const { sender, sent, send, bytes } = harness();
    const n = 3 * GATHER + 5;
    async function* body() {
      for (let i = 0; i < n; i++) yield Uint8Array.of(at(i));
    }
    await sender.stream(body(), send);
    expect(sent.map((s) => s.data.length)).toEqual([GATHER, GATHER, GATHER, 5]);
    expect(sent.map((s) => s.last)).toEqual([false, false, false, 'end']);
    expect(bytes().equals(Buffer.from(Array.from({ length: n }, (_, i) => at(i))))).toBe(true);
  });

  it('sends a chunk larger than the gather buffer on its own, after what was gathered, split to CHUNK', async () => {
    const { sender, sent, send, bytes } = harness();
    const big = new Uint8Array(CHUNK + 3 * GATHER).map((_, i) => at(i + 3));
    async function* body() {
      yield Uint8Array.of(at(0));
      yield Uint8Array.of(at(1), at(2));
      yield big;
      yield Uint8Array.of(9);
      yield new Uint8Array(GATHER).fill(4); // exactly GATHER: not copied either
      yield Uint8Array.of(8);
    }
    await sender.stream(body(), send);
    expect(sent.map((s) => s.data.length)).toEqual([3, CHUNK, 3 * GATHER, 1, GATHER, 1]);
    expect(sent.map((s) => s.last)).toEqual([false, false, false, false, false, 'end']);
    const expected = Buffer.concat([
      Buffer.from([at(0), at(1), at(2)]),
      big,
      Buffer.from([9]),
      Buffer.alloc(GATHER, 4),
      Buffer.from([8]),
    ]);
    expect(bytes().equals(expected)).toBe(true);
  });

  it('sends what was gathered before an error, then ends the body with the error', async () => {
    const { sender, sent, send, bytes } = harness();
    async function* body(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('ab');
      yield Buffer.from('c');
      yield new Uint8Array(0);
      yield Buffer.from('de');
      throw new Error('producer failed');
    }
    await sender.stream(body(), send);
    expect(bytes().toString()).toBe('abcde');
    expect(sent.at(-1)!.last).toBe('error');
    expect(sent.slice(0, -1).every((s) => s.last === false)).toBe(true);
  });

  it('drops what was gathered when the body is stopped, and ends its producer', async () => {
    let stop = (): void => {};
    const { sender, credits, sent, send, bytes } = harness((slot, gen) => {
      // What the reactor does when the connection is gone.
      stop = () => {
        Atomics.store(credits, CREDIT_SLOTS + slot, gen);
        Atomics.notify(credits, CREDIT_SLOTS + slot);
      };
    });
    let finallyRan = false;
    async function* body() {
      try {
        yield Buffer.from('a');
        yield Buffer.from('b');
        // Slower than a loop turn: 'ab' goes now.
        await new Promise((r) => setTimeout(r, 20));
        yield Buffer.from('c');
        stop(); // while 'c' is gathered
        yield Buffer.from('d');
        yield Buffer.from('e');
      } finally {
        finallyRan = true;
      }
    }
    await sender.stream(body(), send);
    expect(bytes().toString()).toBe('ab');
    expect(sent.at(-1)).toEqual({ data: new Uint8Array(0), last: 'end' });
    expect(await eventually(() => finallyRan, 10_000)).toBe(true);
  });

  it('drops what was gathered when the thread stops', async () => {
    const { sender, sent, send, bytes } = harness();
    let returned = false;
    let i = 0;
    const body: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          if (++i === 3) sender.stopAll();
          return { value: Uint8Array.of(i), done: false };
        },
        return: async () => {
          returned = true;
          return { value: undefined, done: true };
        },
      }),
    };
    await sender.stream(body, send);
    expect(bytes().length).toBe(0);
    expect(sent).toEqual([{ data: new Uint8Array(0), last: 'end' }]);
    expect(await eventually(() => returned, 10_000)).toBe(true);
  });

  it('sends what a slow producer yielded while its next chunk is awaited, calling next() once at a time', async () => {
    const { sender, sent, send, bytes } = harness();
    let calls = 0;
    let inFlight = 0;
    let overlapped = false;
    const body: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          if (inFlight++ > 0) overlapped = true;
          const n = ++calls;
          // Every fourth chunk comes later than a loop turn.
          if (n % 4 === 0) await new Promise((r) => setTimeout(r, 5));
          inFlight--;
          return n > 40 ? { value: undefined, done: true } : { value: Uint8Array.of(n), done: false };
        },
      }),
    };
    await sender.stream(body, send);
    expect(overlapped).toBe(false);
    expect(calls).toBe(41);
    expect([...bytes()]).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    // Gathered, and sent before each slow chunk came: 1-3, 4-7, ..., 36-39, then 40 with the end.
    expect(sent.map((s) => s.data.length)).toEqual([3, ...Array<number>(9).fill(4), 1]);
    expect(sent.at(-1)!.last).toBe('end');
  });
  it("copies a module's body chunks once: a checked body yields copies, the sender takes them as yielded", async () => {
    const big = new Uint8Array(2 * GATHER).map((_, i) => at(i));
    const small = Uint8Array.of(1, 2, 3);
    const reply = () =>
      checkReply(
        {
          data: new Uint8Array(0),
          body: (async function* () {
            yield big;
            yield small;
          })(),
        },
        () => undefined,
      );
    // Pulled by a model's core, each chunk is a copy the module may no longer reach.
    const it = reply().body![Symbol.asyncIterator]();
    const first = (await it.next()).value as Uint8Array;
    expect(first.buffer).not.toBe(big.buffer);
    expect(Buffer.from(first).equals(Buffer.from(big))).toBe(true);
    await it.return!();
    // Pulled by a pool thread's sender, which copies every chunk itself: no copy before it.
    const { sender, send, bytes } = harness();
    const pieces: Uint8Array[] = [];
    await sender.stream(reply().body!, (slot, gen, piece, last) => {
      pieces.push(piece);
      send(slot, gen, piece, last);
    });
    expect(pieces[0]!.buffer).toBe(big.buffer);
    expect(bytes().equals(Buffer.concat([big, small]))).toBe(true);
  });
});
