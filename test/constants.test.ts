/**
 * `constants`: literal keys (a misspelt name does not compile: the @ts-expect-error lines
 * below are checked by `tsc --noEmit`, which fails if they compile), every name present in
 * the addon (checked when it loads), and the values the kernel headers give.
 */
import { describe, expect, it } from 'vitest';
import { constantNames, constants as c, type ConstantName } from './helpers/rawio.js';
import { pickConstants } from '../dist/src/sys/constants.js';

describe('constants', () => {
  it('has literal keys: a misspelt name fails to compile', () => {
    // @ts-expect-error EPOLLINN is not a constant
    expect(c.EPOLLINN).toBeUndefined();
    // @ts-expect-error nor is a lower-case name
    expect(c.epollin).toBeUndefined();
    const name: ConstantName = 'EPOLLIN';
    const n: number = c[name]; // no `!`: the key is known
    expect(n).toBe(1);
  });

  it('holds exactly the listed names, each a number, frozen', () => {
    expect(Object.keys(c).sort()).toEqual([...constantNames].sort());
    for (const name of constantNames) expect(typeof c[name]).toBe('number');
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('has the open(2) flags of x86-64 and arm64 Linux, the same as node:fs', async () => {
    const fs = (await import('node:fs')).constants;
    for (const name of ['O_RDONLY', 'O_NONBLOCK', 'O_NOCTTY', 'O_DIRECTORY', 'O_NOFOLLOW', 'O_DIRECT'] as const)
      expect(c[name], name).toBe(fs[name]);
    expect(c.O_NOCTTY).toBe(0o400);
  });

  it('exports AT_FDCWD, IOSQE_*, IORING_CQE_F_MORE and MSG_* with the kernel values', () => {
    expect(c.AT_FDCWD).toBe(-100);
    expect(c.IOSQE_FIXED_FILE).toBe(1);
    expect(c.IOSQE_IO_DRAIN).toBe(2);
    expect(c.IOSQE_IO_LINK).toBe(4);
    expect(c.IOSQE_IO_HARDLINK).toBe(8);
    expect(c.IOSQE_ASYNC).toBe(16);
    expect(c.IOSQE_BUFFER_SELECT).toBe(32);
    expect(c.IOSQE_CQE_SKIP_SUCCESS).toBe(64);
    expect(c.IORING_CQE_F_BUFFER).toBe(1);
    expect(c.IORING_CQE_F_MORE).toBe(2);
    expect(c.MSG_PEEK).toBe(2);
    expect(c.MSG_DONTWAIT).toBe(0x40);
    expect(c.MSG_WAITALL).toBe(0x100);
    expect(c.MSG_NOSIGNAL).toBe(0x4000);
    expect(c.MSG_MORE).toBe(0x8000);
    expect(c.MSG_ZEROCOPY).toBe(0x4000000);
  });

  it('throws clearly when the addon lacks a name', () => {
    const { EPOLLIN: _, ...rest } = c;
    expect(() => pickConstants(rest)).toThrow(/native addon has no constant EPOLLIN/);
    expect(pickConstants({ ...c, EXTRA: 1 }).EPOLLIN).toBe(c.EPOLLIN);
  });
});
