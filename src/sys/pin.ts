/**
 * Keeping a buffer's memory where the kernel was told it is. An io_uring operation or a
 * MSG_ZEROCOPY send holds the address of a buffer until its completion; if JS detached the
 * buffer's ArrayBuffer meanwhile (`structuredClone(ab, { transfer: [ab] })`, `postMessage`
 * with a transfer list, `ab.transfer()`), the memory would move to another owner and could
 * be freed and reused while the kernel still writes into it or sends from it. So every
 * buffer handed to such an operation has its ArrayBuffer marked untransferable
 * (worker_threads.markAsUntransferable, as Node marks its own Buffer pool): from then on a
 * transfer copies it or throws instead of detaching it. The mark is permanent.
 *
 * Pinning happens at the public entry points, once per operation, before the caller gets
 * control back (an operation queued behind a full SQ is covered too); an entry prepared again
 * for the rest of the same operation (a short read or send, -EAGAIN) is not pinned again, and
 * uring-prep.ts, which only lays out SQE fields, never pins. The entry points:
 * - `Ring`'s promise API: `read`, `write`, `recv`, `send`, `sendZc` (once for all the
 *   requests a short send takes), `readv` / `writev` (every buffer of the list);
 * - `Ring`'s batch API: `prepRead`, `prepWrite`, `prepRecv`, `prepSend`, `prepSendZc`, as the
 *   entry is prepared; `registerBuffers` pins the registered buffers, which `readFixed` and
 *   `prepReadFixed` then name;
 * - the `Proactor`: `recv`, `send`, `sendZc`, `read`, `write`; and the buffers its
 *   `recvMultishot` receives into, which the callback gets views of while the kernel keeps
 *   writing into them: the provided-buffer slab (recv-buffers.ts, once at registration) and
 *   the single-shot fallback's buffer (once when allocated);
 * - MSG_ZEROCOPY: `ZerocopySocket.send` (and `sys.send` with `zerocopy`, through it), once the
 *   kernel took the send.
 *
 * Not pinned: buffers rawio allocates itself and lends to no other code before the kernel is
 * done with them, which no transfer can therefore reach — `Ring`'s iovec arrays, statx output,
 * paths and timespecs, the Proactor's timespecs, the proactor thread's gathered replies, file
 * chunks and stop counter (`Proactor.sendOwn` / `readOwn`), the file chunks of the `uring`
 * and `direct` transfers (`TransferRing.readOwn` / `sendOwn`, ring-native.ts), the probe's
 * throwaway buffer ring — and the addon's own external memory ({@link addonMemory}). A pin costs a read of
 * `buf.buffer` (a C++ builtin, most of it) and a WeakSet lookup: some 40 ns.
 */
import { markAsUntransferable } from 'node:worker_threads';

const pinned = new WeakSet<ArrayBufferLike>();
/** The addon's own external memory ({@link addonMemory}): never marked; in `pinned` once lent. */
const addon = new WeakSet<ArrayBufferLike>();

/** Marks the ArrayBuffer under `buf` untransferable (once); the addon's own memory is only recorded as lent. */
export function pin(buf: Uint8Array): void {
  const ab = buf.buffer;
  if (pinned.has(ab)) return;
  if (!addon.has(ab)) markAsUntransferable(ab);
  pinned.add(ab);
}

/**
 * Records `buf`'s ArrayBuffer as the addon's own external memory (`sys.alignedBuffer`,
 * `sys.mmap`), which {@link pin} then leaves unmarked. No transfer detaches such memory
 * (Node 20 copies it, Node 22 and later refuse), and marking it would abort Node 24 as the
 * environment ends: its Node-API detaches external buffers then, which the mark forbids.
 */
export function addonMemory(buf: Buffer): Buffer {
  addon.add(buf.buffer);
  return buf;
}

/**
 * Whether `buf` was ever handed to an operation that keeps its address past the call (an
 * io_uring operation, a MSG_ZEROCOPY send): what `sys.munmap` asks before it lets the
 * addresses go at once.
 */
export function lentToKernel(buf: Uint8Array): boolean {
  return pinned.has(buf.buffer);
}

/** {@link pin} for each buffer of a list. */
export function pinAll(bufs: readonly Uint8Array[]): void {
  for (const b of bufs) pin(b);
}
