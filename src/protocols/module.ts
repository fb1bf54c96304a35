/**
 * Protocol modules: a user's own protocol, served by every model the way the built-in ones
 * are. A module exports `create(options)`, which returns a {@link CustomProtocol} — the same
 * Codec-plus-handle split as rawio's protocols (protocol.ts). Models recreate protocols in
 * every thread and child process from a ProtocolKind and ProtocolOptions;
 * a module is the kind 'module' with its file URL in the options, so it travels the same
 * path. Each thread (and process) imports the module once before it serves
 * (`loadProtocolModules`), after which `createProtocol` finds it without waiting.
 *
 * User code is fenced here, so no model needs to know it is there: an exception from
 * `createCodec`, `push` or `handle` (thrown, or a rejected promise) becomes the module's
 * `errorReply(err)` for that request alone, or closes that connection when the module has
 * none; it is counted (stats().errors) and handed to the module's `onError`, or logged. What
 * the module returns is checked as strictly (user-checks.ts): a reply, a push result, the
 * codec's `buffered` count and the bytes a body yields that break the contract count as a
 * throw, so every model receives only replies it can send; a codec holding more than
 * maxRequest of one request ends as a built-in codec does past its limit (FencedCodec).
 * Errors the module's code throws outside any request (a timer, a promise nobody awaits)
 * reach the same counter and hook through `reportStrayError`, which a model thread or
 * process calls for them.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import type { Codec, Protocol, ProtocolOptions, PushResult, Reply } from './protocol.js';
import { EMPTY } from './bytes.js';
import { checkReply, isBytes, plainData } from './user-checks.js';
import { rangeError, typeError } from '../sys/validate.js';

/**
 * What a protocol module exports. `create` runs once in the caller's thread when the server
 * starts, then once in every thread and process that serves connections; `options` is
 * what `serve({ protocol: { module, options } })` was given, or, in the threads and
 * processes, the `options` the first instance published (shared state's names).
 * @example
 * // lines.mjs answers each line with its upper-case form; it exports this as `create`
 * function create() {
 *   return {
 *     createCodec() { let rest = ''; return { push(chunk) {
 *       const lines = (rest + Buffer.from(chunk).toString()).split('\n'); rest = lines.pop();
 *       return { frames: lines.map((l) => Buffer.from(l)) }; } }; },
 *     handle(frame) { return { data: Buffer.from(Buffer.from(frame).toString().toUpperCase() + '\n') }; },
 *   };
 * }
 */
export interface ProtocolModule<O = unknown> {
  /** Makes this thread's (or process's) instance of the protocol. */
  create(options: O): CustomProtocol<O>;
}

/**
 * A protocol written outside rawio, as its module's `create()` returns it. Only
 * `createCodec` and `handle` are required.
 *
 * Threads: every thread and process has its own instance, created from the same module
 * and options; a request is handled on the thread the model chooses. State shared between
 * them lives where threads and processes can both reach it — a {@link Keyspace} (shared
 * memory, as the `resp` protocol keeps its keys): the first instance creates it and
 * publishes its name in `options`; the others attach to it.
 */
export interface CustomProtocol<O = unknown> {
  /** A fresh framing state for one connection. */
  createCodec(): Codec;
  /**
   * Handles one frame. May return a promise: replies still leave in request order. The
   * frame is the codec's and may be kept.
   */
  handle(frame: Uint8Array): Reply | Promise<Reply>;
  /**
   * The reply to a request whose `push` or `handle` failed (RESP-like protocols answer
   * `-ERR …` and keep the connection). Without it, the connection is closed.
   */
  errorReply?(err: unknown): Reply;
  /** Told of every error the module's code throws; without it they are logged with console.error. */
  onError?(err: unknown): void;
  /** The options other threads and processes create their instance with; default: those given to create(). */
  readonly options?: O;
  /** Releases what the instance holds; the first instance's close() runs last, when the server closes. */
  close?(): void;
}

