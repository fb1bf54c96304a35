/**
 * Thread names (prctl PR_SET_NAME / PR_GET_NAME): sys.setThreadName and getThreadName on
 * the calling thread only, the kernel's 15-byte limit and bad input, and the names the
 * server models give their threads (rawio-<role><index>), which top -H, ps -L and perf show.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { serve, sys } from './helpers/rawio.js';

/** The names of this process's threads, from /proc (what ps -L shows). */
function threadNames(): string[] {
  const names: string[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      names.push(readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim());
    } catch {
      // exited between the listing and the read
    }
  }
  return names.sort();
}

describe('sys.setThreadName', () => {
  it('names the calling thread only, as /proc and getThreadName see it', async () => {
    const mainName = sys.getThreadName();
    const src = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { readFileSync } = require('node:fs');
      const { sys } = require(workerData);
      sys.setThreadName('rawio-test-t1');
      parentPort.postMessage({
        name: sys.getThreadName(),
        comm: readFileSync('/proc/self/task/' + sys.gettid() + '/comm', 'utf8').trim(),
      });`;
    const w = new Worker(src, { eval: true, workerData: new URL('../index.cjs', import.meta.url).pathname });
    const got = await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    await w.terminate();
    expect(got).toEqual({ name: 'rawio-test-t1', comm: 'rawio-test-t1' });
    expect(sys.getThreadName()).toBe(mainName);
  });

  it('takes 15 bytes, the kernel limit, and refuses more, a NUL or a non-string', () => {
    const before = sys.getThreadName();
    try {
      sys.setThreadName('x'.repeat(15));
      expect(sys.getThreadName()).toBe('x'.repeat(15));
      sys.setThreadName('é'.repeat(7)); // 14 bytes of UTF-8
      expect(sys.getThreadName()).toBe('é'.repeat(7));
      expect(() => sys.setThreadName('x'.repeat(16))).toThrow(RangeError);
      expect(() => sys.setThreadName('é'.repeat(8))).toThrow(RangeError); // 8 characters, 16 bytes
      expect(() => sys.setThreadName('a\0b')).toThrow(TypeError);
      for (const bad of [undefined, 7, null, {}, Symbol('x')]) {
        expect(() => sys.setThreadName(bad as unknown as string)).toThrow(TypeError);
      }
      expect(sys.getThreadName()).toBe('é'.repeat(7)); // nothing refused changed it
    } finally {
      sys.setThreadName(before);
    }
  });
});

describe('server threads carry their role in their name', () => {
  it.each([
    ['single', {}, ['rawio-reactor0']],
    ['multi-reactor', { workers: 2 }, ['rawio-acceptor', 'rawio-reactor0', 'rawio-reactor1']],
    ['proactor', { workers: 2 }, ['rawio-proactor0', 'rawio-proactor1']],
    ['worker-pool', { workers: 2 }, ['rawio-pool0', 'rawio-pool1', 'rawio-reactor0']],
  ] as const)('%s', async (model, opts, expected) => {
    const server = await serve({ model, protocol: 'echo', port: 0, ...opts });
    let named: string[];
    try {
      named = threadNames().filter((n) => n.startsWith('rawio-'));
    } finally {
      await server.close();
    }
    expect(named).toEqual(expected);
    expect(threadNames().filter((n) => n.startsWith('rawio-'))).toEqual([]); // gone with close()
  });
});
