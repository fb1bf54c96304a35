// zerocopyThreshold: the model suite again with every reply sent zero-copy (threshold 1 byte)
// on every model that takes the option: MSG_ZEROCOPY through the reactor Session's sendBuffer
// path, IORING_OP_SEND_ZC through the proactor's sends, with pipelining, 1 MiB replies, file
// bodies behind zero-copy heads, slow clients and clean closes. Then, per model, stats() shows
// the zero-copy sends the kernel reported (all copied, over loopback), and none below the
// threshold.
import { randomBytes } from 'node:crypto';
import { release } from 'node:os';
import { describe, expect, it } from 'vitest';
import { echoExchange, exchange } from '../helpers/clients.js';
import { parseServeArgs } from '../../dist/src/serve-cli.js';
import { serve } from '../helpers/rawio.js';
import { defineModelSuite } from './suite.js';

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
