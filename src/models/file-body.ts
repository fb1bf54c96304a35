/**
 * A reply's file body, sent on the connection's socket with the model's transfer options.
 * The reactor sessions (session.ts) and the blocking ones (blocking-session.ts) share it;
 * they differ only in how they wait for the socket to take more.
 */
import type { Reply } from '../protocols/protocol.js';
import { sendsInKernel, transferFile } from '../transfer/index.js';
import type { MmapTransferOptions } from '../transfer/mmap-options.js';

/** How a model sends file bodies (ServeOptions' transfer, directio and mmap). */
export interface FileBodyOptions {
  /** transferFile's method. */
  transfer: string;
  /** The size from which `auto` reads with O_DIRECT through io_uring. */
  directio: number;
  /** The `mmap` transfer's options (MAP_POPULATE, madvise, reused mappings). */
  mmap?: MmapTransferOptions;
}

/** One connection's file bodies: at most one in flight, which abort() stops. */
export class FileBodySender {
  /**
   * Aborted when the connection is done. One for the connection, made with its first body
   * and given to every body after it: a body that never waits for writability (a client
   * that reads as fast as it is sent to) goes on only through the transfer's yields to the
   * event loop, and this signal is all that stops it there.
   */
  #done: AbortController | undefined;
  /** abort() ran before any body: the controller, once made, starts aborted. */
  #aborted = false;
  #inKernel = false;

  /** `onSent` gets the bytes of each send the kernel takes: the client's progress. */
  constructor(
    private readonly opts: FileBodyOptions,
    private readonly onSent: (bytes: number) => void,
  ) {}

  /**
   * Whether a send the kernel holds with the socket is in flight (the uring and direct
   * methods): closing the fd alone would not end it, shutdown(2) does.
   */
  get inKernel(): boolean {
    return this.#inKernel;
  }

  /** Sends `file` on `socket`; `wait` resolves when the socket may take more (after EAGAIN). */
  async send(socket: number, file: NonNullable<Reply['file']>, wait: () => Promise<void>): Promise<number> {
    const { transfer: method, directio, mmap } = this.opts;
    if (this.#done === undefined) {
      this.#done = new AbortController();
      if (this.#aborted) this.#done.abort();
    }
    this.#inKernel = sendsInKernel(method, file.length, directio);
    try {
      return await transferFile(socket, file.fd, {
        offset: file.offset,
        length: file.length,
        method: method as 'auto',
        directio,
        mmap,
        signal: this.#done.signal,
        wait,
        onSent: this.onSent,
      });
    } finally {
      this.#inKernel = false;
    }
  }

  /**
   * The connection is done: a body in flight submits nothing more to this fd number, which
   * the kernel may give to another client at once (nor does a body sent after this).
   */
  abort(): void {
    // A connection that never sent a body (most: echo, http, resp) makes no controller here.
    this.#aborted = true;
    this.#done?.abort();
    this.#inKernel = false;
  }
}
