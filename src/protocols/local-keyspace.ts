/**
 * The RESP keyspace of a server whose handlers all run on one thread (`single`,
 * `iterative`, a one-thread `multi-reactor` or `proactor`): a hash table in this thread's
 * JavaScript heap. The shared-memory Keyspace (src/sys/keyspace.ts) pays, per command, an
 * N-API call and a process-shared robust mutex so that every thread and process sees one
 * keyspace; with one handler thread nothing else can see the data, so this table has no
 * lock and never leaves JavaScript. It keeps the shared one's contract — the same methods,
 * the same `>= 0` / `-errno` results (ENOENT, EINVAL, ERANGE, ENOMEM, EBADF), NX / XX, the
 * same integer rules for INCR and a capacity in bytes past which writes fail with -ENOMEM —
 * so the RESP protocol answers the same on either (test/protocols/resp-tables.test.ts
 * compares them on random command sequences).
 *
 * Layout: separate chaining over parallel arrays (an Int32Array of bucket heads, then per
 * entry its next link, hash, key and value), freed entries reused through a free list, the
 * bucket array doubled when the keys outnumber it. The hash is seeded per table against
 * chosen-key collisions, as the shared table's is.
 *
 * A value is stored already framed as the RESP bulk reply `$<len>\r\n<bytes>\r\n`, in a
 * `{ data }` record that is itself the Reply GET sends, so GET answers with the stored
 * record and allocates and copies nothing ({@link LocalKeyspace.replyAt}); a SET whose
 * request frames its value canonically stores one copy of those request bytes. A record
 * handed out (replyAt, bulk) may be held by reference — in a corked batch, a reply waiting
 * its turn — so it is never modified: the next write of its key makes a new one. A record
 * never handed out is private to the table, and a write of a value of the same length
 * overwrites its bytes in place: a stream of SETs to one key allocates nothing.
 */
import { ENOENT, ENOMEM, EINVAL, ERANGE, EBADF } from '../sys/errno.js';
import { errnoError } from '../sys/errors.js';
import type { KeyspaceLike } from '../sys/keyspace.js';
import * as v from '../sys/validate.js';
import { copyBytes, putUint, uintDigits } from './bytes.js';

/** Bytes counted per entry besides its key and value, as the shared table counts its block header. */
const ENTRY_OVERHEAD = 24;
const MIN_BUCKETS = 1024;
const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);
/** Below this magnitude an INCR's operands and result are exact as doubles. */
const EXACT = 2 ** 52;

/** A stored value as the reply to a GET: the same object until its key is written. */
export interface StoredReply {
  /** The value framed as a RESP bulk string (`$<len>\r\n<bytes>\r\n`), never modified once handed out. */
  readonly data: Uint8Array;
}

/** Options of {@link LocalKeyspace}. */
export interface LocalKeyspaceOptions {
  /** Capacity in bytes (keys, values and 24 bytes an entry): 64 KiB to 4 GiB - 1, as the shared table's; default 64 MiB. */
  size?: number;
}

