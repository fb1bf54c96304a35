/**
 * A handler thread of the worker-pool models: it blocks in Atomics.wait on its request
 * channel, runs the protocol's handle() on each framed request, and pushes the reply to the
 * channel of the reactor that read the request (which wakes through its eventfd and writes
 * the reply). It does no I/O of its own.
 */
import { createProtocol } from '../protocols/index.js';
import type { ProtocolName, ProtocolOptions } from '../protocols/protocol.js';
import { native } from '../sys/native.js';
import { Channel, type ChannelInit, type Message } from './channel.js';
import { CHUNK, MSG, readRequest, writeReply } from './messages.js';
import type { Reply } from '../protocols/protocol.js';

export interface PoolThreadData {
  role: 'pool';
  requests: ChannelInit;
  replies: ChannelInit[];
  protocol: ProtocolName;
  protocolOptions: ProtocolOptions;
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
      const r = readRequest(msg);
      sendReply(replies[r.reactor]!, r.session, r.seq, protocol.handle(r.frame));
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
    const piece = data.subarray(off, end);
    const msg = {
      session,
      seq,
      data: piece,
      partial: !last,
      close: last && reply.close === true,
      file: last ? file : undefined,
    };
    while (!writeReply(out, msg)) {
      Atomics.wait(pause, 0, 0, 1);
    }
    off = end;
  } while (off < data.length);
}
