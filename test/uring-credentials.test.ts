/**
 * The io_uring credential pitfall (CVE-2024-22017): a ring's requests run with the credentials
 * of the task that set it up, so a Ring created before setuid/setgid must refuse to submit
 * afterwards. Each case runs in a child process of its own (it drops root for good).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { titled, why } from './helpers/skips.js';

const fixture = fileURLToPath(new URL('./fixtures/uring-setuid-child.mjs', import.meta.url));
const noSetuid = why.ring ?? (process.getuid?.() !== 0 ? 'needs root to change credentials' : undefined);

interface Err {
  name: string;
  code: string;
  message: string;
}
function run(mode: string): Record<string, Err | null | number[]> {
  const out = execFileSync(process.execPath, [fixture, mode], { encoding: 'utf8', timeout: 15_000 });
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, Err | null | number[]>;
}
function expectRefused(e: Err | null | number[] | undefined, syscall: string): void {
  expect(e).toMatchObject({ name: 'ErrnoError', code: 'EPERM' });
  const m = (e as Err).message;
  expect(m).toContain(syscall);
  expect(m).toMatch(/changed its credentials/);
  expect(m).toContain('CVE-2024-22017');
  expect(m).toMatch(/0:0:0:0:.* -> /);
}

describe.skipIf(noSetuid)(titled('Ring after the process changes its credentials', noSetuid), () => {
  it('refuses promise ops, batch prep and submit after setegid/seteuid, and works again once restored', () => {
    const r = run('egid-euid');
    expect(r.before).toBeNull();
    expect(r.ids).toEqual([0, 65534, 0, 65534]);
    expectRefused(r.promise, 'nop');
    expectRefused(r.batchPrep, 'io_uring_prep');
    expectRefused(r.batchSubmit, 'io_uring_enter');
    expect(r.fresh).toBeNull();
    expect(r.restored).toBeNull();
  });

  it('refuses after setgid/setuid for good; a Ring made afterwards works', () => {
    const r = run('setuid');
    expect(r.before).toBeNull();
    expect(r.ids).toEqual([65534, 65534, 65534, 65534]);
    expectRefused(r.promise, 'nop');
    expectRefused(r.batchPrep, 'io_uring_prep');
    expectRefused(r.batchSubmit, 'io_uring_enter');
    expect(r.fresh).toBeNull();
  });
});

describe('import side effects and the credential guard', () => {
  const importer = fileURLToPath(new URL('./fixtures/import-no-side-effects.mjs', import.meta.url));
  const r = JSON.parse(execFileSync(process.execPath, [importer], { encoding: 'utf8', timeout: 15_000 })) as {
    names: string[];
    afterImport: string[];
    afterRing?: string[];
    before: [number, number];
    after: [number, number];
  };

  it('is not installed by importing rawio: process.set*id stay Node’s own', () => {
    expect(r.afterImport).toEqual(r.names);
  });

  it('importing rawio opens no fd and starts no thread', () => {
    expect(r.after).toEqual(r.before);
  });

  // A thread that starts and exits within the import is gone before the counts above are
  // read; strace sees every clone. (node:http's certificate thread on Node 22+ was one.)
  it.skipIf(why.strace)(
    titled('importing rawio starts no thread even for a moment', why.strace),

    () => {
      const threads = (fixture: string, mode: string): number => {
        const out = spawnSync(
          'strace',
          ['-f', '-qq', '-e', 'trace=clone,clone3', '-e', 'signal=none', process.execPath, fixture, mode],
          { encoding: 'utf8', timeout: 30_000 },
        );
        expect(out.status, out.stderr).toBe(0); // strace writes its trace to stderr
        return out.stderr.split('\n').filter((l) => /\bclone3?\(/.test(l)).length;
      };
      const f = fileURLToPath(new URL('./fixtures/import-threads.mjs', import.meta.url));
      const bare = threads(f, 'bare');
      expect(bare).toBeGreaterThan(0); // strace sees Node's own threads
      expect(threads(f, 'import')).toBe(bare);
    },
  );

  it.skipIf(why.ring)(titled('is installed when the first Ring is created', why.ring), () => {
    expect(r.afterRing).toEqual([]);
  });
});
