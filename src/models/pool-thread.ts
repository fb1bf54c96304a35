/**
 * A handler thread of the worker-pool models: it waits on its request channel, runs the
 * protocol's handle() on each framed request, and pushes the reply to the channel of the
 * reactor that read the request (which wakes through its eventfd and writes the reply). It
 * does no socket I/O of its own.
 *
 * A connection's requests all come to the same pool thread, in order, and run in order:
 * while one of its replies is a pending Promise, its later requests wait behind it (other
 * connections' do not). Once a reply closes its connection (QUIT, Connection: close), the
 * requests the reactor sent after it are dropped unrun: nothing after a close is processed.
 * While promises are pending the thread waits with Atomics.waitAsync, so their I/O and
 * timers run; otherwise it blocks in Atomics.wait. With user code to run it gives Node's loop
 * a turn after each wake-up's work, and wakes for one at least every USER_TURN_MS while idle,
 * so that a timer the code set, or a rejection it left unhandled, is not held until the next
 * request (user-fence.ts).
 */
import { createProtocol } from '../protocols/index.js';
import type { Protocol, ProtocolKind, ProtocolOptions, Reply } from '../protocols/protocol.js';
import { native } from '../sys/native.js';
import type { Stats } from './stats.js';
import { BodySender } from './body-feed.js';
import { asyncBegin, asyncEnd, asyncWork } from './conn-contract.js';
import { Channel, type ChannelInit, type Message } from './channel.js';
import { CHUNK, MSG, readRequest, writeBody, writeReply } from './messages.js';
import { USER_TURN_MS, nodeTurn, runsUserCode } from './user-fence.js';

export interface PoolThreadData {
  role: 'pool';
  /** This thread's index among the pool (the BODY messages name it). */
  index: number;
  requests: ChannelInit;
  replies: ChannelInit[];
  /** The credit slots of the bodies this thread streams (body-feed.ts). */
  credits: SharedArrayBuffer;
  protocol: ProtocolKind;
  protocolOptions: ProtocolOptions;
  /** The server's counters (handler threads count the errors user code throws). */
  stats: ReturnType<Stats['share']>;
  cpus?: number[];
}

const pause = new Int32Array(new SharedArrayBuffer(4));
/** Connections closed by a reply, remembered this long (in closes) to drop what was sent after. */
const CLOSED_MEMORY = 4096;
const CLOSE_NOW: Reply = { data: new Uint8Array(0), close: true };

/** Runs until STOP; `given`: serve this protocol instead of creating `data.protocol` (embedding, tests). */
export async function runPoolThread(data: PoolThreadData, ready: () => void, given?: Protocol): Promise<void> {
  if (data.cpus) native.setAffinity(data.cpus);
  const protocol = given ?? createProtocol(data.protocol, data.protocolOptions);
  const requests = new Channel(data.requests);
  const pool = new PoolHandler(data, protocol);
  const msg = {} as Message;
  const userCode = runsUserCode(data.protocolOptions);
  let turn = false;
  ready();
  try {
    for (;;) {
      if (!requests.pop(msg)) {
        if (pool.pending > 0) {
          await requests.waitForMessageAsync(50);
        } else if (turn) {
          turn = false;
          await nodeTurn();
        } else if (userCode) {
          requests.waitForMessage(USER_TURN_MS);
          turn = true; // whatever woke it, Node's loop turns before it blocks again
        } else {
          requests.waitForMessage();
        }
        continue;
      }
      if (msg.tag === MSG.STOP) {
        pool.stopBodies(); // a body still streaming would keep this thread's loop alive
        break;
      }
      const r = readRequest(msg);
      pool.request(r.reactor, r.session, r.seq, r.frame);
    }
  } finally {
    protocol.close();
  }
  // Handlers still running have the grace close() gives them: the thread exits once they
  // settle (asyncSettled in worker-entry.ts), not when a module's stray timers end.
}

