/**
 * Promise replies and streamed bodies through each of the connection core's drivers —
 * reactor thread (handlers inline, and on a pool thread), proactor thread, blocking
 * session — with a protocol whose replies are ready in another order than asked
 * (test/fixtures/core/lines-protocol.mjs): replies leave in request order, bodies follow
 * their reply's head, a body that throws closes the connection after what was sent, and
 * a closing reply is the last (what the client sent after it is never run).
 */
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sys } from '../helpers/rawio.js';
import { Channel } from '../../dist/src/models/channel.js';
import { CHANNEL_BYTES, MSG } from '../../dist/src/models/messages.js';
import { createCredits } from '../../dist/src/models/body-feed.js';
import { CONN_DEFAULTS } from '../../dist/src/models/conn-core.js';
import { FdSlot } from '../../dist/src/models/blocking-session.js';
import { Stats } from '../../dist/src/models/stats.js';
import { EVENTFD_ONE } from '../../dist/src/sys/eventfd-one.js';
import { leakedSince, openFds } from '../helpers/fds.js';

const fixture = new URL('../fixtures/core/driver-worker.mjs', import.meta.url);

interface Driver {
  port: number;
  stop(): Promise<void>;
}

function startWorker(workerData: object): Promise<Worker> {
  const w = new Worker(fixture, { workerData });
  return new Promise((resolve, reject) => {
    w.once('message', () => resolve(w));
    w.once('error', reject);
  });
}

const exited = (w: Worker) => new Promise<void>((r) => (w.threadId < 0 ? r() : w.once('exit', () => r())));

async function startDriver(kind: string): Promise<Driver> {
  const blocking = kind === 'blocking';
  const listenFd = sys.listenTcp('127.0.0.1', 0, { backlog: 64, blocking });
  const port = sys.localPort(listenFd);
  const stats = new Stats(1).share();
  const base = { index: 0, listenFd, protocol: 'echo', protocolOptions: {}, maxQueue: 64 << 20, limits: CONN_DEFAULTS };
  if (kind === 'proactor') {
    const stopFd = sys.eventfd();
    const w = await startWorker({ ...base, role: 'proactor', stopFd, stats });
    return {
      port,
      stop: async () => {
        sys.write(stopFd, EVENTFD_ONE);
        await exited(w);
        sys.close(stopFd);
        sys.close(listenFd);
      },
    };
  }
  if (blocking) {
    const slot = FdSlot.create();
    const w = await startWorker({ ...base, role: 'blocking', slot, stats });
    return {
      port,
      stop: async () => {
        new FdSlot(slot).stop();
        sys.shutdown(listenFd, 'both');
        await exited(w);
        sys.close(listenFd);
      },
    };
  }
  const efd = sys.eventfd();
  const inbox = Channel.create(CHANNEL_BYTES, efd);
  const workers: Worker[] = [];
  const pool: ReturnType<typeof Channel.create>[] = [];
  const poolCredits: SharedArrayBuffer[] = [];
  if (kind === 'pool') {
    pool.push(Channel.create(CHANNEL_BYTES));
    poolCredits.push(createCredits());
    const data = { role: 'pool', index: 0, requests: pool[0], replies: [inbox], credits: poolCredits[0] };
    workers.push(await startWorker({ ...data, protocol: 'echo', protocolOptions: {} }));
  }
  const data = { ...base, role: 'reactor', inbox, pool, poolCredits, backend: 'epoll', transfer: 'auto', directio: 0 };
  workers.push(await startWorker({ ...data, stats }));
  return {
    port,
    stop: async () => {
      new Channel(inbox).push(MSG.STOP);
      for (const p of pool) new Channel(p).push(MSG.STOP);
      await Promise.all(workers.map(exited));
      sys.close(efd);
      sys.close(listenFd);
    },
  };
}

/** Sends `lines`, reads until the server closes or `until` holds (or 5 s pass). */
function talk(port: number, lines: string, until: (s: string) => boolean = () => false): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const c = net.connect(port, '127.0.0.1', () => c.write(lines));
    const done = () => {
      clearTimeout(t);
      c.destroy();
      resolve(got);
    };
    const t = setTimeout(done, 5000);
    c.on('data', (d) => {
      got += d.toString('latin1');
      if (until(got)) done();
    });
    c.on('close', done);
    c.on('error', reject);
  });
}

describe.each(['reactor', 'pool', 'proactor', 'blocking'])('connection core driven by %s', (kind) => {
  let d: Driver;
  let before: Map<number, string>;
  beforeAll(async () => {
    before = openFds();
    d = await startDriver(kind);
  });
  afterAll(async () => {
    await d.stop();
    expect(leakedSince(before)).toEqual([]);
  });

  it('answers promise replies in request order, whatever order they settle in', async () => {
    const got = await talk(d.port, 'later a 40\nsync b\nlater c 5\nlater d 0\nsync e\n', (s) => s.endsWith('e\n'));
    expect(got).toBe('a\nb\nc\nd\ne\n');
  });

  it('streams a body after its reply, then the replies behind it', async () => {
    const want = 'B\n' + Array.from({ length: 20 }, (_, i) => `c${i}\n`).join('') + 'after\n';
    const got = await talk(d.port, 'body 20\nsync after\n', (s) => s.endsWith('after\n'));
    expect(got).toBe(want);
  });

  it('streams a large body with backpressure, all of it, in order', async () => {
    const got = await talk(d.port, `body 64 65536\nsync end\n`, (s) => s.endsWith('end\n'));
    expect(got.length).toBe(2 + 64 * 65536 + 4);
    for (let i = 0; i < 64; i++) expect(got[2 + i * 65536]).toBe(String.fromCharCode(97 + (i % 26)));
  });

  it('closes after what was sent when a body throws; nothing after it runs', async () => {
    expect(await talk(d.port, 'boom\nsync never\n')).toBe('B\nx\n');
  });

  it('runs nothing sent after a closing promise reply', async () => {
    expect(await talk(d.port, 'bye last\nsync never\nlater never 0\n')).toBe('last\n');
  });
});
