/**
 * What the stalled-worker scenario makes of one run: the client's arrivals (each
 * connection's start and connect-to-first-byte time) split by when a worker was stopped
 * and continued. Kept apart from the scenario so that the arithmetic is tested alone.
 */
/** What bench/lib/arrival-client.ts prints. */
export interface Arrivals {
  /** Epoch ms the offsets count from. */
  t0: number;
  /** Each connection's start, ms after t0. */
  starts: number[];
  /** Each connection's connect-to-first-byte ms, -1 when nothing came back. */
  firstByte: number[];
  errors: number;
}

export interface Window {
  /** Epoch ms: the worker was seen stopped, and when SIGCONT was sent. */
  stopAt: number;
  contAt: number;
  thresholdMs: number;
  /** Accepts by the other workers while it was stopped. */
  healthyAccepted: number;
}

export interface Outcome {
  /** Connections opened while the worker was stopped. */
  opened: number;
  /** Their connect-to-first-byte p99 and max (Infinity when some never got an answer). */
  p99Ms: number;
  maxMs: number;
  overThreshold: number;
  /** Of them, opened thresholdMs or more before SIGCONT and answered only after it (or never). */
  unservedUntilCont: number;
  neverServed: number;
  /** Opened before the stop but answered only after SIGCONT (already with the stopped worker). */
  heldAtStop: number;
  healthyAccepted: number;
  /** p99 of the connections opened and answered before the stop. */
  baselineP99Ms: number;
  errors: number;
}

/** Nearest-rank p99, so that a never-answered connection (Infinity) shows as such. */
function p99(sorted: readonly number[]): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.max(0, Math.ceil(sorted.length * 0.99) - 1)]!;
}

export function analyse(a: Arrivals, w: Window): Outcome {
  const during: number[] = [];
  const before: number[] = [];
  let unserved = 0;
  let heldAtStop = 0;
  for (const [i, rel] of a.starts.entries()) {
    const start = a.t0 + rel;
    const fb = a.firstByte[i] ?? -1;
    const lat = fb < 0 ? Infinity : fb;
    const answeredAt = start + lat;
    if (start < w.stopAt) {
      if (answeredAt > w.contAt) heldAtStop++;
      else if (answeredAt <= w.stopAt) before.push(lat);
    } else if (start < w.contAt) {
      during.push(lat);
      // One opened just before SIGCONT and answered just after it was not kept waiting.
      if (answeredAt > w.contAt && start <= w.contAt - w.thresholdMs) unserved++;
    }
  }
  during.sort((x, y) => x - y);
  before.sort((x, y) => x - y);
  return {
    opened: during.length,
    p99Ms: p99(during),
    maxMs: during[during.length - 1] ?? NaN,
    overThreshold: during.filter((l) => l > w.thresholdMs).length,
    unservedUntilCont: unserved,
    neverServed: during.filter((l) => l === Infinity).length,
    heldAtStop,
    healthyAccepted: w.healthyAccepted,
    baselineP99Ms: p99(before),
    errors: a.errors,
  };
}
