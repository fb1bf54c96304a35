/**
 * Drives a Codec the way a model does: pushes a byte stream in pieces and collects the
 * frames and the error reply, so tests can check that every way of splitting a stream
 * frames it the same.
 */
import type { Codec, Reply } from '../helpers/rawio.js';

export interface Fed {
  frames: Buffer[];
  error?: Reply;
}

/** Pushes `stream` cut at `cuts` (sorted offsets) through `codec`, reusing one read buffer. */
export function feed(codec: Codec, stream: Uint8Array, cuts: number[] = []): Fed {
  const frames: Buffer[] = [];
  const scratch = new Uint8Array(stream.length); // reused, as a model reuses its read buffer
  let error: Reply | undefined;
  let prev = 0;
  for (const end of [...cuts, stream.length]) {
    if (end < prev) continue;
    const piece = scratch.subarray(0, end - prev);
    piece.set(stream.subarray(prev, end));
    const r = codec.push(piece);
    // Frames may be views into the chunk until it is reused: copy them first, as a model
    // handles them first. Then reuse it: a codec that kept a reference to it sees garbage.
    for (const f of r.frames) frames.push(Buffer.from(f));
    scratch.fill(0xee);
    if (r.error) {
      error = r.error;
      break;
    }
    prev = end;
  }
  return error ? { frames, error } : { frames };
}

/** Every single split point of a stream, then every byte on its own. */
export function* splits(n: number): Generator<number[]> {
  yield [];
  for (let i = 1; i < n; i++) yield [i];
  yield Array.from({ length: n - 1 }, (_, i) => i + 1);
}

/** Frames as hex strings: vitest's deep equality walks a Buffer index by index, slowly. */
export const hex = (frames: Buffer[]): string[] => frames.map((f) => f.toString('hex'));

export const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

/** fast-check runs per property: RAWIO_FUZZ_RUNS in CI (100 000), a quick default here. */
export const fuzzRuns = Number(process.env.RAWIO_FUZZ_RUNS ?? 400);
