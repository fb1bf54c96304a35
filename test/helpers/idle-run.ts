/**
 * A loop that owns its worker thread with nothing to wake it (test/fixtures/idle-run-worker.mjs)
 * must still hear Node's own I/O: it answers messages posted to it, stops on 'stop', and a
 * second such worker ends on terminate(). Before run() watched libuv's loop fd, a message
 * stayed queued and terminate() never returned, for good.
 */
import { Worker } from 'node:worker_threads';
import { expect } from 'vitest';

export async function expectIdleRunHearsNode(workerData: { loop: 'reactor' | 'proactor'; backend?: string }) {
  const start = () => {
    const worker = new Worker(new URL('../fixtures/idle-run-worker.mjs', import.meta.url), { workerData });
    const messages: unknown[] = [];
    let notify = () => {};
    worker.on('message', (m) => (messages.push(m), notify()));
    const next = async () => {
      while (messages.length === 0) await new Promise<void>((r) => (notify = r));
      return messages.shift();
    };
    return { worker, next };
  };
  const a = start();
  expect(await a.next()).toEqual({ ready: true });
  for (const m of ['one', 'two', 'three']) {
    a.worker.postMessage(m);
    expect(await a.next()).toEqual({ echo: m });
  }
  a.worker.postMessage('stop');
  expect(await a.next()).toEqual({ done: true });
  const b = start();
  expect(await b.next()).toEqual({ ready: true });
  expect(await b.worker.terminate()).toBe(1);
}
