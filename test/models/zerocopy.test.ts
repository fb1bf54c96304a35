// zerocopyThreshold: the model suite again with every reply sent zero-copy (threshold 1 byte)
// on every model that takes the option: MSG_ZEROCOPY through the reactor Session's sendBuffer
// path, IORING_OP_SEND_ZC through the proactor's sends, with pipelining, 1 MiB replies, file
// bodies behind zero-copy heads, slow clients and clean closes. Then, per model, stats() shows
// the zero-copy sends the kernel reported (all copied, over loopback), and none below the
// threshold.
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { release } from 'node:os';
import { describe, expect, it } from 'vitest';
import { multiProactorUnsupported } from '../../dist/src/models/multi-proactor.js';
import { echoExchange, exchange } from '../helpers/clients.js';
import { leakedSince, openFds } from '../helpers/fds.js';
import { exited } from '../helpers/procs.js';
import { parseServeArgs } from '../../dist/src/serve-cli.js';
import { serve, type ModelName } from '../helpers/rawio.js';
import { eventually as within } from '../helpers/wait.js';
import { defineModelSuite } from './suite.js';
import { closing } from './wire-close.js';

const [major = 0, minor = 0] = release().split('.').map(Number);
const usageReported = major > 6 || (major === 6 && minor >= 2); // IORING_SEND_ZC_REPORT_USAGE
const MODELS = ['single', 'worker-pool', 'multi-reactor', 'multi-reactor-pool', 'multi-process', 'proactor'] as const;
// The whole suite runs on one model per way replies reach the zero-copy writer: the reactor
// Session (single), replies from pool threads (worker-pool), worker processes (multi-process)
// and SEND_ZC (proactor). multi-reactor and multi-reactor-pool send through the same Session
// as single and worker-pool; the stats test below proves the option reaches them too. The
// wire contract runs zero-copy on the two writers that enforce it, the reactor Session's
// (single: pool threads and worker processes reply through the same one) and the proactor's.
const SUITE_MODELS = ['single', 'worker-pool', 'multi-process', 'proactor'] as const;
const WIRE_MODELS: readonly string[] = ['single', 'proactor'];

for (const model of SUITE_MODELS) {
  defineModelSuite(model, { zerocopyThreshold: 1, workers: 2 }, { wire: WIRE_MODELS.includes(model) });
}

async function eventually(check: () => boolean): Promise<void> {
  for (let i = 0; i < 250 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
}

describe('zerocopyThreshold in stats()', () => {
  for (const model of MODELS) {
    it(`${model}: replies at the threshold go out zero-copy, those below do not`, async () => {
      const server = await serve({ model, protocol: 'echo', workers: 1, zerocopyThreshold: 1000 });
      try {
        const small = randomBytes(100);
        expect(await exchange(server.port, echoExchange(small))).toEqual(small);
        const big = randomBytes(1 << 20);
        expect((await exchange(server.port, echoExchange(big))).equals(big)).toBe(true); // not toEqual: slow on 1 MiB
        await eventually(() => server.stats().zerocopy.sends > 0);
        const { sends, copied } = server.stats().zerocopy;
        expect(sends).toBeGreaterThan(0);
        // loopback: the kernel copies, and says so (SEND_ZC: from 6.2)
        expect(copied).toBe(model === 'proactor' && !usageReported ? 0 : sends);
      } finally {
        await server.close();
      }
      const off = await serve({ model, protocol: 'echo', workers: 1 });
      try {
        const big = randomBytes(1 << 20);
        expect((await exchange(off.port, echoExchange(big))).equals(big)).toBe(true);
        expect(off.stats().zerocopy).toEqual({ sends: 0, copied: 0 });
      } finally {
        await off.close();
      }
    });
  }

  it('rawio serve takes --zerocopy-threshold', () => {
    const argv = ['--model', 'single', '--protocol', 'echo', '--zerocopy-threshold', '65536'];
    expect(parseServeArgs(argv).zerocopyThreshold).toBe(65536);
  });

  it('zerocopyThreshold is checked up front', async () => {
    await expect(serve({ model: 'single', protocol: 'echo', zerocopyThreshold: -1 })).rejects.toThrow(RangeError);
    await expect(serve({ model: 'single', protocol: 'echo', zerocopyThreshold: '1' as never })).rejects.toThrow(
      TypeError,
    );
  });
});

/**
 * The bytes waiting in the send queue of the server's socket of each connection to `port`
 * (/proc/net/tcp's tx_queue, by local port): the sockets closed but kept by the kernel too.
 */
function serverQueues(port: number): number[] {
  const local = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const out: number[] = [];
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [, addr, remote, state, queues] = line.trim().split(/\s+/);
    if (addr?.endsWith(local) !== true || remote === '00000000:0000' || state === '0A') continue; // 0A: listening
    out.push(parseInt(queues!.split(':')[0]!, 16));
  }
  return out;
}

