// A TypeScript consumer of the main API, type-checked (never run) by test/package/package.test.ts
// inside a fresh project that installed the packed tarball, under node16, nodenext and bundler
// resolution with library checks on: the shipped declarations must carry every type this
// takes, and need nothing but @types/node beside them.
import {
  Connection,
  ErrnoError,
  Keyspace,
  Proactor,
  Reactor,
  Ring,
  constants,
  createProtocol,
  probe,
  serve,
  sys,
  transferFile,
  type ProactorOptions,
  type ReactorOptions,
  type Server,
  type ServeOptions,
  type StatsSnapshot,
  type TransferOptions,
} from 'rawio';
import { formatHdrTable, loadgen, resolveTarget } from 'rawio/loadgen';

export async function main(): Promise<void> {
  const opts: ServeOptions = { model: 'multi-reactor', protocol: 'http', workers: 2, port: 0 };
  const server: Server = await serve(opts);
  const stats: StatsSnapshot = server.stats();
  console.log(server.host, server.port, stats.requests, stats.accepted.length);
  await server.close();

  const reactor = new Reactor({ backend: 'epoll-et' } satisfies ReactorOptions);
  const lfd = sys.listenTcp('127.0.0.1', 0);
  reactor.watch(lfd, constants.EPOLLIN, () => {
    for (let fd = sys.accept(lfd); fd >= 0; fd = sys.accept(lfd)) {
      const conn: Connection = new Connection(reactor, fd, {
        onData: (chunk) => {
          if (!conn.write(chunk)) conn.pause();
        },
        onDrain: () => conn.resume(),
      });
    }
  });
  reactor.close();

  const proactor = new Proactor({ entries: 64 } satisfies ProactorOptions);
  proactor.close();

  if (Ring.supported()) {
    const ring = new Ring();
    const buf = sys.alignedBuffer(4096);
    const fd = sys.open('/etc/hostname', constants.O_RDONLY);
    const n: number = await ring.read(fd, buf, 0, 4096, 0);
    ring.close();
    const [a, b] = sys.socketpair();
    const how: TransferOptions = { method: 'sendfile' };
    const sent: number = await transferFile(a, fd, how);
    console.log(n, sent);
    for (const f of [a, b, fd]) sys.close(f);
  }

  const ks = Keyspace.create();
  ks.set(Buffer.from('k'), Buffer.from('v'));
  const got: number = ks.get(Buffer.from('k'), Buffer.alloc(16));
  ks.close();
  console.log(got, createProtocol('resp', { localKeyspace: true }), probe().kernel);

  try {
    sys.close(sys.eventfd(0));
  } catch (e) {
    if (e instanceof ErrnoError) console.log(e.code, e.errno, e.syscall);
  }

  const r = await loadgen({ ...(await resolveTarget('127.0.0.1:8080')), protocol: 'http', durationMs: 100 });
  console.log(r.rps, r.latencyUs.p99, formatHdrTable(r.histogram, r.latencyUs.mean));
}
