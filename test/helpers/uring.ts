/**
 * Shared fixtures for the io_uring tests: a scratch directory on the project's disk (tmpfs
 * refused O_DIRECT before 6.6), files of known pseudo-random bytes, and aligned buffers.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { type Ring, sys } from '../../dist/src/index.js';

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

/**
 * fio's read loop on `ring`: `qd` reads of 4 KiB at `position(k)` (k counting every read
 * issued) into aligned buffers, kept in flight by re-preparing each as its completion is
 * reaped, one `submitAndReap(out, 1)` per turn, until `reads` have completed; every block is
 * checked against `expected(position)`. `onPrep(i, n)` runs after each prepare, the i-th of n
 * in its turn (the first qd as one turn). Leaves the last qd reads in flight.
 */
export function fioLoop(
  ring: Ring,
  fd: number,
  o: {
    qd: number;
    reads: number;
    position: (k: number) => number;
    expected: (position: number) => Uint8Array;
    onPrep?: (i: number, n: number) => void;
  },
): void {
  const BS = 4096;
  const bufs = Array.from({ length: o.qd }, () => alignedView(BS));
  const at = new Array<number>(o.qd);
  let issued = 0;
  const prep = (slot: number, i: number, n: number) => {
    at[slot] = o.position(issued++);
    expect(ring.prepRead(fd, bufs[slot]!, at[slot], BS, slot)).toBe(true);
    o.onPrep?.(i, n);
  };
  for (let s = 0; s < o.qd; s++) prep(s, s, o.qd);
  const out = new Int32Array(3 * o.qd);
  let done = 0;
  while (done < o.reads) {
    const n = ring.submitAndReap(out, 1);
    expect(n).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < n; i++) {
      const slot = out[3 * i]!;
      expect(out[3 * i + 1]).toBe(BS);
      expect(Buffer.from(bufs[slot]!).equals(o.expected(at[slot]!))).toBe(true);
      prep(slot, i, n);
    }
    done += n;
  }
}
