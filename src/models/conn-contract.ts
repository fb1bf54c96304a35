/**
 * The connection contract's terms, shared by the core (conn-core.ts) and the models that
 * drive it: the per-connection limits and their defaults, what a driver provides
 * (ConnIO), and the thread-wide count of replies still awaited (asyncWork).
 */
import type { Reply } from '../protocols/protocol.js';
import { close } from '../sys/socket.js';
import { constants } from '../sys/constants.js';
import { native } from '../sys/native.js';

/** The per-connection limits (conn-core.ts explains them; README has the table). */
export interface ConnLimits {
  /** Requests handled whose reply has not been written yet; default 1024. */
  maxInFlight: number;
  /** Reply bytes built but not taken by the kernel before the next request waits; default 1 MiB. */
  maxOutput: number;
  /** Reply file bodies open at once; default 16. */
  maxFiles: number;
  /**
   * ms a started request has in hand to arrive whole, counted while rawio reads; every
   * `minRequestRate` bytes of it that arrive give a second back, up to this (conn-clock.ts);
   * default 10 000.
   */
  headerTimeout: number;
  /**
   * ms without progress (no whole request arrived, no byte taken by the client, no reply
   * being made) before closing, with the same credit as headerTimeout, up to this; default
   * 30 000.
   */
  idleTimeout: number;
  /**
   * Bytes a second: each `minRequestRate` bytes of the request now arriving give one second
   * back to both timeouts (never above full), so a request sent at least this fast is never
   * cut by them; Infinity gives nothing (a request must arrive whole within headerTimeout); default 16 384.
   */
  minRequestRate: number;
}

export const CONN_DEFAULTS: Readonly<ConnLimits> = {
  maxInFlight: 1024,
  maxOutput: 1 << 20,
  maxFiles: 16,
  headerTimeout: 10_000,
  idleTimeout: 30_000,
  minRequestRate: 16_384,
};

/**
 * How long a connection closed after its last reply (a closing reply, a framing error's)
 * lingers: its write side shut down, it reads and discards what the client still sends (the
 * rest of a body too large to read) until the client's EOF, an error, or this many ms, and
 * only then closes. Closing with unread bytes makes the kernel send a reset, which can
 * destroy the reply in the client's receive queue before it reads it (nginx's lingering
 * close; its lingering_time is 30 s with 5 s between reads: one bound of 5 s here, a total).
 */
export const LINGER_MS = 5000;

/** Just the limits out of a larger object (resolved serve options), to hand to a thread. */
export function pickLimits(o: ConnLimits): ConnLimits {
  const { maxInFlight, maxOutput, maxFiles, headerTimeout, idleTimeout, minRequestRate } = o;
  return { maxInFlight, maxOutput, maxFiles, headerTimeout, idleTimeout, minRequestRate };
}

/** How often a model's timer should call expire(): within a quarter of the shorter timeout, at most once a second. */
export function sweepEvery(l: ConnLimits): number {
  return Math.min(1000, Math.max(10, Math.floor(Math.min(l.headerTimeout, l.idleTimeout) / 4)));
}

type FileRegion = NonNullable<Reply['file']>;

/** What a model does for the core: the bytes of one connection. */
export interface ConnIO {
  /** Bytes passed to write() that the kernel has not taken yet. */
  readonly queued: number;
  /** A count that moves whenever the kernel takes bytes of this connection (for timeouts). */
  readonly progress: number;
  /** Reads only once every reply to what it read is written (a blocking model): not reading meanwhile. */
  readonly readsWhenIdle?: boolean;
  /** Closed (or closing): nothing more is written. */
  readonly closed: boolean;
  /**
   * Bytes read from the socket and not pushed to the core yet, or a read that may still bring
   * some (a cancelled recv): a draining core waits for them, and the model calls the core's
   * writable() once there are none (optional: a model that pushes all it reads at once).
   */
  readonly readPending?: boolean;
  /**
   * Whether the kernel holds bytes of this connection (or its EOF) that the model has not
   * read yet: a draining core with nothing read treats them as a request begun and reads it
   * rather than closing the connection as idle (optional). A model whose read may have
   * taken bytes it has not handed over yet (a ring's recv whose completion is not reaped)
   * may instead set that read to settle and answer false: readPending then says so, and
   * the core decides once the model calls writable().
   */
  inputWaiting?(): boolean;
  /**
   * Ended after its last reply and shut down for writing, discarding what the client still
   * sends until it closes (LINGER_MS bounds it): no timeout of the core applies any more.
   */
  readonly lingering?: boolean;
  /** Writes bytes, queueing what the kernel does not take now. The buffer is not modified. */
  write(data: Uint8Array): void;
  /** Resolves once at most `bytes` are queued; rejects if the connection closes first. */
  drain(bytes: number): Promise<void>;
  /** Sends a file region after every byte written before; resolves with the bytes sent (fewer: the file ended). */
  sendFile(file: FileRegion): Promise<number>;
  /** Stops reading (the client's bytes wait in the kernel). */
  pause(): void;
  /** Reads again. */
  resume(): void;
  /** Holds writes until uncork() sends them together (optional). */
  cork?(): void;
  uncork?(): void;
  /**
   * Sends what is queued, then closes: lingering (LINGER_MS) unless the client has finished
   * sending already.
   */
  end(): void;
  /** Closes now. */
  destroy(error?: Error): void;
}

