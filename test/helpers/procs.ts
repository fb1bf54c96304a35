/**
 * Processes and threads as /proc shows them, for tests that bound process counts and CPU
 * time: the fields of /proc/<pid>/stat (proc(5)) after the command name, which may itself
 * hold spaces and parentheses, and the children of a process.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/** The fields of a stat file after `(comm)`: [0] state, [1] ppid … [11] utime, [12] stime. */
function statFields(path: string): string[] | undefined {
  try {
    const stat = readFileSync(path, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // gone meanwhile
  }
}

/** The pids whose parent is `pid`. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (/^\d+$/.test(d) && Number(statFields(`/proc/${d}/stat`)?.[1]) === pid) out.push(Number(d));
  }
  return out;
}

/** utime + stime of each thread of `pid`, in clock ticks, by thread id. */
export function threadTicks(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const f = statFields(`/proc/${pid}/task/${tid}/stat`);
    if (f) out.set(tid, Number(f[11]) + Number(f[12]));
  }
  return out;
}

/** The state letter of `pid` (R running, S sleeping, T stopped …), or undefined once it is gone. */
export function processState(pid: number): string | undefined {
  return statFields(`/proc/${pid}/stat`)?.[0];
}

/**
 * The exit code of `child` (null when a signal ended it) once it has exited and its stdio
 * pipes are closed, so that all it wrote has been read; at once if that is already so.
 * 'exit' and 'close' each come only once, and 'exit' may come before the last of stdout: a
 * listener added after an await that let the child end would wait for ever, and one on
 * 'exit' could miss its last line.
 */
export function exited(child: ChildProcess): Promise<number | null> {
  const ended = child.exitCode !== null || child.signalCode !== null;
  if (ended && child.stdio.every((s) => !s || s.closed)) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('close', (code) => resolve(code)));
}
