/**
 * Starting and stopping model threads: a worker runs worker-entry.js with its role in
 * workerData; start resolves once it reports ready (or rejects with what it threw), and
 * `exited` resolves when it is gone, so close() can wait for every thread.
 */
import { Worker } from 'node:worker_threads';

const entry = new URL('./worker-entry.js', import.meta.url);

export interface ModelThread {
  worker: Worker;
  exited: Promise<void>;
  /** The thread's ready message (read by the model that knows its shape). */
  hello: unknown;
}

export function startThread(workerData: object): Promise<ModelThread> {
  const worker = new Worker(entry, { workerData });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    worker.once('error', onError);
    worker.once('message', (hello: unknown) => {
      worker.off('error', onError);
      // A thread that fails later is reported, and the rest of the server goes on.
      worker.on('error', (e) => process.emitWarning(`rawio model thread failed: ${e.stack ?? e}`));
      resolve({ worker, exited, hello });
    });
    worker.once('exit', (code) => reject(new Error(`model thread exited with code ${code} before it was ready`)));
  });
}