/** `serve({ protocol })` for a protocol module: its path or file URL, and the options its `create()` gets. */
export interface ProtocolModuleSpec<O = unknown> {
  /** The module: a path (from the current directory) or a URL. */
  module: string | URL;
  /**
   * What its `create()` receives: plain data (null, booleans, finite numbers, strings, arrays
   * and plain objects of them), since it crosses threads and processes; `serve()` refuses
   * anything else with a TypeError naming it.
   */
  options?: O;
}

/** A module path or URL as the file URL every thread imports (a relative path is taken from the cwd). */
export function moduleUrl(name: string, m: unknown): string {
  if (m instanceof URL) return m.href;
  if (typeof m !== 'string' || m === '') throw typeError(name, 'a path or a URL', m);
  if (/^(file|data|node):/.test(m)) return m;
  return pathToFileURL(resolve(m)).href;
}

/** This thread's imported modules, by URL. */
const loaded = new Map<string, Record<string, unknown>>();

/** Imports a module into this thread, once; rejects with the module's own error. */
export async function importOnce(url: string): Promise<Record<string, unknown>> {
  let ns = loaded.get(url);
  if (ns === undefined) {
    ns = (await import(url)) as Record<string, unknown>;
    loaded.set(url, ns);
  }
  return ns;
}

export function imported(url: string): Record<string, unknown> {
  const ns = loaded.get(url);
  if (ns === undefined) throw new Error(`rawio: module ${url} is not loaded in this thread (use loadProtocol)`);
  return ns;
}

/** Imports whatever user modules a protocol needs, so that createProtocol can build it at once. */
export async function loadProtocolModules(opts: ProtocolOptions): Promise<void> {
  if (opts.module !== undefined) await importOnce(opts.module);
  if (opts.handler !== undefined) await importOnce(opts.handler);
}

/** How a thread counts user-code errors (its Stats), set by the thread before it serves. */
let countError: () => void = () => {};

export function setErrorCounter(count: () => void): void {
  countError = count;
}

/**
 * The hook of this thread's user code, for errors that belong to no request: the onError of
 * the protocol module or HTTP handler made last in this thread (a model's thread or process
 * makes one), or what reads it when it is used (`hookOf`).
 */
type Hook = (err: unknown) => void;
let strayHook: () => Hook | undefined = () => undefined;

export function setStrayHook(hook: Hook | undefined): void {
  strayHook = () => hook;
}

/** An error user code threw outside any request (uncaught, or a rejection nobody handled): counted and reported. */
export function reportStrayError(err: unknown): void {
  reportUserError(err, strayHook());
}

/**
 * The `onError` of a user object, read now and bound to it. A read that throws (a getter)
 * gives a hook that throws that error, so reportUserError counts the error it was handed and
 * logs the getter's, as it does for a hook that throws: user code's fault stays inside the
 * fence wherever the hook is read.
 */
function hookOf(owner: object): Hook | undefined {
  try {
    const hook = (owner as { onError?: unknown }).onError;
    return typeof hook === 'function' ? (hook as Hook).bind(owner) : undefined;
  } catch (e) {
    return () => {
      throw e;
    };
  }
}

/**
 * Counts an error thrown by user code and reports it to `hook`, or logs it. A hook that
 * fails — it throws, or it is async and its promise rejects — has its own error logged, not
 * handed back to it: an async onError that always rejects would otherwise make each of its
 * rejections a stray error for itself, for ever, and hold its thread in that loop.
 */
export function reportUserError(err: unknown, hook: ((err: unknown) => void) | undefined): void {
  countError();
  try {
    if (hook) {
      const r = hook(err) as unknown;
      if (typeof (r as { then?: unknown } | null)?.then === 'function') {
        Promise.resolve(r).catch((e: unknown) => console.error('rawio: error in user code:', e));
      }
      return;
    }
  } catch (e) {
    err = e; // a throwing hook is logged rather than lost
  }
  console.error('rawio: error in user code:', err);
}

const CLOSE: Reply = { data: EMPTY, close: true };

/** A module's request bound when serve() is given no maxRequest: resp's, the largest built-in one. */
export const MODULE_MAX_REQUEST = 16 << 20;

/**
 * The error a module's errorReply gets for a request larger than maxRequest: the client's
 * doing, not the module's, so it is not counted in stats().errors nor passed to onError.
 */
