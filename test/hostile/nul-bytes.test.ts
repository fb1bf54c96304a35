/**
 * Every string that becomes a C string, given an embedded NUL: the kernel would read only
 * the part before it (`'x\0.png'` names `x`), so each API refuses it as node:fs does, with a
 * TypeError coded ERR_INVALID_ARG_VALUE, and acts on nothing. The public wrappers are the
 * first line; the raw native binding refuses it again, so both layers are in the table.
 */
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Keyspace, Ring, createProtocol, probe, serve, sys } from '../helpers/rawio.js';
import { native } from '../../dist/src/sys/native.js';
import { leakedSince, openFds } from '../helpers/fds.js';

const dir = mkdtempSync(join(tmpdir(), 'rawio-nul-'));
writeFileSync(join(dir, 'x'), 'the file a cut path would name');
const cut = (s: string) => `${s}\0.png`;
const rootFd = sys.openDir(dir);
afterAll(() => {
  sys.close(rootFd);
  rmSync(dir, { recursive: true, force: true });
});

type Call = () => unknown;
const publicCalls: [string, Call][] = [
  ['sys.open', () => sys.open(cut(join(dir, 'x')), 0)],
  ['sys.openDir', () => sys.openDir(cut(dir))],
  ['sys.openBeneath', () => sys.openBeneath(rootFd, cut('x'), 0)],
  ['sys.listenTcp', () => sys.listenTcp('127.0.0.1\0.evil', 0)],
  ['sys.connectTcp', () => sys.connectTcp('127.0.0.1\0.evil', 9)],
  ['sys.netdevFeature', () => sys.netdevFeature('lo\0x', 'sg')],
  ['Keyspace.create', () => Keyspace.create('/rawio-nul\0x', { size: 1 << 16 })],
  ['Keyspace.attach', () => Keyspace.attach('/rawio-nul\0x')],
  ['Keyspace.unlink', () => Keyspace.unlink('/rawio-nul\0x')],
  ['createProtocol static root', () => createProtocol('static', { root: cut(dir) })],
  ['probe path', () => probe({ path: cut(dir) })],
];
const asyncCalls: [string, () => Promise<unknown>][] = [
  ['serve host', () => serve({ model: 'single', protocol: 'echo', host: '127.0.0.1\0.evil' })],
  ['serve root', () => serve({ model: 'single', protocol: 'static', root: cut(dir) })],
];
const ringCalls: [string, (r: Ring) => Promise<unknown>][] = [
  ['Ring.openat', async (r) => r.openat(rootFd, cut('x'), 0)],
  ['Ring.statx', async (r) => r.statx(rootFd, cut('x'))],
];
const nativeCalls: [string, Call][] = [
  ['native.open', () => native.open(cut(join(dir, 'x')), 0, 0)],
  ['native.openat2', () => native.openat2(rootFd, cut('x'), 0, 0, 0x08)],
  ['native.listenTcp', () => native.listenTcp('127.0.0.1\0.evil', 0, 1, false, false)],
  ['native.connectTcp', () => native.connectTcp('127.0.0.1\0.evil', 9, false)],
  ['native.ethtoolGet', () => native.ethtoolGet('lo\0x', 'sg')],
  ['native.keyspaceUnlink', () => native.keyspaceUnlink('/rawio-nul\0x')],
  ['native.Keyspace#open', () => new native.Keyspace().open('/rawio-nul\0x', true, 1 << 16, 16)],
];

function expectRefused(e: unknown): void {
  expect(e).toBeInstanceOf(TypeError);
  expect((e as { code?: string }).code).toBe('ERR_INVALID_ARG_VALUE');
}

describe('NUL bytes in strings that become C strings', () => {
  it.each([...publicCalls, ...nativeCalls])('%s refuses it with ERR_INVALID_ARG_VALUE', (_name, call) => {
    const before = openFds();
    let thrown: unknown;
    try {
      call();
    } catch (e) {
      thrown = e;
    }
    expectRefused(thrown);
    expect(leakedSince(before)).toEqual([]);
  });

  it.each(asyncCalls)('%s rejects with ERR_INVALID_ARG_VALUE', async (_name, call) => {
    const err = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    expectRefused(err);
  });

  it.for(ringCalls)('%s refuses it and never acts on the cut path', async ([, call], ctx) => {
    if (!Ring.supported()) return ctx.skip('io_uring is not available here');
    const ring = new Ring({ entries: 4 });
    try {
      const err = await call(ring).then(
        () => undefined,
        (e: unknown) => e,
      );
      expectRefused(err);
    } finally {
      ring.close();
    }
  });

  it('a cut Keyspace name creates nothing', () => {
    const name = `/rawio-nul-${process.pid}`;
    expect(() => Keyspace.create(`${name}\0x`, { size: 1 << 16 })).toThrow(TypeError);
    expect(existsSync(`/dev/shm${name}`)).toBe(false);
  });
});