const APP = new URL('../fixtures/user/app.mjs', import.meta.url).href;
const INDEX = new URL('../../dist/src/index.js', import.meta.url).href;

// A process that serves `model` with such a client of its own and exits without close()
// once a send waits in the server's queue: its server threads end with the connection open,
// and their rings must not wait for it.
const exitsServing = `
import net from 'node:net';
import { readFileSync } from 'node:fs';
const [index, model, app] = process.argv.slice(1);
const { serve } = await import(index);
const s = await serve({ model, protocol: 'http', handler: app, workers: 1, zerocopyThreshold: 1 });
const local = ':' + s.port.toString(16).toUpperCase().padStart(4, '0');
const queued = () => readFileSync('/proc/net/tcp', 'utf8').split('\\n').some((line) => {
  const [, addr, remote, , queues] = line.trim().split(/\\s+/);
  return addr?.endsWith(local) && remote !== '00000000:0000' && parseInt(queues.split(':')[0], 16) > 0;
});
const c = net.connect(s.port, '127.0.0.1');
c.on('error', () => undefined);
c.pause();
c.write('GET /stream-reused?size=1048576&n=64 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n');
for (const end = Date.now() + 20000; Date.now() < end && !queued(); ) await new Promise((r) => setTimeout(r, 20));
process.exit(0);
`;

// A client that never reads, and a reply far larger than both sockets' buffers, sent
// zero-copy: a send waits in the server socket's queue for a window that never opens. Its
// pages are the server's buffer until the kernel lets go of them (io_uring's notification,
// MSG_ZEROCOPY's completion), so close() cuts such a connection with a reset, which frees
// the queue at once: otherwise the kernel keeps the orphaned socket and its queue for
// minutes, and a proactor's ring, which waits for every notification before it closes,
// would keep close() from resolving.
describe('close() cuts a client that does not take a zero-copy reply', () => {
  const why = multiProactorUnsupported();
  for (const model of ['proactor', 'multi-proactor', 'single'] as ModelName[]) {
    it(`${model}: close() resolves, nothing is left open, and the socket's queue is freed`, async (ctx) => {
      if (model === 'multi-proactor' && why !== undefined) return ctx.skip(why);
      const fds = openFds();
      const s = await serve({ model, protocol: 'http', handler: APP, workers: 1, zerocopyThreshold: 1 });
      const client = net.connect(s.port, '127.0.0.1');
      client.on('error', () => undefined); // the reset: expected
      client.pause(); // never reads
      await new Promise((r) => client.once('connect', r));
      // 64 chunks of 1 MiB, each sent zero-copy once the one before it has been taken.
      client.write('GET /stream-reused?size=1048576&n=64 HTTP/1.1\r\nHost: x\r\n\r\n');
      expect(await within(() => serverQueues(s.port).some((n) => n > 0))).toBe(true);
      expect(await closing(s).done).toBe(true);
      // No socket of the server's is left holding bytes, closed or not.
      expect(await within(() => serverQueues(s.port).every((n) => n === 0))).toBe(true);
      client.destroy();
      expect(await within(() => leakedSince(fds).length === 0)).toBe(true);
    }, 60_000);
  }

  for (const model of ['proactor', 'multi-proactor'] as ModelName[]) {
    it(`${model}: process.exit() without close() ends the process`, async (ctx) => {
      if (model === 'multi-proactor' && why !== undefined) return ctx.skip(why);
      const args = ['--input-type=module', '-e', exitsServing, INDEX, model, APP];
      const child = spawn(process.execPath, args, { stdio: 'ignore' });
      const done = exited(child);
      let code: number | null | 'stalled' = 'stalled';
      void done.then((c) => (code = c));
      try {
        expect(await within(() => code !== 'stalled')).toBe(true);
        expect(code).toBe(0);
      } finally {
        if (code === 'stalled') child.kill('SIGKILL');
        await done;
      }
    }, 60_000);
  }
});
