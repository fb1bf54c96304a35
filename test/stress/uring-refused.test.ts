/**
 * io_uring refused by the kernel (kernel.io_uring_disabled=2, 6.6+): a child process loads
 * rawio, then the sysctl is set for as long as that child runs its checks and restored in a
 * finally (it is machine-wide: the window is kept short). Everything that does not need
 * io_uring must still work (single/http and multi-reactor/resp answer, sendfile transfers,
 * transfer 'auto' falls back), and what needs it must fail with the kernel's reason.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsc, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ring } from '../helpers/rawio.js';
import { titled } from '../helpers/skips.js';

import { makeFile, pattern, scratchDir } from '../helpers/uring.js';

const fixture = fileURLToPath(new URL('./fixtures/uring-refused-child.mjs', import.meta.url));
const SYSCTL = '/proc/sys/kernel/io_uring_disabled';

function cannot(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to set kernel.io_uring_disabled';
  if (!Ring.supported()) return 'io_uring is already unavailable here';
  try {
    accessSync(SYSCTL, fsc.W_OK);
    return undefined;
  } catch {
    return `${SYSCTL} is absent (kernel < 6.6) or read-only`;
  }
}
const why = cannot();

/**
 * Runs a child fixture that loads rawio, prints one line, waits for "go" on stdin and prints
 * its result: kernel.io_uring_disabled is 2 only between the first line and the result (the
 * sysctl is machine-wide, so the window is kept short), restored in a finally and checked.
 * Resolves with the result line.
 */
async function whileRefused(script: string, ...args: string[]): Promise<string> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let wake: () => void = () => {};
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    lines.push(...d.split('\n').filter(Boolean));
    wake();
  });
  const next = async (n: number) => {
    const end = Date.now() + 30_000;
    while (lines.length < n && Date.now() < end) await new Promise<void>((r) => ((wake = r), setTimeout(r, 200)));
    expect(lines.length).toBeGreaterThanOrEqual(n);
  };
  const saved = readFileSync(SYSCTL, 'utf8').trim();
  try {
    await next(1); // rawio is loaded: flip the sysctl only now
    writeFileSync(SYSCTL, '2');
    child.stdin.write('go\n');
    await next(2);
  } finally {
    writeFileSync(SYSCTL, saved);
    child.kill();
  }
  expect(readFileSync(SYSCTL, 'utf8').trim()).toBe(saved);
  return lines[1]!;
}

interface Attempt {
  ok?: unknown;
  error?: { name: string; code: string; message: string };
}

describe('rawio with io_uring refused by the kernel', () => {
  let scratch: ReturnType<typeof scratchDir>;
  beforeAll(() => (scratch = scratchDir()));
  afterAll(() => scratch.remove());

  it.skipIf(why)(titled('works without it and fails clearly where it needs it', why), async () => {
    const file = makeFile(scratch.dir, 'f', pattern(1000, 5));
    const r = JSON.parse(await whileRefused(fixture, file)) as Record<string, Attempt> & {
      supported: boolean;
      autoChoice: string;
    };
    expect(r.supported).toBe(false);
    expect(r.ring.error).toMatchObject({ name: 'ErrnoError', code: 'EPERM' });
    expect(r.ring.error!.message).toMatch(/io_uring_disabled=2/);
    expect(r.single).toEqual({ ok: 200 });
    expect(r.multi).toEqual({ ok: '+PONG\r\n' });
    expect(r.sendfile).toEqual({ ok: { n: 1000, got: 1000 } });
    expect(r.auto).toEqual({ ok: { n: 1000, got: 1000 } });
    expect(r.autoChoice).toBe('sendfile'); // would be 'direct' (directio: 1) with io_uring
    expect(r.proactor.error).toBeDefined();
    expect(r.proactor.error!.code).toBe('EPERM');
    expect(r.proactor.error!.message).toMatch(/io_uring_disabled=2/);
    expect(Ring.supported()).toBe(true);
  });
});

describe('Ring when the kernel refuses io_uring', () => {
  it.skipIf(why)(titled('loads, reports unsupported and throws a clear error', why), async () => {
    const r = JSON.parse(
      await whileRefused(fileURLToPath(new URL('../fixtures/uring-refused-child.mjs', import.meta.url))),
    ) as {
      supported: boolean;
      probe: { supported: boolean; code: string; ioUringDisabled: number };
      error: { name: string; code: string; message: string } | null;
    };
    expect(r.supported).toBe(false);
    expect(r.probe).toMatchObject({ supported: false, code: 'EPERM', ioUringDisabled: 2 });
    expect(r.error).toMatchObject({ name: 'ErrnoError', code: 'EPERM' });
    expect(r.error!.message).toMatch(/io_uring_setup.*io_uring_disabled=2/);
    expect(Ring.supported()).toBe(true);
  });
});
