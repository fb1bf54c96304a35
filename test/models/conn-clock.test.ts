/**
 * The header and idle clocks' rule (conn-clock.ts) on its own, with the time handed in: a
 * started request is cut at start + headerTimeout + bytes × 1000 / minRequestRate, the idle
 * clock gets the same credit, the byte count restarts with the clocks, and Infinity gives
 * the rule without the rate. The instants given are far from the edges (seconds past or
 * short of them), so the few ms between a read and the check do not matter.
 */
import { describe, expect, it } from 'vitest';
import { ConnClock } from '../../dist/src/models/conn-clock.js';
import { CONN_DEFAULTS, type ConnLimits } from '../../dist/src/models/conn-core.js';

const limits = (o: Partial<ConnLimits>): ConnLimits => ({ ...CONN_DEFAULTS, ...o });
/** 1 s of header time, 100 s of idle time, 1000 bytes a second. */
const L = limits({ headerTimeout: 1000, idleTimeout: 100_000, minRequestRate: 1000 });

/** A clock that has read `bytes` of a request in one read (the codec holds them all), and the time then. */
function started(bytes: number): { clock: ConnClock; t0: number } {
  const clock = new ConnClock();
  clock.read(bytes, bytes, false);
  return { clock, t0: performance.now() };
}

describe('ConnClock: headerTimeout plus a second for every minRequestRate bytes arrived', () => {
  it('cuts a started request at headerTimeout plus its bytes / minRequestRate', () => {
    const { clock, t0 } = started(5000); // 5 s earned: cut at about 6 s
    expect(clock.expired(t0 + 4000, L, 0, 0, false)).toBeUndefined();
    expect(clock.expired(t0 + 8000, L, 0, 0, false)).toBe('header');
  });

  it('counts every read of the request now arriving, and none of one that completed', () => {
    const { clock, t0 } = started(2000);
    clock.read(3000, 5000, false); // 5000 bytes in all
    expect(clock.expired(t0 + 4000, L, 0, 0, false)).toBeUndefined();
    // A read that completes a request and starts the next with 100 bytes: only those count.
    clock.read(4000, 100, true);
    const t1 = performance.now();
    expect(clock.expired(t1 + 500, L, 0, 1, false)).toBeUndefined();
    expect(clock.expired(t1 + 3000, L, 0, 1, false)).toBe('header');
  });

  it('minRequestRate Infinity: a started request must arrive whole within headerTimeout', () => {
    const { clock, t0 } = started(1 << 20);
    const inf = { ...L, minRequestRate: Infinity };
    expect(clock.expired(t0 + 500, inf, 0, 0, false)).toBeUndefined();
    expect(clock.expired(t0 + 3000, inf, 0, 0, false)).toBe('header');
  });

  it('restarts the byte count with the clocks when reading resumes', () => {
    const { clock } = started(50_000); // 50 s earned
    clock.stop();
    clock.resume();
    const t1 = performance.now();
    expect(clock.expired(t1 + 3000, L, 0, 0, false)).toBe('header');
  });

  it('gives the idle clock the same credit', () => {
    const idle = { ...L, headerTimeout: 1_000_000, idleTimeout: 1000 };
    const { clock, t0 } = started(5000);
    expect(clock.expired(t0, idle, 0, 0, false)).toBeUndefined(); // the first look sets the idle clock
    expect(clock.expired(t0 + 4000, idle, 0, 0, false)).toBeUndefined();
    expect(clock.expired(t0 + 8000, idle, 0, 0, false)).toBe('idle');
    const inf = { ...idle, minRequestRate: Infinity };
    const other = started(5000);
    expect(other.clock.expired(other.t0, inf, 0, 0, false)).toBeUndefined();
    expect(other.clock.expired(other.t0 + 3000, inf, 0, 0, false)).toBe('idle');
  });

  it('a codec that does not report buffered: no header clock, its bytes since the last frame credit the idle clock', () => {
    const clock = new ConnClock();
    clock.read(5000, undefined, false);
    const t0 = performance.now();
    const l = { ...L, idleTimeout: 1000 };
    expect(clock.expired(t0, l, 0, 0, false)).toBeUndefined();
    expect(clock.expired(t0 + 4000, l, 0, 0, false)).toBeUndefined(); // no 'header' at 1 s
    expect(clock.expired(t0 + 8000, l, 0, 0, false)).toBe('idle');
  });
});
