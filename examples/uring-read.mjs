// Reads a file with io_uring: a Ring with `depth` reads in flight at once, each into its own
// buffer at its own offset, completions taken in whatever order the kernel finishes them,
// and the file's SHA-256 computed from the pieces in order. Where the kernel refuses
// io_uring (ENOSYS, EPERM under seccomp) it says so and exits.
// Run: node examples/uring-read.mjs [file]
import { createHash } from 'node:crypto';
import { Ring, constants as c, sys } from 'rawio';

const path = process.argv[2] ?? new URL(import.meta.url).pathname;
if (!Ring.supported()) {
  console.log('io_uring is not available here');
  process.exit(0);
}
const CHUNK = 64 << 10;
const depth = 8;
const fd = sys.open(path, c.O_RDONLY);
const ring = new Ring({ entries: 64 });
try {
  const size = sys.fstat(fd).size;
  const pieces = new Map();
  let next = 0;
  // Keeps `depth` reads in flight; each read that completes starts the next.
  const reader = async () => {
    while (next < size) {
      const offset = next;
      next += CHUNK;
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, size - offset));
      let done = 0;
      while (done < buf.length) {
        const n = await ring.read(fd, buf.subarray(done), offset + done); // a short read resumes
        if (n === 0) throw new Error('file shrank while reading');
        done += n;
      }
      pieces.set(offset, buf);
    }
  };
  await Promise.all(Array.from({ length: depth }, reader));
  const hash = createHash('sha256');
  for (let off = 0; off < size; off += CHUNK) hash.update(pieces.get(off));
  console.log(`${path}: ${size} bytes, sha256 ${hash.digest('hex')}`);
} finally {
  ring.close();
  sys.close(fd);
}
