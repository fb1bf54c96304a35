/**
 * Node's own servers, the "always there" anchors: node:http answering a hello, a node:net
 * echo, and node:http + node:fs serving files the idiomatic streaming way, started inside a
 * pinned child by bench/server.ts. Each counts what it saw so the scenario can check the
 * load generator's counts against the server's.
 */
import { createServer as createHttp, type Server as HttpServer } from 'node:http';
import { createServer as createNet, type AddressInfo, type Socket } from 'node:net';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { ChildServer } from '../server.js';

/** Listens on a loopback port with keep-alive held for the whole run, and wraps the server as a ChildServer. */
async function listenHttp(server: HttpServer, stats: () => object): Promise<ChildServer> {
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', 511, r));
  return {
    port: (server.address() as AddressInfo).port,
    stats,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

const HELLO = Buffer.from('hello world\n');

export async function nodeHttp(): Promise<ChildServer> {
  let requests = 0;
  const server = createHttp((_req, res) => {
    requests++;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': HELLO.length });
    res.end(HELLO);
  });
  return listenHttp(server, () => ({ requests }));
}

export async function nodeNetEcho(): Promise<ChildServer> {
  let bytes = 0;
  const sockets = new Set<Socket>();
  const server = createNet({ noDelay: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('data', (d) => {
      bytes += d.length;
      s.write(d);
    });
    s.on('error', () => s.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', 511, r));
  return {
    port: (server.address() as AddressInfo).port,
    stats: () => ({ bytes }),
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/**
 * Files from `options.root` as most Node code serves them: fs.stat for the length, then
 * fs.createReadStream(file).pipe(res) (64 KiB reads on libuv's thread pool, each chunk
 * written to the socket). Only names directly under the root; anything else is a 404.
 */
export async function nodeStatic(options: Record<string, unknown>): Promise<ChildServer> {
  const root = String(options.root);
  let requests = 0;
  const server = createHttp(async (req, res) => {
    requests++;
    const file = join(root, basename((req.url ?? '/').split('?')[0]!));
    const st = await stat(file).catch(() => null);
    if (!st?.isFile()) {
      res.writeHead(404, { 'content-length': 0 });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': st.size });
    createReadStream(file)
      .on('error', () => res.destroy())
      .pipe(res);
  });
  return listenHttp(server, () => ({ requests }));
}