/** `$<len>\r\n<value>\r\n`: a value framed as the bulk reply GET sends. */
function framed(value: Uint8Array, from: number, to: number): Uint8Array {
  const n = to - from;
  const out = new Uint8Array(uintDigits(n) + n + 5);
  out[0] = 36;
  let o = putUint(out, 1, n);
  out[o++] = 13;
  out[o++] = 10;
  if (n > 64) out.set(value.subarray(from, to), o);
  else for (let i = from; i < to; i++) out[o++] = value[i]!;
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

/** Where a framed value's bytes start (after `$<len>\r\n`). */
function headerOf(f: Uint8Array): number {
  return headerEnd(f, 0);
}

/** The end of the `$<len>\r\n` header at f[at]. */
function headerEnd(f: Uint8Array, at: number): number {
  let i = at + 1;
  while (f[i] !== 13) i++;
  return i + 2;
}

/** headerEnd of a caller's frame f[at, end): -1 when no CR ends the header before `end`. */
function boundedHeaderEnd(f: Uint8Array, at: number, end: number): number {
  let i = at + 1;
  while (i < end && f[i] !== 13) i++;
  return i < end ? i + 2 : -1;
}

/** Whether [from, to) is a span of buf (integers, from <= to <= buf.length): the hot path's one test. */
function inside(buf: Uint8Array, from: number, to: number): boolean {
  return (
    buf instanceof Uint8Array &&
    Number.isInteger(from) && // first: a comparison would throw on a Symbol
    Number.isInteger(to) &&
    from >= 0 &&
    to >= from &&
    to <= buf.length
  );
}

/**
 * The error for a span replyAt / setAt cannot use (a TypeError or RangeError): their loops
 * run from `from` to `to` and scan a frame's header from `at`, and out of the buffer they
 * would read `undefined` for ever instead of ending.
 */
function checkSpan(buf: unknown, from: unknown, to: unknown, fromName: string, toName: string, min = 0): never {
  const b = v.liveBytes(buf, 'buf');
  const f = v.int(fromName, from, 0, b.length);
  v.int(toName, to, f + min, b.length);
  throw v.rangeError(toName, `an integer >= ${fromName} + ${min} and <= buf.length`, to);
}

/** A stored value: its bulk reply bytes, in a record GET hands out as its Reply. */
type Stored = StoredReply;

/** Redis's integer rule (as the shared table's ParseInt): '-'? digits, no leading zero, int64. */
function parseInt64(f: Uint8Array, from: number, to: number): bigint | number | null {
  const n = to - from;
  if (n === 0 || n > 20) return null;
  const neg = f[from] === 45;
  const d = neg ? from + 1 : from;
  if (d === to || (f[d] === 48 && (to - d > 1 || neg))) return null;
  let v = 0;
  for (let i = d; i < to; i++) {
    const c = f[i]! - 48;
    if (c < 0 || c > 9) return null;
    v = v * 10 + c;
  }
  if (to - d <= 15) return neg ? -v : v;
  const big = BigInt(String.fromCharCode(...f.subarray(from, to)));
  return big > INT64_MAX || big < INT64_MIN ? null : big;
}

/**
 * A RESP keyspace in this thread's heap, for a server whose handlers all run on one thread:
 * the shared `Keyspace`'s operations and results, with no native call and no lock.
 * `createProtocol('resp', { localKeyspace: true })` uses one; so do the models that run
 * every handler on one thread.
 * @example
 * const enc = new TextEncoder();
 * const ks = new LocalKeyspace({ size: 1 << 20 });
 * ks.set(enc.encode('hits'), enc.encode('41'));
 * const out = new Uint8Array(24);
 * const n = ks.incr(enc.encode('hits'), 1, out); // 2: out holds '42'
 */
export class LocalKeyspace implements KeyspaceLike {
  /** A local table has no name: nothing outside this thread can attach to it. */
  readonly name = '';
  readonly #capacity: number;
  readonly #seed = (Math.random() * 0x100000000) >>> 0;
  #heads = new Int32Array(MIN_BUCKETS).fill(-1);
  #next: number[] = [];
  #hash: number[] = [];
  #key: Uint8Array[] = [];
  #value: Stored[] = [];
  /** Per entry: whether its record was handed out (replyAt, bulk) since it was stored. */
  #lent: boolean[] = [];
  #free: number[] = [];
  #count = 0;
  #used = 0;
  #closed = false;

  /** An empty table of `opts.size` bytes at most. */
  constructor(opts: LocalKeyspaceOptions = {}) {
    const o = v.object<LocalKeyspaceOptions>('opts', opts);
    this.#capacity = o.size === undefined ? 64 << 20 : v.int('size', o.size, 1 << 16, 0xffffffff);
  }

  /** The hash of the key k[from, to). */
  #hashOf(k: Uint8Array, from = 0, to = k.length): number {
    let h = this.#seed ^ Math.imul(to - from, 0x9e3779b1);
    for (let i = from; i < to; i++) h = Math.imul(h ^ k[i]!, 0x01000193);
    h ^= h >>> 15;
    return Math.imul(h, 0x85ebca6b) >>> 0;
  }

  /** The entry holding the key k[from, to), or -1. */
  #find(k: Uint8Array, h: number, from = 0, to = k.length): number {
    const n = to - from;
    for (let e = this.#heads[h & (this.#heads.length - 1)]!; e >= 0; e = this.#next[e]!) {
      if (this.#hash[e] !== h) continue;
      const key = this.#key[e]!;
      if (key.length !== n) continue;
      let i = 0;
      while (i < n && key[i] === k[from + i]) i++;
      if (i === n) return e;
    }
    return -1;
  }

  /**
   * GET straight from a request: the stored reply of the key buf[from, to) — its framed
   * bulk bytes in `data`, the same object every time until the key is written — or
   * undefined. The RESP protocol reads the key in its frame and sends this as the reply,
   * so a GET allocates nothing. The bounds are the caller's to check.
   */
  replyAt(buf: Uint8Array, from: number, to: number): StoredReply | undefined {
    if (!inside(buf, from, to)) checkSpan(buf, from, to, 'from', 'to');
    if (buf.length === 0) v.liveBytes(buf, 'buf'); // the empty key, or a detached buffer
    if (this.#closed) return undefined;
    const e = this.#find(buf, this.#hashOf(buf, from, to), from, to);
    if (e < 0) return undefined;
    this.#lent[e] = true;
    return this.#value[e];
  }

  /**
   * SET straight from a request: the key buf[from, to) and the value framed at buf[at, end)
   * as it arrived (`$<len>\r\n<bytes>\r\n`, checked by the codec). Returns as `set()`.
   * A value whose length is written canonically is stored as one copy of those bytes.
   */
  setAt(buf: Uint8Array, from: number, to: number, at: number, end: number, flags = 0): number {
    if (!inside(buf, from, to)) checkSpan(buf, from, to, 'from', 'to');
    if (!inside(buf, at, end) || end - at < 5) checkSpan(buf, at, end, 'at', 'end', 5);
    if (flags !== 0) v.int('flags', flags, 0, 2);
    // The codec checked the frame; a caller's might lack its header's CR before `end`.
    const vfrom = boundedHeaderEnd(buf, at, end);
    if (vfrom < 0 || vfrom > end - 2)
      throw v.valueError('buf', 'a RESP bulk string ($<len>\\r\\n<bytes>\\r\\n) at [at, end)', buf);
    if (this.#closed) return -EBADF;
    const h = this.#hashOf(buf, from, to);
    const e = this.#find(buf, h, from, to);
    if ((flags & 1 && e >= 0) || (flags & 2 && e < 0)) return 0;
    const canonical = vfrom - at === uintDigits(end - 2 - vfrom) + 3;
    return this.#write(buf, h, e, from, to, buf, vfrom, end - 2, canonical ? at : -1);
  }

  /** The value of `key` framed as a RESP bulk reply (never modified later), or undefined. */
  bulk(key: Uint8Array): Uint8Array | undefined {
    if (this.#closed) return undefined;
    const e = this.#find(v.liveBytes(key, 'key'), this.#hashOf(key));
    if (e < 0) return undefined;
    this.#lent[e] = true;
    return this.#value[e]!.data;
  }

  /** The framed value of `key` for a caller that copies it at once (not handed out), or undefined. */
  #peek(key: Uint8Array): Uint8Array | undefined {
    const e = this.#find(v.liveBytes(key, 'key'), this.#hashOf(key));
    return e < 0 ? undefined : this.#value[e]!.data;
  }

  /** The value's length, its bytes copied into `out` as far as they fit; -ENOENT if absent. */
  get(key: Uint8Array, out: Uint8Array): number {
    v.liveBytes(key, 'key'); // the key first, and before EBADF, as the shared table checks
    v.liveBytes(out, 'out');
    if (this.#closed) return -EBADF;
    const f = this.#peek(key);
    if (f === undefined) return -ENOENT;
    const from = headerOf(f);
    const n = f.length - from - 2;
    out.set(f.subarray(from, from + Math.min(n, out.length)));
    return n;
  }

  /** 1 if set, 0 if the NX (1) / XX (2) condition refused it, -ENOMEM past the capacity. */
  set(key: Uint8Array, value: Uint8Array, flags = 0): number {
    v.liveBytes(key, 'key');
    v.liveBytes(value, 'value');
    v.int('flags', flags, 0, 2);
    if (this.#closed) return -EBADF;
    const h = this.#hashOf(key);
    const e = this.#find(key, h);
    if ((flags & 1 && e >= 0) || (flags & 2 && e < 0)) return 0;
    return this.#write(key, h, e, 0, key.length, value, 0, value.length, -1);
  }

  /**
   * Stores src[vfrom, vto) at the key key[from, to) of hash `h`, whose entry is `e` (-1:
   * absent, the key is copied). `at` is where src frames the value canonically as
   * `$<len>\r\n<bytes>\r\n` (those bytes are copied as they are), or -1 (framed anew).
   * An entry whose record was never handed out, holding a value of the same length, is
   * overwritten in place: the header is the same, only the bytes change.
   */
  #write(
    key: Uint8Array,
    h: number,
    e: number,
    from: number,
    to: number,
    src: Uint8Array,
    vfrom: number,
    vto: number,
    at: number,
  ): number {
    const vlen = vto - vfrom;
    if (e >= 0) {
      const old = this.#value[e]!.data;
      const oldLen = old.length - headerOf(old) - 2;
      if (oldLen === vlen && !this.#lent[e]) {
        copyBytes(old, old.length - 2 - vlen, src, vfrom, vto);
        return 1;
      }
      const grow = vlen - oldLen;
      if (this.#used + grow > this.#capacity) return -ENOMEM;
      this.#used += grow;
      this.#value[e] = { data: at >= 0 ? src.slice(at, vto + 2) : framed(src, vfrom, vto) };
      this.#lent[e] = false;
      return 1;
    }
    const need = ENTRY_OVERHEAD + to - from + vlen;
    if (this.#used + need > this.#capacity) return -ENOMEM;
    this.#used += need;
    this.#count++;
    const id = this.#free.length > 0 ? this.#free.pop()! : this.#key.length;
    const b = h & (this.#heads.length - 1);
    this.#next[id] = this.#heads[b]!;
    this.#hash[id] = h;
    // A copy of its own, never EMPTY_KEY (which marks a free slot) even for the empty key. No
    // key here is detached: every entry point refuses a detached buffer, as the shared table does.
    this.#key[id] = key.slice(from, to);
    this.#value[id] = { data: at >= 0 ? src.slice(at, vto + 2) : framed(src, vfrom, vto) };
    this.#lent[id] = false;
    this.#heads[b] = id;
    if (this.#count > this.#heads.length) this.#rehash(this.#heads.length * 2);
    return 1;
  }

  #rehash(buckets: number): void {
    const heads = new Int32Array(buckets).fill(-1);
    for (let b = 0; b < this.#heads.length; b++) {
      for (let e = this.#heads[b]!; e >= 0;) {
        const next = this.#next[e]!;
        const nb = this.#hash[e]! & (buckets - 1);
        this.#next[e] = heads[nb]!;
        heads[nb] = e;
        e = next;
      }
    }
    this.#heads = heads;
  }

  /** 1 if the key was deleted, 0 if absent. */
  del(key: Uint8Array): number {
    v.liveBytes(key, 'key');
    if (this.#closed) return -EBADF;
    const h = this.#hashOf(key);
    const e = this.#find(key, h);
    if (e < 0) return 0;
    const b = h & (this.#heads.length - 1);
    if (this.#heads[b] === e) this.#heads[b] = this.#next[e]!;
    else {
      let p = this.#heads[b]!;
      while (this.#next[p] !== e) p = this.#next[p]!;
      this.#next[p] = this.#next[e]!;
    }
    const f = this.#value[e]!.data;
    this.#used -= ENTRY_OVERHEAD + key.length + f.length - headerOf(f) - 2;
    this.#count--;
    this.#key[e] = EMPTY_KEY;
    this.#value[e] = EMPTY_VALUE;
    this.#lent[e] = false;
    this.#free.push(e);
    return 1;
  }

  /** Deletes every key of `keys`: how many were present. */
  delMany(keys: readonly Uint8Array[]): number {
    return this.#sumOver(keys, (k) => this.del(k));
  }

  /**
   * Deletes every key that begins with `prefix` (all of them for an empty one): how many were
   * deleted. It walks every key once, as the shared table's does.
   */
  delPrefix(prefix: Uint8Array): number {
    v.liveBytes(prefix, 'prefix');
    if (this.#closed) return -EBADF;
    const n = prefix.length;
    const doomed: Uint8Array[] = [];
    for (let e = 0; e < this.#key.length; e++) {
      const key = this.#key[e]!;
      if (key === EMPTY_KEY || key.length < n) continue; // a free slot, or too short
      let i = 0;
      while (i < n && key[i] === prefix[i]) i++;
      if (i === n) doomed.push(key);
    }
    for (const key of doomed) this.del(key);
    return doomed.length;
  }

  /** How many of `keys` are present (a key given twice counts twice). */
  existsMany(keys: readonly Uint8Array[]): number {
    return this.#sumOver(keys, (k) => this.exists(k));
  }

  /** The sum of `each` over `keys`, every key checked first; -EBADF once closed. */
  #sumOver(keys: readonly Uint8Array[], each: (k: Uint8Array) => number): number {
    const list = v.bytesList('keys', keys);
    if (this.#closed) return -EBADF;
    let n = 0;
    for (const k of list) n += each(k);
    return n;
  }

  /** 1 if present, 0 if not. */
  exists(key: Uint8Array): number {
    v.liveBytes(key, 'key');
    if (this.#closed) return -EBADF;
    return this.#find(key, this.#hashOf(key)) >= 0 ? 1 : 0;
  }

  /**
   * Adds `delta` to the integer at `key` (absent counts as 0); writes the new value's
   * decimal digits into `out` and returns how many; -EINVAL when the value is not an
   * integer, -ERANGE on int64 overflow. `delta`: an integer within ±2^53, or a bigint within int64.
   */
  incr(key: Uint8Array, delta: number | bigint, out: Uint8Array): number {
    v.liveBytes(key, 'key');
    if (typeof delta !== 'bigint') v.int('delta', delta, -(2 ** 53), 2 ** 53);
    else if (delta > INT64_MAX || delta < INT64_MIN) throw v.rangeError('delta', 'a bigint within int64', delta);
    if (v.liveBytes(out, 'out').length < 24) throw v.rangeError('out', 'at least 24 bytes', out.length);
    if (this.#closed) return -EBADF;
    const h = this.#hashOf(key);
    const e = this.#find(key, h);
    let cur: bigint | number | null = 0;
    if (e >= 0) {
      const f = this.#value[e]!.data;
      cur = parseInt64(f, headerOf(f), f.length - 2);
      if (cur === null) return -EINVAL;
    }
    let r: bigint | number;
    if (typeof cur === 'number' && typeof delta === 'number' && Math.abs(cur) < EXACT && Math.abs(delta) < EXACT)
      r = cur + delta;
    else {
      r = BigInt(cur) + BigInt(delta);
      if (r > INT64_MAX || r < INT64_MIN) return -ERANGE;
    }
    const digits = String(r);
    for (let i = 0; i < digits.length; i++) out[i] = digits.charCodeAt(i);
    const s = this.#write(key, h, e, 0, key.length, out, 0, digits.length, -1);
    return s < 0 ? s : digits.length;
  }

  /**
   * Adds 1 to the integer at `key`, as {@link LocalKeyspace.incr} does, only when the integers
   * stored at `keys` (absent counts as 0) add up to less than `max`. Returns the count of the
   * new value's digits written into `out` (24 bytes or more), 0 when the sum is already `max`
   * or more (nothing changed), -EINVAL when a value is not an integer, -ERANGE on overflow,
   * -ENOMEM past the capacity. `max`: an integer of 0 to 2^53.
   */
  incrIfSumBelow(key: Uint8Array, keys: readonly Uint8Array[], max: number, out: Uint8Array): number {
    v.liveBytes(key, 'key');
    const list = v.bytesList('keys', keys);
    v.liveBytes(key, 'key'); // again: reading the list ran the caller's accessors
    v.int('max', max, 0, 2 ** 53);
    if (v.liveBytes(out, 'out').length < 24) throw v.rangeError('out', 'at least 24 bytes', out.length);
    if (this.#closed) return -EBADF;
    let sum = 0n;
    for (const k of list) {
      const f = this.#peek(k);
      if (f === undefined) continue;
      const n = parseInt64(f, headerOf(f), f.length - 2);
      if (n === null) return -EINVAL;
      sum += BigInt(n);
      if (sum > INT64_MAX || sum < INT64_MIN) return -ERANGE;
    }
    return sum < BigInt(max) ? this.incr(key, 1, out) : 0;
  }

  /** Sets each key/value pair of [k1, v1, k2, v2, …] in order: all of them (0) or, when they do not fit together, none (-ENOMEM). */
  mset(kv: readonly Uint8Array[]): number {
    const list = v.bytesList('kv', kv);
    if (list.length % 2 !== 0) throw v.rangeError('kv', 'key/value pairs', list.length);
    if (this.#closed) return -EBADF;
    if (!this.#msetFits(list)) return -ENOMEM;
    for (let i = 0; i + 1 < list.length; i += 2) {
      const r = this.set(list[i]!, list[i + 1]!, 0);
      if (r < 0) return r;
    }
    return 0;
  }

  /** Whether mset's pairs fit, written in order as #write counts them (a key written twice followed through). */
  #msetFits(kv: readonly Uint8Array[]): boolean {
    let used = this.#used;
    const written = new Map<string, number>(); // key (latin1): the length of the value it now has
    for (let i = 0; i + 1 < kv.length; i += 2) {
      const key = kv[i]!;
      const id = Buffer.from(key.buffer, key.byteOffset, key.length).toString('latin1');
      const w = written.get(id);
      let old = w ?? -1;
      if (w === undefined) {
        const e = this.#find(key, this.#hashOf(key));
        if (e >= 0) {
          const f = this.#value[e]!.data;
          old = f.length - headerOf(f) - 2;
        }
      }
      used += old >= 0 ? kv[i + 1]!.length - old : ENTRY_OVERHEAD + key.length + kv[i + 1]!.length;
      if (used > this.#capacity) return false;
      written.set(id, kv[i + 1]!.length);
    }
    return true;
  }

  /**
   * Copies the values of `keys` back to back into `out` (as far as they fit) and each
   * length into `lens` (-1 when absent). Returns the bytes all values need.
   */
  mget(keys: readonly Uint8Array[], out: Uint8Array, lens: Int32Array): number {
    const list = v.bytesList('keys', keys);
    v.liveBytes(out, 'out');
    if (!(lens instanceof Int32Array)) throw v.typeError('lens', 'an Int32Array', lens);
    if (lens.length < list.length) throw v.rangeError('lens', `at least ${list.length} entries`, lens.length);
    if (this.#closed) return -EBADF;
    let total = 0;
    for (let i = 0; i < list.length; i++) {
      const f = this.#peek(list[i]!);
      if (f === undefined) {
        lens[i] = -1;
        continue;
      }
      const from = headerOf(f);
      const n = f.length - from - 2;
      lens[i] = n;
      if (total + n <= out.length) out.set(f.subarray(from, from + n), total);
      total += n;
    }
    return total;
  }

  /** Removes every key. */
  flush(): number {
    if (this.#closed) return -EBADF;
    this.#heads = new Int32Array(MIN_BUCKETS).fill(-1);
    this.#next = [];
    this.#hash = [];
    this.#key = [];
    this.#value = [];
    this.#lent = [];
    this.#free = [];
    this.#count = this.#used = 0;
    return 0;
  }

  /** Keys, bytes in use and capacity; throws an ErrnoError (EBADF) once closed. */
  info(): {
    /** Keys stored. */
    keys: number;
    /** Bytes in use (keys, values and 24 bytes an entry). */
    used: number;
    /** Bytes in all. */
    capacity: number;
  } {
    if (this.#closed) throw errnoError(-EBADF, 'keyspace');
    return { keys: this.#count, used: this.#used, capacity: this.#capacity };
  }

  /** Drops the data; later operations return -EBADF. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
  }

  /** {@link LocalKeyspace.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

const EMPTY_KEY = new Uint8Array(0);
const EMPTY_VALUE: Stored = { data: EMPTY_KEY };
