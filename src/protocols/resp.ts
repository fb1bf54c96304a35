/**
 * The `resp` protocol: the Redis command subset that redis-cli and `redis-benchmark -t
 * ping,set,get,incr,mset` use — PING, ECHO, SET (NX/XX), GET, DEL, EXISTS, INCR/DECR/
 * INCRBY/DECRBY, MSET, MGET, DBSIZE, FLUSHALL/FLUSHDB, SELECT 0, QUIT, CONFIG GET and
 * COMMAND (DOCS, COUNT). Replies are RESP2. The data lives in a shared-memory Keyspace
 * (src/sys/keyspace.ts), so every thread and process serving one server sees one keyspace;
 * or, when the model runs every handler on one thread (`localKeyspace`), in a table of that
 * thread (local-keyspace.ts) that costs no native call and no lock.
 */
import type { Codec, Protocol, ProtocolOptions, Reply } from './protocol.js';
import { RespCodec, frameArgs, frameBounds, type RespLimits } from './resp-codec.js';
import { EMPTY, allocFrame, ascii, copyBytes, putUint, uintDigits } from './bytes.js';
import { Keyspace, KEYSPACE_NX, KEYSPACE_XX } from '../sys/keyspace.js';
import * as v from '../sys/validate.js';
import { LocalKeyspace } from './local-keyspace.js';
import * as errno from '../sys/errno.js';

const ENOENT = -errno.ENOENT;
const ENOMEM = -errno.ENOMEM;
const EINVAL = -errno.EINVAL;

const fixed = (s: string): Reply => ({ data: ascii(s) });
const OK = fixed('+OK\r\n');
const PONG = fixed('+PONG\r\n');
const NIL = fixed('$-1\r\n');
const EMPTY_ARRAY = fixed('*0\r\n');
const ZERO = fixed(':0\r\n');
const ONE = fixed(':1\r\n');
const SYNTAX = fixed('-ERR syntax error\r\n');
const NOT_INT = fixed('-ERR value is not an integer or out of range\r\n');
const OVERFLOW = fixed('-ERR increment or decrement would overflow\r\n');
/** Redis's reply (its wording) to an integer argument past int32 where one is wanted. */
const NOT_INT32 = fixed('-ERR value is out of range, value must between -2147483648 and 2147483647\r\n');
const DECR_OVERFLOW = fixed('-ERR decrement would overflow\r\n');
const OOM = fixed("-OOM command not allowed when used memory > 'maxmemory' (rawio keyspace full)\r\n");
const QUIT: Reply = { data: ascii('+OK\r\n'), close: true };
/** The CONFIG GET parameters rawio answers, and their values: a server that persists nothing. */
const CONFIG = new Map([
  ['save', ''],
  ['appendonly', 'no'],
]); // a Map: a name a client sends is never looked up on an object's prototype (`constructor`)

/** Printable, CRLF-free text of a client's bytes, for error messages. */
function printable(b: Uint8Array): string {
  let s = '';
  for (const c of b.subarray(0, 64)) s += c >= 32 && c < 127 ? String.fromCharCode(c) : '?';
  return s;
}

// Command names packed into a number (7 bits a character, up to 7 characters, then the
// length), looked up instead of building a string for every command.
const KNOWN = new Map<number, string>();
function packName(b: Uint8Array): number {
  let k = 0;
  for (const c of b) k = k * 128 + (c & 0x7f);
  return k * 16 + b.length;
}
for (const n of ['get', 'set', 'ping', 'incr', 'decr', 'incrby', 'decrby', 'mset', 'mget', 'del', 'exists', 'echo'])
  KNOWN.set(packName(ascii(n)), n);
const GET = packName(ascii('get'));
const SET = packName(ascii('set'));

/** Lower-case ASCII name of a command (empty when it cannot be one we know). */
function commandName(b: Uint8Array): string {
  return commandNameAt(b, 0, b.length);
}

