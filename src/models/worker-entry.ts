/**
 * The script every model thread runs: it reads its role from workerData, loads only that
 * role's module (a thread starts faster the less it loads), tells the parent it is ready,
 * and runs until told to stop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadProtocolModules, setErrorCounter } from '../protocols/module.js';
import { asyncSettled } from './conn-contract.js';
import { Stats } from './stats.js';
import { setThreadName } from '../sys/process.js';
import { fenceUserCode, runsUserCode } from './user-fence.js';
import type { AcceptorThreadData } from './acceptor-thread.js';
import type { BlockingThreadData } from './blocking-threads.js';
import type { TpcAcceptorData } from './tpc-acceptor.js';
import type { ProactorThreadData } from './proactor-thread.js';
import type { PoolThreadData } from './pool-thread.js';
import type { ReactorThreadData } from './reactor-thread.js';

type ThreadData =
  ReactorThreadData | PoolThreadData | BlockingThreadData | ProactorThreadData | AcceptorThreadData | TpcAcceptorData;

const data = workerData as ThreadData;
// A name top -H, ps -L and perf show: rawio-<role><index> (at most 15 bytes, the kernel's limit).
const SHORT_ROLE: Record<string, string> = { 'tpc-acceptor': 'acceptor', connection: 'conn' };
const { role, index } = data as { role: string; index?: number };
setThreadName(`rawio-${SHORT_ROLE[role] ?? role}${index ?? ''}`.slice(0, 15));
// User code's errors outside any request, and its process.exit(), must not end the thread
// (user-fence.ts); the fence comes off again before a failure of the role itself is rethrown.
const unfence = runsUserCode((data as Partial<ReactorThreadData>).protocolOptions) ? fenceUserCode() : undefined;
try {
  await run();
} catch (e) {
  unfence?.();
  throw e;
}
// The role is over and has closed what it held. Replies still awaited (a handler that has not
// settled) keep the thread until they settle, within the grace close() gives them; then it
// exits, rather than live on for timers a user module left running (README, "Closing a
// server"). Not awaited here: a handler that never settles and holds nothing would leave an
// unsettled top-level await.
void asyncSettled().then(() => {
  unfence?.();
  process.exit(0);
});

async function run(): Promise<void> {
  // User modules (a protocol module, an HTTP handler) are imported before the role starts, so
  // createProtocol finds them; errors their code throws count in the server's stats.
  if ('stats' in data) {
    const stats = Stats.attach(data.stats);
    setErrorCounter(() => stats.error());
  }
  if ('protocolOptions' in data) await loadProtocolModules(data.protocolOptions);
  const ready = () => parentPort?.postMessage({ ready: true });

  if (data.role === 'reactor') {
    const { ReactorThread } = await import('./reactor-thread.js');
    const thread = new ReactorThread(data);
    ready();
    await thread.run();
  } else if (data.role === 'proactor') {
    const { ProactorThread } = await import('./proactor-thread.js');
    const thread = new ProactorThread(data);
    parentPort?.postMessage(thread.hello()); // a sub-ring's says where its inbox is
    await thread.run();
  } else if (data.role === 'acceptor') {
    const { runAcceptorThread } = await import('./acceptor-thread.js');
    await runAcceptorThread(data, ready);
  } else if (data.role === 'tpc-acceptor') {
    const { runTpcAcceptor } = await import('./tpc-acceptor.js');
    await runTpcAcceptor(data, ready);
  } else if (data.role === 'pool') {
    const { runPoolThread } = await import('./pool-thread.js');
    await runPoolThread(data, ready);
  } else {
    const { runBlockingThread } = await import('./blocking-threads.js');
    await runBlockingThread(data, ready);
  }
}
