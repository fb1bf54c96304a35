/**
 * The connection limits as serve() options: checked up front (TypeError / RangeError), and
 * each one acting on the wire with a value other than its default.
 */
import { describe, expect, it } from 'vitest';
import { serve, resolveServeOptions } from '../helpers/rawio.js';
import { exchange, resp, respReplies } from '../helpers/clients.js';

describe('connection limit options', () => {
  it('refuses bad values before anything starts', () => {
    const keys = [
      'maxInFlight',
      'maxOutput',
      'maxFiles',
      'headerTimeout',
      'idleTimeout',
      'minRequestRate',
      'maxRequest',
    ];
    for (const key of keys) {
      expect(() => resolveServeOptions({ model: 'single', protocol: 'http', [key]: 0 })).toThrow(RangeError);
      expect(() => resolveServeOptions({ model: 'single', protocol: 'http', [key]: '1' as never })).toThrow(TypeError);
    }
    expect(() => resolveServeOptions({ model: 'single', protocol: 'http', maxHeader: 70_000 })).toThrow(RangeError);
    const r = resolveServeOptions({ model: 'single', protocol: 'http' });
    expect([r.maxInFlight, r.maxOutput, r.maxFiles, r.headerTimeout, r.idleTimeout, r.minRequestRate]).toEqual([
      1024,
      1 << 20,
      16,
      10_000,
      30_000,
      16_384,
    ]);
  });

  it('maxHeader and maxRequest reach the protocols: 431, 413 and a RESP protocol error', async () => {
    const http = await serve({ model: 'single', protocol: 'http', maxHeader: 256, maxRequest: 100 });
    const resp2 = await serve({ model: 'worker-pool', protocol: 'resp', workers: 1, maxRequest: 100 });
    try {
      const long = await exchange(http.port, {
        send: Buffer.from(`GET / HTTP/1.1\r\nHost: x\r\nX-Long: ${'a'.repeat(300)}\r\n\r\n`),
        complete: () => false,
      });
      expect(long.toString()).toMatch(/^HTTP\/1\.1 431/);
      const big = await exchange(http.port, {
        send: Buffer.from(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n${'b'.repeat(101)}`),
        complete: () => false,
      });
      expect(big.toString()).toMatch(/^HTTP\/1\.1 413/);
      const ok = await exchange(resp2.port, respReplies(resp('SET', 'k', 'v'.repeat(50)), 1));
      expect(ok.toString()).toBe('+OK\r\n');
      const refused = await exchange(resp2.port, { send: resp('SET', 'k', 'v'.repeat(200)), complete: () => false });
      expect(refused.toString()).toMatch(/^-ERR Protocol error/);
    } finally {
      await http.close();
      await resp2.close();
    }
  });
});
