/**
 * A graceful close (Server.close's drain) that reaches a connection before its thread has
 * read what the client sent — the thread was busy with other clients, or had only just
 * accepted the connection: the bytes the kernel holds are read as a request begun and
 * answered, then the connection ends; they are not dropped unread with the connection
 * (which resets the client). Each driver that reads a socket when it turns readable, on a
 * socketpair, with the drain begun before the driver has read a byte: the reactor Session
 * and the blocking session. (A proactor thread's RingConn asks the same poll(2); when the
 * kernel holds nothing it cancels its recv in flight, so that what the recv took arrives
 * before the core decides: the wire suites' drain tests cover it.) An idle connection with
 * nothing sent still closes at once, as before.
 */
import { describe, expect, it } from 'vitest';
import { Connection, Reactor, sys } from '../helpers/rawio.js';
import { createProtocol } from '../../dist/src/protocols/index.js';
import { Session } from '../../dist/src/models/session.js';
import { FdSlot, serveBlocking } from '../../dist/src/models/blocking-session.js';
import { CONN_DEFAULTS } from '../../dist/src/models/conn-core.js';
import { DrainSignal } from '../../dist/src/models/drain.js';
import { Stats } from '../../dist/src/models/stats.js';
import { EVENTFD_ONE } from '../../dist/src/sys/eventfd-one.js';
import { leakedSince, openFds } from '../helpers/fds.js';

const SENT = 'one\ntwo\n';

/** Everything `fd` reads until EOF or an error (ECONNRESET: the server closed with bytes unread). */
function readAll(fd: number): { got: string; end: string } {
  const buf = Buffer.alloc(4096);
  let got = '';
  for (;;) {
    const n = sys.read(fd, buf);
    if (n > 0) got += buf.toString('latin1', 0, n);
    else return { got, end: n === 0 ? 'EOF' : String(n) };
  }
}

describe('a drain that reaches a connection before its first read', () => {
  it('reactor Session: what the client sent is answered, then EOF; an idle connection closes at once', async () => {
    const before = openFds();
    const reactor = new Reactor({ backend: 'epoll' });
    const protocol = createProtocol('echo');
    let closed = 0;
    const open = (sent: string) => {
      const [a, b] = sys.socketpair();
      if (sent !== '') sys.write(b, Buffer.from(sent));
      sys.shutdown(b, 'write'); // the client has said all it will: no lingering to wait out
      const session = new Session(new Connection(reactor, a), {
        protocol,
        stats: new Stats(1),
        transfer: 'auto',
        directio: 0,
        onClose: () => closed++,
      });
      session.core.drain(); // before the reactor has run: nothing of `sent` is read yet
      return b;
    };
    const busy = open(SENT);
    const idle = open('');
    let ticks = 0;
    const results: { got: string; end: string }[] = [];
    sys.setBlocking(busy, true);
    sys.setBlocking(idle, true);
    reactor.setTimer(
      5,
      () => {
        // Until the server has closed both (a stall guard: 10 s).
        if (closed === 2 || ++ticks > 2000) reactor.stop();
      },
      { repeat: true },
    );
    await reactor.run();
    expect(closed).toBe(2);
    results.push(readAll(busy), readAll(idle));
    reactor.close();
    protocol.close();
    sys.close(busy);
    sys.close(idle);
    expect(results[0]).toEqual({ got: SENT, end: 'EOF' });
    expect(results[1]).toEqual({ got: '', end: 'EOF' });
    expect(leakedSince(before)).toEqual([]);
  });

  it('blocking session: what the client sent is answered, then EOF; an idle connection closes at once', async () => {
    const before = openFds();
    const protocol = createProtocol('echo');
    const init = DrainSignal.create(() => sys.eventfd());
    const drain = new DrainSignal(init);
    drain.begin((fd) => sys.write(fd, EVENTFD_ONE)); // before the session has read a byte
    const serve = async (sent: string) => {
      const [a, b] = sys.socketpair();
      if (sent !== '') sys.write(b, Buffer.from(sent));
      sys.shutdown(b, 'write');
      const stats = new Stats(1);
      const opts = { protocol, stats, limits: CONN_DEFAULTS, maxQueue: 64 << 20, transfer: 'auto', directio: 0, drain };
      await serveBlocking(a, new FdSlot(FdSlot.create()), opts, stats.admit(0, a));
      sys.close(a); // serveBlocking's caller closes the fd
      sys.setBlocking(b, true);
      const r = readAll(b);
      sys.close(b);
      return r;
    };
    expect(await serve(SENT)).toEqual({ got: SENT, end: 'EOF' });
    expect(await serve('')).toEqual({ got: '', end: 'EOF' });
    sys.close(init.fd);
    protocol.close();
    expect(leakedSince(before)).toEqual([]);
  });
});