/** Runs a request: a Reply, a Promise of one, or undefined when the reply will come through deliver(). */
export type Handle = (seq: number, frame: Uint8Array) => Reply | Promise<Reply> | undefined;

/**
 * Replies this thread is still awaiting (promises, streamed bodies) across all its
 * connections. A thread whose loop blocks in its own poller (Reactor.run, Proactor.run)
 * lets libuv run only between batches; while this is non-zero it must keep turning, or a
 * handler awaiting a Node timer or socket would never finish: `onChange` tells it.
 */
export const asyncWork: { count: number; onChange: ((busy: boolean) => void) | undefined } = {
  count: 0,
  onChange: undefined,
};

export function asyncBegin(): void {
  if (asyncWork.count++ === 0) asyncWork.onChange?.(true);
}

/** Who waits for this thread's replies and file bodies to settle (asyncSettled). */
const settledWaiters: (() => void)[] = [];
/** File bodies being sent (conn-core's tail): their file fds close when they end. */
let tails = 0;

function wakeIfSettled(): void {
  if (asyncWork.count === 0 && tails === 0) for (const w of settledWaiters.splice(0)) w();
}

export function asyncEnd(): void {
  if (--asyncWork.count > 0) return;
  asyncWork.onChange?.(false);
  wakeIfSettled();
}

/**
 * A file body's send begins / ends. It needs no libuv turns (unlike asyncWork), but the
 * thread must not exit under it: the body's file fd is closed when it ends.
 */
export function tailBegin(): void {
  tails++;
}
export function tailEnd(): void {
  tails--;
  if (tails === 0) for (const w of tailWaiters.splice(0)) w();
  wakeIfSettled();
}

/** Who waits for this thread's file bodies alone to end (tailsSettled). */
const tailWaiters: (() => void)[] = [];

/**
 * Resolves once this thread sends no file body (at once when it sends none), every body's
 * file fd closed. A blocking thread, which serves one connection at a time, waits for it
 * before it sleeps in accept(2) or its cache: a body whose connection closed under it
 * (a client reset before its head could be written) ends in promise continuations that
 * would otherwise wait, its file open, for the thread's next client.
 */
export function tailsSettled(): Promise<void> {
  if (tails === 0) return Promise.resolve();
  return new Promise((resolve) => tailWaiters.push(resolve));
}

/**
 * Resolves once this thread awaits no reply and sends no file body (at once when it does
 * neither): a stopped thread or process exits then, whatever timers user modules left running.
 */
export function asyncSettled(): Promise<void> {
  if (asyncWork.count === 0 && tails === 0) return Promise.resolve();
  return new Promise((resolve) => settledWaiters.push(resolve));
}

export function connError(code: string, message: string): Error {
  const e = new Error(message) as Error & { code: string };
  e.code = code;
  return e;
}

/** Releases what an unsent reply owns: its file's fd, its body's producer. */
export function discardReply(reply: Reply): void {
  if (reply.file) close(reply.file.fd);
  if (reply.body) {
    try {
      void reply.body[Symbol.asyncIterator]()
        .return?.()
        ?.catch(() => undefined);
    } catch {
      // a producer that cannot even start holds nothing to release
    }
  }
}

const POLLIN = constants.POLLIN as number;
/** One poll set per thread for inputWaiting(): a drain asks once per connection. */
let inputSet: InstanceType<typeof native.PollSet> | undefined;
const inputOut = new Int32Array(2);

/**
 * Whether `fd` has bytes (or its EOF, or an error) to read now: poll(2) for POLLIN, no wait.
 * ConnIO.inputWaiting of the models that read a socket when it turns readable.
 */
export function inputWaiting(fd: number): boolean {
  const set = (inputSet ??= new native.PollSet());
  if (set.add(fd, POLLIN) < 0) return false;
  const n = set.wait(inputOut, 0);
  set.remove(fd);
  return n > 0 && (inputOut[1]! & POLLIN) !== 0;
}
