/**
 * The Reactor and Connection over real sockets: an echo server for 200 concurrent node:net
 * clients with every backend (run() in a worker thread, attach() on the main thread beside
 * setTimeout and a node:net server), a 16 MiB echo through a slow reader (write queue and
 * EPOLLOUT), timers, stop() from a handler and a timer, promise continuations inside run(),
 * peer resets and bounded queues, and no leaked fds.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Reactor, constants as c, pollerNames, sys } from './helpers/rawio.js';
import { leakedSince, openFds } from './helpers/fds.js';
import { echoServer, manyClients } from './helpers/echo.js';
import { expectIdleRunHearsNode } from './helpers/idle-run.js';
import { eventually } from './helpers/wait.js';

let before: Map<number, string>;
beforeEach(() => {
  before = openFds();
});
afterEach(async () => {
  // libuv closes handles (sockets, uv_poll) on its next turn.
  await new Promise((r) => setTimeout(r, 20));
  expect(leakedSince(before)).toEqual([]);
});

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe.each(pollerNames)('Reactor %s', (backend) => {
  it('run() in a worker thread serves 200 concurrent node:net clients byte-exact', async () => {
    const worker = new Worker(new URL('./fixtures/echo-worker.mjs', import.meta.url), { workerData: { backend } });
    const exited = new Promise((r) => worker.once('exit', r));
    const messages: Record<string, number | boolean>[] = [];
    let notify = () => {};
    worker.on('message', (m: Record<string, number | boolean>) => (messages.push(m), notify()));
    const next = async () => {
      while (messages.length === 0) await new Promise<void>((r) => (notify = r));
      return messages.shift()!;
    };
    const ready = await next();
    expect(ready.tid).not.toBe(sys.gettid());
    expect(await manyClients(ready.port as number, 200, 16 * 1024)).toBe(200);
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    expect(sys.write(ready.stopFd as number, one)).toBe(8);
    const done = await next();
    expect(done).toMatchObject({ done: true, accepted: 200, leftover: 0 });
    expect(await exited).toBe(0);
  });

  it('attach() serves 200 clients on the main thread while setTimeout and node:net keep working', async () => {
    const reactor = new Reactor({ backend });
    const server = echoServer(reactor);
    let reactorTicks = 0;
    reactor.setTimer(5, () => reactorTicks++, { repeat: true });
    reactor.attach();
    let nodeTicks = 0;
    const iv = setInterval(() => nodeTicks++, 5);
    const nodeServer = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => nodeServer.listen(0, '127.0.0.1', r));
    const nodePort = (nodeServer.address() as net.AddressInfo).port;
    const [ours, theirs] = await Promise.all([
      manyClients(server.port, 200, 16 * 1024),
      manyClients(nodePort, 20, 16 * 1024),
      new Promise((r) => setTimeout(r, 60)),
    ]);
    expect(ours).toBe(200);
    expect(theirs).toBe(20);
    expect(server.accepted).toBe(200);
    expect(nodeTicks).toBeGreaterThan(0);
    expect(reactorTicks).toBeGreaterThan(0);
    clearInterval(iv);
    await new Promise((r) => nodeServer.close(r));
    reactor.stop();
    expect(reactor.running).toBe(false);
    server.close();
    reactor.close();
  });

  it('echoes 16 MiB through a slow reader: the write queue fills and EPOLLOUT drains it', async () => {
    const reactor = new Reactor({ backend });
    const server = echoServer(reactor, { pause: false });
    let maxQueued = 0;
    const watchQueue = setInterval(() => {
      for (const conn of server.conns) maxQueued = Math.max(maxQueued, conn.queuedBytes);
    }, 1);
    reactor.attach();
    const payload = Buffer.alloc(16 << 20);
    for (let i = 0; i < payload.length; i += 4) payload.writeUInt32LE((i * 2654435761) >>> 0, i);
    const got: Buffer[] = [];
    let gotBytes = 0;
    await new Promise<void>((resolve, reject) => {
      const s = net.connect(server.port, '127.0.0.1', () => {
        s.pause(); // read nothing until the server has queued: the kernel's buffers are full
        s.end(payload);
        // Until the queue has passed 1 MiB, not for a fixed time: a busy machine may echo
        // less than that in any given time. A server that never queues fails below.
        void eventually(() => maxQueued > 1 << 20, 10_000).then(() => s.resume());
      });
      s.on('data', (d: Buffer) => {
        got.push(d);
        gotBytes += d.length;
        if (got.length % 16 === 0) {
          s.pause(); // and keep reading slowly
          setTimeout(() => s.resume(), 1);
        }
      });
      s.on('end', resolve);
      s.on('error', reject);
    });
    clearInterval(watchQueue);
    expect(gotBytes).toBe(payload.length);
    expect(sha(Buffer.concat(got))).toBe(sha(payload));
    expect(maxQueued).toBeGreaterThan(1 << 20);
    reactor.stop();
    server.close();
    reactor.close();
  });

  it("run() with nothing to wake it still hears Node's own I/O: posted messages, then terminate()", () =>
    expectIdleRunHearsNode({ loop: 'reactor', backend }));

  it('timers: order, repeat, clearTimer, and stop() from a timer ends run()', async () => {
    const reactor = new Reactor({ backend });
    const order: string[] = [];
    reactor.setTimer(20, () => order.push('b'));
    reactor.setTimer(5, () => order.push('a'));
    const cancelled = reactor.setTimer(10, () => order.push('never'));
    reactor.clearTimer(cancelled);
    let reps = 0;
    const rep = reactor.setTimer(2, () => ++reps === 3 && reactor.clearTimer(rep), { repeat: true });
    // Stopped from a timer once the others are done (no wall-clock assumption).
    reactor.setTimer(30, () => reps >= 3 && order.length === 2 && reactor.stop(), { repeat: true });
    await reactor.run();
    expect(order).toEqual(['a', 'b']);
    expect(reps).toBe(3);
    expect(reactor.running).toBe(false);
    reactor.close();
  });

  it('attach(): reactor timers fire and stop() from a handler detaches', async () => {
    const reactor = new Reactor({ backend });
    const [a, b] = sys.socketpair();
    let detached!: () => void;
    const done = new Promise<void>((r) => (detached = r));
    reactor.watch(a, c.EPOLLIN, () => {
      sys.read(a, Buffer.alloc(8));
      reactor.stop();
      detached();
    });
    reactor.setTimer(5, () => sys.write(b, Buffer.from('x')));
    reactor.attach();
    expect(reactor.running).toBe(true);
    await done;
    expect(reactor.running).toBe(false);
    sys.write(b, Buffer.from('y')); // detached: nothing dispatches it
    await new Promise((r) => setTimeout(r, 10));
    expect(sys.read(a, Buffer.alloc(8))).toBe(1);
    reactor.unwatch(a);
    reactor.close();
    sys.close(a);
    sys.close(b);
  });

  it('run() returns to its caller before it blocks; a second run() or attach() is refused', async () => {
    const reactor = new Reactor({ backend });
    const [a, b] = sys.socketpair();
    const got: string[] = [];
    reactor.watch(a, c.EPOLLIN, () => {
      const buf = Buffer.alloc(8);
      got.push(buf.subarray(0, sys.read(a, buf)).toString());
      reactor.stop();
    });
    const running = reactor.run();
    expect(reactor.running).toBe(true);
    await expect(reactor.run()).rejects.toThrow(/already running/);
    expect(() => reactor.attach()).toThrow(/already running/);
    sys.write(b, Buffer.from('late'));
    await running;
    expect(got).toEqual(['late']);
    expect(reactor.running).toBe(false);
    reactor.unwatch(a);
    reactor.close();
    sys.close(a);
    sys.close(b);
  });

  it('run(): promise continuations from handlers run, and stop() works from a handler', async () => {
    const reactor = new Reactor({ backend });
    const [a, b] = sys.socketpair();
    let timerFired = false;
    const guard = reactor.setTimer(5000, () => ((timerFired = true), reactor.stop()));
    const steps: number[] = [];
    reactor.watch(a, c.EPOLLIN, () => {
      sys.read(a, Buffer.alloc(16));
      void (async () => {
        for (let i = 0; i < 10; i++) steps.push(await Promise.resolve(i));
        reactor.stop();
      })();
    });
    sys.write(b, Buffer.from('go'));
    await reactor.run();
    expect(timerFired).toBe(false);
    expect(steps).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    reactor.clearTimer(guard);
    reactor.unwatch(a);
    reactor.close();
    sys.close(a);
    sys.close(b);
  }, 10_000);
});

describe('an fd closed while Node’s loop watches it', () => {
  // libuv aborts the process when epoll_ctl fails on a watched fd; rawio's watches poll a
  // duplicate, so a caller that closes first and unwatches later (or never) loses nothing.
  it('does not abort the process (attached select reactor, waitWritable)', () => {
    const index = new URL('../dist/src/index.js', import.meta.url).href;
    const script = `
      import { Reactor, sys, waitWritable, constants as c } from ${JSON.stringify(index)};
      const [a, b] = sys.socketpair();
      const r = new Reactor({ backend: 'select' });
      r.watch(a, c.EPOLLIN, () => {});
      r.attach();
      sys.close(a); // closed while watched, before the next turn of Node's loop
      const [x, y] = sys.socketpair();
      const waiting = waitWritable(x);
      sys.close(x);
      await waiting.catch(() => {});
      await new Promise((res) => setTimeout(res, 50));
      r.unwatch(a);
      r.close();
      sys.close(b);
      sys.close(y);
      console.log('alive');
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(out.trim()).toBe('alive');
  });
});
