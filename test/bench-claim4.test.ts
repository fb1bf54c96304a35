/**
 * Claim 4 (bench/claims.ts) from the copy scenario's figures: each mapping kind (per
 * transfer, MAP_POPULATE, reused) graded against read + write cell by cell on the sender's
 * CPU per GiB, the best zero-copy against the best mmap, each ratio read against its cell's
 * A/A floor, and a verdict that names where each part holds. Pure functions over figures
 * given here.
 */
import { describe, expect, it } from 'vitest';
import { judgeClaims } from '../dist/bench/claims.js';

const claim4 = (m: Record<string, number>) => judgeClaims(m, new Set(['copy']), { cores: 2 }).find((c) => c.id === 4)!;

/** CPU seconds per GiB of each variant in one cell. */
function cell(k: string, cpu: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(cpu).map(([v, n]) => [`copy.${v}.${k}.cpuPerGiB`, n]));
}

describe('claim 4 against the copy floor', () => {
  it('names the condition under which each mapping kind beats or loses to read + write', () => {
    const m = {
      ...cell('4KiB.warm', {
        readwrite: 1.6,
        mmap: 4.5,
        'mmap-populate': 5,
        'mmap-reuse': 1.2,
        sendfile: 1.1,
        splice: 1.3,
      }),
      ...cell('64MiB.warm', { readwrite: 0.43, mmap: 0.28, 'mmap-populate': 0.24, 'mmap-reuse': 0.22, sendfile: 0.18 }),
      'copy.floor-cpu.4KiB.warm': 1.05,
      'copy.floor-cpu.64MiB.warm': 1.05,
    };
    const c = claim4(m);
    expect(c.verdict).toBe('depends');
    expect(c.figures).toContain(
      'with a mapping per transfer, mmap beats read + write at 64MiB.warm; loses at 4KiB.warm',
    );
    expect(c.figures).toContain('with a reused mapping, mmap beats read + write at 4KiB.warm, 64MiB.warm');
    expect(c.figures).toContain('sendfile or splice beats the best mmap at 4KiB.warm, 64MiB.warm');
    expect(c.figures).toContain('4KiB.warm A/A floor ±5.0%');
  });

  it('reads "within noise" where a ratio sits inside its cell floor, never beats or loses', () => {
    const m = {
      ...cell('1MiB.warm', { readwrite: 0.36, mmap: 0.35, sendfile: 0.19 }),
      'copy.floor-cpu.1MiB.warm': 1.08,
    };
    const c = claim4(m);
    // zero-copy clearly beats mmap; whether mmap beats read + write is inside the floor: the
    // claim could land either way, which is within noise (not "depends": nothing here holds
    // in one cell and fails in another)
    expect(c.verdict).toBe('within noise');
    expect(c.figures).toContain('with a mapping per transfer, mmap is within noise at 1MiB.warm');
    // With no floor measured the same ratio is decided.
    const { 'copy.floor-cpu.1MiB.warm': _, ...bare } = m;
    expect(claim4(bare).verdict).toBe('confirmed');
    // All within noise: the verdict says so.
    const close = cell('1MiB.warm', { readwrite: 0.36, mmap: 0.35, sendfile: 0.34 });
    expect(claim4({ ...close, 'copy.floor-cpu.1MiB.warm': 1.1 }).verdict).toBe('within noise');
  });

  it('depends where its clear parts disagree, whatever else is within noise', () => {
    // mmap loses at 4KiB.warm, beats at 64MiB.warm, and a reused mapping is within noise
    const m = {
      ...cell('4KiB.warm', { readwrite: 1, mmap: 2, sendfile: 0.5 }),
      ...cell('64MiB.warm', { readwrite: 1, mmap: 0.5, 'mmap-reuse': 0.99, sendfile: 0.25 }),
      'copy.floor-cpu.4KiB.warm': 1.05,
      'copy.floor-cpu.64MiB.warm': 1.05,
    };
    expect(claim4(m).verdict).toBe('depends');
  });

  it('is refuted where zero-copy is clearly not better than mmap, however well mmap does against read + write', () => {
    // "mmap saves a copy, but is not the best zero-copy": the first half holds, the second does not
    const m = {
      ...cell('1MiB.warm', { readwrite: 1, mmap: 0.5, sendfile: 0.8 }),
      ...cell('64MiB.warm', { readwrite: 1, mmap: 0.4, splice: 0.9 }),
      'copy.floor-cpu.1MiB.warm': 1.05,
      'copy.floor-cpu.64MiB.warm': 1.05,
    };
    const c = claim4(m);
    expect(c.verdict).toBe('refuted');
    expect(c.figures).toContain('mmap beats read + write at 1MiB.warm, 64MiB.warm');
    expect(c.figures).toContain('sendfile or splice loses to mmap at 1MiB.warm, 64MiB.warm');
  });

  it('is not measured when zero-copy was not, unless mmap already loses', () => {
    // the second half untested: the first alone cannot confirm the claim
    expect(claim4(cell('1MiB.warm', { readwrite: 1, mmap: 0.5 })).verdict).toBe('not measured');
    // but mmap losing to read + write refutes it whatever zero-copy does
    expect(claim4(cell('1MiB.warm', { readwrite: 1, mmap: 2 })).verdict).toBe('refuted');
  });

  it('is refuted where every mapping kind loses, and not measured without copy figures', () => {
    const m = cell('4KiB.cold', { readwrite: 2, mmap: 4, 'mmap-populate': 5, sendfile: 6 });
    expect(claim4({ ...m, 'copy.floor-cpu.4KiB.cold': 1.02 }).verdict).toBe('refuted');
    expect(claim4({}).verdict).toBe('not measured');
  });
});
