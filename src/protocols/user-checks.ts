/**
 * What user code hands rawio, checked before any model sees it (module.ts fences the calls;
 * this file judges the values): a protocol module's Reply and every field of it, the bodies
 * it streams, and options that must cross threads and processes as plain data. A model
 * trusts a Reply (a file fd goes to the kernel, `close` is read as a boolean, a body's chunks
 * are written as bytes), so a wrong one is refused here, as that request's error, rather
 * than reaching a model that would fail in its own way — a thread ended by a TypeError in a
 * send, a string in the place of bytes, a file sent short.
 */
import type { Reply } from './protocol.js';
import { fstat } from '../sys/file.js';
import { close } from '../sys/socket.js';
import { typeError, rangeError, valueError } from '../sys/validate.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

/** An integer in [0, max]: a typed field of a reply's file region (TypeError, then RangeError). */
export function count(name: string, v: unknown, max: number): number {
  if (typeof v !== 'number') throw typeError(name, 'of type number', v);
  if (!Number.isInteger(v) || v < 0 || v > max) throw rangeError(name, `an integer >= 0 and <= ${max}`, v);
  return v;
}

/** Whether `v` is an fd number a reply may own (what a refused reply's file closes). */
function ownedFd(file: unknown): number | undefined {
  const fd = (file as { fd?: unknown } | null)?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 && fd <= 0x7fffffff ? fd : undefined;
}

/**
 * The file region of a reply: an open regular file, and a region inside it. The checks cost
 * one fstat(2); they catch what every model would otherwise do differently with it (a closed
 * fd, a directory, a region past the end that would be sent short and close the connection).
 */
function checkFile(file: unknown): NonNullable<Reply['file']> {
  if (typeof file !== 'object' || file === null)
    throw typeError('reply.file', 'an object { fd, offset, length }', file);
  const f = file as { fd?: unknown; offset?: unknown; length?: unknown };
  const fd = count('reply.file.fd', f.fd, 0x7fffffff);
  const offset = count('reply.file.offset', f.offset, Number.MAX_SAFE_INTEGER);
  const length = count('reply.file.length', f.length, Number.MAX_SAFE_INTEGER);
  checkRegion('reply.file', regularSize(fd, 'reply.file.fd', fd), offset, length);
  return { fd, offset, length };
}

/**
 * The size of the regular file open as `fd`: EBADF for an fd that is not open, a TypeError
 * (ERR_INVALID_ARG_VALUE, naming `name` and `given`) for any other kind of file.
 */
export function regularSize(fd: number, name: string, given: unknown): number {
  const st = fstat(fd);
  if ((st.mode & S_IFMT) !== S_IFREG) throw valueError(name, 'an open regular file', given);
  return st.size;
}

/** A RangeError unless [offset, offset + length) lies inside a file of `size` bytes. */
export function checkRegion(name: string, size: number, offset: number, length: number): void {
  if (offset > size) throw rangeError(`${name}.offset`, `at most the file's size, ${size}`, offset);
  if (length > size - offset) {
    throw rangeError(`${name}.length`, `at most the file's size less the offset, ${size - offset}`, length);
  }
}

/**
 * Whether `v` is bytes a model can send or copy: a Uint8Array whose buffer is not detached
 * (transferred away with postMessage or structuredClone). A detached view reads as empty
 * but cannot be sliced or copied, so a pool thread copying it into its channel would fail.
 */
export function isBytes(v: unknown): v is Uint8Array {
  if (!(v instanceof Uint8Array)) return false;
  if (v.byteLength > 0) return true;
  try {
    v.subarray(0, 0); // throws only for a detached buffer (Node 20 has no ArrayBuffer.prototype.detached)
    return true;
  } catch {
    return false;
  }
}

/**
 * A copy of a body chunk with a buffer of its own, taken as the chunk is yielded: a model may
 * hold a chunk unsent while it asks for the next (a client slow to read, a send in flight),
 * and a producer may refill the buffer it yielded. A module's body (CheckedBody) and an HTTP
 * handler's unframed one (http-handler.ts) copy with it.
 */
export function ownBytes(chunk: Uint8Array): Uint8Array {
  return new Uint8Array(chunk);
}

function isAsyncIterable(v: unknown): v is AsyncIterable<unknown> {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function'
  );
}

/** Releases what a refused reply owned: its file's fd, its body's producer. */
function release(r: { file?: unknown; body?: unknown }): void {
  const fd = ownedFd(r.file);
  if (fd !== undefined) close(fd);
  if (isAsyncIterable(r.body)) {
    try {
      void Promise.resolve(r.body[Symbol.asyncIterator]().return?.()).catch(() => undefined);
    } catch {
      // a body that cannot even be ended has nothing more to give back
    }
  }
}

/**
 * A protocol module's reply, checked field by field: `data` bytes, `file` an open regular
 * file's region, `body` an async iterable (each chunk checked as it comes, its failures
 * reported through `report`), `close` any value, read for its truth as every model reads it.
 * Throws TypeError / RangeError / EBADF for a wrong one, after closing the fd and ending the
 * body it owned: a refused reply leaves nothing behind.
 */
