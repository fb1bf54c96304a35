/**
 * The bench's accounting: the figures a scenario computes from what it measured, checked
 * against real runs — a rate is its units over the seconds they came in, never the units of
 * a whole run (warm-up, drain, reads still queued) over the nominal window.
 */
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { loadgen } from '../dist/src/loadgen/index.js';
import { sampleOf } from '../dist/bench/scenarios/pollution.js';

/** An HTTP server that answers every GET with a `size`-byte body. */
function bodyServer(size: number): Server {
  const reply = Buffer.concat([
    Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`),
    Buffer.alloc(size, 0x61),
  ]);
  return createServer({ noDelay: true }, (s) => {
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (let m = /^GET [^]*?\r\n\r\n/.exec(buf); m; m = /^GET [^]*?\r\n\r\n/.exec(buf)) {
        buf = buf.slice(m[0].length);
        s.write(reply);
      }
    });
    s.on('error', () => s.destroy());
  });
}

describe('pollution: the large streams’ MB/s', () => {
  it('is the bytes read inside the window over its seconds, not the warm-up’s and the drain’s too', async () => {
    const server = bodyServer(1 << 20);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      // the warm-up streams as much as the window: a rate of every byte over the window doubles
      const r = await loadgen({
        port,
        protocol: 'http',
        path: '/large.bin',
        connections: 1,
        warmupMs: 200,
        durationMs: 200,
        drainMs: 2000,
      });
      expect(r.bytesInWindow).toBeGreaterThan(0);
      expect(r.bytesIn).toBeGreaterThan(r.bytesInWindow); // the warm-up's bytes are not the window's
      const s = sampleOf([r], []);
      expect(s.excluded).toBeUndefined();
      expect(s.largeMBps).toBeCloseTo(r.bytesInWindow / r.seconds / 1e6, 9);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
