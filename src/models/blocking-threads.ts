/**
 * The thread bodies of the two blocking models. `iterative`: one thread accepts on a
 * blocking listening socket and serves each client to the end before the next (its socket
 * non-blocking, the thread asleep in poll(2) instead: blocking-session.ts).
 * `connection` (thread-per-connection): a thread serves the one client it was given.
 *
 * Between clients such a thread sleeps outside Node's loop (in accept(2), or in Atomics.wait
 * while cached). When it runs user code it wakes every USER_TURN_MS meanwhile and gives the
 * loop a turn, as a pool thread does (user-fence.ts): what the code left running when its
 * client went — a streamed body's producer that must see the close and end, a timer — runs
 * then, not at some later client's arrival.
 */
import { createProtocol, type Protocol } from '../protocols/index.js';
import { reportUserError } from '../protocols/module.js';
import { EAGAIN, EINTR } from '../sys/errno.js';
import { native } from '../sys/native.js';
import { parentPort } from 'node:worker_threads';
import { FdSlot, serveBlocking, type BlockingOptions } from './blocking-session.js';
import type { BlockingServeData } from './blocking-start.js';
import { Channel, type ChannelInit, type Message } from './channel.js';
import { MSG, readNewFd, readNewFdTicket } from './messages.js';
import { AcceptBackoff } from './accept-backoff.js';
import { DrainSignal } from './drain.js';
import { REFUSED_CONN, Stats } from './stats.js';
import { closeMmapCache, closePipePool } from '../transfer/index.js';
import { endTransferRing } from '../transfer/uring.js';
import { constants } from '../sys/constants.js';
import { USER_TURN_MS, nodeTurn, runsUserCode } from './user-fence.js';

const POLLIN = constants.POLLIN as number;

export interface BlockingThreadData extends BlockingServeData {
  /** connection: where the next client's fd (or STOP) arrives while this thread is cached. */
  inbox?: ChannelInit;
  /** iterative: where a drain hands over the connections it took from the listen queue (blocking-start.ts). */
  handoff?: ChannelInit;
  role: 'iterative' | 'connection';
  /** iterative: the blocking listening fd; connection: the client's fd. */
  fd: number;
  /** connection: what Stats.admit gave the client's connection (the acceptor admitted it). */
  ticket?: number;
  slot: SharedArrayBuffer;
  cpus?: number[];
}

