/**
 * The HTTP Date header value (RFC 9110 IMF-fixdate), formatted once per second: every
 * response carries it and formatting a date per request would dominate a hello-world. The
 * second comes from the batch clock (sys/batch-clock.ts): under a running loop, one clock
 * read per batch of requests rather than one per request.
 */
import * as batchClock from '../sys/batch-clock.js';

let second = -1;
let value = '';

/** The current second (Unix time), the key the cached responses are built for. */
export function httpSecond(): number {
  const s = Math.floor(batchClock.now() / 1000);
  if (s !== second) {
    second = s;
    value = new Date(s * 1000).toUTCString();
  }
  return s;
}

/** `Sun, 22 Nov 2026 04:00:00 GMT` for the current second. */
export function httpDate(): string {
  httpSecond();
  return value;
}
