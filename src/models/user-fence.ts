/**
 * The fence around user code that module.ts cannot put around a call: a model thread or
 * worker process that runs a protocol module or an HTTP handler installs it before it loads
 * them. An exception user code throws where no request awaits it (a timer's callback, an
 * event handler) and a rejection nobody handles would end the thread, or the process, and
 * every connection on it; here they are counted in stats().errors and handed to the code's
 * onError (module.ts's reportStrayError), and serving goes on. process.exit() would end only
 * that thread (or that worker process, leaving the master to respawn it): it throws an
 * ERR_RAWIO_EXIT_IN_THREAD error instead, which is then that request's error like any other
 * throw.
 *
 * A failure of the thread's own role must still end it as before (threads.ts reports it):
 * the role's caller removes the fence before it rethrows, or the handlers would swallow it.
 *
 * Those errors surface only when Node's loop turns (a timer fires, a rejection is found
 * unhandled once the microtasks have run). A thread that blocks outside Node's loop — a pool
 * thread in Atomics.wait, a blocking model in poll(2) — gives the loop a turn (`nodeTurn`)
 * after the work of each wake-up while it runs user code, as a Reactor does after a batch,
 * so user code's timers and stray errors are not held until some later request.
 */
import { reportStrayError } from '../protocols/module.js';
import type { ProtocolOptions } from '../protocols/protocol.js';

/** How long a thread running user code sleeps outside Node's loop, at most, before it gives the loop a turn. */
export const USER_TURN_MS = 50;

/** Whether a thread or process with these options runs user code. */
export function runsUserCode(opts: ProtocolOptions | undefined): boolean {
  return opts?.module !== undefined || opts?.handler !== undefined;
}

/** One turn of Node's loop: due timers run and unhandled rejections are reported. */
export function nodeTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The error process.exit() throws in a server's thread or worker process. */
export function exitError(code: unknown): Error {
  const e = new Error(
    `process.exit(${code === undefined ? '' : String(code)}) in a server's thread or worker process would end ` +
      'it and the connections it serves; close the server from the thread that started it instead',
  ) as Error & { code: string };
  e.code = 'ERR_RAWIO_EXIT_IN_THREAD';
  return e;
}

/** Installs the fence in this thread or process; returns what removes it again. */
export function fenceUserCode(): () => void {
  const stray = (err: unknown): void => reportStrayError(err);
  const exit = process.exit;
  process.on('uncaughtException', stray);
  process.on('unhandledRejection', stray);
  process.exit = ((code?: unknown) => {
    throw exitError(code);
  }) as typeof process.exit;
  let fenced = true;
  return () => {
    if (!fenced) return;
    fenced = false;
    process.off('uncaughtException', stray);
    process.off('unhandledRejection', stray);
    process.exit = exit;
  };
}
