// An edge-triggered echo server on a Reactor (epoll with EPOLLET): every fd is added with
// EPOLLET, so each handler drains its fd until EAGAIN — the Connection reads until EAGAIN,
// the accept loop below accepts until EAGAIN. Backpressure: a peer that reads slowly pauses
// reading until its queue drains. Run: node examples/echo-et.mjs [port], then nc to it.
import { Connection, Reactor, constants as c, sys } from 'rawio';

const reactor = new Reactor({ backend: 'epoll-et' });
const lfd = sys.listenTcp('127.0.0.1', Number(process.argv[2] ?? 7000));

reactor.watch(lfd, c.EPOLLIN, () => {
  for (let fd = sys.accept(lfd); fd >= 0; fd = sys.accept(lfd)) {
    const conn = new Connection(reactor, fd, {
      onData: (chunk) => {
        if (!conn.write(chunk)) conn.pause(); // the peer reads slowly: stop reading
      },
      onDrain: () => conn.resume(),
    });
  }
});

console.log(`echo server on 127.0.0.1:${sys.localPort(lfd)}`);
await reactor.run(); // owns this thread until reactor.stop()
