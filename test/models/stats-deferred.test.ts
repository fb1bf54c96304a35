/**
 * Stats.deferred(), the proactor thread's counters: requests, bytes out and sends are held
 * in the thread and reach the shared block (what server.stats() reads) only at flush(),
 * which the thread's Proactor runs before each submit; the other counters stay immediate.
 * And admit(), the server-wide connection limit every thread shares (maxConnections).
 */
import { describe, expect, it } from 'vitest';
import { REFUSED_CONN, Stats } from '../../dist/src/models/stats.js';

/** No per-client limit here, so admit() never looks at the fd: -1 stands for one. */
const NO_FD = -1;
const admitted = (ticket: number) => ticket !== REFUSED_CONN;

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
    expect(admitted(held.admit(0, NO_FD))).toBe(true);
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
    expect([a.admit(0, NO_FD), b.admit(1, NO_FD), b.admit(1, NO_FD), a.admit(0, NO_FD)].map(admitted)).toEqual([
      true,
      true,
      false,
      false,
    ]);
    expect(shared.snapshot()).toMatchObject({ connections: 2, accepted: [1, 1], refused: 2 });
    a.closed(0);
    expect(admitted(b.admit(1, NO_FD))).toBe(true);
    expect(shared.snapshot()).toMatchObject({ connections: 2, accepted: [1, 2], refused: 2 });
    const open = new Stats(1).limit(Infinity);
    for (let i = 0; i < 1000; i++) expect(open.admit(0, NO_FD)).toBe(0);
    expect(open.snapshot()).toMatchObject({ connections: 1000, refused: 0 });
  });

  it('admit() also asks a gate (the multi-process board): its refusal gives the slot back; closed() releases it', () => {
    let free = 1;
    const s = new Stats(1).limit(5).useGate({
      reserve: () => (free > 0 ? (free--, true) : false),
      release: () => void free++,
    });
    expect([s.admit(0, NO_FD), s.admit(0, NO_FD)]).toEqual([0, REFUSED_CONN]);
    expect(s.snapshot()).toMatchObject({ connections: 1, accepted: [1], refused: 1 });
    s.closed(0);
    expect(free).toBe(1);
    expect(s.admit(0, NO_FD)).toBe(0);
  });

  it('leaves a Stats that was not deferred immediate', () => {
    const s = new Stats(1);
    s.requests(2);
    s.sent(7);
    s.send();
    expect(s.snapshot()).toMatchObject({ requests: 2, bytesOut: 7, sends: 1 });
  });
});
