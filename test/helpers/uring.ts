/**
 * Shared fixtures for the io_uring tests: a scratch directory on the project's disk (tmpfs
 * refused O_DIRECT before 6.6), files of known pseudo-random bytes, and aligned buffers.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { sys } from '../../dist/src/index.js';

export function scratchDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(process.cwd(), '.rawio-test-uring-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic bytes (an LCG): byte i of a file made with `seed`. */
export function pattern(size: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = seed >>> 0;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

export function makeFile(dir: string, name: string, data: Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
}

/**
 * A file holding `data` in a scratch directory of its own for the enclosing `describe`:
 * made before its tests (beforeAll), removed after them. `path` is valid inside the tests.
 */
export function scratchFile(data: Uint8Array, name = 'data'): { readonly path: string; readonly dir: string } {
  let scratch: ReturnType<typeof scratchDir> | undefined;
  let path = '';
  beforeAll(() => {
    scratch = scratchDir();
    path = makeFile(scratch.dir, name, data);
  });
  afterAll(() => scratch?.remove());
  return {
    get path() {
      return path;
    },
    get dir() {
      return scratch?.dir ?? '';
    },
  };
}

/** `size` bytes at an address that is a multiple of `align` (for O_DIRECT). */
export function alignedView(size: number, align = 4096): Buffer {
  return sys.alignedBuffer(size, align);
}
