/**
 * A key/value table in shared memory (native/keyspace.cc): the RESP protocol's one
 * keyspace, shared by every thread and process of a server. One process creates it and
 * worker threads and child processes attach by its name. Unnamed (the default), it is a
 * memfd reopened through /proc/<pid>/fd/<fd>, so nothing is left in /dev/shm if the
 * creator crashes; named, it is a POSIX shm object (shm_open(3)) that the creator unlinks
 * when it closes. Every operation runs under one process-shared robust mutex, so INCR,
 * SET NX, MSET and DEL are atomic across all of them. Capacity is fixed when the keyspace
 * is created; a write that does not fit returns `-ENOMEM`.
 *
 * Operations are hot-path calls: `>= 0` or `-errno`, never an exception for a missing key
 * or a full table; `create` / `attach` are setup calls and throw an `ErrnoError`.
 */
import { check, errnoError, ErrnoError } from './errors.js';
import { EEXIST } from './errno.js';

import { native, type NativeKeyspace } from './native.js';
import * as v from './validate.js';

/** Options of {@link Keyspace.create}. */
export interface KeyspaceOptions {
  /** Bytes of shared memory, table and data together (default 64 MiB, at most 4 GiB - 1). */
  size?: number;
  /** Hash buckets, a power of two (default: one per 256 bytes, between 16 and 65536). */
  buckets?: number;
}

/** {@link Keyspace.set} flag: set only when the key is absent (Redis's SET NX). */
export const KEYSPACE_NX = 1;
/** {@link Keyspace.set} flag: set only when the key is present (Redis's SET XX). */
export const KEYSPACE_XX = 2;

const NAME = /^(\/[A-Za-z0-9._-]{1,199}|\/proc\/\d+\/fd\/\d+)$/;

function checkName(name: unknown): string {
  v.cstr('name', name);
  if (!NAME.test(name as string)) throw v.rangeError('name', "'/' then 1-199 of [A-Za-z0-9._-]", name);
  return name as string;
}

function defaultBuckets(size: number): number {
  let n = 16;
  while (n < 65536 && n * 2 * 256 <= size) n *= 2;
  return n;
}

/**
 * A key/value table in shared memory, shared by the threads and processes of one server
 * (the RESP protocol's data). Create it once, pass {@link Keyspace.name} to the others, and
 * attach there. Keys and values are bytes. Operations return `>= 0` or `-errno`; `create`
 * and `attach` throw an `ErrnoError`; arguments of the wrong type throw a TypeError.
 * @example
 * const enc = new TextEncoder();
 * const ks = Keyspace.create(undefined, { size: 1 << 20 });
 * ks.set(enc.encode('hits'), enc.encode('41'));
 * const out = new Uint8Array(24);
 * const n = ks.incr(enc.encode('hits'), 1, out); // 2: out holds '42'
 * // in a worker thread or child process: Keyspace.attach(ks.name)
 * ks.close();
 */
/**
 * What a RESP keyspace offers, kept by both tables: the shared-memory {@link Keyspace} and the
 * one-thread `LocalKeyspace` (src/protocols/local-keyspace.ts), so that code written against
 * it runs on either. The same methods, arguments (a wrong type a TypeError, a number out of
 * range a RangeError) and results (`>= 0` or `-errno`: ENOENT, EINVAL, ERANGE, ENOMEM, and
 * EBADF once closed); `info()` throws an ErrnoError once closed.
 */
