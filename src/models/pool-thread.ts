/**
 * A handler thread of the worker-pool models: it blocks in Atomics.wait on its request
 * channel, runs the protocol's handle() on each framed request, and pushes the reply to the
 * channel of the reactor that read the request (which wakes through its eventfd and writes
 * the reply). It does no I/O of its own.
 */
import { createProtocol } from '../protocols/index.js';
import type { ProtocolKind, ProtocolOptions } from '../protocols/protocol.js';
import { native } from '../sys/native.js';
import { Channel, type ChannelInit, type Message } from './channel.js';
import { CHUNK, MSG, REPLY_CLOSE, REPLY_PARTIAL } from './messages.js';
import type { Reply } from '../protocols/protocol.js';
import type { Stats } from './stats.js';

export interface PoolThreadData {
  role: 'pool';
  requests: ChannelInit;
  replies: ChannelInit[];
  protocol: ProtocolKind;
  protocolOptions: ProtocolOptions;
  /** The server's counters (handler threads count the errors user code throws). */
  stats: ReturnType<Stats['share']>;
  cpus?: number[];
}

const pause = new Int32Array(new SharedArrayBuffer(4));

export function runPoolThread(data: PoolThreadData, ready: () => void): void {
  if (data.cpus) native.setAffinity(data.cpus);
  const protocol = createProtocol(data.protocol, data.protocolOptions);
  const requests = new Channel(data.requests);
  const replies = data.replies.map((init) => new Channel(init));
  const msg = {} as Message;
  ready();
  try {
    for (;;) {
      if (!requests.pop(msg)) {
        requests.waitForMessage();
        continue;
      }
      if (msg.tag === MSG.STOP) break;
      sendReply(replies[msg.a]!, msg.b, msg.c, protocol.handle(msg.payload));
    }
  } finally {
    protocol.close();
  }
}

/** Pushes a reply, in CHUNK-sized pieces when large; waits (never drops) while the reactor is behind. */
function sendReply(out: Channel, session: number, seq: number, reply: Reply): void {
  const { data, file } = reply;
  let off = 0;
  do {
    const end = Math.min(data.length, off + CHUNK);
    const last = end === data.length;
    const flags = last ? (reply.close ? REPLY_CLOSE : 0) : REPLY_PARTIAL;
    const fd = last && file ? file.fd : -1;
    const piece = data.subarray(off, end);
    while (!out.push(MSG.REPLY, session, seq, fd, file?.offset ?? 0, file?.length ?? 0, flags, piece)) {
      Atomics.wait(pause, 0, 0, 1);
    }
    off = end;
  } while (off < data.length);
}
