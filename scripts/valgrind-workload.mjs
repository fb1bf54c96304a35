// A representative rawio workload for valgrind memcheck (npm run test:valgrind): every
// native family once — sockets and the three multiplexers, files and the zero-copy calls,
// aligned buffers and mmap, the io_uring ring, the keyspace — small enough to finish under
// valgrind's ~50x slowdown. Exits non-zero if anything it checks is wrong.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Epoll, Keyspace, PollSet, Ring, SelectSet, constants as c, sys } from '../dist/src/index.js';

const assert = (ok, what) => {
  if (!ok) throw new Error(`valgrind workload: ${what}`);
};
const dir = mkdtempSync(join(tmpdir(), 'rawio-vg-'));
try {
  // multiplexers over a socketpair
  const [a, b] = sys.socketpair();
  for (const P of [Epoll, PollSet, SelectSet]) {
    const p = new P();
    p.add(a, c.EPOLLIN);
    sys.write(b, Buffer.from('x'));
    const out = new Int32Array(8);
    assert(p.wait(out, 100) === 1 && out[0] === a, `${P.name} readiness`);
    sys.read(a, Buffer.alloc(1));
    p.close();
  }
  // files, sendfile, splice, mmap, aligned buffers
  const data = Buffer.alloc(1 << 16, 7);
  writeFileSync(join(dir, 'f'), data);
  const fd = sys.open(join(dir, 'f'), c.O_RDONLY);
  const buf = sys.alignedBuffer(4096);
  assert(sys.pread(fd, buf, 0, 4096, 0) === 4096, 'pread');
  const map = sys.mmap(fd, 0, data.length);
  assert(createHash('sha1').update(map).digest('hex') === createHash('sha1').update(data).digest('hex'), 'mmap');
  sys.munmap(map);
  assert(sys.sendfile(b, fd, 0, 1000) === 1000, 'sendfile');
  sys.read(a, Buffer.alloc(1000));
  const [pr, pw] = sys.pipe();
  assert(sys.splice(fd, 0, pw, null, 500) === 500, 'splice');
  assert(sys.splice(pr, null, b, null, 500) === 500, 'splice out');
  for (const x of [pr, pw, a, b]) sys.close(x);
  // the ring
  if (Ring.supported()) {
    const ring = new Ring({ entries: 8 });
    const rb = Buffer.alloc(4096);
    assert((await ring.read(fd, rb, 0)) === 4096, 'ring read');
    await ring.nop();
    ring.close();
  }
  sys.close(fd);
  // the keyspace
  const ks = Keyspace.create(undefined, { size: 1 << 16 });
  assert(ks.set(Buffer.from('k'), Buffer.from('v')) === 1, 'keyspace set');
  assert(ks.get(Buffer.from('k'), Buffer.alloc(4)) === 1, 'keyspace get');
  ks.close();
  console.log('valgrind workload: ok');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