/** commandName of the bytes b[from, to). */
function commandNameAt(b: Uint8Array, from: number, to: number): string {
  const n = to - from;
  if (n > 12) return '';
  if (n <= 7) {
    // Lower-case bytes first (0x20 on letters only matters for the bytes that are letters).
    let k = 0;
    let high = 0;
    for (let i = from; i < to; i++) {
      const c = b[i]!;
      high |= c;
      k = k * 128 + ((c | 0x20) & 0x7f);
    }
    const packed = k * 16 + n;
    if (high < 128 && (packed === GET || packed === SET)) return packed === GET ? 'get' : 'set'; // before the Map: the most of any load
    const known = high < 128 ? KNOWN.get(packed) : undefined;
    if (known !== undefined) return known;
  }
  let s = '';
  for (let i = from; i < to; i++) s += String.fromCharCode(b[i]! | 0x20);
  return s;
}

/**
 * A zeroed buffer of n bytes, or undefined when the engine cannot make one (past its largest
 * typed array, or no memory): a reply that large is refused, not built.
 */
function newBuffer(n: number): Uint8Array | undefined {
  try {
    return new Uint8Array(n);
  } catch {
    return undefined;
  }
}

/** The error for a reply of `n` bytes no buffer can hold (an MGET of the same large value many times). */
function tooLarge(n: number): Reply {
  return error(`reply too large to build (${n} bytes)`);
}

/** Argument bounds of the command being handled (frameBounds): GET and SET need three pairs. */
const AT = new Int32Array(6);

function error(msg: string): Reply {
  return { data: ascii(`-ERR ${msg}\r\n`) };
}

/** A command's arguments (its name first), `N` of them at least. */
type AtLeast<N extends 1 | 2 | 3, A extends Uint8Array[] = []> = A['length'] extends N
  ? [...A, ...Uint8Array[]]
  : AtLeast<N, [...A, Uint8Array]>;
/** Exactly `N` arguments. */
type Exactly<N extends 1 | 2 | 3, A extends Uint8Array[] = []> = A['length'] extends N
  ? A
  : Exactly<N, [...A, Uint8Array]>;
function atLeast<N extends 1 | 2 | 3>(a: Uint8Array[], n: N): a is AtLeast<N> {
  return a.length >= n;
}
function exactly<N extends 1 | 2 | 3>(a: Uint8Array[], n: N): a is Exactly<N> {
  return a.length === n;
}

function arity(name: string): Reply {
  return error(`wrong number of arguments for '${name}' command`);
}

/** `:<n>\r\n` */
function integer(n: number): Reply {
  if (n === 0) return ZERO;
  if (n === 1) return ONE;
  return { data: ascii(`:${n}\r\n`) };
}

/** `$<len>\r\n<bytes>\r\n` */
function bulk(b: Uint8Array): Reply {
  const out = new Uint8Array(uintDigits(b.length) + b.length + 5);
  out[0] = 36;
  let o = putUint(out, 1, b.length);
  out[o++] = 13;
  out[o++] = 10;
  out.set(b, o);
  out[o + b.length] = 13;
  out[o + b.length + 1] = 10;
  return { data: out };
}

const INT64_MIN = -(1n << 63n);

/**
 * An INCRBY / DECRBY amount, by Redis's integer rule (no '+', no leading zero, no '-0', int64):
 * a number when it is exact as one, else a bigint; null when it is not such an integer.
 */
function parseDelta(b: Uint8Array): number | bigint | null {
  if (b.length > 20) return null;
  const s = printable(b);
  if (!/^(0|-?[1-9][0-9]{0,18})$/.test(s)) return null;
  const n = Number(s);
  if (Number.isSafeInteger(n)) return n;
  const big = BigInt(s);
  return big >= INT64_MIN && big < -INT64_MIN ? big : null;
}

