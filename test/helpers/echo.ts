/**
 * Echo-server pieces for the loop tests: an echo server on a Reactor (accept until EAGAIN,
 * echo with backpressure), and node:net clients that check every byte comes back.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Connection, Reactor, constants as c, sys } from './rawio.js';

export interface EchoServer {
  port: number;
  conns: Set<Connection>;
  accepted: number;
  close(): void;
}

export function echoServer(reactor: Reactor, opts: { maxQueue?: number; pause?: boolean } = {}): EchoServer {
  const lfd = sys.listenTcp('127.0.0.1', 0);
  const server: EchoServer = {
    port: sys.localPort(lfd),
    conns: new Set(),
    accepted: 0,
    close() {
      for (const conn of this.conns) conn.destroy();
      reactor.unwatch(lfd);
      sys.close(lfd);
    },
  };
  reactor.watch(lfd, c.EPOLLIN, () => {
    for (let fd = sys.accept(lfd); fd >= 0; fd = sys.accept(lfd)) {
      server.accepted++;
      const conn: Connection = new Connection(reactor, fd, {
        maxQueue: opts.maxQueue,
        onData: (chunk) => {
          if (!conn.write(chunk) && opts.pause !== false) conn.pause();
        },
        onDrain: () => conn.resume(),
        onClose: () => server.conns.delete(conn),
      });
      server.conns.add(conn);
    }
  });
  return server;
}

/** One client: sends `size` random bytes in pieces, half-closes, resolves true when all came back. */
export function echoClient(port: number, size: number): Promise<boolean> {
  const payload = randomBytes(size);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => {
      for (let off = 0; off < size; off += 4096) s.write(payload.subarray(off, off + 4096));
      s.end();
    });
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', reject);
    s.on('end', () => resolve(Buffer.concat(chunks).equals(payload)));
  });
}

export async function manyClients(port: number, n: number, size: number): Promise<number> {
  const results = await Promise.all(Array.from({ length: n }, () => echoClient(port, size)));
  return results.filter(Boolean).length;
}
