/**
 * The header and idle clocks' rule (conn-clock.ts) on its own, with the time handed in: each
 * is a budget that runs down with the clock, a started request's from headerTimeout; every
 * minRequestRate bytes of the request arriving give a second back, never above a full
 * budget. The instants checked are far from the edges, so nothing here depends on timing.
 */
import { describe, expect, it } from 'vitest';
import { ConnClock } from '../../dist/src/models/conn-clock.js';
import { CONN_DEFAULTS, type ConnLimits } from '../../dist/src/models/conn-core.js';

const limits = (o: Partial<ConnLimits>): ConnLimits => ({ ...CONN_DEFAULTS, ...o });
/** 1 s of header time, 2 s of idle time, 1000 bytes a second. */
const L = limits({ headerTimeout: 1000, idleTimeout: 2000, minRequestRate: 1000 });

/**
 * Feeds one request of `total` bytes at `rate` bytes a second, a read every 100 ms, from t 0
 * (the codec holds every byte: none completes it); returns the first expiry seen and when.
 */
function feed(l: ConnLimits, total: number, rate: number): { expired: string | undefined; at: number } {
  const clock = new ConnClock(l, 0);
  let sent = 0;
  for (let t = 0; sent < total; t += 100) {
    const chunk = Math.min(total - sent, Math.round((rate * 100) / 1000));
    sent += chunk;
    clock.read(chunk, sent, false, t);
    const expired = clock.expired(t + 50, 0, 0, false);
    if (expired) return { expired, at: t + 50 };
  }
  return { expired: undefined, at: NaN };
}

describe('ConnClock: time in hand, a second back for every minRequestRate bytes of the request', () => {
  it('never cuts a request arriving at minRequestRate or faster, however long it lasts', () => {
    // 60 s of upload against 1 s of header time and 2 s of idle time.
    expect(feed(L, 60_000, 1000)).toEqual({ expired: undefined, at: NaN });
    expect(feed(L, 600_000, 10_000)).toEqual({ expired: undefined, at: NaN });
  });

  it('cuts one arriving at r < R at about headerTimeout / (1 - r/R), and a trickle at about headerTimeout', () => {
    const half = feed(L, 60_000, 500); // 1 s / (1 - 0.5): about 2 s
    expect(half.expired).toBe('header');
    expect(half.at).toBeGreaterThan(1500);
    expect(half.at).toBeLessThan(2600);
    const trickle = feed(L, 60_000, 10); // 1 byte every 100 ms
    expect(trickle.expired).toBe('header');
    expect(trickle.at).toBeLessThan(1200);
  });

  it('a burst buys at most a full budget: a large part sent at once, then nothing, is cut at headerTimeout', () => {
    const clock = new ConnClock(L, 0);
    clock.read(1 << 20, 1 << 20, false, 0); // 1 MiB: 1048 s of credit without the cap
    expect(clock.expired(500, 0, 0, false)).toBeUndefined();
    expect(clock.expired(1500, 0, 0, false)).toBe('header');
  });

  it('minRequestRate Infinity: a started request must arrive whole within headerTimeout', () => {
    const r = feed({ ...L, minRequestRate: Infinity }, 600_000, 100_000);
    expect(r.expired).toBe('header');
    expect(r.at).toBeLessThan(1200);
  });

  it('a budget that ran out stays out: bytes after it do not revive the request', () => {
    const clock = new ConnClock(L, 0);
    clock.read(10, 10, false, 0);
    clock.read(100_000, 100_010, false, 3000);
    expect(clock.expired(3100, 0, 0, false)).toBe('header');
  });

  it('fills both budgets again when reading resumes', () => {
    const clock = new ConnClock(L, 0);
    clock.read(10, 10, false, 0);
    clock.stop(500);
    expect(clock.expired(5000, 0, 0, false)).toBeUndefined(); // stopped: no header clock; idle: the first look
    clock.resume(5000);
    expect(clock.expired(5800, 0, 0, false)).toBeUndefined();
    expect(clock.expired(6200, 0, 0, false)).toBe('header');
  });

  it('a whole request ends the header clock and fills the idle budget', () => {
    const clock = new ConnClock(L, 0);
    clock.read(10, 10, false, 0);
    clock.read(10, 0, true, 500);
    expect(clock.expired(1500, 0, 1, false)).toBeUndefined();
    expect(clock.expired(3000, 0, 1, false)).toBeUndefined();
    expect(clock.expired(4000, 0, 1, false)).toBe('idle');
  });

  it('a codec that does not report buffered: no header clock, its bytes between frames credit the idle budget', () => {
    const clock = new ConnClock({ ...L, headerTimeout: 100 }, 0);
    expect(clock.expired(0, 0, 0, false)).toBeUndefined();
    for (let t = 0; t <= 10_000; t += 100) {
      clock.read(100, undefined, false, t); // 1000 bytes a second
      expect(clock.expired(t + 50, 0, 0, false)).toBeUndefined();
    }
    expect(clock.expired(13_000, 0, 0, false)).toBe('idle');
  });

  it('bytes that start no request (blank lines before one) are no idle progress', () => {
    const clock = new ConnClock(L, 0);
    expect(clock.expired(0, 0, 0, false)).toBeUndefined();
    for (let t = 0; t <= 3000; t += 100) clock.read(2000, 0, false, t);
    expect(clock.expired(3100, 0, 0, false)).toBe('idle');
  });
});
