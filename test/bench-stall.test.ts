/**
 * The stalled-worker scenario's arithmetic (bench/lib/stall-outcome.ts) and claim 10's
 * rule, over arrivals written out by hand: which connections opened while the worker was
 * stopped, which were stranded until SIGCONT, and the verdict each outcome gives.
 */
import { describe, expect, it } from 'vitest';
import { analyse } from '../dist/bench/lib/stall-outcome.js';
import { judgeClaims } from '../dist/bench/claims.js';

const window = { stopAt: 1000, contAt: 2000, thresholdMs: 200, healthyAccepted: 7 };

describe('stalled-worker outcome', () => {
  it('splits connections by the stop and counts the stranded ones', () => {
    const o = analyse(
      {
        t0: 0,
        // before; held by the stopped worker; during x4; opened just before SIGCONT; after
        starts: [100, 900, 1100, 1200, 1300, 1500, 1950, 2500],
        firstByte: [5, 1200, 10, 950, -1, 30, 80, 5],
        errors: 0,
      },
      window,
    );
    expect(o.opened).toBe(5);
    expect(o.heldAtStop).toBe(1);
    expect(o.unservedUntilCont).toBe(2); // 1200 answered at 2150, 1300 never; 1950 was not kept waiting
    expect(o.neverServed).toBe(1);
    expect(o.overThreshold).toBe(2);
    expect(o.maxMs).toBe(Infinity);
    expect(o.baselineP99Ms).toBe(5);
    expect(o.healthyAccepted).toBe(7);
  });
});

describe('claim 10', () => {
  const ran = new Set(['stalled-worker']);
  const m = (r: number, e: number, x: number, opened = 600) => ({
    'stalled-worker.reuseport.unserved': r,
    'stalled-worker.exclusive.unserved': e,
    'stalled-worker.mutex.unserved': x,
    'stalled-worker.reuseport.opened': opened,
    'stalled-worker.exclusive.opened': opened,
    'stalled-worker.mutex.opened': opened,
  });
  const verdict = (metrics: Record<string, number>) =>
    judgeClaims(metrics, ran, { cores: 2 }).find((c) => c.id === 10)!.verdict;

  it('is decided by the stranded counts of each strategy', () => {
    expect(verdict(m(120, 0, 0))).toBe('confirmed');
    expect(verdict(m(0, 0, 0))).toBe('refuted');
    expect(verdict(m(120, 0, 3))).toBe('depends');
    expect(verdict({})).toBe('not measured');
  });

  it('is not measured, never refuted or confirmed, where no connection was opened during the stop', () => {
    // the client opened nothing while the worker was stopped: 0 stranded is no evidence
    expect(verdict(m(0, 0, 0, 0))).toBe('not measured');
    expect(verdict({ ...m(120, 0, 0), 'stalled-worker.mutex.opened': 0 })).toBe('not measured');
    const { 'stalled-worker.exclusive.opened': _, ...noOpened } = m(120, 0, 0);
    expect(verdict(noOpened)).toBe('not measured');
  });
});
