/**
 * Test files of given sizes filled with random bytes, opened read-only: the inputs of the
 * byte-exact transfer tests, kept with their contents for comparison.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants, sys } from './rawio.js';

export type TestFiles = Map<number, { fd: number; data: Buffer }>;

/** Writes one file per size into `dir` and opens each; add them to `into`. */
export function openRandomFiles(dir: string, sizes: readonly number[], into: TestFiles): void {
  for (const size of sizes) {
    const data = randomBytes(size);
    const p = join(dir, `f${size}`);
    writeFileSync(p, data);
    into.set(size, { fd: sys.open(p, constants.O_RDONLY!), data });
  }
}

/** Closes what openRandomFiles opened. */
export function closeFiles(files: TestFiles): void {
  for (const f of files.values()) sys.close(f.fd);
}

/** Writes `data` to `dir/name` and opens it read-only. */
export function makeFile(dir: string, name: string, data: Uint8Array): { path: string; fd: number } {
  const path = join(dir, name);
  writeFileSync(path, data);
  return { path, fd: sys.open(path, constants.O_RDONLY!) };
}

/** How many of this process's mappings (/proc/self/maps) are of the file at `path`. */
export function mappingsOf(path: string): number {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.endsWith(path)).length;
}