export interface KeyspaceLike {
  /** The name to attach by; '' for a table no other thread can reach. */
  readonly name: string;
  /** The value's length, its bytes copied into `out` as far as they fit; -ENOENT if absent. */
  get(key: Uint8Array, out: Uint8Array): number;
  /** 1 if set, 0 if the NX / XX condition refused it, -ENOMEM when the table is full. */
  set(key: Uint8Array, value: Uint8Array, flags?: number): number;
  /** 1 if the key was deleted, 0 if absent. */
  del(key: Uint8Array): number;
  /** 1 if present, 0 if not. */
  exists(key: Uint8Array): number;
  /** Deletes every key of `keys` at once (Redis's DEL): how many were present. */
  delMany(keys: readonly Uint8Array[]): number;
  /** Deletes every key that begins with `prefix` (all of them for an empty one): how many. */
  delPrefix(prefix: Uint8Array): number;
  /** How many of `keys` are present (Redis's EXISTS: a key given twice counts twice). */
  existsMany(keys: readonly Uint8Array[]): number;
  /**
   * Adds `delta` to the integer at `key` (absent counts as 0); its new decimal digits go into
   * `out`: their count, or -EINVAL (not an integer), -ERANGE (overflow), -ENOMEM.
   */
  incr(key: Uint8Array, delta: number | bigint, out: Uint8Array): number;
  /** {@link incr} by 1 only when the integers at `keys` sum to less than `max`: the digits' count, 0 at the limit, or -errno. */
  incrIfSumBelow(key: Uint8Array, keys: readonly Uint8Array[], max: number, out: Uint8Array): number;
  /** Sets each pair of [k1, v1, k2, v2, …]: all of them (0) or, when they do not fit together, none (-ENOMEM). */
  mset(kv: readonly Uint8Array[]): number;
  /** The values of `keys` back to back in `out`, each length in `lens` (-1 when absent): the bytes all need. */
  mget(keys: readonly Uint8Array[], out: Uint8Array, lens: Int32Array): number;
  /** Removes every key: 0 or `-errno`. */
  flush(): number;
  /** Keys, bytes in use and capacity; throws an ErrnoError (EBADF once closed). */
  info(): {
    /** Keys stored. */
    keys: number;
    /** Bytes in use. */
    used: number;
    /** Bytes the table can hold. */
    capacity: number;
  };
  /** Releases the table. Idempotent. */
  close(): void;
  /** {@link close}, for `using`. */
  [Symbol.dispose](): void;
}

export class Keyspace implements KeyspaceLike {
  /** The name to attach by, to pass to threads and processes: `/proc/<pid>/fd/<fd>` (a memfd) or the shm name given. */
  readonly name: string;
  /** Whether this mapping created the keyspace (and unlinks it on close). */
  readonly owner: boolean;
  #ks: NativeKeyspace;
  #closed = false;

  private constructor(name: string, owner: boolean, ks: NativeKeyspace) {
    this.name = name;
    this.owner = owner;
    this.#ks = ks;
  }

  /**
   * Creates a new keyspace. Without a name it is an anonymous memfd whose name is
   * `/proc/<pid>/fd/<fd>`; with one (`'/'` then 1-199 of `[A-Za-z0-9._-]`) it is a POSIX
   * shm object. Throws an ErrnoError (EEXIST when the name is taken), a RangeError for a
   * bad name, `size` (64 KiB to 4 GiB - 1) or `buckets` (a power of two, 16 to 2^24, whose 4
   * bytes each leave 4 KiB of `size` for data).
   */
  static create(name?: string, opts?: KeyspaceOptions): Keyspace {
    const n = name === undefined ? undefined : checkName(name);
    const o = v.object<KeyspaceOptions>('opts', opts);
    const size = o.size === undefined ? 64 << 20 : v.int('size', o.size, 1 << 16, 0xffffffff);
    const buckets = o.buckets === undefined ? defaultBuckets(size) : v.int('buckets', o.buckets, 16, 1 << 24);
    if ((buckets & (buckets - 1)) !== 0) throw v.rangeError('buckets', 'a power of two', buckets);
    const ks = new native.Keyspace();
    if (n !== undefined && n.startsWith('/proc/')) {
      // Such a name is an existing anonymous keyspace; only attach() takes it.
      throw new ErrnoError(-EEXIST, 'shm_open', n);
    }
    if (n === undefined) {
      // No name in /dev/shm: a memfd that others reopen through /proc, freed by the kernel
      // when the last user is gone, even if this process crashes.
      const fd = check(ks.createAnonymous(size, buckets), 'memfd_create');
      return new Keyspace(`/proc/${process.pid}/fd/${fd}`, true, ks);
    }
    check(ks.open(n, true, size, buckets), 'shm_open');
    return new Keyspace(n, true, ks);
  }

  /** Attaches to an existing keyspace by name; throws an ErrnoError (ENOENT when there is none). */
  static attach(name: string): Keyspace {
    const n = checkName(name);
    const ks = new native.Keyspace();
    check(ks.open(n, false, 1 << 16, 16), 'shm_open');
    return new Keyspace(n, false, ks);
  }

