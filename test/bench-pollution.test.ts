/**
 * The pollution scenario's preflight (bench/scenarios/pollution.ts over
 * bench/lib/whole-reply.ts): it must wait for a large body that arrives slowly — on a
 * loaded machine an O_DIRECT read of a 128 MiB file takes seconds, and a fixed deadline
 * once reported such a server as "headers and no body" — yet still catch a server that
 * stalls, closes early or sends the wrong bytes, and say how many bytes did arrive. Then
 * the real thing: `single` static servers in both of the scenario's modes, several large
 * and small files fetched at once, every byte checked.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { serve } from '../dist/src/index.js';
import { fetchWhole } from '../dist/bench/lib/whole-reply.js';
import { preflight, writeFiles } from '../dist/bench/scenarios/pollution.js';

/** A one-reply HTTP server whose body is written by `send`. */
async function rawServer(send: (sock: Socket) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const socks = new Set<Socket>();
  const srv: NetServer = createServer((sock) => {
    socks.add(sock);
    sock.on('error', () => {});
    sock.once('data', () => send(sock));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  return {
    port,
    close: () => {
      for (const s of socks) s.destroy();
      return new Promise((r) => srv.close(() => r()));
    },
  };
}

const head = (length: number) => `HTTP/1.1 200 OK\r\nContent-Length: ${length}\r\n\r\n`;

/** Writes `total` bytes of `fill` in `slices` pieces, `gapMs` apart. */
function slowly(sock: Socket, total: number, slices: number, gapMs: number, fill = 97): void {
  const piece = Math.ceil(total / slices);
  let sent = 0;
  const next = () => {
    if (sock.destroyed || sent >= total) return;
    const n = Math.min(piece, total - sent);
    sock.write(Buffer.alloc(n, fill));
    sent += n;
    setTimeout(next, gapMs);
  };
  next();
}

describe('fetchWhole', () => {
  it('waits for a body that keeps arriving, however long it takes in all', async () => {
    // 3 s in all, longer than the 2.5 s the preflight once allowed; never 1 s without a byte
    const srv = await rawServer((sock) => {
      sock.write(head(4 << 20));
      slowly(sock, 4 << 20, 12, 250);
    });
    try {
      const r = await fetchWhole({ port: srv.port, path: '/large', fill: 97, stallMs: 1000 });
      expect(r).toEqual({ failure: null, status: 200, contentLength: 4 << 20, bodyBytes: 4 << 20 });
    } finally {
      await srv.close();
    }
  });

  it('reports a stall after the headers with the bytes that did arrive', async () => {
    const srv = await rawServer((sock) => sock.write(head(1 << 20) + 'a'.repeat(1000)));
    try {
      const r = await fetchWhole({ port: srv.port, path: '/large', stallMs: 300 });
      expect(r.failure).toMatch(/nothing for 0.3 s after status 200, Content-Length 1048576, 1000 body bytes/);
      expect(r.bodyBytes).toBe(1000);
    } finally {
      await srv.close();
    }
  });

  it('reports a server that closes after the headers, and one that sends no header', async () => {
    const closes = await rawServer((sock) => sock.end(head(4096)));
    const silent = await rawServer((sock) => sock.end('HTTP/1.1 200'));
    try {
      const a = await fetchWhole({ port: closes.port, path: '/x' });
      expect(a.failure).toMatch(/closed the connection after status 200, Content-Length 4096, 0 body bytes/);
      const b = await fetchWhole({ port: silent.port, path: '/x' });
      expect(b.failure).toMatch(/no complete header \(12 bytes\)/);
    } finally {
      await closes.close();
      await silent.close();
    }
  });

  it('catches a body of the right length with a wrong byte in it', async () => {
    const srv = await rawServer((sock) => {
      const body = Buffer.alloc(200_000, 97);
      body[150_001] = 0;
      sock.write(head(body.length));
      sock.write(body);
    });
    try {
      const r = await fetchWhole({ port: srv.port, path: '/x', fill: 97 });
      expect(r.failure).toMatch(/body byte 150001 is not 97/);
    } finally {
      await srv.close();
    }
  });
});

describe("pollution preflight against the scenario's servers", () => {
  const root = mkdtempSync(join(process.cwd(), '.rawio-test-pollution-'));
  writeFiles(root, { large: 1, largeMiB: 16, small: 4, smallKiB: 4 });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  for (const [mode, opts] of [
    ['buffered', { transfer: 'sendfile' }],
    ['direct', { transfer: 'auto', directio: 1 << 20 }],
  ] as const) {
    it(`${mode}: every file arrives whole, also with large and small fetched at once`, async () => {
      const server = await serve({ model: 'single', protocol: 'static', root, ...opts });
      try {
        expect(await preflight(server)).toBeNull();
        const fetches = [
          ...Array.from({ length: 3 }, () => fetchWhole({ port: server.port, path: '/large-0.bin', fill: 97 })),
          ...Array.from({ length: 8 }, (_, i) =>
            fetchWhole({ port: server.port, path: `/small-${i % 4}.txt`, fill: 98 }),
          ),
        ];
        for (const r of await Promise.all(fetches)) expect(r.failure).toBeNull();
      } finally {
        await server.close();
      }
    });
  }
});
