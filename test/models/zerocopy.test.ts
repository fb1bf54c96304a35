// zerocopyThreshold: the model suite again with every reply sent zero-copy (threshold 1 byte)
// on every model that takes the option: MSG_ZEROCOPY through the reactor Session's sendBuffer
// path, IORING_OP_SEND_ZC through the proactor's sends, with pipelining, 1 MiB replies, file
// bodies behind zero-copy heads, slow clients and clean closes.
import { expect, it } from 'vitest';
import { serve } from '../helpers/rawio.js';
import { defineModelSuite } from './suite.js';

for (const model of [
  'single',
  'worker-pool',
  'multi-reactor',
  'multi-reactor-pool',
  'multi-process',
  'proactor',
] as const)
  defineModelSuite(model, { zerocopyThreshold: 1, workers: 2 });

it('zerocopyThreshold is checked up front', async () => {
  await expect(serve({ model: 'single', protocol: 'echo', zerocopyThreshold: -1 })).rejects.toThrow(RangeError);
  await expect(serve({ model: 'single', protocol: 'echo', zerocopyThreshold: '1' as never })).rejects.toThrow(
    TypeError,
  );
});
