/**
 * Wall-clock time read once per event-loop batch, the way nginx's ngx_time_update() runs
 * once per turn of its loop: the code a batch runs (an HTTP Date header per response) reads
 * the cached value instead of the clock. A loop that owns its thread (Proactor.run,
 * Reactor.run) calls `enter()` when it starts, `tick()` after each wait returns and before
 * it dispatches, and `leave()` when it ends. While no such loop runs, `now()` reads the
 * clock itself, so blocking models and embedders always see the current time; while one
 * does, the time is at most one batch old.
 */

let loops = 0;
let cached = 0;

/** A loop starts owning this thread. */
export function enter(): void {
  loops++;
  cached = Date.now();
}

/** A loop is about to dispatch a batch: read the clock once for all of it. */
export function tick(): void {
  cached = Date.now();
}

/** A loop stopped. */
export function leave(): void {
  loops--;
}

/** Date.now(), as of the current batch when a loop is running. */
export function now(): number {
  return loops > 0 ? cached : Date.now();
}
