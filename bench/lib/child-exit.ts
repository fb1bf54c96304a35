/**
 * Waiting on a child process of the bench so that no wait outlives the child: a promise
 * settled only by a child's message or output would hang the bench for ever once that child
 * crashed or was killed. `ended` settles when the child has ended (at once when it already
 * has: 'exit' comes only once, and a listener added after it would wait for ever),
 * `exited` once its output pipes are closed too, `unlessEnded` races any wait on the
 * child against its end, and `withinDeadline` against a deadline too, for a child that may
 * hang without ever saying it is ready. `printed` waits for a text in a child's output.
 */
import type { ChildProcess } from 'node:child_process';

/** How a child ended: its exit code, or the signal that killed it (the other null). */
export interface ChildEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Whether `child` has ended (exited, killed by a signal, or failed to start). */
export function hasEnded(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** "exit code 1", "killed by SIGKILL" (a spawn that failed has a negative errno as its code). */
export function describeEnd(end: ChildEnd): string {
  return end.signal !== null ? `killed by ${end.signal}` : `exit code ${end.code}`;
}

const endOf = (child: ChildProcess): ChildEnd => ({ code: child.exitCode, signal: child.signalCode });

/**
 * Resolves with how `child` ended once it has: its 'exit', or its 'close' (a spawn that
 * failed emits 'error' and 'close', never 'exit'); at once when it already has. Never rejects.
 */
export function ended(child: ChildProcess): Promise<ChildEnd> {
  if (hasEnded(child)) return Promise.resolve(endOf(child));
  return new Promise((resolve) => {
    const done = () => {
      child.off('exit', done);
      child.off('close', done);
      resolve(endOf(child));
    };
    child.once('exit', done);
    child.once('close', done);
  });
}

/**
 * Resolves with how `child` ended once it has and its stdio pipes are closed, so that all it
 * wrote has been read ('exit' may come before the last of its output); at once when that is
 * already so. Never rejects.
 */
export function exited(child: ChildProcess): Promise<ChildEnd> {
  if (hasEnded(child) && child.stdio.every((s) => !s || s.closed)) return Promise.resolve(endOf(child));
  return new Promise((resolve) => child.once('close', () => resolve(endOf(child))));
}

/**
 * Settles as `wait` does, unless `child` ends first: then rejects with an Error naming the
 * child (`name`, its pid) and how it ended, and saying what will not come (`what`); or
 * unless it could not be started (its 'error': no such program, out of processes), which
 * rejects with that error's message and the error as its cause, rather than the 'error'
 * being thrown with no listener. Its listeners on the child go as soon as it settles, so a
 * wait repeated round after round leaves none behind.
 */
export function unlessEnded<T>(child: ChildProcess, name: string, what: string, wait: Promise<T>): Promise<T> {
  const gone = () => new Error(`${name} (pid ${child.pid}) ${describeEnd(endOf(child))} before ${what}`);
  if (hasEnded(child)) {
    wait.catch(() => {}); // given up on: its rejection is no one's to handle
    return Promise.reject(gone());
  }
  return new Promise<T>((resolve, reject) => {
    const onEnd = () => {
      off();
      reject(gone());
    };
    const onError = (e: Error) => {
      off();
      reject(new Error(`${name}: ${e.message}`, { cause: e }));
    };
    const off = () => {
      child.off('exit', onEnd);
      child.off('close', onEnd);
      child.off('error', onError);
    };
    child.once('exit', onEnd);
    child.once('close', onEnd);
    child.once('error', onError);
    wait.then(
      (v) => (off(), resolve(v)),
      (e: unknown) => (off(), reject(e)),
    );
  });
}

/**
 * Settles as `wait` does, unless `child` ends first (rejecting as {@link unlessEnded} does) or
 * `ms` pass first: then `child` is killed (SIGKILL) and it rejects with an Error naming the
 * child and saying what it still was not, after how long (`what`: "listening" reads
 * "… before listening" and "… still not listening after 60 s"). A child that hangs without a word
 * would otherwise be waited on for ever.
 */
export function withinDeadline<T>(
  child: ChildProcess,
  name: string,
  what: string,
  ms: number,
  wait: Promise<T>,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${name} (pid ${child.pid}) still not ${what} after ${ms / 1000} s: killed`));
      child.kill('SIGKILL');
    }, ms);
  });
  return unlessEnded(child, name, what, Promise.race([wait, deadline])).finally(() => clearTimeout(timer));
}

/**
 * Resolves once `child`'s stdout, all of it so far, contains `text`: a text split across
 * two reads is found too. Never rejects (race it against the child's end: {@link unlessEnded}).
 */
export function printed(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve) => {
    let out = '';
    const onData = (d: Buffer | string) => {
      out += String(d);
      if (!out.includes(text)) {
        out = out.slice(-text.length); // what could begin the text: all it need keep
        return;
      }
      child.stdout!.off('data', onData);
      resolve();
    };
    child.stdout!.on('data', onData);
  });
}
