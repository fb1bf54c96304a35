/**
 * Stats.deferred(), the proactor thread's counters: requests, bytes out and sends are held
 * in the thread and reach the shared block (what server.stats() reads) only at flush(),
 * which the thread's Proactor runs before each submit; the other counters stay immediate.
 * And admit(), the server-wide connection limit every thread shares (maxConnections).
 */
import { describe, expect, it } from 'vitest';
import { Stats } from '../../dist/src/models/stats.js';

describe('Stats.deferred', () => {
  it('holds requests, bytes out and sends until flush(), and adds them once', () => {
    const shared = new Stats(1);
    const held = Stats.attach(shared.share()).deferred();
    held.requests(3);
    held.requests();
    held.sent(100);
    held.sent(0);
    held.send();
    held.send();
    expect(held.admit(0)).toBe(true);
    expect(shared.snapshot()).toMatchObject({ requests: 0, bytesOut: 0, sends: 0, connections: 1, accepted: [1] });
    held.flush();
    expect(shared.snapshot()).toMatchObject({ requests: 4, bytesOut: 100, sends: 2 });
    held.flush(); // nothing held: nothing added
    expect(shared.snapshot()).toMatchObject({ requests: 4, bytesOut: 100, sends: 2 });
  });

  it('admit() holds every attached Stats to the one limit, refuses past it, and frees a slot at closed()', () => {
    const shared = new Stats(2).limit(2);
    const a = Stats.attach(shared.share());
    const b = Stats.attach(shared.share());
    expect([a.admit(0), b.admit(1), b.admit(1), a.admit(0)]).toEqual([true, true, false, false]);
    expect(shared.snapshot()).toMatchObject({ connections: 2, accepted: [1, 1], refused: 2 });
    a.closed();
    expect(b.admit(1)).toBe(true);
    expect(shared.snapshot()).toMatchObject({ connections: 2, accepted: [1, 2], refused: 2 });
    const open = new Stats(1).limit(Infinity);
    for (let i = 0; i < 1000; i++) expect(open.admit(0)).toBe(true);
    expect(open.snapshot()).toMatchObject({ connections: 1000, refused: 0 });
  });

  it('admit() also asks a gate (the multi-process board): its refusal gives the slot back; closed() releases it', () => {
    let free = 1;
    const s = new Stats(1).limit(5).useGate({
      reserve: () => (free > 0 ? (free--, true) : false),
      release: () => void free++,
    });
    expect([s.admit(0), s.admit(0)]).toEqual([true, false]);
    expect(s.snapshot()).toMatchObject({ connections: 1, accepted: [1], refused: 1 });
    s.closed();
    expect(free).toBe(1);
    expect(s.admit(0)).toBe(true);
  });

  it('leaves a Stats that was not deferred immediate', () => {
    const s = new Stats(1);
    s.requests(2);
    s.sent(7);
    s.send();
    expect(s.snapshot()).toMatchObject({ requests: 2, bytesOut: 7, sends: 1 });
  });
});
