/**
 * The contract between protocols and server models. A protocol is split the way the
 * worker-pool models need it: a Codec frames requests out of a connection's byte stream on
 * the I/O thread, and `handle` turns one framed request into a Reply on whichever thread
 * the model runs handlers on. Frames and replies are plain bytes (plus an fd for a file
 * body), so a model can hand them across threads through shared memory without cloning
 * objects.
 *
 * Ownership: `push` keeps no reference to the chunk it is given (the model may reuse its
 * read buffer). The frames it returns may be views into that chunk (the RESP codec's are,
 * so a pipelined batch is framed without a copy): they are valid until the model reuses
 * the chunk's memory or pushes again, so a model handles them before that — as every model
 * does, inline in the read callback or by copying them into a channel for a pool thread —
 * and copies any frame it keeps longer. `handle` keeps no reference to its frame either:
 * a Reply never points into it. A Reply's `data` is immutable
 * and may be shared by many replies (the precomputed hello-world): a model writes it or
 * copies it, and never modifies or transfers (postMessage transfer list) its buffer.
 */

/** The names {@link createProtocol} and `serve({ protocol })` accept: the one list {@link ProtocolName} is derived from. */
export const protocolNames = ['echo', 'http', 'resp', 'static'] as const;
/** The protocols a server can speak (see {@link createProtocol}). */
export type ProtocolName = (typeof protocolNames)[number];

/**
 * What a model's threads recreate a protocol from: a built-in name, or 'module' for a
 * protocol module (its URL in {@link ProtocolOptions.module}).
 */
export type ProtocolKind = ProtocolName | 'module';

/** What to send back for one request. */
export interface Reply {
  /** Bytes to write first (status line and headers, or the whole reply). */
  data: Uint8Array;
  /**
   * A file region to send after `data` (the static protocol): the fd is open, owned by the
   * reply, and closed by the model once sent (or on error).
   */
  file?: {
    /** The open file. */
    fd: number;
    /** File position of the first byte to send. */
    offset: number;
    /** Bytes to send. */
    length: number;
  };
  /**
   * Bytes produced later, written after `data` and `file` in order, raw (the protocol has
   * already framed them, e.g. HTTP chunked), as the client takes them: the next chunk is
   * pulled only while the connection's output is within its budget. A protocol module's
   * chunks are copied as they are yielded, so its buffer may be reused once yielded; models
   * hold a chunk by reference (unsent while they ask for the next), so rawio's own
   * protocols hand them chunks they never change. An error thrown by the iterable closes
   * the connection after what was sent.
   */
  body?: AsyncIterable<Uint8Array>;
  /** Close the connection once this reply is written: no later request is processed. */
  close?: boolean;
}

/** What {@link Codec.push} returns. */
export interface PushResult {
  /** The complete requests framed so far, in order. */
  frames: Uint8Array[];
  /** Malformed or over-limit input: write this reply after the frames' replies, then close. */
  error?: Reply;
  /**
   * How many of `frames` are not requests but ask for an interim response (HTTP's
   * `100 Continue` before a body): handled and answered in order as the others, not counted
   * in `stats().requests`. Default 0; at most `frames.length`.
   */
  interim?: number;
}

/** Per-connection framing state. */
export interface Codec {
  /**
   * Feeds the next bytes of the connection: returns the requests they complete (a partial
   * one is kept for the next push) and, on malformed input, the error reply. The chunk is
   * not retained; the frames may be views into it, valid until it is reused or the next
   * push (see the ownership note above). After an error, later pushes return no frames.
   */
  push(chunk: Uint8Array): PushResult;
  /** Bytes of an unfinished request held for the next push (the header timeout runs while > 0). */
  readonly buffered?: number;
}

/** Options of {@link createProtocol} and the protocol classes; each applies to the protocol it names. */
export interface ProtocolOptions {
  /** static: the directory served. */
  root?: string;
  /** static: the transferFile method for bodies (default 'auto'). */
  transfer?: string;
  /** static: the 'auto' method's direct-IO threshold in bytes. */
  directio?: number;
  /**
   * resp: the name of the shared keyspace (so that threads and processes share one). Absent:
   * the protocol creates a keyspace, owns it and unlinks it on close(); given: it attaches.
   */
  keyspace?: string;
  /** resp: bytes of shared memory for a keyspace the protocol creates (default 64 MiB). */
  keyspaceSize?: number;
  /** http: the file URL of a handler module exporting `handle(request)` (see {@link HttpHandlerModule}). */
  handler?: string;
  /** module: the file URL of a {@link ProtocolModule}. */
  module?: string;
  /** module: the options its `create()` receives (structured-clonable and JSON-safe: they cross threads and processes). */
  moduleOptions?: unknown;
  /**
   * resp: keep the data in a table of the calling thread instead of shared memory: no
   * native call and no lock per command, but no other thread or process sees it. For a
   * model that runs every handler on one thread; the models set it themselves where that
   * holds (`single`, `iterative`, and `multi-reactor` or `proactor` with one worker).
   */
  localKeyspace?: boolean;
  /**
   * Request size limits, each read by the protocols it names (HttpLimits, RespLimits):
   * serve() fills them from its `maxHeader` and `maxRequest` options.
   */
  limits?: {
    /** http, static: bytes of the request line and header fields (431 past it; 414 when the request line alone is). */
    maxHead?: number;
    /** http: bytes of a request body (413 past it); static: the same, at most 64 KiB. */
    maxBody?: number;
    /** resp: bytes of a whole command; a protocol module: what its codec may hold of one request (16 MiB). */
    maxRequest?: number;
    /** resp: bytes of one argument (bulk string). */
    maxBulk?: number;
  };
}

/**
 * A protocol, as the server models use it: a {@link Codec} per connection frames requests
 * out of the byte stream, and `handle` turns each into a {@link Reply}.
 * @example
 * const p = createProtocol('http');
 * const codec = p.createCodec();
 * const { frames } = codec.push(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
 * const reply = p.handle(frames[0]!); // reply.data: 'HTTP/1.1 200 OK …Hello, World!'
 * p.close();
 */
export interface Protocol {
  /** Which protocol this is ('module' for a protocol module). */
  readonly name: ProtocolKind;
  /**
   * The options that recreate this protocol on another thread or in a child process with
   * the same shared state (`keyspace` filled in): pass them to createProtocol there.
   */
  readonly options: ProtocolOptions;
  /** A fresh framing state for one connection. */
  createCodec(): Codec;
  /**
   * Handles one framed request. Runs on the I/O thread or on a worker thread. A Promise
   * reply is awaited before the connection's next request is handled; replies leave in
   * request order either way.
   */
  handle(frame: Uint8Array): Reply | Promise<Reply>;
  /** Releases what the protocol holds (the static root's fd, the keyspace mapping). */
  close(): void;
}

/** A protocol whose replies are always ready at once, as the built-in ones are. */
export interface SyncProtocol extends Protocol {
  handle(frame: Uint8Array): Reply;
}
