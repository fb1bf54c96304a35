// Ring tests that need a process of their own: the GC torture (node --expose-gc) and a ring
// left open at exit. The kernel refusing io_uring is in test/stress/uring-refused.test.ts:
// kernel.io_uring_disabled is machine-wide, so it runs only where no other file runs at once.
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { titled, why } from './helpers/skips.js';
import { makeFile, pattern, scratchDir } from './helpers/uring.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

/** Runs node with `args` to its end (SIGTERM after `timeoutMs`): how it ended and what it wrote. */
function runNode(args: string[], timeoutMs: number) {
  return new Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (resolve, reject) => {
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
      child.once('error', reject);
      child.once('close', (status, signal) => {
        clearTimeout(timer);
        resolve({ status, signal, stdout, stderr });
      });
    },
  );
}

describe.skipIf(why.ring)(titled('Ring under forced garbage collection', why.ring), () => {
  let scratch: ReturnType<typeof scratchDir>;
  beforeAll(() => (scratch = scratchDir()));
  afterAll(() => scratch.remove());

  it('keeps every buffer alive while its read is in flight; every byte arrives', () => {
    const file = makeFile(scratch.dir, 'gc', pattern(8 << 20, 11));
    const out = execFileSync(process.execPath, ['--expose-gc', fixture('uring-gc-child.mjs'), file, '4000'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    const r = JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>;
    expect(r.maxInflight).toBeGreaterThan(100); // collections really ran with reads in flight
    expect(r.pipeHeld).toBe(64); // buffers only the ring referenced survived gc()
    expect(r.alive).toBe(r.total);
    expect(r.exact).toBe(r.total);
  });
});

describe.skipIf(why.ring)(titled('Ring left open with reads in flight at exit', why.ring), () => {
  let scratch: ReturnType<typeof scratchDir>;
  beforeAll(() => (scratch = scratchDir()));
  afterAll(() => scratch.remove());

  // Before the 'exit' close, 2 runs in 3 of `prepared` died in free() at exit: the kernel
  // wrote into buffers Node had already freed. A few runs each make a regression show; they
  // are processes of their own, so they run at once.
  for (const mode of ['prepared', 'submitted', 'buffered', 'pipe', 'mapped'])
    for (const setup of ['default', 'defer'])
      it(`${mode}, ${setup} ring: the process exits cleanly, and does not hang`, async () => {
        const file = makeFile(scratch.dir, 'exit', pattern(1 << 20, 5));
        const runs = await Promise.all(
          Array.from({ length: 3 }, () => runNode([fixture('uring-exit-child.mjs'), file, mode, setup], 20_000)),
        );
        for (const r of runs) {
          expect({ status: r.status, signal: r.signal, stderr: r.stderr }).toEqual({
            status: 0,
            signal: null,
            stderr: '',
          });
          expect(r.stdout.trim()).toBe('leaving');
        }
      });
});
