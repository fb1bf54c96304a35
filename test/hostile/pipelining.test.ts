/**
 * The pipelining bound of a reactor Session: a client that pipelines thousands of requests
 * whose replies are slow (a pool that is behind) has no more than MAX_DEPTH of them handled
 * at once (the rest wait, framed or unread), and reading resumes as the replies go out —
 * nothing is lost.
 */
import { describe, expect, it } from 'vitest';
import { Connection, Reactor, sys } from '../helpers/rawio.js';
import { createProtocol } from '../../dist/src/protocols/index.js';
import { MAX_DEPTH, Session } from '../../dist/src/models/session.js';
import { Stats } from '../../dist/src/models/stats.js';
import { leakedSince, openFds } from '../helpers/fds.js';

const REQ = Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n');

describe('Session pipelining depth', () => {
  it('stops reading past MAX_DEPTH requests in flight and resumes as replies leave', async () => {
    const before = openFds();
    const total = 6000;
    const reactor = new Reactor({ backend: 'epoll' });
    const [a, b] = sys.socketpair();
    const protocol = createProtocol('http');
    const owed: number[] = [];
    let dispatched = 0;
    let maxInFlight = 0;
    const session = new Session(new Connection(reactor, a), {
      protocol,
      stats: new Stats(1),
      transfer: 'auto',
      directio: 0,
      dispatch: (_s, seq) => {
        owed.push(seq);
        dispatched++;
        maxInFlight = Math.max(maxInFlight, owed.length);
        return undefined; // the reply comes later, through deliver()
      },
    });
    const wire = Buffer.concat(Array.from({ length: total }, () => REQ));
    let off = 0;
    let stalledAt = -1;
    let ticks = 0;
    let first = false;
    const sink = Buffer.alloc(1 << 16);
    reactor.setTimer(
      2,
      () => {
        ticks++;
        while (off < wire.length) {
          const n = sys.write(b, wire.subarray(off));
          if (n <= 0) break;
          off += n;
        }
        while (sys.read(b, sink) > 0) {
          /* the replies */
        }
        // The first reply comes back at once (until one has, nothing is known of their size
        // and one request at a time is dispatched); then hold the replies for a while: the
        // session must stop at the depth bound on its own.
        if (!first && owed.length > 0) {
          first = true;
          session.deliver(owed.shift()!, protocol.handle(REQ));
        }
        if (ticks === 50) stalledAt = dispatched;
        if (ticks > 50) for (const seq of owed.splice(0, 64)) session.deliver(seq, protocol.handle(REQ));
        if (dispatched === total && owed.length === 0) reactor.stop();
        if (ticks > 5000) reactor.stop();
      },
      { repeat: true },
    );
    await reactor.run();
    expect(stalledAt).toBeGreaterThanOrEqual(MAX_DEPTH);
    expect(stalledAt).toBeLessThan(total);
    // Frames past the bound wait unhandled: the bound is exact.
    expect(maxInFlight).toBeLessThanOrEqual(MAX_DEPTH);
    expect(dispatched).toBe(total);
    session.conn.destroy();
    sys.close(b);
    protocol.close();
    reactor.close();
    expect(leakedSince(before)).toEqual([]);
  });
});
