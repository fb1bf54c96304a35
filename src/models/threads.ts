/**
 * Starting and stopping model threads: a worker runs worker-entry.js with its role in
 * workerData; start resolves once it reports ready, and `exited` resolves when it is gone,
 * so close() can wait for every thread.
 *
 * A thread that fails before it is ready (most often a protocol module that loads in the
 * caller's thread but throws in a worker) rejects start with its own error — the clone
 * Node makes of it keeps its class, message, `code` and stack — marked with `worker`, the
 * thread it came from (startFailure in worker-failure.ts), so serve() says what went wrong
 * and where, not only that a thread exited.
 */
import { Worker } from 'node:worker_threads';
import { startFailure, exitedEarly } from './worker-failure.js';

const entry = new URL('./worker-entry.js', import.meta.url);

/**
 * Whether this process was given `--input-type` (`node --input-type=module -e …`, a script on
 * stdin, or NODE_OPTIONS). A worker inherits the option, and Node refuses it for a worker
 * whose entry is a file (ERR_INPUT_TYPE_NOT_ALLOWED, as for a main script), so such a process
 * could start no model thread. There the thread is started from a line of code that imports
 * the entry instead: an import from code is no entry point, and the option does not apply to
 * it. An import that fails is thrown again outside the promise, so the thread fails with its
 * error whatever `--unhandled-rejections` says.
 */
const inputType = (args: readonly string[]) => args.some((a) => a === '--input-type' || a.startsWith('--input-type='));
const viaImport = inputType(process.execArgv) || inputType((process.env.NODE_OPTIONS ?? '').split(/\s+/));
const importEntry = `import(${JSON.stringify(entry.href)}).catch((e) => process.nextTick(() => { throw e; }));`;

export interface ModelThread {
  worker: Worker;
  exited: Promise<void>;
  /** The thread's ready message (read by the model that knows its shape). */
  hello: unknown;
}

/** Which thread this is, in words: its role and, when it has one, its index. */
function threadName(data: object): string {
  const { role, index } = data as { role?: string; index?: number };
  return `${role ?? 'model'} thread${typeof index === 'number' ? ` ${index}` : ''}`;
}

export function startThread(workerData: object): Promise<ModelThread> {
  const who = threadName(workerData);
  let worker: Worker;
  try {
    // Not trackUnmanagedFds: Node would close, when the thread exits, every fd user code
    // opened there with node:fs and did not close with node:fs — a reply's file fd, which
    // rawio closes itself once sent (natively, and maybe on another thread), so the number
    // may belong to another file or socket by then.
    worker = viaImport
      ? new Worker(importEntry, { eval: true, workerData, trackUnmanagedFds: false })
      : new Worker(entry, { workerData, trackUnmanagedFds: false });
  } catch (e) {
    // Node could not make the thread at all (out of memory or fds): the same rejection.
    return Promise.reject(startFailure(e, who));
  }
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const onError = (e: unknown) => reject(startFailure(e, who));
    worker.once('error', onError);
    worker.once('message', (hello: unknown) => {
      worker.off('error', onError);
      // A thread that fails later is reported, and the rest of the server goes on.
      worker.on('error', (e) => process.emitWarning(`rawio ${who} failed: ${e.stack ?? e}`));
      resolve({ worker, exited, hello });
    });
    // 'error' comes before 'exit', so this is only for a thread that exited without throwing.
    worker.once('exit', (code) => reject(exitedEarly(who, code, null)));
  });
}

/**
 * Waits for `t` to exit after it was told to stop. A thread whose own work is done still runs
 * while user code it called has not settled (a handler's timer keeps its loop alive); one
 * still running after `graceMs` (the server's idleTimeout) is terminated, so that close()
 * resolves however long user code takes.
 */
export async function exitWithin(t: ModelThread, graceMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)));
  const tooLate = await Promise.race([t.exited.then(() => false), late]);
  clearTimeout(timer);
  if (tooLate) await t.worker.terminate();
  await t.exited;
}
