/**
 * The main reactor of the multi-reactor models (Netty's boss group, memcached's listener
 * thread), on a thread of its own: a Reactor in run() mode watches the listening fd,
 * accepts every pending connection and deals the fds round-robin to the sub-reactors'
 * inboxes (shared-memory channels, each signalled through its reactor's eventfd). Being
 * off the caller's thread, accepting goes on however busy the caller is; an eventfd
 * written by close() stops it.
 */
import { Reactor } from '../loop/reactor.js';
import { constants } from '../sys/constants.js';
import { EAGAIN } from '../sys/errno.js';
import { native } from '../sys/native.js';
import { Channel, type ChannelInit } from './channel.js';
import { AcceptBackoff } from './accept-backoff.js';
import { writeNewFd } from './messages.js';
import { Stats, type SharedStats } from './stats.js';

const EPOLLIN = constants.EPOLLIN as number;

export interface AcceptorThreadData {
  role: 'acceptor';
  listenFd: number;
  /** An eventfd: readable means stop. */
  stopFd: number;
  /** The sub-reactors' inboxes, dealt to in turn. */
  inboxes: ChannelInit[];
  /** The server's counters: each fd dealt counts as handed over until its reactor judges it (Stats.handing). */
  stats: SharedStats;
  cpus?: number[];
}

export async function runAcceptorThread(data: AcceptorThreadData, ready: () => void): Promise<void> {
  if (data.cpus) native.setAffinity(data.cpus);
  const inboxes = data.inboxes.map((init) => new Channel(init));
  const stats = Stats.attach(data.stats);
  const reactor = new Reactor({ backend: 'epoll' });
  const backoff = new AcceptBackoff(); // the reserve fd and EMFILE pacing (accept-backoff.ts)
  let next = 0;
  const deal = (fd: number): boolean => {
    for (let k = 0; k < inboxes.length; k++) {
      if (writeNewFd(inboxes[(next + k) % inboxes.length]!, fd)) {
        next = (next + k + 1) % inboxes.length;
        return true;
      }
    }
    return false;
  };
  reactor.watch(data.listenFd, EPOLLIN, () => {
    for (;;) {
      const fd = native.accept(data.listenFd, false);
      if (fd < 0) {
        if (fd === -EAGAIN) return;
        // One connection's failure (ECONNABORTED …): it left the queue; accept the next.
        const pause = backoff.failed(data.listenFd, fd);
        if (pause === 0) continue;
        // EMFILE, ENFILE, ENOBUFS: the listening fd stays readable; look away for a moment.
        reactor.rewatch(data.listenFd, 0);
        reactor.setTimer(pause, () => reactor.rewatch(data.listenFd, EPOLLIN));
        return;
      }
      backoff.accepted();
      // Handed over until its reactor judges it (a drain waits for it); an inbox is full only
      // when its reactor is stuck: shed the connection then.
      stats.handing(1);
      if (deal(fd)) continue;
      stats.handing(-1);
      native.close(fd);
    }
  });
  reactor.watch(data.stopFd, EPOLLIN, () => reactor.stop());
  ready();
  try {
    await reactor.run();
  } finally {
    reactor.close();
    backoff.close();
  }
}
