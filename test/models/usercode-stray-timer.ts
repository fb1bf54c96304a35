/**
 * A user module that leaves a timer running from its top level (a `setInterval` never
 * cleared) keeps the event loop of every thread and process that loaded it alive. That is no
 * request's user code: close() waits for handlers still running, at most the idle timeout,
 * but not for a module's stray timers (README, "Closing a server"). With an idle timeout of
 * ten minutes and a test of one, a close() that resolves did not wait for that backstop.
 */
import { readdirSync } from 'node:fs';
import { expect, it } from 'vitest';
import { serve, type ModelName } from '../helpers/rawio.js';
import { exchange } from '../helpers/clients.js';
import { leakedSince, openFds } from '../helpers/fds.js';
import { processState } from '../helpers/procs.js';
import { eventually } from '../helpers/wait.js';

const STRAY = new URL('../fixtures/user/stray-timer.mjs', import.meta.url);
const NEVER_MS = 10 * 60_000;
const STALL_MS = 45_000;
const threads = () => readdirSync('/proc/self/task').length;

export function defineStrayTimerTests(model: ModelName): void {
  it('close() does not wait for a timer a module left running, and leaves no thread or process', async () => {
    const fds = openFds();
    const tasks = threads();
    const s = await serve({ model, workers: 2, protocol: 'http', handler: STRAY.href, idleTimeout: NEVER_MS });
    const pids = s.workerPids();
    try {
      const got = await exchange(s.port, {
        send: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
        complete: (b) => b.includes('ticking true\n'),
      });
      expect(got.toString()).toContain('ticking true\n');
    } finally {
      let closed = false;
      const stall = new Promise<void>((r) => setTimeout(r, STALL_MS).unref());
      await Promise.race([s.close().then(() => (closed = true)), stall]);
      expect(closed).toBe(true);
    }
    expect(await eventually(() => threads() <= tasks, STALL_MS)).toBe(true);
    await eventually(() => leakedSince(fds).length === 0);
    expect(leakedSince(fds)).toEqual([]);
    expect(pids.map(processState)).toEqual(pids.map(() => undefined));
  }, 60_000);
}
