/**
 * Claim 4 (bench/claims.ts) from the copy scenario's figures: each mapping kind (per
 * transfer, MAP_POPULATE, reused) graded against read + write cell by cell, the best
 * zero-copy against the best mmap, each ratio read against its cell's A/A floor, and a
 * verdict that names where each part holds. Pure functions over figures given here.
 */
import { describe, expect, it } from 'vitest';
import { judgeClaims } from '../dist/bench/claims.js';

const claim4 = (m: Record<string, number>) => judgeClaims(m, new Set(['copy']), { cores: 2 }).find((c) => c.id === 4)!;

/** Figures for one cell: MB/s of each variant. */
function cell(k: string, mbps: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(mbps).map(([v, n]) => [`copy.${v}.${k}.MBps`, n]));
}

describe('claim 4 against the copy floor', () => {
  it('names the condition under which each mapping kind beats or loses to read + write', () => {
    const m = {
      ...cell('64KiB.warm', {
        readwrite: 1000,
        mmap: 700,
        'mmap-populate': 900,
        'mmap-reuse': 1300,
        sendfile: 2000,
        splice: 1500,
      }),
      ...cell('64MiB.warm', {
        readwrite: 1000,
        mmap: 1200,
        'mmap-populate': 1250,
        'mmap-reuse': 1400,
        sendfile: 2500,
        splice: 1800,
      }),
      'copy.floor.64KiB.warm': 1.05,
      'copy.floor.64MiB.warm': 1.05,
    };
    const c = claim4(m);
    expect(c.verdict).toBe('depends');
    expect(c.figures).toContain(
      'with a mapping per transfer, mmap beats read + write at 64MiB.warm; loses at 64KiB.warm',
    );
    expect(c.figures).toContain('with a reused mapping, mmap beats read + write at 64KiB.warm, 64MiB.warm');
    expect(c.figures).toContain('sendfile or splice beats the best mmap at 64KiB.warm, 64MiB.warm');
    expect(c.figures).toContain('64KiB.warm A/A floor ±5.0%');
  });

  it('reads "within noise" where a ratio sits inside its cell floor, never beats or loses', () => {
    const m = {
      ...cell('1MiB.warm', { readwrite: 1000, mmap: 1030, sendfile: 2000 }),
      'copy.floor.1MiB.warm': 1.08,
    };
    const c = claim4(m);
    expect(c.verdict).toBe('depends');
    expect(c.figures).toContain('with a mapping per transfer, mmap is within noise at 1MiB.warm');
    // With no floor measured the same ratio is decided.
    const { 'copy.floor.1MiB.warm': _, ...bare } = m;
    expect(claim4(bare).verdict).toBe('confirmed');
    // All within noise: the verdict says so.
    expect(
      claim4({ ...cell('1MiB.warm', { readwrite: 1000, mmap: 1030, sendfile: 1050 }), 'copy.floor': 1.1 }).verdict,
    ).toBe('within noise');
  });

  it('is refuted where every mapping kind loses, and not measured without copy figures', () => {
    const m = cell('4KiB.cold', { readwrite: 1000, mmap: 500, 'mmap-populate': 600, sendfile: 400 });
    expect(claim4({ ...m, 'copy.floor': 1.02 }).verdict).toBe('refuted');
    expect(claim4({}).verdict).toBe('not measured');
  });
});