/** Options of `new RespProtocol()`. */
export interface RespOptions extends ProtocolOptions {
  /** The framing limits (argument sizes and counts). */
  limits?: RespLimits;
}

/**
 * The `resp` protocol: the Redis commands redis-cli and redis-benchmark use (PING, ECHO,
 * SET with NX/XX, GET, DEL, EXISTS, INCR/DECR/INCRBY/DECRBY, MSET, MGET, DBSIZE, FLUSHALL,
 * FLUSHDB, SELECT 0, QUIT, CONFIG GET, COMMAND), answered in RESP2, over a shared-memory
 * {@link Keyspace} that every thread and process of the server sees.
 */
export class RespProtocol implements Protocol {
  readonly name = 'resp';
  readonly options: ProtocolOptions;
  /** The data, created or attached by the constructor; closed by `close()`. */
  readonly keyspace: Keyspace | LocalKeyspace;
  /** The keyspace when it is this thread's own table (GET then answers with its stored bytes). */
  readonly #local: LocalKeyspace | undefined;
  readonly #limits: RespLimits;
  #scratch = new Uint8Array(64 << 10);

  /**
   * With `localKeyspace`, creates a table of this thread only; otherwise attaches to
   * `opts.keyspace` when given, or creates (and will unlink) a new shared one.
   */
  constructor(opts: RespOptions = {}) {
    v.object('opts', opts);
    const size =
      opts.keyspaceSize === undefined ? undefined : v.int('keyspaceSize', opts.keyspaceSize, 1 << 16, 0xffffffff);
    if (opts.localKeyspace !== undefined && v.bool('localKeyspace', opts.localKeyspace)) {
      if (opts.keyspace !== undefined)
        throw v.rangeError('keyspace', 'absent with localKeyspace (a local table has no name)', opts.keyspace);
      this.#local = new LocalKeyspace({ size });
      this.keyspace = this.#local;
      this.options = { ...opts };
    } else {
      this.keyspace =
        opts.keyspace === undefined
          ? Keyspace.create(undefined, size === undefined ? undefined : { size })
          : Keyspace.attach(opts.keyspace);
      this.options = { ...opts, keyspace: this.keyspace.name };
    }
    this.#limits = opts.limits ?? {};
  }

  createCodec(): Codec {
    return new RespCodec(this.#limits);
  }

  close(): void {
    this.keyspace.close();
  }

  handle(frame: Uint8Array): Reply {
    if (frame.length === 0) v.liveBytes(frame, 'frame'); // a detached frame is a TypeError, not an empty request
    if (this.#local !== undefined) {
      const r = this.#fromFrame(frame, this.#local);
      if (r !== undefined) return r;
    }
    const a = frameArgs(frame);
    const name = commandName(a[0] ?? EMPTY); // a frame always has its command; never empty
    switch (name) {
      case 'get':
        return exactly(a, 2) ? this.#get(a[1]) : arity(name);
      case 'set':
        return atLeast(a, 3) ? this.#set(a) : arity(name);
      case 'ping':
        return exactly(a, 1) ? PONG : exactly(a, 2) ? bulk(a[1]) : arity(name);
      case 'incr':
      case 'decr':
        return exactly(a, 2) ? this.#incr(a[1], name === 'incr' ? 1 : -1) : arity(name);
      case 'incrby':
      case 'decrby':
        return exactly(a, 3) ? this.#incrBy(a[1], a[2], name === 'incrby' ? 1 : -1) : arity(name);
      case 'mset':
        return a.length >= 3 && a.length % 2 === 1 ? this.#check(this.keyspace.mset(a.slice(1)), OK) : arity(name);
      case 'mget':
        return a.length >= 2 ? this.#mget(a.slice(1)) : arity(name);
      case 'del':
      case 'exists':
        return a.length >= 2 ? this.#count(a.slice(1), name) : arity(name);
      case 'echo':
        return exactly(a, 2) ? bulk(a[1]) : arity(name);
      default:
        return this.#admin(name, a);
    }
  }

  /**
   * GET and SET on this thread's table, read in place from the frame: no view per
   * argument, and GET's reply is the stored record. Undefined for any other command.
   */
  #fromFrame(frame: Uint8Array, local: LocalKeyspace): Reply | undefined {
    const argc = frameBounds(frame, AT);
    if (argc !== 2 && argc !== 3) return undefined;
    const name = commandNameAt(frame, AT[0]!, AT[1]!);
    if (argc === 2 && name === 'get') return local.replyAt(frame, AT[2]!, AT[3]!) ?? NIL;
    if (argc !== 3 || name !== 'set') return undefined;
    const r = local.setAt(frame, AT[2]!, AT[3]!, AT[3]! + 2, AT[5]! + 2);
    return r === 0 ? NIL : this.#check(r, OK);
  }

