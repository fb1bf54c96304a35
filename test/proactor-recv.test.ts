import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { leakedSince, openFds } from './helpers/fds.js';
import { Proactor, constants, sys } from './helpers/rawio.js';
import { titled, why } from './helpers/skips.js';
import { pattern } from './helpers/uring.js';

// Provided-buffer rings need 5.19 and multishot recv 6.0 (the release with IORING_OP_SEND_ZC);
// elsewhere recvMultishot falls back to a re-armed recv, which `count: 0` forces here too.
const noMultishot =
  why.ring ??
  (why.sendZc &&
    'multishot recv needs Linux 6.0 (the release with IORING_OP_SEND_ZC): it falls back to a re-armed recv');

/** Runs the proactor until every socket in `ends` has reported its end, collecting the chunks. */
async function receive(px: Proactor, fds: number[], feed: () => void) {
  const chunks = fds.map(() => [] as Buffer[]);
  const ends: number[] = fds.map(() => 1);
  const slabs = new Set<ArrayBufferLike>();
  let open = fds.length;
  fds.forEach((fd, i) =>
    px.recvMultishot(fd, (n, data) => {
      if (n > 0) {
        expect(data.length).toBe(n);
        chunks[i]!.push(Buffer.from(data)); // a copy: data is lent for the call only
        slabs.add(data.buffer);
        return;
      }
      ends[i] = n;
      if (--open === 0) px.stop();
    }),
  );
  feed();
  await px.run();
  return { data: chunks.map((c) => Buffer.concat(c)), ends, slabs };
}

describe.skipIf(why.ring)(titled('Proactor.recvMultishot', why.ring), () => {
  let before: Map<number, string>;
  beforeEach(() => (before = openFds()));
  afterEach(() => expect(leakedSince(before)).toEqual([]));

  for (const count of [4, 0]) {
    const mode = count > 0 ? 'provided buffers' : 'the re-armed fallback';
    const needs = count > 0 ? noMultishot : undefined;
    it.skipIf(needs)(titled(`receives every byte in order, then the end (${mode})`, needs), async () => {
      const px = new Proactor({ recvBuffers: { count, size: 1024 } });
      const [a, b] = sys.socketpair();
      const data = pattern(300_000, 3);
      const got = await receive(px, [a], () => {
        let off = 0;
        const more = (): void => {
          if (off >= data.length) return void sys.close(b);
          off += Math.max(0, sys.write(b, data.subarray(off, off + 7000)));
          px.timeout(0, more);
        };
        more();
      });
      expect(got.ends).toEqual([0]);
      expect(got.data[0]!.equals(data)).toBe(true);
      // provided buffers: every chunk was a view of the one registered slab (4 x 1 KiB)
      if (count > 0) expect([...got.slabs].map((s) => s.byteLength)).toEqual([4 * 1024]);
      else expect(got.slabs.size).toBe(1); // the fallback's own buffer
      px.close();
      sys.close(a);
    });
  }

  it.skipIf(noMultishot)(
    titled('survives running out of buffers (ENOBUFS ends a multishot recv: it is re-armed)', noMultishot),
    async () => {
      const px = new Proactor({ recvBuffers: { count: 1, size: 64 } });
      const pairs = [0, 1, 2, 3].map(() => sys.socketpair());
      const msgs = pairs.map((_, i) => pattern(5000, i + 1));
      const got = await receive(
        px,
        pairs.map(([a]) => a),
        () => {
          // every socket has data before the first reap: one buffer cannot hold them all
          pairs.forEach(([, b], i) => expect(sys.write(b, msgs[i]!)).toBe(5000));
          pairs.forEach(([, b]) => sys.close(b));
        },
      );
      expect(got.ends).toEqual([0, 0, 0, 0]);
      got.data.forEach((d, i) => expect(d.equals(msgs[i]!)).toBe(true));
      px.close();
      for (const [a] of pairs) sys.close(a);
    },
  );

  // The fallback's recv is no longer in the kernel while its callback runs: a cancel from
  // there must end it all the same.
  for (const count of [4, 0]) {
    const mode = count > 0 ? 'provided buffers' : 'the re-armed fallback';
    const needs = count > 0 ? noMultishot : undefined;
    it.skipIf(needs)(
      titled(`cancel() and close() end a multishot recv once, with -ECANCELED (${mode})`, needs),

      async () => {
        const px = new Proactor({ recvBuffers: { count, size: 1024 } });
        const [a, b] = sys.socketpair();
        const [c, d] = sys.socketpair();
        const seen: number[][] = [[], []];
        const id = px.recvMultishot(a, (n) => {
          seen[0]!.push(n);
          if (n > 0) px.cancel(id); // from inside its own callback
        });
        px.recvMultishot(c, (n) => seen[1]!.push(n));
        sys.write(b, Buffer.from('x'));
        px.timeout(5, () => px.stop());
        await px.run();
        expect(seen[0]).toEqual([1, -constants.ECANCELED]);
        px.close(); // the other is cancelled in the kernel, then called back
        expect(seen[1]).toEqual([-constants.ECANCELED]);
        for (const fd of [a, b, c, d]) sys.close(fd);
      },
    );
  }

  it('checks its arguments', () => {
    const px = new Proactor();
    expect(() => px.recvMultishot(-1, () => {})).toThrow(RangeError);
    expect(() => px.recvMultishot(0, 'x' as never)).toThrow(TypeError);
    expect(() => new Proactor({ recvBuffers: { count: 3 } })).toThrow(RangeError);
    px.close();
  });
});
