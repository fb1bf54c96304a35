/**
 * The internal factory through which rawio's own loops (the Proactor) get a `Ring` together
 * with the native ring under it (native/uring.cc). Those loops validate at their public entry
 * points and hold their buffers in their own request records, so they prepare entries on the
 * native ring directly, through the helpers of `uring-prep.ts`: no argument checks, no buffer
 * holding, no per-entry credential check (the Ring's submit still checks). Not exported from
 * the package.
 */
import type { NativeRing } from './native.js';
import { Ring, type RingOptions } from './ring.js';

/** A Ring that lets its creator reach the native ring. */
class LoopRing extends Ring {
  get native(): NativeRing {
    return this.raw;
  }
}

/** A new Ring (throws as `new Ring(opts)` does) and the native ring under it. @internal */
export function openRingWithNative(opts: RingOptions): { ring: Ring; raw: NativeRing } {
  const ring = new LoopRing(opts);
  return { ring, raw: ring.native };
}
