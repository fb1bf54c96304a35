/**
 * The caller's side shared by the two blocking models, `iterative` and `thread-per-connection`:
 * what every blocking thread is handed to serve a client (the protocol to recreate, the transfer
 * method, the limits, the shared counters), and the start/close tail around the model's one
 * thread. Each model says only what its thread is and how to tell it to stop.
 */
import type { Protocol, ProtocolKind, ProtocolOptions } from '../protocols/protocol.js';
import { native } from '../sys/native.js';
import { eventfd, localPort } from '../sys/socket.js';
import type { MmapTransferOptions } from '../transfer/mmap-options.js';
import { pickLimits, type ConnLimits } from './conn-core.js';
import type { Stats } from './stats.js';
import { DrainSignal, takeQueued, whenNoConnections, type DrainSignalInit } from './drain.js';
import { Channel } from './channel.js';
import { closeUnread, writeDrain, writeNewFd } from './messages.js';
import { EVENTFD_ONE } from '../sys/eventfd-one.js';
import { exitWithin, startThread, type ModelThread } from './threads.js';
import type { ModelHandle, ResolvedServeOptions } from './types.js';

/** What a thread needs to serve a client with blocking I/O. */
export interface BlockingServeData {
  protocol: ProtocolKind;
  protocolOptions: ProtocolOptions;
  transfer: string;
  directio: number;
  /** The `mmap` transfer's options (MAP_POPULATE, madvise, reused mappings). */
  mmap: MmapTransferOptions;
  limits: ConnLimits;
  /** Bytes of a reply the kernel refused past which the connection is dropped (ServeOptions.maxQueue). */
  maxQueue: number;
  stats: ReturnType<Stats['share']>;
  /** The graceful close's signal (drain.ts). */
  drain: DrainSignalInit;
}

/** `drain`: the server's DrainSignal, made once (DrainSignal.create) and closed by close(). */
export function blockingServeData(
  opts: ResolvedServeOptions,
  protocol: Protocol,
  stats: Stats,
  drain: DrainSignalInit,
): BlockingServeData {
  return {
    protocol: opts.protocol,
    protocolOptions: protocol.options,
    transfer: opts.transfer,
    directio: opts.directio,
    mmap: opts.mmap,
    limits: pickLimits(opts),
    maxQueue: opts.maxQueue,
    stats: stats.share(),
    drain,
  };
}

/** The serving fields of `d` alone, to hand on to another thread. */
export function copyServeData(d: BlockingServeData): BlockingServeData {
  const { protocol, protocolOptions, transfer, directio, mmap, limits, maxQueue, stats, drain } = d;
  return { protocol, protocolOptions, transfer, directio, mmap, limits, maxQueue, stats, drain };
}

/** Room for this many connections taken from the listen queue as a drain begins (64 bytes each). */
const HANDOFF_CONNS = 4096;

/**
 * Where drain() hands the model's thread the connections it took from the listen queue
 * (NEW_FD messages, not yet admitted, then one DRAIN: the hand-off is complete). Its consumer
 * waits with Atomics.wait.
 */
export function blockingHandoff(): Channel {
  return new Channel(Channel.create((HANDOFF_CONNS + 1) * 64)); // and the DRAIN
}

/**
 * Starts the model's thread from `threadData()`; a start that fails closes the listening
 * socket, the drain signal's eventfd and the protocol before it rethrows. close() calls
 * `stop`, waits for the thread to exit, then closes the listening socket, the eventfd, what
 * `handoff` still holds and the protocol, once however often it is called. drain() takes the
 * connections queued on the listening socket (takeQueued) and shuts it down (a connect is
 * refused from then on), puts them on `handoff` for the model's thread, raises `drain` for
 * every thread, calls `onDrain` (what else the model's thread must hear), and resolves once
 * no connection is open.
 */
export async function startBlockingModel(
  listenFd: number,
  protocol: Protocol,
  stats: Stats,
  drain: DrainSignalInit,
  handoff: Channel,
  threadData: () => object,
  stop: (t: ModelThread) => void,
  graceMs: number,
  onDrain?: (t: ModelThread) => void,
): Promise<ModelHandle> {
  let t: ModelThread;
  try {
    t = await startThread(threadData());
  } catch (e) {
    native.close(listenFd);
    native.close(drain.fd);
    protocol.close();
    throw e;
  }
  let closing: Promise<void> | undefined;
  let draining: Promise<void> | undefined;
  return {
    port: localPort(listenFd),
    stats: () => stats.snapshot(),
    drain: (cut) =>
      (draining ??= (() => {
        // The queue first (a shutdown resets what is still in it), then refused at once.
        const queued = takeQueued(listenFd);
        native.shutdown(listenFd, 2);
        // Counted as handed over until the thread judges it (a drain waits for it); one past
        // the room left is shed (closed unread), as past a full inbox.
        stats.handing(Math.min(queued.length, HANDOFF_CONNS));
        queued.forEach((fd, i) => (i < HANDOFF_CONNS && writeNewFd(handoff, fd)) || native.close(fd));
        writeDrain(handoff);
        new DrainSignal(drain).begin((fd) => native.write(fd, EVENTFD_ONE, 0, 8));
        onDrain?.(t);
        return whenNoConnections(stats, cut);
      })()),
    close: () =>
      (closing ??= (async () => {
        stop(t);
        await exitWithin(t, graceMs);
        closeUnread(handoff); // connections handed over that no thread took
        native.close(listenFd);
        native.close(drain.fd);
        protocol.close();
      })()),
  };
}

/** The blocking models' drain signal (DrainSignal), its eventfd non-blocking. */
export function blockingDrainSignal(): DrainSignalInit {
  return DrainSignal.create(() => eventfd());
}
