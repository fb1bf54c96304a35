/**
 * The acceptors' EMFILE helper on real sockets: it holds exactly one reserve fd (released
 * by close()), and shedding lets it go to accept and close every waiting connection, on a
 * non-blocking and on a blocking listener alike (never blocking), then takes it back.
 * freeFds() counts the fds still to be had under RLIMIT_NOFILE without opening any.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { constants, sys } from '../helpers/rawio.js';
import { leakedSince, openFds } from '../helpers/fds.js';
import { tcpSocket } from '../helpers/tcp.js';
import { eventually } from '../helpers/wait.js';
import { AcceptBackoff, PAUSE_MS, freeFds } from '../../dist/src/models/accept-backoff.js';
import { ACCEPT_CONNECTION_ERRNOS } from '../../dist/src/sys/constants.js';

const EMFILE = -24;
const ENOBUFS = -105;

/**
 * `n` clients connected to `port`, once all of them are in its accept queue: a client's
 * connect completes when the SYN-ACK reaches it, a step before the listener's side queues
 * the connection, and a test that accepts or sheds at once could find fewer than `n`.
 */
async function waiting(port: number, n: number): Promise<net.Socket[]> {
  const clients = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1', () => resolve(s));
          s.once('error', reject);
        }),
    ),
  );
  expect(await eventually(() => tcpSocket(port, 0)?.rxQueue === n)).toBe(true);
  return clients;
}

/** Accepts the `n` connections waiting on `lfd` (each must be there: nothing took it) and closes them. */
function acceptWaiting(lfd: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const fd = sys.accept(lfd);
    expect(fd).toBeGreaterThanOrEqual(0);
    sys.close(fd);
  }
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

  it('pauses on a failure of the listener or the process, and sheds only once EMFILE has lasted', async () => {
    const lfd = sys.listenTcp('127.0.0.1', 0);
    const clients = await waiting(sys.localPort(lfd), 2);
    const b = new AcceptBackoff();
    expect(b.failed(lfd, ENOBUFS)).toBe(PAUSE_MS);
    expect(b.failed(lfd, EMFILE)).toBe(PAUSE_MS); // the first EMFILE: wait, do not shed
    acceptWaiting(lfd, 2); // nothing was shed: both are still waiting
    b.close();
    sys.close(lfd);
    for (const c of clients) c.destroy();
  });

  it('asks for no pause after a failure of one queued connection, which leaves the queue with it', async () => {
    // accept(2) reports these of the connection it took; Linux TCP hands a reset connection
    // over rather than failing, so no client here can make them: the rule is checked as is,
    // with a real listener and real clients behind it.
    const lfd = sys.listenTcp('127.0.0.1', 0);
    const clients = await waiting(sys.localPort(lfd), 1);
    const b = new AcceptBackoff();
    // The list the acceptors use, which must hold at least the reset of a queued connection.
    expect(ACCEPT_CONNECTION_ERRNOS).toContain('ECONNABORTED');
    for (const name of ACCEPT_CONNECTION_ERRNOS) {
      expect(constants[name]).toBeGreaterThan(0);
      expect(b.failed(lfd, -constants[name]!), name).toBe(0);
    }
    // The listener's and the process's failures still pause, and nothing was shed or
    // taken: the client still waits.
    expect(b.failed(lfd, EMFILE)).toBe(PAUSE_MS);
    expect(b.failed(lfd, -constants.ECONNABORTED!)).toBe(0);
    expect(b.failed(lfd, ENOBUFS)).toBe(PAUSE_MS);
    expect(b.failed(lfd, -constants.EINVAL!)).toBe(PAUSE_MS);
    acceptWaiting(lfd, 1);
    b.close();
    sys.close(lfd);
    for (const c of clients) c.destroy();
  });
});

describe('freeFds', () => {
  const NOFILE = constants.RLIMIT_NOFILE as number;

  it('is the soft limit less the open fds, and falls by one per fd opened', () => {
    const saved = sys.getrlimit(NOFILE);
    const open = openFds().size;
    try {
      sys.setrlimit(NOFILE, { soft: open + 40, hard: saved.hard });
      const free = freeFds();
      // Another thread of this process (vitest's, libuv's) may open or close one meanwhile.
      expect(Math.abs(free - 40)).toBeLessThanOrEqual(2);
      const fds = Array.from({ length: 10 }, () => sys.open('/dev/null', constants.O_RDONLY as number));
      try {
        expect(free - freeFds()).toBeGreaterThanOrEqual(8);
        expect(free - freeFds()).toBeLessThanOrEqual(12);
      } finally {
        for (const fd of fds) sys.close(fd);
      }
    } finally {
      sys.setrlimit(NOFILE, saved);
    }
  });

  it('is 0 or less once the soft limit is reached, and opens nothing itself', () => {
    const saved = sys.getrlimit(NOFILE);
    const before = openFds();
    try {
      sys.setrlimit(NOFILE, { soft: before.size, hard: saved.hard });
      expect(freeFds()).toBeLessThanOrEqual(0);
    } finally {
      sys.setrlimit(NOFILE, saved);
    }
    expect(leakedSince(before)).toEqual([]);
  });
});
