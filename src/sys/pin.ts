/**
 * Keeping a buffer's memory where the kernel was told it is. An io_uring operation or a
 * MSG_ZEROCOPY send holds the address of a buffer until its completion; if JS detached the
 * buffer's ArrayBuffer meanwhile (`structuredClone(ab, { transfer: [ab] })`, `postMessage`
 * with a transfer list, `ab.transfer()`), the memory would move to another owner and could
 * be freed and reused while the kernel still writes into it or sends from it. So every
 * buffer handed to such an operation has its ArrayBuffer marked untransferable
 * (worker_threads.markAsUntransferable, as Node marks its own Buffer pool): from then on a
 * transfer copies it or throws instead of detaching it. The mark is permanent; it costs one
 * WeakSet lookup per operation after the first.
 */
import { markAsUntransferable } from 'node:worker_threads';

const pinned = new WeakSet<ArrayBufferLike>();

/** Marks the ArrayBuffer under `buf` untransferable (once). */
export function pin(buf: Uint8Array): void {
  const ab = buf.buffer;
  if (pinned.has(ab)) return;
  markAsUntransferable(ab);
  pinned.add(ab);
}

/**
 * Records `buf`'s ArrayBuffer as the addon's own external memory (`sys.alignedBuffer`,
 * `sys.mmap`), which {@link pin} then leaves unmarked. No transfer detaches such memory
 * (Node 20 copies it, Node 22 and later refuse), and marking it would abort Node 24 as the
 * environment ends: its Node-API detaches external buffers then, which the mark forbids.
 */
export function addonMemory(buf: Buffer): Buffer {
  pinned.add(buf.buffer);
  return buf;
}

/** {@link pin} for each buffer of a list. */
export function pinAll(bufs: readonly Uint8Array[]): void {
  for (const b of bufs) pin(b);
}
