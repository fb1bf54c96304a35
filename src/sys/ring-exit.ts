/**
 * The rings with operations in flight, and what happens to them when the thread exits.
 * A buffer handed to the kernel is written until its completion is posted: a read punted to
 * io-wq, or an O_DIRECT read in the block layer, can land after Node has freed the buffer's
 * memory at exit, and corrupt the heap the process is still tearing down. So the first ring
 * to become busy adds one 'exit' listener, which closes every ring still busy: close()
 * cancels what it can and waits for the kernel's last completion before anything is freed.
 */

/** Rings with operations in flight: kept reachable so their buffers cannot be collected. */
export class BusyRings<R> extends Set<R> {
  private listening = false;

  /** `close` closes one ring, waiting for the kernel to finish with its buffers. */
  constructor(private readonly close: (ring: R) => void) {
    super();
  }

  override add(ring: R): this {
    if (!this.listening) {
      // Installed on first use, not on import: importing rawio leaves `process` alone.
      this.listening = true;
      process.once('exit', () => this.closeAll());
    }
    return super.add(ring);
  }

  private closeAll(): void {
    for (const ring of [...this]) {
      try {
        this.close(ring);
      } catch {
        // exiting: a ring that cannot close has nothing left for us to wait on
      }
    }
  }
}