export async function runBlockingThread(data: BlockingThreadData, ready: () => void): Promise<void> {
  if (data.cpus) native.setAffinity(data.cpus);
  const slot = new FdSlot(data.slot);
  const stats = Stats.attach(data.stats);
  let protocol: Protocol;
  try {
    protocol = createProtocol(data.protocol, data.protocolOptions);
  } catch (e) {
    // A connection thread starts after serve() resolved, for one client: a module's create()
    // that fails now (it ran out of something, it fails every so often) has no caller to
    // reject. It is user code's error, counted and logged like any other (no instance, so no
    // onError); the thread's start fails, and the acceptor closes the client's connection.
    if (data.role === 'connection' && runsUserCode(data.protocolOptions)) reportUserError(e, undefined);
    throw e;
  }
  const opts = {
    protocol,
    stats,
    transfer: data.transfer,
    directio: data.directio,
    mmap: data.mmap,
    limits: data.limits,
    maxQueue: data.maxQueue,
    drain: new DrainSignal(data.drain),
  };
  let backoff: AcceptBackoff | undefined;
  const turns = runsUserCode(data.protocolOptions);
  try {
    if (data.role === 'connection') {
      ready();
      return await serveConnections(data, slot, opts, turns);
    }
    // The reserve fd is taken before ready(): once serve() resolves, the thread holds every
    // fd it will hold while it serves (a count of the process's fds taken then is stable).
    backoff = new AcceptBackoff();
    ready();
    const listening = new native.PollSet();
    listening.add(data.fd, POLLIN);
    const out = new Int32Array(2);
    while (!slot.stopping) {
      // With user code, the wait for a client is cut into ticks with a turn of Node's loop
      // between (close() ends the wait too: it shuts the listening socket down).
      if (turns && listening.wait(out, USER_TURN_MS) <= 0) {
        await nodeTurn();
        continue;
      }
      const fd = native.accept(data.fd, false); // non-blocking: the session sleeps in poll(2)
      if (fd < 0) {
        if (fd === -EINTR) continue;
        // A drain makes the listening socket non-blocking as it takes the queue, just before
        // it shuts it down: wait for that.
        if (fd === -EAGAIN) {
          listening.wait(out, 10);
          continue;
        }
        if (slot.stopping) return;
        // close() shuts the listening socket down, which ends a blocked accept with EINVAL;
        // so does a drain, once the connection being served has closed: the connections it
        // took from the listen queue are served then, one after the other.
        if (opts.drain.on) return await serveHandoff(data, slot, opts, stats);
        // EMFILE and the like: a blocking accept says so at once, so wait before asking again
        // (not after one connection's failure, ECONNABORTED …: the next is accepted at once).
        const pause = backoff.failed(data.fd, fd, false);
        if (pause > 0) await new Promise((r) => setTimeout(r, pause));
        continue;
      }
      backoff.accepted();
      // Past maxConnections: closed unread (iterative holds one connection at a time, so a
      // limit, at least 1, is never reached here; the check keeps the rule in one place).
      const ticket = stats.admit(0, fd);
      if (ticket === REFUSED_CONN) {
        native.close(fd);
        continue;
      }
      native.setNoDelay(fd, true); // replies written in pieces must not wait for a delayed ACK
      slot.publish(fd);
      await serveBlocking(fd, slot, opts, ticket);
      slot.release(fd);
    }
  } finally {
    backoff?.close();
    protocol.close();
    closePipePool();
    closeMmapCache();
    endTransferRing(); // the uring and direct methods' ring: its fds outlive the thread
  }
}

/**
 * iterative, once a drain began and the listening socket is shut down: serves each connection
 * the drain took from the listen queue (blocking-start.ts), as one accepted before the drain
 * (admitted here as an accept is), until the DRAIN that ends the hand-off, or a stop.
 */
async function serveHandoff(
  data: BlockingThreadData,
  slot: FdSlot,
  opts: BlockingOptions,
  stats: Stats,
): Promise<void> {
  if (data.handoff === undefined) return;
  const handoff = new Channel(data.handoff);
  const msg = {} as Message;
  while (!slot.stopping) {
    if (!handoff.pop(msg)) {
      handoff.waitForMessage(USER_TURN_MS);
      await nodeTurn();
      continue;
    }
    if (msg.tag !== MSG.NEW_FD) return;
    const fd = readNewFd(msg);
    const ticket = stats.admit(0, fd);
    stats.handed();
    if (ticket === REFUSED_CONN) {
      native.close(fd);
      continue;
    }
    native.setNoDelay(fd, true);
    slot.publish(fd);
    await serveBlocking(fd, slot, opts, ticket);
    slot.release(fd);
  }
}

/**
 * A thread-per-connection thread: serves its client; then, instead of exiting, tells the
 * acceptor it is idle and blocks in Atomics.wait until it is handed the next client (a
 * thread cache, as Apache's worker MPM and MySQL keep) or told to stop.
 */
async function serveConnections(
  data: BlockingThreadData,
  slot: FdSlot,
  opts: BlockingOptions,
  turns: boolean,
): Promise<void> {
  const inbox = new Channel(data.inbox!);
  const msg = {} as Message;
  let fd = data.fd;
  let ticket = data.ticket ?? 0;
  for (;;) {
    slot.publish(fd);
    await serveBlocking(fd, slot, opts, ticket);
    slot.release(fd);
    if (slot.stopping) return;
    parentPort?.postMessage('idle');
    while (!inbox.pop(msg)) {
      if (!turns) {
        inbox.waitForMessage();
        continue;
      }
      inbox.waitForMessage(USER_TURN_MS);
      await nodeTurn();
    }
    if (msg.tag !== MSG.NEW_FD) return;
    fd = readNewFd(msg);
    ticket = readNewFdTicket(msg);
  }
}
