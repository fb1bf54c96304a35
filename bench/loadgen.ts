/**
 * The bench's handle on the load generator: the public `rawio/loadgen` API (src/loadgen/),
 * re-exported so that the scenarios keep one import path, with one difference: the bench's
 * `loadgen` rejects when the server answered nothing at all during the run (not a reply, not
 * a byte: it went away or never answered), or a run by count came back short, so that the
 * scenario fails with the reason (the runner reports it and goes on to the next) instead of
 * publishing figures of a dead server. A slow reply that ends after the window (a large
 * file) is still a measurement: its bytes arrived. A run whose threads could not be pinned
 * to the CPUs asked for rejects too: the report says where the client ran.
 */
import { errorSummary, runFailure } from '../src/loadgen-cli.js';
import { loadgen as run, type LoadgenOptions, type LoadgenResult } from '../src/loadgen/index.js';

export * from '../src/loadgen/index.js';

/** Whether the server answered nothing at all in run `r`: not a reply, not a byte. */
export function answeredNothing(r: LoadgenResult): boolean {
  return r.received === 0 && r.bytesIn === 0;
}

/**
 * `warmup`: the run is a scenario's discarded warm-up. A server that answered nothing in it
 * (one freshly started, still loading its threads while others start beside it on the same
 * CPU) is then no failure: nothing of the run is published, and the measured runs after it
 * still reject if the server stays silent. A run that could not be pinned rejects either way.
 */
export async function loadgen(opts: LoadgenOptions, o: { warmup?: boolean } = {}): Promise<LoadgenResult> {
  const r = await run(opts);
  const where = `loadgen → ${opts.host ?? '127.0.0.1'}:${opts.port}`;
  // the report says the client ran on its own CPU: a run that could not be pinned there
  // (the engine goes on unpinned) is no figure of that setup
  if (r.affinityErrno !== 0)
    throw new Error(
      `${where}: could not pin the load generator to CPU ${(opts.cpus ?? []).join(',')} ` +
        `(sched_setaffinity: errno ${-r.affinityErrno})`,
    );
  if (o.warmup === true) return r;
  if (opts.requests !== undefined) {
    const failure = runFailure(opts, r);
    if (failure !== undefined) throw new Error(`${where}: ${failure}`);
  } else if (answeredNothing(r) && r.ended !== 'stopped') {
    throw new Error(`${where}: the server answered nothing in ${r.seconds.toFixed(2)} s (${errorSummary(opts, r)})`);
  }
  return r;
}
