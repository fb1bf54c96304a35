/**
 * Every exported function, constructor and instance method (live and closed) called with
 * hostile arguments — wrong types, NaN, negative, huge, closed fds — in a child process, so
 * that a crash is a failure of this test and not a dead runner: TypeError, RangeError,
 * ErrnoError or a clear state error every time, never a crash (see the fixture).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const fixture = fileURLToPath(new URL('./fixtures/api-table-child.mjs', import.meta.url));

describe('the public API under hostile arguments', () => {
  it('answers every call with a TypeError, RangeError or errno error, never a crash', () => {
    const r = spawnSync(process.execPath, [fixture], { encoding: 'utf8', timeout: 90_000, stdio: 'pipe' });
    expect(r.signal).toBeNull(); // SIGSEGV / SIGABRT: a crash in native code
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const summary = JSON.parse(lines.at(-1)!) as { calls: number; bad: number };
    expect(lines.slice(0, -1)).toEqual([]);
    expect(summary.calls).toBeGreaterThan(20_000);
    expect(summary.bad).toBe(0);
  }, 120_000);
});
