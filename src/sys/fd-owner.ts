/**
 * Which thread owns an fd that a server model opened for itself (the addon's ledger,
 * native/fd_owner.cc). A model's thread calls `ownFd` for each fd it takes charge of — a
 * connection's socket it serves, the file of a body it sends, its pipes and eventfds — and
 * closes it as always with close(2) (`native.close` or `close`), which forgets it. What the
 * thread still owns when it ends is closed then, by its environment's cleanup hook: also
 * when `Worker.terminate()` stopped it in the middle of user code (Server.close() does that to
 * a thread that user code keeps busy past the idle timeout), when no JavaScript of that thread
 * runs any more. `ownFd` on an fd that another thread owns takes it over (a socket an acceptor
 * thread hands to a reactor).
 *
 * Internal: the fds users open with rawio's syscall functions are theirs, never recorded here.
 */
import { native } from './native.js';

/** The calling thread owns `fd` from now on (until it is closed). Per accept, not per request. */
export function ownFd(fd: number): void {
  native.fdOwn(fd);
}
