import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { multiProactorUnsupported } from '../../dist/src/models/multi-proactor.js';
import { ringOptionSupport } from '../../dist/src/sys/ring-options.js';
import { echoExchange, exchange } from '../helpers/clients.js';
import { serve } from '../helpers/rawio.js';
import { defineModelSuite } from './suite.js';
import { defineUserCodeSuite } from './usercode-suite.js';

const why = multiProactorUnsupported();

if (why === undefined) {
  defineModelSuite('multi-proactor');
  defineUserCodeSuite('multi-proactor');
} else {
  describe('multi-proactor', () => {
    it('rejects with the reason where the kernel lacks MSG_RING fd passing', async () => {
      await expect(serve({ model: 'multi-proactor', protocol: 'echo', port: 0 })).rejects.toThrow(why);
    });
    it('model suites', (ctx) => ctx.skip(why));
  });
}

describe('ring setup through serve()', () => {
  it('rejects unknown or ill-typed ring options before opening anything', async () => {
    await expect(serve({ model: 'proactor', protocol: 'echo', ring: { bogus: true } as never })).rejects.toThrow(
      TypeError,
    );
    await expect(serve({ model: 'single', protocol: 'echo', ring: {} })).rejects.toThrow(/proactor, multi-proactor/);
    await expect(serve({ model: 'proactor', protocol: 'echo', ring: { recvBundle: 1 as never } })).rejects.toThrow(
      TypeError,
    );
    await expect(
      serve({ model: 'proactor', protocol: 'echo', ring: { recvBundle: true, incrementalBuffers: true } }),
    ).rejects.toThrow(RangeError);
  });

  const models = why === undefined ? (['proactor', 'multi-proactor'] as const) : (['proactor'] as const);
  const setups = ringOptionSupport();
  it.for(models)('%s serves echo byte-exact with each ring option on', async (model, ctx) => {
    const payload = randomBytes(3 << 20);
    let served = 0;
    for (const ring of [
      { registerRingFd: true },
      { submitAll: false },
      { cqEntries: 4096 },
      { recvBundle: true },
      { incrementalBuffers: true },
    ]) {
      const name = Object.keys(ring)[0]!;
      const key = (name === 'cqEntries' ? 'cqSize' : name) as keyof typeof setups;
      if (!setups[key].supported) continue; // the kernel lacks it: ring-options.test.ts reports the skip
      const server = await serve({ model, protocol: 'echo', workers: 1, ring });
      try {
        const got = await exchange(server.port, echoExchange(payload));
        expect(got.equals(payload)).toBe(true);
        served++;
      } finally {
        await server.close();
      }
    }
    if (served === 0) ctx.skip('this kernel supports none of the ring options');
  });
});