function tooLarge(size: number, max: number): Error {
  const e = new RangeError(
    `a request of more than ${max} bytes (maxRequest): ${size} bytes held of one not yet whole`,
  ) as RangeError & { code: string };
  e.code = 'ERR_RAWIO_REQUEST_TOO_LARGE';
  return e;
}

/**
 * Marks the codec of a connection whose `createCodec()` threw: its first push, of any bytes,
 * returns the failure reply. A model's connection core pushes it nothing at once
 * (conn-core.ts), so the client gets the reply and the close without having to send first.
 */
export const CODEC_FAILED = Symbol('rawio.codecFailed');

/** The Protocol every model sees for a module: user code fenced (see the file comment). */
export class ModuleProtocol implements Protocol {
  readonly name = 'module';
  readonly options: ProtocolOptions;
  readonly #impl: CustomProtocol;
  readonly #maxRequest: number;
  readonly #report = (e: unknown): void => reportUserError(e, hookOf(this.#impl));

  constructor(opts: ProtocolOptions) {
    const url = opts.module;
    if (url === undefined) throw typeError('module', 'a module URL', url);
    const create = imported(url).create;
    if (typeof create !== 'function') throw typeError('module', `a module exporting create() (${url})`, create);
    const impl = (create as ProtocolModule['create'])(opts.moduleOptions) as CustomProtocol | undefined;
    if (typeof impl?.createCodec !== 'function' || typeof impl.handle !== 'function') {
      throw typeError('create()', 'an object with createCodec() and handle()', impl);
    }
    this.#impl = impl;
    // What the other threads and processes get must be plain data too; an instance refused
    // for it is closed again (it may hold shared memory already).
    let shared: unknown;
    try {
      shared = impl.options === undefined ? opts.moduleOptions : plainData('create().options', impl.options);
    } catch (e) {
      this.close();
      throw e;
    }
    this.options = { module: url, moduleOptions: shared };
    if (opts.limits !== undefined) this.options.limits = opts.limits;
    this.#maxRequest = opts.limits?.maxRequest ?? MODULE_MAX_REQUEST;
    // Read when an error comes, as for a request's: a getter that throws is fenced there.
    strayHook = () => hookOf(impl);
  }

