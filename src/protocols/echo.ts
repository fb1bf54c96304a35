/**
 * The `echo` protocol (RFC 862 over TCP): every byte received is sent back. Each pushed
 * chunk is one frame, copied because the model may reuse its read buffer; the reply is
 * that copy.
 */
import type { Codec, Protocol, ProtocolOptions, PushResult, Reply } from './protocol.js';
import * as v from '../sys/validate.js';

class EchoCodec implements Codec {
  push(chunk: Uint8Array): PushResult {
    if (chunk.length > 0) return { frames: [new Uint8Array(chunk)] }; // a copy (Buffer#slice would not be)
    v.liveBytes(chunk, 'chunk'); // a detached chunk is no bytes received: a TypeError
    return { frames: [] };
  }
}

/** The `echo` protocol (RFC 862): every chunk received is one request, answered with a copy of itself. */
export class EchoProtocol implements Protocol {
  readonly name = 'echo';
  readonly options: ProtocolOptions;

  constructor(opts: ProtocolOptions = {}) {
    v.object('opts', opts);
    this.options = { ...opts };
  }

  createCodec(): Codec {
    return new EchoCodec();
  }

  handle(frame: Uint8Array): Reply {
    if (frame.length === 0) v.liveBytes(frame, 'frame'); // a detached frame is a TypeError, not an empty request
    return { data: frame };
  }

  close(): void {}
}