  /** The commands a client sends once per connection, not per request. */
  #admin(name: string, a: Uint8Array[]): Reply {
    switch (name) {
      case 'config':
        if (exactly(a, 3) && commandName(a[1]) === 'get') {
          const value = CONFIG.get(commandName(a[2]));
          // The name as the client wrote it, as redis-server answers (`CONFIG GET SAVE`: SAVE).
          return value === undefined
            ? EMPTY_ARRAY
            : { data: Buffer.concat([ascii('*2\r\n'), bulk(a[2]).data, bulk(ascii(value)).data]) };
        }
        return error(`unsupported CONFIG subcommand '${printable(a[1] ?? new Uint8Array())}'`);
      case 'command':
        return atLeast(a, 2) && commandName(a[1]) === 'count' ? ZERO : EMPTY_ARRAY;
      case 'dbsize':
        return exactly(a, 1) ? integer(this.keyspace.info().keys) : arity(name);
      case 'flushall':
      case 'flushdb': {
        // [SYNC | ASYNC], both synchronous here; anything else flushes nothing (a typo must not empty the keyspace).
        const how = a.length === 2 ? commandName(a[1]!) : '';
        if (a.length > 2 || (a.length === 2 && how !== 'sync' && how !== 'async')) return SYNTAX;
        return this.#check(this.keyspace.flush(), OK);
      }
      case 'select': {
        if (!exactly(a, 2)) return arity(name);
        const db = parseDelta(a[1]);
        if (db === null) return NOT_INT;
        if (typeof db === 'bigint' || db < -(2 ** 31) || db >= 2 ** 31) return NOT_INT32; // an int64 past int32
        return db === 0 ? OK : error('DB index is out of range'); // one database
      }
      case 'quit':
        return QUIT;
      default:
        return error(`unknown command '${printable(a[0] ?? EMPTY)}'`);
    }
  }

  #check(r: number, ok: Reply): Reply {
    if (r >= 0) return ok;
    return r === ENOMEM ? OOM : error(`keyspace: errno ${-r}`);
  }

  #get(key: Uint8Array): Reply {
    if (this.#local !== undefined) {
      const f = this.#local.bulk(key);
      return f === undefined ? NIL : { data: f };
    }
    // The value lands at offset 16 of the scratch buffer; the `$<len>\r\n` header is then
    // written right-aligned before it, so the reply is one copy. A value larger than the
    // scratch lands in a buffer of its own, which is the reply: the scratch keeps its size.
    let buf: Uint8Array = this.#scratch;
    let n = this.keyspace.get(key, buf.subarray(16, buf.length - 2));
    while (n > buf.length - 18) {
      const own = newBuffer(n + 18);
      if (own === undefined) return tooLarge(n + 5);
      buf = own;
      n = this.keyspace.get(key, buf.subarray(16, buf.length - 2)); // larger again if it grew meanwhile
    }
    if (n === ENOENT) return NIL;
    if (n < 0) return this.#check(n, OK);
    const h = uintDigits(n) + 3;
    buf[16 - h] = 36;
    putUint(buf, 17 - h, n);
    buf[14] = 13;
    buf[15] = 10;
    buf[16 + n] = 13;
    buf[17 + n] = 10;
    if (buf !== this.#scratch) return { data: buf.subarray(16 - h, 18 + n) };
    // A copy the reply owns (the scratch is reused by the next command), from the frame slab.
    const data = allocFrame(h + n + 2);
    copyBytes(data, 0, buf, 16 - h, 18 + n);
    return { data };
  }

  #set(a: AtLeast<3>): Reply {
    let flags = 0;
    for (let i = 3; i < a.length; i++) {
      const opt = commandName(a[i]!);
      if (opt === 'nx' && !(flags & KEYSPACE_XX)) flags |= KEYSPACE_NX;
      else if (opt === 'xx' && !(flags & KEYSPACE_NX)) flags |= KEYSPACE_XX;
      else return SYNTAX; // EX / PX / KEEPTTL / GET: rawio keeps no expiries
    }
    const r = this.keyspace.set(a[1], a[2], flags);
    return r === 0 ? NIL : this.#check(r, OK);
  }

  #incr(key: Uint8Array, delta: number | bigint): Reply {
    const out = this.#scratch;
    const n = this.keyspace.incr(key, delta, out);
    if (n === EINVAL) return NOT_INT;
    if (n < 0) return n === -errno.ERANGE ? OVERFLOW : this.#check(n, OK);
    const data = new Uint8Array(n + 3);
    data[0] = 58;
    data.set(out.subarray(0, n), 1);
    data[n + 1] = 13;
    data[n + 2] = 10;
    return { data };
  }

  #incrBy(key: Uint8Array, by: Uint8Array, sign: number): Reply {
    const d = parseDelta(by);
    if (d === null) return NOT_INT;
    if (sign > 0) return this.#incr(key, d);
    return d === INT64_MIN ? DECR_OVERFLOW : this.#incr(key, typeof d === 'bigint' ? -d : -d);
  }

  /** DEL / EXISTS of every key at once (under the shared keyspace's one lock, as Redis's are atomic). */
  #count(keys: Uint8Array[], name: string): Reply {
    const r = name === 'del' ? this.keyspace.delMany(keys) : this.keyspace.existsMany(keys);
    return r < 0 ? this.#check(r, OK) : integer(r);
  }

  #mget(keys: Uint8Array[]): Reply {
    const lens = new Int32Array(keys.length);
    // The values land back to back in the scratch buffer, or, when they need more, in a
    // buffer of this command's own (the scratch keeps its size: one large MGET must not hold
    // its memory for good); then the reply is written once, at its size.
    let values: Uint8Array = this.#scratch;
    let total = this.keyspace.mget(keys, values, lens);
    while (total > values.length) {
      const own = newBuffer(total);
      if (own === undefined) return tooLarge(total);
      values = own;
      total = this.keyspace.mget(keys, values, lens); // larger again if values grew meanwhile
    }
    if (total < 0) return this.#check(total, OK);
    let size = uintDigits(keys.length) + 3;
    for (const len of lens) size += len < 0 ? 5 : uintDigits(len) + 5 + len;
    const data = size > 1 << 20 ? newBuffer(size) : allocFrame(size);
    if (data === undefined) return tooLarge(size);
    data[0] = 42;
    let o = putUint(data, 1, keys.length);
    data[o++] = 13;
    data[o++] = 10;
    let off = 0;
    for (const len of lens) {
      if (len < 0) {
        data.set(NIL.data, o);
        o += 5;
        continue;
      }
      data[o] = 36;
      o = putUint(data, o + 1, len);
      data[o++] = 13;
      data[o++] = 10;
      if (len > 64) data.set(values.subarray(off, off + len), o);
      else copyBytes(data, o, values, off, off + len);
      o += len;
      off += len;
      data[o++] = 13;
      data[o++] = 10;
    }
    return { data };
  }
}
