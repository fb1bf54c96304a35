/**
 * The `rawio` command as a real process in a process group of its own, for the tests of its
 * exit statuses: what it printed, how it ended, and which processes of its group outlived it.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { expect } from 'vitest';
import { eventually } from './wait.js';

export const CLI = new URL('../../dist/src/cli.js', import.meta.url).pathname;

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
  /** Processes still in the command's process group after it exited. */
  left: number[];
}

/** The pids whose process group is `pgid` (field 5 of /proc/<pid>/stat). */
export function groupOf(pgid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === pgid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export interface RunOptions {
  /**
   * Once the output matches, `during` is called with the child's pid (to signal it) and a
   * function that returns its output so far (stdout and stderr).
   */
  ready?: RegExp;
  during?: (pid: number, output: () => string) => void | Promise<void>;
  /** The command is killed past this (a hang is a bug here, never a slow machine). */
  deadlineMs?: number;
  /** Called with the child as it starts, e.g. to close the reading end of its stdout. */
  onStart?: (child: ChildProcessByStdio<null, Readable, Readable>) => void;
  /** Runs the command with RLIMIT_NOFILE at this, soft and hard (`ulimit -n`). */
  nofile?: number;
}

/**
 * Runs `rawio ...args` in a process group of its own; `during` is called with the child
 * (to signal it) once `ready` matches its output. A command that outlives `deadlineMs` is
 * killed (its whole group) and the run reports the signal, so the test fails on its own
 * assertions instead of hanging.
 */
export async function rawio(args: string[], opts: RunOptions = {}): Promise<Run> {
  const command = [process.execPath, CLI, ...args];
  const [file, ...argv] =
    opts.nofile === undefined ? command : ['sh', '-c', `ulimit -n ${opts.nofile} && exec "$@"`, 'sh', ...command];
  const child = spawn(file!, argv, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let fired = false;
  const check = () => {
    if (!fired && opts.ready && opts.during && opts.ready.test(out + err)) {
      fired = true;
      void opts.during(child.pid!, () => out + err);
    }
  };
  child.stdout.on('data', (d: Buffer) => ((out += String(d)), check()));
  child.stderr.on('data', (d: Buffer) => ((err += String(d)), check()));
  opts.onStart?.(child);
  const hang = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), opts.deadlineMs ?? 20_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('close', (c, s) => resolve([c, s])),
  );
  clearTimeout(hang);
  await eventually(() => groupOf(child.pid!).length === 0); // node processes ending: slow on a loaded machine
  const left = groupOf(child.pid!);
  if (left.length) process.kill(-child.pid!, 'SIGKILL');
  return { code, signal, out, err, left };
}

export const STACK = /^\s+at .+:\d+:\d+\)?$/m;

/** Exit status 1, one line on stderr matching `text`, no stack trace, nothing left running. */
export function expectFailure(r: Run, text: RegExp): void {
  expect(r.code, r.err).toBe(1);
  expect(r.signal).toBeNull();
  expect(r.err.trim().split('\n')).toHaveLength(1);
  expect(r.err).toMatch(text);
  expect(r.err).not.toMatch(STACK);
  expect(r.left).toEqual([]);
}
