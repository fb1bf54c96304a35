/**
 * The Reactor's timer heap: timers fire in due order (ties in creation order), cancelled
 * ones never fire, repeating ones come back without drifting or bursting, and a timer set
 * from a callback with a 0 delay waits for the next turn.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TimerHeap } from '../../dist/src/loop/timers.js';

describe('TimerHeap', () => {
  it('fires due timers in (due, creation) order and skips cancelled ones', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.boolean()), { maxLength: 200 }), (specs) => {
        const heap = new TimerHeap();
        const fired: number[] = [];
        const ids = specs.map(([ms], i) => heap.add(0, ms, () => fired.push(i), false));
        specs.forEach(([, cancel], i) => cancel && heap.cancel(ids[i]!));
        const expected = specs
          .map(([ms, cancel], i) => ({ ms, cancel, i }))
          .filter((t) => !t.cancel)
          .sort((a, b) => a.ms - b.ms || a.i - b.i)
          .map((t) => t.i);
        for (let now = 0; now <= 50; now += 7) heap.runDue(now);
        heap.runDue(50);
        expect(fired).toEqual(expected);
        expect(heap.size).toBe(0);
        expect(heap.timeout(50)).toBe(-1);
      }),
    );
  });

  it('reports the time to the next timer', () => {
    const heap = new TimerHeap();
    expect(heap.timeout(0)).toBe(-1);
    const id = heap.add(0, 10, () => {}, false);
    heap.add(0, 30, () => {}, false);
    expect(heap.timeout(2.5)).toBe(8);
    heap.cancel(id);
    expect(heap.timeout(2.5)).toBe(28);
    expect(heap.timeout(40)).toBe(0);
  });

  it('repeats from the due time, never in a burst after a stall', () => {
    const heap = new TimerHeap();
    let n = 0;
    heap.add(0, 10, () => n++, true);
    heap.runDue(10);
    heap.runDue(20);
    expect(n).toBe(2);
    heap.runDue(100); // a stalled loop: one call, not eight
    expect(n).toBe(3);
    expect(heap.timeout(100)).toBe(0);
    heap.runDue(100);
    expect(n).toBe(4);
    expect(heap.timeout(100)).toBe(10);
  });

  it('a 0 ms timer set by a callback runs on the next turn', () => {
    const heap = new TimerHeap();
    const order: string[] = [];
    heap.add(
      0,
      0,
      () => {
        order.push('first');
        heap.add(0, 0, () => order.push('second'), false);
      },
      false,
    );
    expect(heap.runDue(0)).toBe(1);
    expect(order).toEqual(['first']);
    heap.runDue(0);
    expect(order).toEqual(['first', 'second']);
  });
});
