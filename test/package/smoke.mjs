// A small rawio program run by test/package/package.test.ts inside a fresh project that installed
// the packed tarball: it shows that the installed package loads its prebuilt addon and does
// real I/O. It grows with the API: each family is used when the package exports it (Epoll,
// sys.sendfile, Ring), and the report says which ones ran. Prints one JSON line.
import { mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as rawio from 'rawio';

const { sys, constants } = rawio;
const ran = [];
const payload = Buffer.from('rawio from a packed tarball\n');

// Sockets: a listening socket on an ephemeral loopback port.
const lfd = sys.listenTcp('127.0.0.1', 0);
const port = sys.localPort(lfd);
sys.close(lfd);
ran.push('listenTcp');

// A pipe and an eventfd: write, then read back what was written.
const [r, w] = sys.pipe();
if (sys.write(w, payload) !== payload.length) throw new Error('pipe write');
const back = Buffer.alloc(payload.length);
if (sys.read(r, back) !== payload.length || !back.equals(payload)) throw new Error('pipe read');
ran.push('pipe');

const efd = sys.eventfd(0);
const one = Buffer.alloc(8);
one.writeBigUInt64LE(1n);
if (sys.write(efd, one) !== 8) throw new Error('eventfd write');
ran.push('eventfd');

// Epoll: the eventfd is readable now.
if (typeof rawio.Epoll === 'function') {
  const ep = new rawio.Epoll();
  ep.add(efd, constants.EPOLLIN);
  const out = new Int32Array(8);
  const n = ep.wait(out, 1000);
  if (n !== 1 || out[0] !== efd) throw new Error(`epoll wait: ${n} [${out[0]}, ${out[1]}]`);
  ep.close();
  ran.push('Epoll');
}

// sendfile: a file's bytes into the pipe without passing through JavaScript.
const dir = mkdtempSync(join(tmpdir(), 'rawio-smoke-'));
try {
  const path = join(dir, 'data');
  writeFileSync(path, payload);
  if (typeof sys.sendfile === 'function') {
    const ffd = openSync(path, 'r');
    const sent = sys.sendfile(w, ffd, 0, payload.length);
    closeSync(ffd);
    const got = Buffer.alloc(payload.length);
    if (sent !== payload.length || sys.read(r, got) !== sent || !got.equals(payload)) throw new Error('sendfile');
    ran.push('sendfile');
  }

  // The Ring, where the kernel allows io_uring: read the file back through it.
  if (typeof rawio.Ring === 'function' && rawio.Ring.supported()) {
    const ring = new rawio.Ring({ entries: 8 });
    const ffd = openSync(path, 'r');
    const got = Buffer.alloc(payload.length);
    const n = await ring.read(ffd, got, 0);
    closeSync(ffd);
    ring.close();
    if (n !== payload.length || !got.equals(payload)) throw new Error('ring read');
    ran.push('Ring');
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

for (const fd of [r, w, efd]) sys.close(fd);
console.log(JSON.stringify({ ok: true, port, ran }));
