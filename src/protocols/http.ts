/**
 * The `http` protocol: HTTP/1.1 with keep-alive and pipelining (framing in http-codec.ts).
 * `GET /` and `HEAD /` answer the hello-world every HTTP benchmark uses (`Hello, World!`,
 * text/plain, with Server, Date and Content-Length); a POST's Content-Length body is echoed
 * back; other paths are 404 and other methods 405 with Allow. The hello responses are
 * precomputed and rebuilt once a second for the Date; a reply buffer is never modified
 * after it is returned, so models may write it later or from another thread. With a
 * `handler` module (http-handler.ts) every request goes to the user's handle() instead.
 */
import type { Codec, Protocol, ProtocolOptions, Reply } from './protocol.js';
import { CODEC_FRAMES, HttpCodec, codecReply, simpleResponse, targetPathStart, type HttpLimits } from './http-codec.js';
import {
  FLAG_HTTP10,
  FLAG_KEEP_ALIVE,
  Method,
  frameBody,
  frameFlags,
  frameMethod,
  frameTarget,
  frameTargetLength,
  frameTargetStart,
} from './http-frame.js';
import { ascii } from './bytes.js';
import { httpDate, httpSecond } from './http-date.js';
import { HttpApp } from './http-handler.js';
import * as v from '../sys/validate.js';

const HELLO = 'Hello, World!';
/** How a response ends its head: 0 HTTP/1.1 keep-alive, 1 close, 2 HTTP/1.0 keep-alive. */
type Variant = 0 | 1 | 2;
/** One reply per Variant. */
type PerVariant = readonly [Reply, Reply, Reply];
const CONNECTION = ['', 'Connection: close\r\n', 'Connection: keep-alive\r\n'] as const;
const NOT_BUILT: Reply = { data: new Uint8Array(0) };

function variant(flags: number): Variant {
  return !(flags & FLAG_KEEP_ALIVE) ? 1 : flags & FLAG_HTTP10 ? 2 : 0;
}

/** The hello response of variant `v` for GET, and its head alone for HEAD. */
function hello(date: string, v: Variant): { get: Reply; head: Reply } {
  const head =
    `HTTP/1.1 200 OK\r\nServer: rawio\r\nDate: ${date}\r\nContent-Type: text/plain\r\n` +
    `Content-Length: ${HELLO.length}\r\n${CONNECTION[v]}\r\n`;
  const data = ascii(head + HELLO);
  return { get: { data, close: v === 1 }, head: { data: data.subarray(0, head.length), close: v === 1 } };
}

/** Options of `new HttpProtocol()`. */
export interface HttpOptions extends ProtocolOptions {
  /** The framing limits (head and body sizes). */
  limits?: HttpLimits;
}

/**
 * The `http` protocol: HTTP/1.1 with keep-alive and pipelining. `GET /` and `HEAD /` answer
 * `Hello, World!` (text/plain); a POST's body is echoed back; other paths are 404, other
 * methods 405. With `handler` (a module URL, loaded first: see {@link loadProtocol}) every
 * request goes to the module's `handle(request)`. Malformed requests get the RFC 9112
 * error status and the connection closes.
 */
export class HttpProtocol implements Protocol {
  readonly name = 'http';
  readonly options: ProtocolOptions;
  readonly #limits: HttpLimits;
  readonly #app: HttpApp | undefined;
  #second = -1;
  #get: PerVariant = [NOT_BUILT, NOT_BUILT, NOT_BUILT]; // built on first use: #second is -1
  #head: PerVariant = [NOT_BUILT, NOT_BUILT, NOT_BUILT];

  constructor(opts: HttpOptions = {}) {
    v.object('opts', opts);
    this.#limits = opts.limits ?? {};
    this.options = { ...opts };
    if (opts.handler !== undefined) this.#app = new HttpApp(opts.handler);
  }

  createCodec(): Codec {
    return new HttpCodec(this.#limits);
  }

  close(): void {}

  handle(frame: Uint8Array): Reply | Promise<Reply> {
    if (frame.length === 0) v.liveBytes(frame, 'frame'); // a detached frame is a TypeError, not an empty request
    const method = frameMethod(frame);
    if (method >= CODEC_FRAMES) return codecReply(frame);
    if (this.#app) return this.#app.handle(frame);
    const flags = frameFlags(frame);
    if (method === Method.Get || method === Method.Head) {
      if ((frameTargetLength(frame) !== 1 || frame[frameTargetStart(frame)] !== 47) && !isRoot(frameTarget(frame))) {
        const r = simpleResponse(404, flags, '', 'Not Found\n');
        return method === Method.Head ? { ...r, data: stripBody(r.data) } : r;
      }
      if (httpSecond() !== this.#second) this.#rebuild();
      return (method === Method.Get ? this.#get : this.#head)[variant(flags)];
    }
    if (method === Method.Post) return echo(frame, variant(flags));
    return simpleResponse(405, flags, 'Allow: GET, HEAD, POST\r\n', 'Method Not Allowed\n');
  }

  /** Builds the hello responses for this second, fresh buffers (replies are immutable). */
  #rebuild(): void {
    this.#second = httpSecond();
    const date = httpDate();
    const r = [hello(date, 0), hello(date, 1), hello(date, 2)] as const;
    this.#get = [r[0].get, r[1].get, r[2].get];
    this.#head = [r[0].head, r[1].head, r[2].head];
  }
}

/** An absolute-form target naming the root, `http://host/` or `http://host` (origin-form `/` is checked inline). */
function isRoot(target: Uint8Array): boolean {
  const at = targetPathStart(target);
  return at > 0 && (at === target.length || (at === target.length - 1 && target[at] === 47));
}

/** The response without its body (HEAD): everything up to the blank line. */
function stripBody(data: Uint8Array): Uint8Array {
  for (let i = 3; i < data.length; i++) {
    if (data[i] === 10 && data[i - 1] === 13 && data[i - 2] === 10) return data.subarray(0, i + 1);
  }
  return data;
}

function echo(frame: Uint8Array, v: Variant): Reply {
  const body = frameBody(frame);
  const head = ascii(
    `HTTP/1.1 200 OK\r\nServer: rawio\r\nDate: ${httpDate()}\r\nContent-Type: application/octet-stream\r\n` +
      `Content-Length: ${body.length}\r\n${CONNECTION[v]}\r\n`,
  );
  const data = new Uint8Array(head.length + body.length);
  data.set(head);
  data.set(body, head.length);
  return { data, close: v === 1 };
}
