/**
 * The `thread-per-connection` model: an acceptor (in the caller's thread, inside Node's
 * loop) hands each connection to a thread of its own, which serves it with blocking I/O.
 * Simple, and it uses every core — until the threads themselves are the cost: each Node
 * worker thread is a V8 isolate of several MiB, started in milliseconds.
 *
 * At the cap (`workers` threads, default 256) the acceptor stops accepting: new clients
 * complete the TCP handshake and wait in the listen backlog, unanswered, until a thread
 * frees up (Apache's MaxRequestWorkers behaves the same); past the backlog the kernel
 * drops their SYNs and they retry.
 */
import { Reactor } from '../loop/reactor.js';
import { createProtocol } from '../protocols/index.js';
import { constants } from '../sys/constants.js';
import { native } from '../sys/native.js';
import { listenTcp, localPort } from '../sys/socket.js';
import { FdSlot } from './blocking-session.js';
import type { BlockingThreadData } from './blocking-threads.js';
import { Stats } from './stats.js';
import { startThread, type ModelThread } from './threads.js';
import type { ModelStarter } from './types.js';

const EPOLLIN = constants.EPOLLIN as number;

export const start: ModelStarter = async (opts) => {
  const listenFd = listenTcp(opts.host, opts.port, { backlog: opts.backlog });
  const protocol = createProtocol(opts.protocol, opts.protocolOptions);
  const stats = new Stats(1);
  const live = new Map<ModelThread | Promise<ModelThread>, FdSlot>();
  const acceptor = new Reactor({ backend: 'epoll' });
  let stopped = false;
  let accepting = true;
  const setAccepting = (on: boolean) => {
    if (on !== accepting && !stopped) acceptor.rewatch(listenFd, on ? EPOLLIN : 0);
    accepting = on;
  };
  const spawn = (fd: number) => {
    native.setBlocking(fd, true);
    const slotSab = FdSlot.create();
    const slot = new FdSlot(slotSab);
    const data: BlockingThreadData = {
      role: 'connection',
      fd,
      slot: slotSab,
      protocol: opts.protocol,
      protocolOptions: protocol.options,
      transfer: opts.transfer,
      directio: opts.directio,
      stats: stats.share(),
    };
    const starting = startThread(data);
    live.set(starting, slot);
    const done = () => {
      live.delete(starting);
      if (!stopped) setAccepting(true);
    };
    starting.then(
      (t) => t.exited.then(done),
      () => {
        native.close(fd);
        stats.closed();
        done();
      },
    );
  };
  acceptor.watch(listenFd, EPOLLIN, () => {
    while (live.size < opts.workers) {
      const fd = native.accept(listenFd, false);
      if (fd < 0) return;
      stats.accepted(0);
      spawn(fd);
    }
    setAccepting(false);
  });
  acceptor.attach();
  let closing: Promise<void> | undefined;
  return {
    port: localPort(listenFd),
    stats: () => stats.snapshot(),
    close: () =>
      (closing ??= (async () => {
        stopped = true;
        acceptor.close();
        native.close(listenFd);
        const threads = [...live.keys()];
        for (const slot of live.values()) slot.stop();
        await Promise.allSettled(threads.map(async (t) => (await t).exited));
        protocol.close();
      })()),
  };
};
