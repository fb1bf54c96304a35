/**
 * Test files of given sizes filled with random bytes, opened read-only: the inputs of the
 * byte-exact transfer tests, kept with their contents for comparison.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
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
