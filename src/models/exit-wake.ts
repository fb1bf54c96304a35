/**
 * Waking model threads when the process exits. process.exit() (or the end of the main
 * script with a server still open) stops every worker thread, but a thread blocked in a
 * native wait — a Reactor in run() mode inside epoll_wait with no timer due, such as the
 * acceptor thread of the multi-reactor models — only notices once the wait returns, and
 * Node waits for it: the process would hang instead of exiting. So a model registers the
 * eventfds its threads wait on, and the first registration adds one 'exit' listener that
 * writes to every one still registered; each thread's wait returns and the thread ends.
 */
import { EVENTFD_ONE } from '../sys/eventfd-one.js';
import { write } from '../sys/socket.js';

const fds = new Set<number>();
let listening = false;

function wakeAll(): void {
  for (const fd of fds) {
    try {
      write(fd, EVENTFD_ONE);
    } catch {
      // exiting: an eventfd that cannot be written has no thread left to wake
    }
  }
}

/** Wakes the thread(s) watching eventfd `fd` at process exit, until `forget(fd)`. */
export function wakeOnExit(fd: number): void {
  if (!listening) {
    // Installed on first use, not on import: importing rawio leaves `process` alone.
    listening = true;
    process.once('exit', wakeAll);
  }
  fds.add(fd);
}

/** The model closed `fd` (or no longer needs waking): not written at exit. */
export function forgetOnExit(fd: number): void {
  fds.delete(fd);
}
