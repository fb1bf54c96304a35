/**
 * The script every model thread runs: it reads its role from workerData, loads only that
 * role's module (a thread starts faster the less it loads), tells the parent it is ready,
 * and runs until told to stop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { BlockingThreadData } from './blocking-threads.js';
import type { ProactorThreadData } from './proactor-thread.js';
import type { PoolThreadData } from './pool-thread.js';
import type { ReactorThreadData } from './reactor-thread.js';

type ThreadData = ReactorThreadData | PoolThreadData | BlockingThreadData | ProactorThreadData;

const data = workerData as ThreadData;
const ready = () => parentPort?.postMessage({ ready: true });

if (data.role === 'reactor') {
  const { ReactorThread } = await import('./reactor-thread.js');
  const thread = new ReactorThread(data);
  ready();
  await thread.run();
} else if (data.role === 'proactor') {
  const { ProactorThread } = await import('./proactor-thread.js');
  const thread = new ProactorThread(data);
  ready();
  await thread.run();
} else if (data.role === 'pool') {
  const { runPoolThread } = await import('./pool-thread.js');
  await runPoolThread(data, ready);
} else {
  const { runBlockingThread } = await import('./blocking-threads.js');
  await runBlockingThread(data, ready);
}