  /** The reply that stands for a failed request: errorReply(err), or closing the connection. */
  #failed(err: unknown): Reply {
    this.#report(err);
    return this.#answer(err);
  }

  /**
   * errorReply(err), or closing the connection; a failing errorReply is reported and closes,
   * as does one whose read throws (a getter).
   */
  #answer(err: unknown): Reply {
    try {
      const errorReply = this.#impl.errorReply;
      if (!errorReply) return CLOSE;
      return checkReply(errorReply.call(this.#impl, err), this.#report);
    } catch (e) {
      this.#report(e);
      return CLOSE;
    }
  }

  #check(r: unknown): Reply {
    try {
      return checkReply(r, this.#report);
    } catch (e) {
      return this.#failed(e);
    }
  }

  createCodec(): Codec {
    let codec: Codec;
    try {
      codec = this.#impl.createCodec();
    } catch (e) {
      const error = { ...this.#failed(e), close: true };
      let sent = false;
      const failed = {
        [CODEC_FAILED]: true,
        push: (): PushResult => {
          if (sent) return { frames: [] };
          sent = true;
          return { frames: [], error };
        },
      };
      return failed;
    }
    return new FencedCodec(
      codec,
      this.#maxRequest,
      (e) => this.#failed(e),
      (e) => this.#answer(e),
      this.#report,
    );
  }

  handle(frame: Uint8Array): Reply | Promise<Reply> {
    let r: Reply | Promise<Reply>;
    let thenable: boolean;
    try {
      r = this.#impl.handle(frame);
      // Inside the fence: a reply whose `then` is a getter that throws is this request's error.
      thenable = r instanceof Promise || typeof (r as { then?: unknown } | null)?.then === 'function';
    } catch (e) {
      return this.#failed(e);
    }
    if (thenable) {
      return Promise.resolve(r).then(
        (v) => this.#check(v),
        (e: unknown) => this.#failed(e),
      );
    }
    return this.#check(r);
  }

  close(): void {
    try {
      this.#impl.close?.();
    } catch (e) {
      this.#report(e);
    }
  }
}

/**
 * A user codec: a throw, or a result that breaks the contract (a frame that is not bytes, an
 * error reply of the wrong shape, a `buffered` that is not a byte count), ends it with the
 * failure reply, and the connection closes after it. Its `buffered` (the bytes of a request
 * not yet whole) is read after each push and handed on, so the header timeout runs for a
 * module's half-sent request as for a built-in protocol's; a codec without one reports
 * undefined (no header clock: the core counts the bytes pushed since its last frame toward
 * the idle clock alone, conn-clock.ts), and 0 once it has ended.
 *
 * maxRequest bounds what one connection's codec may hold, as it bounds a built-in codec's
 * request: past it — `buffered`, or the bytes pushed since a push last returned a frame,
 * whichever is more, so a codec that holds bytes without framing them is stopped whatever
 * it reports — the codec ends with errorReply(ERR_RAWIO_REQUEST_TOO_LARGE) after the frames
 * of that push, and the connection closes.
 */
class FencedCodec implements Codec {
  #dead = false;
  #buffered = 0;
  /** The inner codec reported `buffered` at its last push (or it ended): else buffered is undefined. */
  #reports = false;
  /** Bytes pushed since a push last returned a frame: no more than the request now arriving holds. */
  #unframed = 0;

  constructor(
    readonly inner: Codec,
    readonly maxRequest: number,
    readonly failed: (e: unknown) => Reply,
    readonly answer: (e: unknown) => Reply,
    readonly report: (e: unknown) => void,
  ) {}

  /** The inner codec's count as checked at the last push; undefined when it does not report one. */
  get buffered(): number | undefined {
    return this.#reports || this.#dead ? this.#buffered : undefined;
  }

  push(chunk: Uint8Array): PushResult {
    if (this.#dead) return { frames: [] };
    try {
      const r = this.inner.push(chunk) as unknown;
      const frames = (r as PushResult | null)?.frames;
      if (typeof r !== 'object' || r === null || !Array.isArray(frames)) {
        throw typeError('push()', 'an object with frames: Uint8Array[]', r);
      }
      for (let i = 0; i < frames.length; i++) {
        if (!isBytes(frames[i])) {
          const what = frames[i] instanceof Uint8Array ? 'a Uint8Array whose buffer is not detached' : 'a Uint8Array';
          throw typeError(`push() frames[${i}]`, what, frames[i]);
        }
      }
      const buffered = this.inner.buffered as unknown;
      if (buffered !== undefined) {
        if (typeof buffered !== 'number') throw typeError('codec.buffered', 'of type number', buffered);
        if (!Number.isInteger(buffered) || buffered < 0 || buffered > Number.MAX_SAFE_INTEGER) {
          throw rangeError('codec.buffered', 'a byte count: an integer >= 0', buffered);
        }
      }
      const { error, interim } = r as PushResult;
      const out: PushResult = { frames };
      if (interim !== undefined) {
        if (typeof interim !== 'number') throw typeError('push() interim', 'of type number', interim);
        if (!Number.isInteger(interim) || interim < 0 || interim > frames.length) {
          throw rangeError('push() interim', `an integer from 0 to frames.length (${frames.length})`, interim);
        }
        if (interim > 0) out.interim = interim;
      }
      if (error !== undefined) out.error = { ...checkReply(error, this.report), close: true };
      this.#buffered = (buffered as number | undefined) ?? 0;
      this.#reports = buffered !== undefined;
      this.#unframed = frames.length > 0 ? 0 : this.#unframed + chunk.byteLength;
      const held = Math.max(this.#buffered, this.#unframed);
      if (out.error === undefined && held > this.maxRequest) {
        this.#dead = true;
        this.#buffered = 0;
        out.error = { ...this.answer(tooLarge(held, this.maxRequest)), close: true };
      }
      return out;
    } catch (e) {
      this.#dead = true;
      this.#buffered = 0;
      return { frames: [], error: { ...this.failed(e), close: true } };
    }
  }
}
