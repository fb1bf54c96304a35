/**
 * The native `Ring.prepSend(slot, fd, buf, off, len, userData)`, the Proactor's reply path: a
 * static method that finds its ring by the slot `info()[4]` names instead of unwrapping `this`.
 * It sends with MSG_NOSIGNAL what it is given, refuses bad arguments before touching the SQ
 * (TypeError for a wrong type or a closed ring, RangeError out of range or for an empty slot),
 * says false when the SQ is full, and each ring keeps its own slot until it is collected.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { native } from '../dist/src/sys/native.js';
import { leakedSince, openFds } from './helpers/fds.js';
import { sys } from './helpers/rawio.js';
import { titled, why } from './helpers/skips.js';

const IORING_SETUP_SINGLE_ISSUER = 1 << 12;

describe.skipIf(why.ring)(titled('Ring.prepSend', why.ring), () => {
  let before: Map<number, string>;
  let a: number;
  let b: number;
  let ring: ReturnType<typeof open>;

  function open(entries = 8) {
    const r = new native.Ring();
    expect(r.setup(entries, IORING_SETUP_SINGLE_ISSUER, 0)).toBe(0);
    return r;
  }

  beforeEach(() => {
    before = openFds();
    [a, b] = sys.socketpair();
    ring = open();
  });
  afterEach(() => {
    ring.close();
    sys.close(a);
    sys.close(b);
    expect(leakedSince(before)).toEqual([]);
  });

  it('sends buf[off, off + len) on the ring in its slot, with the user data given', () => {
    const slot = ring.info()[4];
    expect(Number.isInteger(slot) && slot >= 0).toBe(true);
    const data = Buffer.from('..hello..');
    expect(native.Ring.prepSend(slot, a, data, 2, 5, 0x7fffffff)).toBe(true);
    expect(ring.submit(1)).toBe(1);
    const out = new Int32Array(3 * 4);
    expect(ring.reap(out, 1)).toBe(1);
    expect([...out.subarray(0, 2)]).toEqual([0x7fffffff, 5]);
    const got = Buffer.alloc(16);
    expect(sys.read(b, got)).toBe(5);
    expect(got.subarray(0, 5).toString()).toBe('hello');
  });

  it('a send to a peer that closed fails with EPIPE, not SIGPIPE (MSG_NOSIGNAL)', () => {
    const [x, y] = sys.socketpair();
    sys.close(y);
    try {
      expect(native.Ring.prepSend(ring.info()[4], x, Buffer.from('x'), 0, 1, 1)).toBe(true);
      expect(ring.submit(1)).toBe(1);
      const out = new Int32Array(3);
      expect(ring.reap(out, 1)).toBe(1);
      expect(out[1]).toBe(-32); // -EPIPE
    } finally {
      sys.close(x);
    }
  });

  it('gives each ring of the thread its own slot', () => {
    const second = open();
    try {
      expect(second.info()[4]).not.toBe(ring.info()[4]);
    } finally {
      second.close();
    }
  });

  it('says false when the SQ is full, and prepares nothing more', () => {
    const buf = Buffer.from('x');
    let n = 0;
    while (native.Ring.prepSend(ring.info()[4], a, buf, 0, 1, n)) n++;
    expect(n).toBe(8);
    expect(ring.sqSpace()).toBe(0);
    expect(ring.submit(n)).toBe(n);
    const out = new Int32Array(3 * n);
    expect(ring.reap(out, n)).toBe(n);
  });

  it('refuses bad arguments with TypeError or RangeError before queueing anything', () => {
    const s = ring.info()[4];
    const buf = Buffer.alloc(4);
    const call = (...args: unknown[]) => (native.Ring.prepSend as (...x: unknown[]) => boolean)(...args);
    expect(() => call('0', a, buf, 0, 1, 1)).toThrow(TypeError);
    expect(() => call(-1, a, buf, 0, 1, 1)).toThrow(RangeError);
    expect(() => call(1.5, a, buf, 0, 1, 1)).toThrow(RangeError);
    expect(() => call(1 << 20, a, buf, 0, 1, 1)).toThrow(RangeError);
    expect(() => call(s, 'fd', buf, 0, 1, 1)).toThrow(TypeError);
    expect(() => call(s, -1, buf, 0, 1, 1)).toThrow(RangeError);
    expect(() => call(s, a, 'buf', 0, 1, 1)).toThrow(TypeError);
    expect(() => call(s, a, [1, 2], 0, 1, 1)).toThrow(TypeError);
    expect(() => call(s, a, buf, 5, 0, 1)).toThrow(RangeError);
    expect(() => call(s, a, buf, 2, 3, 1)).toThrow(RangeError);
    expect(() => call(s, a, buf, 0, 1, 2 ** 32)).toThrow(RangeError);
    expect(() => call(s, a, buf, 0, 1)).toThrow(TypeError);
    expect(ring.sqSpace()).toBe(8); // nothing was queued
    const closed = open();
    const cs = closed.info()[4];
    closed.close();
    expect(() => call(cs, a, buf, 0, 1, 1)).toThrow(TypeError);
  });
});
