/**
 * process.exit() with a server open, on every model: the process ends. A model thread
 * blocked in a native wait (epoll_wait with no timer due, a ring's wait, a blocking
 * accept or read) would otherwise keep Node waiting for it at exit, and the process would
 * hang for good (reactor-group.ts wakes its threads at exit). Every model runs at once, each in a child process of its
 * own, with a connected client; a child still there after a minute is a hang, not a slow
 * machine.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { modelNames } from '../helpers/rawio.js';

const fixture = fileURLToPath(new URL('./fixtures/exit-while-serving.mjs', import.meta.url));

function exitOf(model: string): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  const child = spawn(process.execPath, [fixture, model], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const hung = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.once('close', (code, signal) => {
      clearTimeout(hung);
      resolve({ code, signal, stderr });
    }),
  );
}

describe('process.exit() with a server open', () => {
  it('ends the process on every model', async () => {
    const results = await Promise.all(modelNames.map(async (m) => [m, await exitOf(m)] as const));
    for (const [model, r] of results) {
      expect({ model, code: r.code, signal: r.signal }, r.stderr).toEqual({ model, code: 0, signal: null });
    }
  }, 90_000);
});
