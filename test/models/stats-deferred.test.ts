/**
 * Stats.deferred(), the proactor thread's counters: requests, bytes out and sends are held
 * in the thread and reach the shared block (what server.stats() reads) only at flush(),
 * which the thread's Proactor runs before each submit; the other counters stay immediate.
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
    held.accepted(0);
    expect(shared.snapshot()).toMatchObject({ requests: 0, bytesOut: 0, sends: 0, connections: 1, accepted: [1] });
    held.flush();
    expect(shared.snapshot()).toMatchObject({ requests: 4, bytesOut: 100, sends: 2 });
    held.flush(); // nothing held: nothing added
    expect(shared.snapshot()).toMatchObject({ requests: 4, bytesOut: 100, sends: 2 });
  });

  it('leaves a Stats that was not deferred immediate', () => {
    const s = new Stats(1);
    s.requests(2);
    s.sent(7);
    s.send();
    expect(s.snapshot()).toMatchObject({ requests: 2, bytesOut: 7, sends: 1 });
  });
});