export function checkReply(r: unknown, report: (err: unknown) => void): Reply {
  if (typeof r !== 'object' || r === null || !((r as Reply).data instanceof Uint8Array)) {
    if (typeof r === 'object' && r !== null) release(r);
    throw typeError('reply', 'an object with data: Uint8Array', r);
  }
  if (!isBytes((r as Reply).data)) {
    release(r);
    throw typeError('reply.data', 'a Uint8Array whose buffer is not detached', (r as Reply).data);
  }
  const {
    data,
    file,
    body,
    close: closing,
  } = r as { data: Uint8Array; file?: unknown; body?: unknown; close?: unknown };
  const out: Reply = { data };
  try {
    if (body !== undefined) {
      if (!isAsyncIterable(body)) throw typeError('reply.body', 'an async iterable of Uint8Array', body);
      out.body = new CheckedBody(body, report);
    }
    if (file !== undefined) out.file = checkFile(file);
  } catch (e) {
    release({ file, body });
    throw e;
  }
  if (closing) out.close = true;
  return out;
}

/**
 * `body` as a consumer that copies each chunk before it asks for the next may pull it: a
 * module's body without its own copy of each chunk (a pool thread's BodySender copies every
 * chunk into its gather buffer or its channel at once), any other body as it is.
 */
export function uncopied(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  return body instanceof CheckedBody ? body.uncopied() : body;
}

/**
 * A module's body as the models pull it: a chunk that is not bytes ends it with a TypeError,
 * and whatever ends it with an error is reported (counted, onError) before the model closes
 * the connection after what was sent. Each chunk is copied (ownBytes), so the module may
 * refill the buffer it yielded on every model alike. return() reaches the module's own
 * iterator, so a reply dropped unsent still releases what its body holds.
 */
class CheckedBody implements AsyncIterable<Uint8Array> {
  constructor(
    readonly inner: AsyncIterable<unknown>,
    readonly report: (err: unknown) => void,
    readonly copy = true,
  ) {}

  /** The same body, its chunks as yielded (see `uncopied`). */
  uncopied(): CheckedBody {
    return new CheckedBody(this.inner, this.report, false);
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    let it: AsyncIterator<unknown>;
    try {
      it = this.inner[Symbol.asyncIterator]();
    } catch (e) {
      // Reported once here; the model sees it as a body whose first chunk failed, as with
      // any other producer error, and closes the connection after what was sent.
      this.report(e);
      return {
        next: () => Promise.reject(e as Error),
        return: () => Promise.resolve({ value: undefined, done: true }),
      };
    }
    const fail = async (e: unknown): Promise<never> => {
      this.report(e);
      try {
        await it.return?.();
      } catch {
        // the first error is the one reported
      }
      throw e;
    };
    return {
      next: async () => {
        let step: IteratorResult<unknown>;
        try {
          step = await it.next();
        } catch (e) {
          this.report(e);
          throw e;
        }
        if (typeof step !== 'object' || step === null) {
          return fail(typeError('body iterator result', 'an object { value, done }', step));
        }
        let done: unknown;
        let value: unknown;
        try {
          // Read once each, inside the fence: either may be a getter, and one that throws is
          // the body's failure like any other.
          done = step.done;
          value = done ? undefined : step.value;
        } catch (e) {
          return fail(e);
        }
        if (done) return { value: undefined, done: true };
        if (!(value instanceof Uint8Array)) return fail(typeError('body chunk', 'a Uint8Array', value));
        if (!isBytes(value)) return fail(typeError('body chunk', 'a Uint8Array whose buffer is not detached', value));
        return { value: this.copy ? ownBytes(value) : value, done: false };
      },
      return: async () => {
        try {
          await it.return?.();
        } catch (e) {
          this.report(e);
        }
        return { value: undefined, done: true };
      },
    };
  }
}

/**
 * Checks that `value` is plain data — null, booleans, finite numbers, strings, arrays
 * without holes and plain objects of them — and returns it as every thread and process will
 * see it: worker threads get a structured clone, worker processes a JSON copy, and the two
 * agree on plain data alone (a function fails one and vanishes in the other; a Date, a Map
 * or a class instance arrives changed). An object key holding `undefined` is dropped, as
 * JSON drops it. Throws a TypeError naming the first part that is not plain data (`name` is
 * its path: `protocol.options.list[1]`).
 */
export function plainData(name: string, value: unknown): unknown {
  if (value === undefined) return undefined; // no options
  check(name, value, []);
  return JSON.parse(JSON.stringify(value)) as unknown;
}

const PLAIN = 'plain data (null, a boolean, a finite number, a string, an array or a plain object of them)';

function check(name: string, v: unknown, path: object[]): void {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(v)) throw typeError(name, `${PLAIN}; JSON cannot carry ${v}`, v);
      return;
    case 'object':
      break;
    default:
      throw typeError(name, PLAIN, v);
  }
  if (v === null) return;
  if (path.includes(v)) throw typeError(name, `${PLAIN}, without cycles`, v);
  path.push(v);
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== Array.prototype) throw typeError(name, PLAIN, v);
    for (let i = 0; i < v.length; i++) {
      if (!(i in v) || v[i] === undefined) throw typeError(`${name}[${i}]`, PLAIN, v[i]);
      check(`${name}[${i}]`, v[i], path);
    }
  } else {
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) throw typeError(name, PLAIN, v);
    for (const [k, item] of Object.entries(v)) {
      if (item !== undefined) check(`${name}.${k}`, item, path);
    }
  }
  path.pop();
}
