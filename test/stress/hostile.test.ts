/**
 * A mixed hostile load on every model, for a bounded time (RAWIO_STRESS_HOSTILE_SECONDS,
 * default 4 per model): clients that pipeline 1 MiB RESP replies and never read, clients
 * that pipeline static GETs and never read, slowloris, QUIT-then-SET and reset clients
 * (test/stress/fixtures/hostile-mix.mjs, in its own process). Meanwhile the server's
 * resident memory and fds stay within the connection budgets, a well-behaved client keeps
 * being served (every model but iterative, which serves one client at a time), nothing
 * sent after QUIT runs, and close() leaves no fd behind.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { serve, modelNames } from '../helpers/rawio.js';
import { exchange, resp, respReplies } from '../helpers/clients.js';
import { sampler, serverFds, serverRss } from '../helpers/server-proc.js';
import { leakedSince, openFds } from '../helpers/fds.js';
import { exited } from '../helpers/procs.js';

const SECONDS = Number(process.env.RAWIO_STRESS_HOSTILE_SECONDS ?? 4);
const PER_KIND = 4;
const MiB = 1 << 20;
const fixture = fileURLToPath(new URL('./fixtures/hostile-mix.mjs', import.meta.url));

describe.each(modelNames)('hostile mixed load on %s', (model) => {
  it('keeps memory and fds bounded and serves a well-behaved client', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rawio-hostile-'));
    writeFileSync(join(root, 'a.txt'), 'hello\n');
    const before = openFds();
    // thread-per-connection caps its threads at `workers`: give every client one.
    const workers = model === 'thread-per-connection' ? 64 : 2;
    const r = await serve({ model, protocol: 'resp', workers });
    const s = await serve({ model, protocol: 'static', workers, root, headerTimeout: 1000 });
    try {
      await exchange(r.port, respReplies(resp('SET', 'big', Buffer.alloc(MiB, 120)), 1));
      const rss0 = serverRss(model);
      const fd0 = serverFds(model);
      const rss = sampler(() => serverRss(model), 20);
      const fds = sampler(() => serverFds(model), 20);
      const child = fork(fixture, [String(r.port), String(s.port), String(SECONDS), String(PER_KIND)]);
      const result = await new Promise<{ served: number; errors: number }>((res) =>
        child.once('message', (m) => res(m as { served: number; errors: number })),
      );
      await exited(child);
      const peakRss = rss.stop();
      const peakFds = fds.stop();
      const conns = PER_KIND * 5 + 1;
      console.log(
        `${model}: rss +${((peakRss - rss0) / MiB).toFixed(0)} MiB, fds +${peakFds - fd0}, ` +
          `served ${result.served}, failed ${result.errors}`,
      );
      expect(peakRss - rss0).toBeLessThan(512 * MiB);
      // Per connection: its socket (and the client's, in-process) plus its file budget; under
      // thread-per-connection also its thread's event loop (epoll, eventfds: about a dozen).
      const perThread = model === 'thread-per-connection' ? conns * 16 : 0;
      expect(peakFds - fd0).toBeLessThanOrEqual(conns * 2 + PER_KIND * 16 + 64 + perThread);
      if (model !== 'iterative') expect(result.served).toBeGreaterThan(0);
      const after = await exchange(r.port, respReplies(resp('EXISTS', 'after-quit'), 1), 30_000);
      expect(after.toString()).toBe(':0\r\n');
    } finally {
      await r.close();
      await s.close();
      rmSync(root, { recursive: true, force: true });
    }
    expect(leakedSince(before)).toEqual([]);
  });
});