class PoolHandler {
  readonly #replies: Channel[];
  readonly #bodies: BodySender;
  /** The last pending step of each connection with one, by "reactor:session". */
  readonly #chains = new Map<string, Promise<void>>();
  readonly #closed = new Set<string>();

  constructor(
    readonly data: PoolThreadData,
    readonly protocol: Protocol,
  ) {
    this.#replies = data.replies.map((init) => new Channel(init));
    this.#bodies = new BodySender(data.credits);
  }

  /** Replies (and bodies) not yet settled: this thread's count (conn-contract.ts asyncWork). */
  get pending(): number {
    return asyncWork.count;
  }

  request(reactor: number, session: number, seq: number, payload: Uint8Array): void {
    const key = `${reactor}:${session}`;
    // A copy: the channel reuses its payload buffer, and an async handler may read it later.
    const frame = payload.slice();
    const chain = this.#chains.get(key);
    if (chain === undefined) {
      const p = this.#run(key, reactor, session, seq, frame);
      if (p) this.#track(key, p);
      return;
    }
    asyncBegin();
    this.#track(
      key,
      chain.then(() => {
        const p = this.#run(key, reactor, session, seq, frame);
        asyncEnd(); // after #run counted its own promise: never 0 in between
        return p;
      }),
    );
  }

  /** Ends every streamed body at its next chunk. */
  stopBodies(): void {
    this.#bodies.stopAll();
  }

  #track(key: string, p: Promise<void>): void {
    this.#chains.set(key, p);
    void p.then(() => this.#chains.get(key) === p && this.#chains.delete(key));
  }

  /** Runs one request; returns a promise when its reply is not ready yet. */
  #run(key: string, reactor: number, session: number, seq: number, frame: Uint8Array): Promise<void> | undefined {
    if (this.#closed.has(key)) return undefined;
    let r: Reply | Promise<Reply>;
    try {
      r = this.protocol.handle(frame);
    } catch {
      r = CLOSE_NOW;
    }
    if (typeof (r as unknown as Promise<Reply>).then !== 'function') {
      this.#reply(key, reactor, session, seq, r as Reply);
      return undefined;
    }
    asyncBegin();
    return (r as unknown as Promise<Reply>)
      .then(
        (reply) => this.#reply(key, reactor, session, seq, reply),
        () => this.#reply(key, reactor, session, seq, CLOSE_NOW),
      )
      .finally(() => asyncEnd());
  }

  #reply(key: string, reactor: number, session: number, seq: number, reply: Reply): void {
    if (reply.close) {
      this.#closed.add(key);
      if (this.#closed.size > CLOSED_MEMORY) this.#closed.delete(this.#closed.values().next().value!);
    }
    const out = this.#replies[reactor]!;
    sendReply(out, session, seq, reply);
    if (!reply.body) return;
    asyncBegin();
    void this.#bodies
      .stream(reply.body, (slot, gen, data, last) => {
        const msg = { session, seq, pool: this.data.index, slot, gen, data, last };
        while (!writeBody(out, msg)) Atomics.wait(pause, 0, 0, 1);
      })
      .finally(() => asyncEnd());
  }
}

/** Pushes a reply, in CHUNK-sized pieces when large; waits (never drops) while the reactor is behind. */
function sendReply(out: Channel, session: number, seq: number, reply: Reply): void {
  const { data, file } = reply;
  let off = 0;
  do {
    const end = Math.min(data.length, off + CHUNK);
    const last = end === data.length;
    const msg = {
      session,
      seq,
      data: data.subarray(off, end),
      partial: !last,
      close: last && Boolean(reply.close), // truthy, as the core reads it on every other model
      file: last ? file : undefined,
      body: last && reply.body !== undefined,
    };
    while (!writeReply(out, msg)) Atomics.wait(pause, 0, 0, 1);
    off = end;
  } while (off < data.length);
}
