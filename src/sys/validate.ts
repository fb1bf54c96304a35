/**
 * Argument checks done before any syscall: a wrong type throws TypeError, a value out of
 * range throws RangeError, with Node's own `code`s (ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE).
 * The native layer repeats the checks that protect memory; these give the good messages.
 */

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return `an instance of ${v.constructor?.name ?? 'Object'}`;
  return `type ${typeof v} (${String(v).slice(0, 32)})`;
}

export function typeError(name: string, expected: string, v: unknown): TypeError {
  const e = new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(v)}`);
  (e as TypeError & { code: string }).code = 'ERR_INVALID_ARG_TYPE';
  return e;
}

export function rangeError(name: string, expected: string, v: unknown): RangeError {
  const e = new RangeError(`The value of "${name}" is out of range. It must be ${expected}. Received ${String(v)}`);
  (e as RangeError & { code: string }).code = 'ERR_OUT_OF_RANGE';
  return e;
}

/** A value of the right type that cannot be used (a directory where a file goes): ERR_INVALID_ARG_VALUE. */
export function valueError(name: string, expected: string, v: unknown): TypeError {
  const e = new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(v)}`);
  (e as TypeError & { code: string }).code = 'ERR_INVALID_ARG_VALUE';
  return e;
}

/** An integer in [min, max]. */
export function int(name: string, v: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number') throw typeError(name, 'of type number', v);
  if (!Number.isInteger(v) || v < min || v > max) throw rangeError(name, `an integer >= ${min} and <= ${max}`, v);
  return v;
}

/** A finite number in [min, max] (a fraction allowed: a quantile, a rate). */
export function num(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number') throw typeError(name, 'of type number', v);
  if (!(v >= min && v <= max)) throw rangeError(name, `>= ${min} and <= ${max}`, v);
  return v;
}

/** A file descriptor: an integer in [0, 2^31 - 1]. */
export function fd(v: unknown, name = 'fd'): number {
  return int(name, v, 0, 0x7fffffff);
}

export function bool(name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw typeError(name, 'of type boolean', v);
  return v;
}

export function str(name: string, v: unknown): string {
  if (typeof v !== 'string') throw typeError(name, 'of type string', v);
  return v;
}

/**
 * A string that becomes a C string (a path, a host, a name): an embedded NUL would cut it
 * short in the kernel's eyes (`'x\0.png'` would name `x`), so it is refused as node:fs
 * refuses it, with a TypeError coded ERR_INVALID_ARG_VALUE. The native string guard
 * refuses it again for callers that reach the addon directly.
 */
export function cstr(name: string, v: unknown): string {
  if (typeof v !== 'string') throw typeError(name, 'of type string', v);
  if (v.includes('\0')) {
    const e = new TypeError(
      `The argument '${name}' must be a string without null bytes. Received ${JSON.stringify(v.slice(0, 64))}`,
    );
    (e as TypeError & { code: string }).code = 'ERR_INVALID_ARG_VALUE';
    throw e;
  }
  return v;
}

export function bytes(v: unknown, name = 'buffer'): Uint8Array {
  if (!(v instanceof Uint8Array)) throw typeError(name, 'an instance of Buffer or Uint8Array', v);
  return v;
}

/**
 * `bytes`, and its buffer not detached (transferred away, or unmapped by munmap): a detached
 * view reads as empty and its address as 0, which would pass for an aligned, empty buffer.
 * Only an empty view is probed, so a hot path pays one length read.
 */
export function liveBytes(v: unknown, name = 'buffer'): Uint8Array {
  const b = bytes(v, name);
  if (b.byteLength === 0) {
    try {
      b.subarray(0, 0); // throws only for a detached buffer (Node 20 has no ArrayBuffer.prototype.detached)
    } catch {
      throw typeError(name, 'bytes whose buffer is not detached', b);
    }
  }
  return b;
}

/**
 * A list of buffers (writev's, a ring's iovecs or registered buffers, a keyspace's keys): an
 * array, read once (its length, then each element) into a new plain array that the caller
 * uses from then on, never the caller's array again. An accessor at an index runs once, so
 * what was checked is what is used; an element that is not a Uint8Array is refused as it is
 * read, naming it (`bufs[2]`). Liveness (`liveBytes`) is checked only after every element was
 * read: an accessor that detaches an element read before it is caught too, before the caller
 * does anything with the list. `expected` describes the array in the TypeError for a
 * non-array.
 */
export function bytesList(name: string, v: unknown, expected = 'an array of Uint8Array'): Uint8Array[] {
  if (!Array.isArray(v)) throw typeError(name, expected, v);
  const n: number = v.length;
  const out: Uint8Array[] = [];
  // the element's name is built only for its error: a list on a hot path (writev) makes no strings
  for (let i = 0; i < n; i++) {
    const b: unknown = v[i];
    if (!(b instanceof Uint8Array)) bytes(b, `${name}[${i}]`);
    out.push(b as Uint8Array);
  }
  for (let i = 0; i < n; i++) if (out[i]!.byteLength === 0) liveBytes(out[i], `${name}[${i}]`); // after every accessor ran
  return out;
}

/**
 * Resolves the optional (off, len) of a buffer argument against its length: off defaults
 * to 0, len to the rest of the buffer; the slice must lie inside the buffer.
 */
export function slice(buf: Uint8Array, off: unknown, len: unknown): [number, number] {
  const o = off === undefined ? 0 : int('offset', off, 0, buf.length);
  const l = len === undefined ? buf.length - o : int('length', len, 0, buf.length - o);
  return [o, l];
}

/**
 * The arguments of a positioned read or write (pread, pwrite and their O_DIRECT forms),
 * checked: the slice `buf[off, off + len)` as [offset, length], then the file position.
 */
export function positioned(
  fdArg: unknown,
  buf: unknown,
  off: unknown,
  len: unknown,
  pos: unknown,
): [number, number, number] {
  fd(fdArg);
  const [o, l] = slice(liveBytes(buf), off, len);
  return [o, l, int('position', pos, 0, Number.MAX_SAFE_INTEGER)];
}

export function object<T extends object>(name: string, v: unknown): Partial<T> {
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object') throw typeError(name, 'of type object', v);
  return v as Partial<T>;
}

export function func(name: string, v: unknown): (...args: never[]) => unknown {
  if (typeof v !== 'function') throw typeError(name, 'of type function', v);
  return v as (...args: never[]) => unknown;
}

/** An optional callback option: undefined, or a function (TypeError otherwise). */
export function optionalFunc<T>(name: string, v: T): T {
  if (v !== undefined) func(name, v);
  return v;
}

/** An optional AbortSignal option: undefined, or an AbortSignal (TypeError otherwise). */
export function abortSignal(name: string, v: unknown): AbortSignal | undefined {
  if (v === undefined || v instanceof AbortSignal) return v;
  throw typeError(name, 'an instance of AbortSignal', v);
}
