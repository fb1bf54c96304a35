import { readdirSync, readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { serve } from '../helpers/rawio.js';
import { exchange, resp, respReplies } from '../helpers/clients.js';
import { defineModelSuite } from './suite.js';
import { defineUserCodeSuite } from './usercode-suite.js';

defineModelSuite('single');
defineUserCodeSuite('single');

/**
 * write/writev/send syscalls so far of this process's threads other than its main one
 * (/proc/self/task/TID/io): the single model's reactor thread among them, while the client
 * and the test runner's messages to its parent, whose number grows with the run's pace
 * (under the sanitizers most), write on the main thread. A thread that has exited drops
 * out, which only lowers the count.
 */
function writeCalls(): number {
  let n = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    if (Number(tid) === process.pid) continue;
    try {
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
