/**
 * The script every model thread runs: it reads its role from workerData, tells the parent
 * it is ready, and runs until told to stop. (Node starts workers from a file; one entry for
 * every role keeps the roles in ordinary modules.)
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runBlockingThread, type BlockingThreadData } from './blocking-threads.js';
import { runPoolThread, type PoolThreadData } from './pool-thread.js';
import { ReactorThread, type ReactorThreadData } from './reactor-thread.js';

type ThreadData = ReactorThreadData | PoolThreadData | BlockingThreadData;

const data = workerData as ThreadData;
const ready = () => parentPort?.postMessage({ ready: true });

if (data.role === 'reactor') {
  const thread = new ReactorThread(data);
  ready();
  await thread.run();
} else if (data.role === 'pool') {
  runPoolThread(data, ready);
} else {
  await runBlockingThread(data, ready);
}
