/**
 * The acceptors' EMFILE helper on real sockets: it holds exactly one reserve fd (released
 * by close()), and shedding lets it go to accept and close every waiting connection, on a
 * non-blocking and on a blocking listener alike (never blocking), then takes it back.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { sys } from '../helpers/rawio.js';
import { leakedSince, openFds } from '../helpers/fds.js';
import { AcceptBackoff, PAUSE_MS } from '../../dist/src/models/accept-backoff.js';

const EMFILE = -24;
const ENOBUFS = -105;

function waiting(port: number, n: number): Promise<net.Socket[]> {
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1', () => resolve(s));
          s.once('error', reject);
        }),
    ),
  );
}

const closed = (s: net.Socket) => new Promise<void>((resolve) => s.once('close', () => resolve()).resume());

describe('AcceptBackoff', () => {
  it('holds one reserve fd, to /dev/null, until close()', () => {
    const before = openFds();
    const b = new AcceptBackoff();
    expect(leakedSince(before)).toEqual([expect.stringMatching(/ -> \/dev\/null$/)]);
    b.close();
    b.close();
    expect(leakedSince(before)).toEqual([]);
    const none = new AcceptBackoff(false);
    expect(leakedSince(before)).toEqual([]);
    none.close();
  });

  it.each([false, true])('sheds every waiting connection (blocking listener: %s)', async (blocking) => {
    const lfd = sys.listenTcp('127.0.0.1', 0, { blocking });
    const clients = await waiting(sys.localPort(lfd), 5);
    const b = new AcceptBackoff();
    const before = openFds();
    expect(b.shed(lfd, !blocking)).toBe(5);
    await Promise.all(clients.map(closed));
    expect(leakedSince(before)).toEqual([]); // the reserve is back, nothing else stayed open
    expect(b.shed(lfd, !blocking)).toBe(0); // nobody waits: returns at once
    b.close();
    sys.close(lfd);
  });

  it('pauses on any failure, and sheds only once EMFILE has lasted', async () => {
    const lfd = sys.listenTcp('127.0.0.1', 0);
    const clients = await waiting(sys.localPort(lfd), 2);
    const b = new AcceptBackoff();
    expect(b.failed(lfd, ENOBUFS)).toBe(PAUSE_MS);
    expect(b.failed(lfd, EMFILE)).toBe(PAUSE_MS); // the first EMFILE: wait, do not shed
    // Nothing was shed: both are still waiting.
    for (let i = 0; i < 2; i++) {
      const fd = sys.accept(lfd);
      expect(fd).toBeGreaterThanOrEqual(0);
      sys.close(fd);
    }
    b.close();
    sys.close(lfd);
    for (const c of clients) c.destroy();
  });
});
