/** probe() and the ethtool read behind its scatter-gather flag, on this machine's kernel. */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ErrnoError, constants, probe, sys } from './helpers/rawio.js';

describe('probe', () => {
  it('reports the kernel, limits and CPUs this process sees', () => {
    const p = probe();
    expect(p.kernel.major).toBeGreaterThanOrEqual(4);
    expect(p.kernel.release).toMatch(/^\d+\.\d+/);
    expect(p.cpus).toBe(availableParallelism());
    expect(p.fdSetSize).toBe(constants.FD_SETSIZE);
    expect(p.limits.nofile.soft).toBeLessThanOrEqual(p.limits.nofile.hard);
    const pipeMax = Number(readFileSync('/proc/sys/fs/pipe-max-size', 'utf8'));
    expect(p.limits.pipeMaxSize).toBe(pipeMax);
    expect([null, 0, 1, 2]).toContain(p.ioUring.disabled);
    expect(p.directIo?.memAlign).toBeGreaterThan(0);
  });

  it('reads the loopback scatter-gather flag through ethtool', () => {
    const p = probe();
    expect(Object.keys(p.netdev)[0]).toBe('lo');
    // lo has had NETIF_F_SG since 2.6; a kernel without SIOCETHTOOL for lo would say null.
    expect([true, false, null]).toContain(p.netdev.lo!.sg);
    expect(sys.netdevFeature('lo', 'sg')).toBe(p.netdev.lo!.sg);
  });

  it('throws ENODEV for a missing device and RangeError for bad arguments', () => {
    expect(() => sys.netdevFeature('rawio-nodev0', 'sg')).toThrow(ErrnoError);
    expect(() => sys.netdevFeature('x'.repeat(16), 'sg')).toThrow(RangeError);
    expect(() => sys.netdevFeature('lo', 'nope' as 'sg')).toThrow(RangeError);
  });
});
