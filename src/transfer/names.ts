/**
 * The names of the built-in transfer methods, in one list: the `TransferMethodName` type
 * is derived from it, and `serve()` checks its `transfer` option against it.
 */

/**
 * The built-in transfer methods: `readwrite` (pread + write), `mmap` (write from a
 * mapping), `sendfile`, `splice` (through a pipe), `uring` (io_uring reads and sends),
 * `direct` (O_DIRECT reads through io_uring) and `auto` (`sendfile` below `directio`
 * bytes, `direct` from there on where io_uring is allowed).
 */
export const transferMethodNames = ['readwrite', 'mmap', 'sendfile', 'splice', 'uring', 'direct', 'auto'] as const;

/** A built-in transfer method's name (see {@link transferMethodNames}). */
export type TransferMethodName = (typeof transferMethodNames)[number];
