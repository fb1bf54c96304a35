/**
 * The Proactor's direct-descriptor operations, which the multi-proactor model is built on:
 * a multishot accept into one ring's registered file table, the file moved into a second
 * ring with IORING_OP_MSG_RING (IORING_MSG_SEND_FD), made an fd there with
 * IORING_OP_FIXED_FD_INSTALL, and every slot emptied after. Real sockets, no fd leaked.
 */
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { multiProactorUnsupported } from '../dist/src/models/multi-proactor.js';
import { leakedSince, openFds } from './helpers/fds.js';
import { Proactor, sys } from './helpers/rawio.js';
import { titled } from './helpers/skips.js';

const unsupported = multiProactorUnsupported();

function connect(port: number, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(msg));
    let got = '';
    s.on('data', (d) => {
      got += d.toString();
      if (got.length >= msg.length) s.end();
    });
    s.on('close', () => resolve(got));
    s.on('error', reject);
  });
}

describe.skipIf(unsupported)(titled('Proactor direct descriptors', unsupported), () => {
  let before: Map<number, string>;
  beforeEach(() => (before = openFds()));
  afterEach(() => expect(leakedSince(before)).toEqual([]));

  it('moves accepted connections from a main ring to a sub-ring, which serves them as fds', async () => {
    const main = new Proactor({ entries: 64 });
    const sub = new Proactor({ entries: 64 });
    main.registerFileSlots(8);
    sub.registerFileSlots(8);
    const lfd = sys.listenTcp('127.0.0.1', 0);
    const slotsSeen: number[] = [];
    const sendResults: number[] = [];
    const served: number[] = [];
    const token = sub.inbox((slot) => {
      if (slot < 0) return;
      slotsSeen.push(slot);
      sub.installFd(slot, (fd) => {
        sub.closeSlot(slot, (r) => expect(r).toBe(0));
        expect(fd).toBeGreaterThanOrEqual(0);
        served.push(fd);
        const buf = Buffer.alloc(256);
        sub.recv(fd, buf, (n) => {
          const reply = Buffer.from(`sub:${buf.subarray(0, n).toString()}`);
          sub.send(fd, reply, 0, reply.length, () => sys.close(fd));
        });
      });
    });
    main.acceptDirect(lfd, (slot) => {
      if (slot < 0) return; // -ECANCELED at close
      main.sendFd(sub.ring.fd, slot, token, (res) => {
        sendResults.push(res);
        main.closeSlot(slot);
      });
    });
    main.attach();
    sub.attach();
    const port = sys.localPort(lfd);
    // More connections than either table has slots: every slot must be emptied after use.
    for (let round = 0; round < 3; round++) {
      const got = await Promise.all(Array.from({ length: 6 }, (_, i) => connect(port, `hello ${round}.${i}`)));
      got.forEach((g, i) => expect(g).toBe(`sub:hello ${round}.${i}`));
    }
    expect(sendResults).toHaveLength(18);
    for (const r of sendResults) expect(r).toBeGreaterThanOrEqual(0); // the slot it took in the sub-ring
    expect(served).toHaveLength(18);
    expect(Math.max(...slotsSeen)).toBeLessThan(8);
    main.close();
    sub.close();
    sys.close(lfd);
  });

  it('a send to a ring that is gone fails with an errno, and the slot can still be emptied', async () => {
    const main = new Proactor({ entries: 16 });
    const gone = new Proactor({ entries: 16 });
    gone.registerFileSlots(4);
    const token = gone.inbox(() => {});
    const goneFd = gone.ring.fd;
    gone.close();
    main.registerFileSlots(4);
    const lfd = sys.listenTcp('127.0.0.1', 0);
    const results: number[] = [];
    const closed = new Promise<number>((resolve) =>
      main.acceptDirect(lfd, (slot) => {
        if (slot < 0) return;
        main.sendFd(goneFd, slot, token, (res) => {
          results.push(res);
          main.closeSlot(slot, resolve);
        });
      }),
    );
    main.attach();
    const client = net.connect(sys.localPort(lfd), '127.0.0.1');
    client.on('error', () => {});
    expect(await closed).toBe(0);
    expect(results[0]).toBeLessThan(0); // EBADF: no ring there any more (or a reused fd that is not one)
    // The emptied slot was the connection's last reference: the client reads its end (a FIN:
    // it sent nothing the server left unread), before its own close.
    const ended = await new Promise((r) => client.on('close', () => r('close')).on('end', () => r('end')));
    expect(ended).toBe('end');
    client.destroy();
    main.close();
    sys.close(lfd);
  });

  it('checks its arguments', () => {
    const p = new Proactor({ entries: 8 });
    expect(() => p.registerFileSlots(0)).toThrow(RangeError);
    expect(() => p.sendFd(-1, 0, 0, () => {})).toThrow(RangeError);
    expect(() => p.installFd(-1, () => {})).toThrow(RangeError);
    expect(() => p.closeSlot(1.5)).toThrow(RangeError);
    expect(() => p.inbox(null as never)).toThrow(TypeError);
    p.close();
  });
});
