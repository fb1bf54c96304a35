import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { serve } from '../helpers/rawio.js';
import { exchange, resp, respReplies } from '../helpers/clients.js';
import { defineModelSuite } from './suite.js';
import { defineUserCodeSuite } from './usercode-suite.js';

defineModelSuite('single');
defineUserCodeSuite('single');

/** write/writev/send syscalls of this process so far (/proc/self/io: every thread, the single model's reactor included). */
const writeCalls = () => Number(/^syscw:\s+(\d+)/m.exec(readFileSync('/proc/self/io', 'utf8'))![1]);

it('single: the replies to one read of pipelined requests leave in one writev, not one write each', async () => {
  const server = await serve({ model: 'single', protocol: 'resp', port: 0 });
  try {
    const batch = Buffer.concat(Array.from({ length: 200 }, (_, i) => resp('SET', `k${i}`, `v${i}`)));
    await exchange(server.port, respReplies(resp('PING'), 1)); // warm: the thread is up
    const before = writeCalls();
    const got = await exchange(server.port, respReplies(batch, 200));
    const calls = writeCalls() - before;
    expect(got.toString()).toBe('+OK\r\n'.repeat(200));
    // One per read the server made of the batch (a few at most) plus the client's own write
    // and the test runner's messages; one write per reply would be 200.
    expect(calls).toBeLessThan(40);
  } finally {
    await server.close();
  }
});
