/**
 * 1 000 000 HTTP requests through the `single` model, driven by rawio's native load
 * generator: after a 100 000-request warm-up (JIT, buffers, the heap at its working size)
 * the process's RSS grows by less than RSS_BOUND over the next million requests, and the fd
 * table is exactly as it was — no per-request leak of memory or descriptors.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { serve } from '../helpers/rawio.js';
import { loadgen } from '../../dist/bench/loadgen.js';
import { leakedSince, openFds } from '../helpers/fds.js';

const TOTAL = Number(process.env.RAWIO_STRESS_REQUESTS ?? 1_000_000);
/** The growth allowed: a leak of even 64 bytes a request would show as 61 MiB. */
const RSS_BOUND = 48 << 20;

function rss(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(m![1]) * 1024;
}

async function drive(port: number, requests: number): Promise<{ served: number; errors: number }> {
  let served = 0;
  let errors = 0;
  while (served < requests) {
    const r = await loadgen({ port, protocol: 'http', connections: 64, pipeline: 4, durationMs: 1500, drainMs: 500 });
    served += r.requests;
    errors += r.errors.connect + r.errors.reset + r.errors.badReply + r.errors.errorReply + r.errors.lost;
    if (r.requests === 0) break;
  }
  return { served, errors };
}

describe('single/http under a million requests', () => {
  it(`serves ${TOTAL} requests with bounded RSS and no fd growth`, async () => {
    const server = await serve({ model: 'single', protocol: 'http' });
    try {
      const warm = await drive(server.port, 100_000);
      expect(warm.errors).toBe(0);
      global.gc?.();
      const fds = openFds();
      const rss0 = rss();
      const run = await drive(server.port, TOTAL);
      global.gc?.();
      const rss1 = rss();
      expect(run.errors).toBe(0);
      expect(run.served).toBeGreaterThanOrEqual(TOTAL);
      const end = Date.now() + 5000;
      while (server.stats().connections > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      expect(leakedSince(fds)).toEqual([]);
      console.log(
        `single/http: ${run.served} requests after ${warm.served} warm-up; RSS ${(rss0 / 2 ** 20).toFixed(1)} -> ` +
          `${(rss1 / 2 ** 20).toFixed(1)} MiB (bound +${RSS_BOUND / 2 ** 20} MiB)`,
      );
      expect(rss1 - rss0).toBeLessThan(RSS_BOUND);
    } finally {
      await server.close();
    }
  }, 240_000);
});
