/**
 * The connection core's copies of frames that outlive the chunk they were framed from: a
 * frame left waiting (behind a promise reply, past a budget) must be a copy, whatever class
 * of view the codec handed out. A Buffer's slice() is a view, so a frame that is a Buffer
 * view of the lent chunk was kept as a view and read later from memory the model had reused
 * (a proactor's recv buffers are refilled by the kernel while frames wait). Driven here with
 * a ConnIO that records writes, and the chunk overwritten after the push as a model reuses it.
 */
import { describe, expect, it } from 'vitest';
import { ConnCore, CONN_DEFAULTS } from '../../dist/src/models/conn-core.js';
import { Stats } from '../../dist/src/models/stats.js';
import type { Codec, Protocol, Reply } from '../helpers/rawio.js';
import { eventually } from '../helpers/wait.js';

/** Frames lines as views of the chunk: Buffer views, or plain Uint8Array views. */
function linesCodec(asBuffer: boolean): Codec {
  return {
    push(chunk: Uint8Array) {
      const view = asBuffer ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : chunk;
      const frames: Uint8Array[] = [];
      let start = 0;
      for (let nl = view.indexOf(10); nl >= 0; nl = view.indexOf(10, start)) {
        frames.push(view.subarray(start, nl + 1));
        start = nl + 1;
      }
      return { frames };
    },
  };
}

describe('ConnCore: frames kept past their push', () => {
  for (const asBuffer of [true, false]) {
    it(`copies a frame left waiting behind a promise reply (${asBuffer ? 'Buffer' : 'Uint8Array'} views of the chunk)`, async () => {
      const written: Buffer[] = [];
      const io = {
        queued: 0,
        progress: 0,
        closed: false,
        write: (d: Uint8Array) => void written.push(Buffer.from(d)),
        drain: () => Promise.resolve(),
        sendFile: () => Promise.resolve(0),
        pause: () => undefined,
        resume: () => undefined,
        end: () => undefined,
        destroy: () => undefined,
      };
      const protocol: Protocol = {
        name: 'module',
        options: {},
        createCodec: () => linesCodec(asBuffer),
        // A promise reply (the frame read at once, as the contract asks): the frames after it
        // wait until it settles.
        handle: (frame: Uint8Array): Promise<Reply> => {
          const data = Buffer.from(frame);
          return new Promise((r) => setTimeout(() => r({ data }), 5));
        },
        close: () => undefined,
      };
      const core = new ConnCore(io, protocol, new Stats(1), CONN_DEFAULTS);
      const chunk = new Uint8Array(64);
      const sent = Buffer.from('one\ntwo\nthree\n');
      chunk.set(sent);
      core.push(chunk.subarray(0, sent.length));
      chunk.fill(0x78); // the model reads the next bytes into the same buffer
      expect(await eventually(() => Buffer.concat(written).length >= sent.length)).toBe(true);
      expect(Buffer.concat(written).toString()).toBe(sent.toString());
    });
  }
});
