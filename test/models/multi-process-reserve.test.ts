/**
 * multi-process with `accept: 'reuseport'` on a port given: the master opens every worker
 * slot's listening socket before any worker starts, and keeps them. A connect made while
 * the workers start must be refused (before the sockets listen; the client may retry) or
 * served (queued on a slot's socket until its worker is ready); never accepted by the kernel
 * and then reset. Clients connect over and over while serve() starts, a few times.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { serve } from '../helpers/rawio.js';
import { freePort } from '../../dist/bench/lib/external.js';

/** One connect and one request: 'ok', or the code it failed with. */
function oneRequest(port: number): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => (c.destroy(), resolve('stalled')), 10_000);
    const done = (r: string) => (clearTimeout(timer), c.destroy(), resolve(r));
    c.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('Hello, World!')) done('ok');
    });
    c.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
    c.on('close', () => done(got === '' ? 'closed unanswered' : 'cut'));
    c.on('connect', () => c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  });
}

describe('multi-process reuseport: connects while the workers start', () => {
  it('are refused or served, never reset by the master', async () => {
    const tally: Record<string, number> = {};
    for (let round = 0, taken = 0; round < 3; round++) {
      const port = await freePort();
      const seen: Record<string, number> = {};
      let going = true;
      const client = async () => {
        while (going) {
          const r = await oneRequest(port);
          seen[r] = (seen[r] ?? 0) + 1;
          if (r === 'ECONNREFUSED') await new Promise((w) => setTimeout(w, 1));
        }
      };
      const clients = Array.from({ length: 4 }, client);
      const s = await serve({ model: 'multi-process', protocol: 'http', workers: 2, port }).catch((e: unknown) => {
        // The port, free a moment ago, was taken meanwhile (another test file's connection,
        // side by side, may get it as its source port): what the clients saw was not this
        // server's; the round is run again on another port.
        if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE' && ++taken < 5) return undefined;
        throw e;
      });
      if (s) await new Promise((w) => setTimeout(w, 100));
      going = false;
      await Promise.all(clients);
      if (!s) {
        round--;
        continue;
      }
      await s.close();
      for (const [k, n] of Object.entries(seen)) tally[k] = (tally[k] ?? 0) + n;
    }
    expect(tally.ok).toBeGreaterThan(0);
    expect(Object.keys(tally).filter((k) => k !== 'ok' && k !== 'ECONNREFUSED')).toEqual([]);
  }, 60_000);
});
