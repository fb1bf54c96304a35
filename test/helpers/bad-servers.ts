/**
 * Servers that fail a client in the ways real ones do, on loopback in this process: one that
 * accepts and never answers, one that closes or resets every connection right after accept,
 * one that answers bytes no protocol frames, one that answers only its first connections,
 * and one that answers a number of requests and then goes away (its listener closed, its
 * connections closed, as when its process dies).
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface BadServer {
  port: number;
  /** Requests answered (the HTTP ones). */
  answered: () => number;
  close(): Promise<void>;
}

async function listen(server: Server | HttpServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function closer(server: Server, sockets: Set<Socket>): () => Promise<void> {
  return () => {
    for (const s of sockets) s.destroy();
    return new Promise((resolve) => server.close(() => resolve()));
  };
}

const HELLO = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

/**
 * `silent`: reads and never answers; `close`: closes each connection at accept; `reset`:
 * resets each at accept; `garbage`: answers each read with bytes that are neither HTTP nor
 * RESP; `first-2`: answers HTTP on its first two connections and nothing on the others.
 */
export async function badServer(kind: 'silent' | 'close' | 'reset' | 'garbage' | 'first-2'): Promise<BadServer> {
  const sockets = new Set<Socket>();
  let answered = 0;
  let accepted = 0;
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    if (kind === 'close') s.end();
    else if (kind === 'reset') s.resetAndDestroy();
    else if (kind === 'garbage') s.on('data', () => s.write('%garbage, not a reply\r\n\r\n'));
    else if (kind === 'first-2') {
      // counted at their first request: a connection that sends none (a probe) is not one
      let index = -1;
      let buf = '';
      s.on('data', (d) => {
        if (index < 0) index = accepted++;
        if (index >= 2) return;
        buf += String(d);
        for (let at = buf.indexOf('\r\n\r\n'); at >= 0; at = buf.indexOf('\r\n\r\n')) {
          buf = buf.slice(at + 4);
          answered++;
          s.write(HELLO);
        }
      });
    }
  });
  const port = await listen(server);
  return { port, answered: () => answered, close: closer(server, sockets) };
}

/**
 * An HTTP server that answers `count` requests and then goes away: it stops listening
 * (connects are refused) and closes every connection, the requests in flight unanswered.
 */
export async function dyingServer(count: number): Promise<BadServer & { gone: Promise<void> }> {
  let answered = 0;
  let dead = false;
  let died!: () => void;
  const gone = new Promise<void>((resolve) => (died = resolve));
  const server = createHttpServer({ keepAliveTimeout: 60_000 }, (_req, res) => {
    if (dead) return;
    if (answered >= count) {
      dead = true;
      server.close(() => died());
      server.closeAllConnections();
      return;
    }
    answered++;
    res.end('ok');
  });
  server.on('clientError', (_e, s) => s.destroy());
  const port = await listen(server);
  return {
    port,
    gone,
    answered: () => answered,
    close: () => {
      if (dead) return gone;
      dead = true;
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
