/**
 * A connection's file body sender (src/models/file-body.ts): once the connection is done
 * (abort(), as a reactor Session calls it when its socket closes) a body in flight sends
 * nothing more to the socket's fd number, which the kernel may already have given to
 * another client — with every transfer method, not only those whose send the kernel holds.
 * A transfer that never meets EAGAIN (a client reading as fast as the server writes) only
 * yields to the event loop every few MiB: the close comes in such a yield here, and the
 * fd's number is taken again at once by a file standing in for the next client's socket.
 */
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileBodySender } from '../../dist/src/models/file-body.js';
import { YIELD_BYTES } from '../../dist/src/transfer/drive.js';

describe('FileBodySender.abort()', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rawio-file-body-'));
    const fd = openSync(join(dir, 'body.bin'), 'w');
    ftruncateSync(fd, 3 * YIELD_BYTES); // sparse: reads as zeros, costs no disk
    closeSync(fd);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(['readwrite', 'splice', 'mmap'])(
    'stops a %s body at its next yield: nothing reaches the fd number given to someone else',
    async (transfer) => {
      const file = openSync(join(dir, 'body.bin'), 'r');
      // A regular file as the "socket": it takes every write at once, so the transfer never
      // waits for writability and goes on only through its yields.
      const out = openSync(join(dir, `${transfer}-first.out`), 'w');
      let next = -1;
      let closing = false;
      let sent = 0;
      const sender: FileBodySender = new FileBodySender({ transfer, directio: Number.MAX_SAFE_INTEGER }, (n) => {
        sent += n;
        if (sent < YIELD_BYTES || closing) return;
        closing = true;
        // Queued before the transfer's own yield: the connection closes while it waits.
        setImmediate(() => {
          sender.abort();
          closeSync(out);
          next = openSync(join(dir, `${transfer}-next.out`), 'w');
        });
      });
      try {
        const body = sender.send(out, { fd: file, offset: 0, length: 3 * YIELD_BYTES }, () => Promise.resolve());
        await expect(body).rejects.toMatchObject({ code: 'ABORT_ERR' });
        expect(next).toBe(out); // the number was indeed taken again
        expect(statSync(join(dir, `${transfer}-next.out`)).size).toBe(0);
      } finally {
        closeSync(file);
        closeSync(next >= 0 ? next : out);
      }
    },
  );

  it('sends nothing of a body asked for after abort()', async () => {
    const file = openSync(join(dir, 'body.bin'), 'r');
    const out = openSync(join(dir, 'late.out'), 'w');
    try {
      const sender = new FileBodySender({ transfer: 'sendfile', directio: Number.MAX_SAFE_INTEGER }, () => undefined);
      sender.abort();
      const body = sender.send(out, { fd: file, offset: 0, length: 4096 }, () => Promise.resolve());
      await expect(body).rejects.toMatchObject({ code: 'ABORT_ERR' });
      expect(statSync(join(dir, 'late.out')).size).toBe(0);
    } finally {
      closeSync(file);
      closeSync(out);
    }
  });
});
