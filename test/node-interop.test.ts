/**
 * rawio with Node's own objects: transferFile into a net.Socket and into a flushed
 * http.ServerResponse, refusing what has no usable fd (TLS, not connected, head not
 * flushed); AbortSignal on transferFile (before the call, and while a peer never reads);
 * a Connection taking over a net.Socket, bytes Node had read first; ref()/unref() on
 * Reactor, Ring and Proactor, checked by whether a child process exits.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeFiles, openRandomFiles, type TestFiles } from './helpers/files.js';
import { leakedSince, openFds } from './helpers/fds.js';
import { exited } from './helpers/procs.js';
import { eventually } from './helpers/wait.js';
import { Connection, Reactor, Ring, sys, transferFile, type TransferMethodName } from './helpers/rawio.js';
import { titled, why } from './helpers/skips.js';

const SIZE = 3 << 20;
let dir: string;
const files: TestFiles = new Map();
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rawio-node-interop-'));
  openRandomFiles(dir, [SIZE, 64 << 20], files);
});
afterAll(() => {
  closeFiles(files);
  rmSync(dir, { recursive: true, force: true });
});

/** A net.Server whose first connection is handed to `onSocket`; the client end is returned. */
async function socketPair(onSocket: (s: net.Socket) => void): Promise<{ client: net.Socket; close: () => void }> {
  // Resets at teardown are expected here (a peer destroyed mid-transfer): not test failures.
  const server = net.createServer((s) => {
    s.on('error', () => {});
    onSocket(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => {});
  await once(client, 'connect');
  return { client, close: () => server.close() };
}

function collect(s: net.Socket, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  return new Promise((resolve, reject) => {
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= bytes) resolve(Buffer.concat(chunks));
    });
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

describe('transferFile with Node sockets', () => {
  it.each(['sendfile', 'readwrite', 'splice'] as TransferMethodName[])(
    'sends into a net.Socket by %s, byte-exact',
    async (method) => {
      const file = files.get(SIZE)!;
      let sent: Promise<number> | undefined;
      const { client, close } = await socketPair((s) => {
        sent = transferFile(s, file.fd, { method }).finally(() => s.end());
      });
      const got = await collect(client, SIZE);
      expect(await sent).toBe(SIZE);
      expect(got.equals(file.data)).toBe(true);
      client.destroy();
      close();
    },
  );

  it('sends a body into an http.ServerResponse once its head is flushed', async () => {
    const file = files.get(SIZE)!;
    const errors: unknown[] = [];
    const server = http.createServer((req, res) => {
      if (req.url === '/early') {
        // Before the head is flushed: refused, since the body would precede the status line.
        transferFile(res, file.fd, { method: 'sendfile' }).catch((e: unknown) => {
          errors.push(e);
          res.end('refused');
        });
        return;
      }
      res.writeHead(200, { 'Content-Length': String(SIZE), 'X-Rawio': 'yes' });
      res.flushHeaders();
      transferFile(res, file.fd, { method: 'sendfile' }).then(
        () => res.end(),
        (e: unknown) => res.destroy(e as Error),
      );
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    try {
      const r = await fetch(`http://127.0.0.1:${port}/file`);
      expect(r.status).toBe(200);
      expect(r.headers.get('x-rawio')).toBe('yes');
      expect(Buffer.from(await r.arrayBuffer()).equals(file.data)).toBe(true);
      const early = await fetch(`http://127.0.0.1:${port}/early`);
      expect(await early.text()).toBe('refused');
      expect(errors[0]).toBeInstanceOf(TypeError);
      expect(String(errors[0])).toMatch(/head is not flushed/);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('refuses a TLS socket, an unconnected socket and a destroyed one, clearly', async () => {
    const fd = files.get(SIZE)!.fd;
    const tlsSocket = new tls.TLSSocket(new net.Socket());
    await expect(transferFile(tlsSocket, fd, { method: 'sendfile' })).rejects.toThrow(/TLS.*bypass the encryption/);
    await expect(transferFile(new net.Socket(), fd, { method: 'sendfile' })).rejects.toThrow(/no usable fd/);
    const { client, close } = await socketPair((s) => s.destroy());
    client.destroy();
    await expect(transferFile(client, fd, { method: 'sendfile' })).rejects.toThrow(/destroyed/);
    await expect(transferFile({} as net.Socket, fd, { method: 'sendfile' })).rejects.toThrow(TypeError);
    tlsSocket.destroy();
    close();
  });
});

describe('transferFile with an AbortSignal', () => {
  it('rejects with AbortError when aborted before the call', async () => {
    const [a, b] = sys.socketpair();
    const ac = new AbortController();
    ac.abort();
    const e = await transferFile(a, files.get(SIZE)!.fd, { method: 'sendfile', signal: ac.signal }).catch((x) => x);
    expect(e).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    expect(sys.read(b, Buffer.alloc(16))).toBeLessThan(0); // nothing was sent
    sys.close(a);
    sys.close(b);
  });

  const abortable: TransferMethodName[] = ['sendfile', 'readwrite', 'splice', 'mmap'];
  if (Ring.supported()) abortable.push('uring');
  it.each(abortable)('rejects with AbortError while waiting on a peer that never reads (%s)', async (method) => {
    const before = openFds();
    const [a, b] = sys.socketpair();
    const ac = new AbortController();
    const big = files.get(64 << 20)!;
    const p = transferFile(a, big.fd, { method, signal: ac.signal });
    // The socket buffer fills and the transfer waits for writability; then abort.
    await new Promise((r) => setTimeout(r, 50));
    ac.abort(new Error('stop'));
    const e = await p.catch((x: unknown) => x);
    expect(e).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    expect((e as Error).cause).toEqual(new Error('stop'));
    sys.close(a);
    sys.close(b);
    // Pooled pipes and the thread's shared transfer ring (made on first use) stay open.
    const kept = /pipe|io_uring|eventfd/;
    expect(leakedSince(before).filter((l) => !kept.test(l))).toEqual([]);
  });

  it('rejects with AbortError on a net.Socket whose peer never reads', async () => {
    const ac = new AbortController();
    let p: Promise<number> | undefined;
    const { client, close } = await socketPair((s) => {
      p = transferFile(s, files.get(64 << 20)!.fd, { method: 'sendfile', signal: ac.signal });
    });
    client.pause();
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    await expect(p).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    client.destroy();
    close();
  });

  // What Node queued goes out first: a peer that never reads holds that wait, which must
  // still end on an abort, and on the socket closing.
  it.each(['abort', 'reset'])("ends the wait for Node's queue to drain on %s", async (how) => {
    const ac = new AbortController();
    let settled: unknown;
    let queued = 0;
    const { client, close } = await socketPair((s) => {
      s.write(Buffer.alloc(32 << 20));
      queued = s.writableLength;
      transferFile(s, files.get(SIZE)!.fd, { method: 'sendfile', signal: ac.signal }).then(
        (n) => (settled = n),
        (e: unknown) => (settled = e),
      );
    });
    client.pause();
    expect(await eventually(() => queued > 0)).toBe(true);
    if (how === 'abort') ac.abort();
    else client.resetAndDestroy();
    expect(await eventually(() => settled !== undefined)).toBe(true);
    if (how === 'abort') expect(settled).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    else expect(settled).toMatchObject({ code: expect.stringMatching(/^(ECONNRESET|EPIPE)$/) });
    client.destroy();
    close();
  });

  // Node emits 'drain' only after a write that returned false: a small write held by cork()
  // (or by a full kernel buffer) is flushed without one, and the transfer must still go on.
  it('sends after a small write Node held back, once it is written', async () => {
    const file = files.get(SIZE)!;
    let settled: unknown;
    const { client, close } = await socketPair((s) => {
      s.cork();
      s.write('head:');
      transferFile(s, file.fd, { method: 'sendfile' }).then(
        (n) => {
          settled = n;
          s.end();
        },
        (e: unknown) => (settled = e),
      );
      setImmediate(() => s.uncork());
    });
    const got = collect(client, 5 + SIZE);
    expect(await eventually(() => settled !== undefined)).toBe(true);
    expect(settled).toBe(SIZE);
    expect((await got).equals(Buffer.concat([Buffer.from('head:'), file.data]))).toBe(true);
    client.destroy();
    close();
  });

  it('refuses a signal that is not an AbortSignal', async () => {
    const signal = { aborted: false } as AbortSignal;
    await expect(transferFile(0, 0, { method: 'sendfile', signal })).rejects.toThrow(TypeError);
  });
});

describe('Connection over a net.Socket', () => {
  it('takes the socket over: bytes Node had read arrive first, then the rest, echoed', async () => {
    const reactor = new Reactor({ backend: 'epoll' });
    reactor.attach();
    let conn: Connection | undefined;
    const { client, close } = await socketPair((s) => {
      s.pause();
      // Wait until Node has read the client's first bytes into its own buffer.
      s.once('readable', () => {
        conn = new Connection(reactor, s, {
          onData: (chunk) => {
            conn!.write(chunk);
          },
        });
        client.write('world');
      });
    });
    client.write('hello ');
    const got = await new Promise<string>((resolve) => {
      let text = '';
      client.on('data', (d: Buffer) => {
        text += d.toString();
        if (text.length >= 11) resolve(text);
      });
    });
    expect(got).toBe('hello world');
    expect(conn!.fd).toBeGreaterThan(2);
    conn!.destroy();
    client.destroy();
    close();
    reactor.close();
  });

  it('takes over a flushed http.ServerResponse and writes the body itself', async () => {
    const reactor = new Reactor({ backend: 'epoll' });
    reactor.attach();
    const server = http.createServer((req, res) => {
      res.writeHead(200, { Connection: 'close', 'Content-Length': '23' });
      res.flushHeaders();
      setImmediate(() => {
        const c = new Connection(reactor, res);
        c.write(Buffer.from('from a rawio Connection'));
        c.end();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const r = await fetch(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`);
      expect(r.status).toBe(200);
      expect(await r.text()).toBe('from a rawio Connection');
    } finally {
      server.close();
      reactor.close();
    }
  });

  it('refuses a socket without a usable fd', () => {
    const reactor = new Reactor({ backend: 'epoll' });
    expect(() => new Connection(reactor, new net.Socket())).toThrow(/no usable fd/);
    expect(() => new Connection(reactor, 'x' as unknown as number)).toThrow(TypeError);
    reactor.close();
  });
});

describe.each([
  ['reactor', undefined],
  ['ring', why.ring],
  ['proactor', why.ring],
])('%s ref()/unref()', (kind, needs) => {
  const child = new URL('./fixtures/unref-child.mjs', import.meta.url).pathname;
  it.skipIf(needs)(titled('an unref()ed attached handle lets the process exit', needs), async () => {
    const p = spawn(process.execPath, [child, kind], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    // Its last line ('exited') is written as it exits: wait for stdout's end, not 'exit'.
    expect(await exited(p)).toBe(0);
    expect(out).toContain(`${kind} waiting, hasRef=false`);
    expect(out).toContain('exited');
  });

  it.skipIf(needs)(titled('ref() after unref() keeps it alive again', needs), async () => {
    const p = spawn(process.execPath, [child, kind, 'ref'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise<void>((resolve) => p.stdout.on('data', () => out.includes('waiting') && resolve()));
    await new Promise((r) => setTimeout(r, 300));
    expect(p.exitCode).toBe(null); // still running: the handle holds the loop
    p.kill('SIGKILL');
    await once(p, 'exit');
    expect(out).toContain('hasRef=true');
    expect(out).not.toContain('exited');
  });
});
