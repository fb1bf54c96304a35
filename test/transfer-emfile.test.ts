/**
 * transferFile when the process is out of fds (EMFILE, reached for real by lowering
 * RLIMIT_NOFILE and filling the table): `splice` cannot get its pipe and sends the body
 * through a buffer instead, so the reply is still whole; every fd is given back after.
 */
import { mkdtempSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { constants, sys, transferFile } from './helpers/rawio.js';
import { leakedSince, openFds } from './helpers/fds.js';
import { tcpPeer } from './helpers/peer.js';
import { closePipePool } from '../dist/src/transfer/index.js';

const dir = mkdtempSync(join(tmpdir(), 'rawio-emfile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Lowers the fd limit to `limit` and fills every free slot; returns the undo. */
function exhaustFds(limit: number): () => void {
  const saved = sys.getrlimit(constants.RLIMIT_NOFILE);
  sys.setrlimit(constants.RLIMIT_NOFILE, { soft: limit, hard: saved.hard });
  const fillers: number[] = [];
  try {
    for (;;) fillers.push(sys.open('/dev/null', constants.O_RDONLY));
  } catch (e) {
    if ((e as { code?: string }).code !== 'EMFILE') throw e;
  }
  return () => {
    for (const fd of fillers) sys.close(fd);
    sys.setrlimit(constants.RLIMIT_NOFILE, saved);
  };
}

describe('transferFile out of fds', () => {
  it('splice falls back to a buffer and sends the whole body', async () => {
    const highest = Math.max(...readdirSync('/proc/self/fd').map(Number));
    if (highest > 900) return void console.warn('skipped: this process already has fds above 900');
    const path = join(dir, 'body.bin');
    const body = Buffer.alloc(300_000, 7);
    writeFileSync(path, body);
    const before = openFds();
    const peer = await tcpPeer();
    const file = sys.open(path, constants.O_RDONLY);
    closePipePool(); // a pooled pipe would need no new fd
    const undo = exhaustFds(1024);
    let n: number;
    try {
      expect(() => sys.pipe()).toThrow(expect.objectContaining({ code: 'EMFILE' }));
      n = await transferFile(peer.sockFd, file, { method: 'splice' });
    } finally {
      undo();
      sys.close(file);
      sys.close(peer.sockFd);
    }
    expect(n).toBe(body.length);
    expect((await peer.received).bytes).toBe(body.length);
    peer.reader.destroy();
    expect(leakedSince(before)).toEqual([]);
  });
});
