import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { serve } from '../helpers/rawio.js';
import { defineModelSuite } from './suite.js';
import { defineUserCodeSuite } from './usercode-suite.js';

defineModelSuite('proactor');
defineUserCodeSuite('proactor');

/** One echo round trip on a fresh connection, closed after. */
function roundTrip(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => c.write('x'));
    c.once('data', () => {
      c.destroy();
      resolve();
    });
    c.once('error', reject);
  });
}

describe('proactor rings sharing one listening socket', () => {
  // Each ring's armed accept waits on the socket as an exclusive waiter, woken first in
  // line: a multishot accept never leaves the line, so the first ring armed took every
  // connection. One-shot accepts re-armed after each connection go round the rings.
  it('take sequential connections in turn, not all on the first ring', async () => {
    const server = await serve({ model: 'proactor', protocol: 'echo', port: 0, workers: 2 });
    try {
      for (let i = 0; i < 20; i++) await roundTrip(server.port);
      const accepted = server.stats().accepted;
      expect(accepted.reduce((a, b) => a + b, 0)).toBe(20);
      expect(Math.min(...accepted)).toBeGreaterThan(0);
    } finally {
      await server.close();
    }
  });
});