  /** Removes a keyspace name (the mappings stay valid until closed). 0 or -errno. */
  static unlink(name: string): number {
    return native.keyspaceUnlink(checkName(name));
  }

  /** The value's length, its bytes copied into `out` as far as they fit; -ENOENT if absent. */
  get(key: Uint8Array, out: Uint8Array): number {
    return this.#ks.get(key, out);
  }

  /** 1 if set, 0 if the NX / XX condition refused it, -ENOMEM when the keyspace is full. */
  set(key: Uint8Array, value: Uint8Array, flags = 0): number {
    return this.#ks.set(key, value, flags);
  }

  /** 1 if the key was deleted, 0 if absent. */
  del(key: Uint8Array): number {
    return this.#ks.del(key);
  }

  /** 1 if present, 0 if not. */
  exists(key: Uint8Array): number {
    return this.#ks.exists(key);
  }

  /** Deletes every key of `keys` under one lock (Redis's DEL): how many were present. */
  delMany(keys: readonly Uint8Array[]): number {
    return this.#ks.delMany(keys);
  }

  /**
   * Deletes every key that begins with `prefix` (all of them for an empty one) under one
   * lock: how many were deleted. It walks every key once, so it is for rare clean-ups (the
   * multi-process master drops a dead worker's per-client counts with it), not hot paths.
   */
  delPrefix(prefix: Uint8Array): number {
    return this.#ks.delPrefix(prefix);
  }

  /** How many of `keys` are present, read under one lock (Redis's EXISTS: a key given twice counts twice). */
  existsMany(keys: readonly Uint8Array[]): number {
    return this.#ks.existsMany(keys);
  }

  /**
   * Adds `delta` to the integer stored at `key` (absent counts as 0), atomically across
   * every thread and process. Writes the new value's decimal digits into `out` (24 bytes
   * or more) and returns how many; -EINVAL when the value is not an integer, -ERANGE on
   * overflow. `delta`: an integer within ±2^53, or a bigint within int64.
   */
  incr(key: Uint8Array, delta: number | bigint, out: Uint8Array): number {
    return this.#ks.incr(key, delta, out);
  }

  /**
   * Adds 1 to the integer at `key`, as {@link Keyspace.incr} does, only when the integers
   * stored at `keys` (absent counts as 0) add up to less than `max`: the sum and the add
   * under one lock, atomic across every thread and process, so counters that share a limit
   * (each its own key, `keys` all of them) never pass it and never refuse while it has room.
   * Returns the count of the new value's digits written into `out` (24 bytes or more), 0
   * when the sum is already `max` or more (nothing changed), -EINVAL when a value is not an
   * integer, -ERANGE on overflow, -ENOMEM when the keyspace is full. `max`: an integer of 0
   * to 2^53.
   */
  incrIfSumBelow(key: Uint8Array, keys: readonly Uint8Array[], max: number, out: Uint8Array): number {
    return this.#ks.incrIfSumBelow(key, keys, max, out);
  }

  /** Sets each key/value pair of [k1, v1, k2, v2, …] under one lock: all of them (0) or, when they do not fit together, none (-ENOMEM). */
  mset(kv: readonly Uint8Array[]): number {
    return this.#ks.mset(kv);
  }

  /**
   * Copies the values of `keys` back to back into `out` (as far as they fit) and each
   * length into `lens` (-1 when absent). Returns the bytes all values need: when that is
   * more than `out.length`, call again with a larger `out`.
   */
  mget(keys: readonly Uint8Array[], out: Uint8Array, lens: Int32Array): number {
    return this.#ks.mget(keys, out, lens);
  }

  /** Removes every key: 0 or `-errno`. */
  flush(): number {
    return this.#ks.flush();
  }

  /** Keys, bytes in use and capacity; throws an ErrnoError (EBADF once closed). */
  info(): {
    /** Keys stored. */
    keys: number;
    /** Bytes of the data area in use. */
    used: number;
    /** Bytes of the data area in all. */
    capacity: number;
  } {
    const r = this.#ks.info();
    if (typeof r === 'number') throw errnoError(r, 'keyspace');
    return { keys: r[0], used: r[1], capacity: r[2] };
  }

  /** Unmaps this mapping; the creator also unlinks the name. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ks.close();
    if (this.owner) native.keyspaceUnlink(this.name);
  }

  /** {@link Keyspace.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
