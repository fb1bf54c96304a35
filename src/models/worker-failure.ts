/**
 * How a model's worker (a thread or a child process) that fails before it is ready
 * reaches serve(): as its own error, marked with the worker it came from. A thread's error
 * arrives already cloned by Node; a child process writes its error as one JSON record
 * (writeFailure) to the pipe it would have said "ready" on, and the parent rebuilds it
 * (readFailure) with the same class, message, `code`, `errno`, `syscall` and stack.
 */
import { inspect } from 'node:util';

/** A worker's start-up error as serve() rejects with it. */
export interface WorkerStartError extends Error {
  /** Which worker failed: e.g. `reactor thread 1`, `multi-process worker 0 (pid 4242)`. */
  worker: string;
  /** The error's own code, if it had one; `ERR_RAWIO_WORKER_EXITED` for a worker that exited without throwing. */
  code?: string;
}

/** The error a worker failed with, marked with `who`; a thrown non-Error becomes an Error that shows it. */
export function startFailure(thrown: unknown, who: string): WorkerStartError {
  const e = thrown instanceof Error ? thrown : new Error(`${who} threw ${inspect(thrown)} before it was ready`);
  return Object.assign(e, { worker: who });
}

/** A worker that ended, without an error to show, before it said ready. */
export function exitedEarly(who: string, code: number | null, signal: NodeJS.Signals | null): WorkerStartError {
  const how = signal === null ? `with code ${code}` : `on ${signal}`;
  const e = new Error(`${who} exited ${how} before it was ready`);
  return Object.assign(e, { worker: who, code: 'ERR_RAWIO_WORKER_EXITED' });
}

/** The fields of an error that cross a pipe as JSON. */
interface FailureRecord {
  name: string;
  message: string;
  stack?: string;
  props: Record<string, string | number | boolean | null>;
}

/** One JSON record of `thrown`: its name, message, stack, and own fields that are plain values. */
export function writeFailure(thrown: unknown): string {
  if (!(thrown instanceof Error))
    return JSON.stringify({ name: 'Error', message: `threw ${inspect(thrown)}`, props: {} });
  const props: FailureRecord['props'] = {};
  for (const [k, v] of Object.entries(thrown)) {
    if (v === null || ['string', 'number', 'boolean'].includes(typeof v))
      props[k] = v as string | number | boolean | null;
  }
  const record: FailureRecord = { name: thrown.name, message: thrown.message, stack: thrown.stack, props };
  return JSON.stringify(record);
}

const classes: Record<string, ErrorConstructor> = {
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

/** The error a child wrote with writeFailure, marked with `who`; undefined when `text` is not one. */
export function readFailure(text: string, who: string): WorkerStartError | undefined {
  let r: FailureRecord;
  try {
    r = JSON.parse(text) as FailureRecord;
  } catch {
    return undefined;
  }
  if (typeof r?.message !== 'string') return undefined;
  const e = new (classes[r.name] ?? Error)(r.message);
  if (r.name !== e.name) e.name = r.name;
  if (typeof r.stack === 'string') e.stack = r.stack;
  return Object.assign(e, r.props, { worker: who });
}
