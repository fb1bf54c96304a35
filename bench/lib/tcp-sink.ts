/**
 * A TCP sink in its own process, for benchmarks that send: it accepts loopback
 * connections, reads each to EOF with read(2) into one reused buffer (no per-chunk objects)
 * and reports `{ bytes }` to the parent over IPC. Being a separate process keeps its CPU
 * time and context switches out of the sender's getrusage. Run with `fork()`, optionally with
 * a comma-separated CPU list to pin itself to; it prints `{ port }` first and exits when the
 * parent disconnects.
 */
import { constants, sys } from '../../src/index.js';
import { native, type NativeWatch } from '../../src/sys/native.js';

const UV_READABLE = 1;
const EAGAIN = -constants.EAGAIN!;
const buf = Buffer.allocUnsafe(1 << 20);

function drain(fd: number, watch: NativeWatch, bytes: { n: number }): void {
  for (;;) {
    const r = sys.read(fd, buf);
    if (r > 0) {
      bytes.n += r;
      continue;
    }
    if (r === EAGAIN) return;
    watch.close();
    sys.close(fd);
    process.send!({ bytes: bytes.n, error: r < 0 ? r : 0 });
    return;
  }
}

function serveOne(fd: number): void {
  const bytes = { n: 0 };
  const watch: NativeWatch = new native.Watch(fd, () => drain(fd, watch, bytes));
  watch.start(UV_READABLE);
}

if (process.argv[2]) sys.setAffinity(process.argv[2].split(',').map(Number));

const lfd = sys.listenTcp('127.0.0.1', 0);
const lwatch = new native.Watch(lfd, () => {
  for (let fd = sys.accept(lfd); fd >= 0; fd = sys.accept(lfd)) {
    sys.setBufferSizes(fd, { recv: 4 << 20 });
    serveOne(fd);
  }
});
lwatch.start(UV_READABLE);
process.on('disconnect', () => process.exit(0));
process.send!({ port: sys.localPort(lfd) });
