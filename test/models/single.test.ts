import { readdirSync, readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { serve } from '../helpers/rawio.js';
import { exchange, resp, respReplies } from '../helpers/clients.js';
import { defineModelSuite } from './suite.js';
import { defineUserCodeSuite } from './usercode-suite.js';

defineModelSuite('single');
defineUserCodeSuite('single');

/**
 * write/writev/send syscalls so far of the single model's reactor thread, found by the name
 * it carries (rawio-reactor0, /proc/self/task/TID/comm): no other thread's writes count, so
 * the test runner's messages and whatever else the process does meanwhile, which grow with
 * the run's pace (under the sanitizers and a loaded machine most), cannot reach the bound.
 */
function writeCalls(): number {
  let n = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      if (readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() !== 'rawio-reactor0') continue;
      n += Number(/^syscw:\s+(\d+)/m.exec(readFileSync(`/proc/self/task/${tid}/io`, 'utf8'))![1]);
    } catch {
      // exited between the listing and the read
    }
  }
  return n;
}

it('single: the replies to one read of pipelined requests leave in one writev, not one write each', async () => {
  const server = await serve({ model: 'single', protocol: 'resp', port: 0 });
  try {
    const batch = Buffer.concat(Array.from({ length: 200 }, (_, i) => resp('SET', `k${i}`, `v${i}`)));
    await exchange(server.port, respReplies(resp('PING'), 1)); // warm: the thread is up
    const before = writeCalls();
    const got = await exchange(server.port, respReplies(batch, 200));
    const calls = writeCalls() - before;
    expect(got.toString()).toBe('+OK\r\n'.repeat(200));
    // One per read the server made of the batch (a few at most); one write per reply would be 200.
    expect(calls).toBeGreaterThan(0); // the reactor's writes are counted
    expect(calls).toBeLessThan(40);
  } finally {
    await server.close();
  }
});
