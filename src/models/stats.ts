/**
 * Live server counters that every thread of a model can update without messages: a
 * SharedArrayBuffer of Int32 slots (connections open, requests, refused connects, the
 * server's connection limit, accepts per worker) and
 * BigInt64 slots for bytes out, the zero-copy sends (those the kernel reported done, and
 * of them those it copied) and the ring sends of reply data, updated with Atomics. Worker threads receive the
 * buffer in their workerData; processes (the multi-process model) publish their figures on
 * the master's board (process-board.ts), which adds them up, and count their connections
 * against the server's limit there too (a ConnectionGate). With a per-client limit
 * (maxConnectionsPerClient), admit() also takes a slot of the client's address in a
 * ClientGate: the threads' shared ClientTable (client-table.ts), or the board's count in
 * the multi-process model.
 */
import type { ZerocopyCounts } from '../sys/msg-zerocopy.js';
import { native } from '../sys/native.js';
import { ClientTable, MAX_CLIENTS, type ClientGate } from './client-table.js';

/** What admit() answers for a connection it refused (the caller closes it unread). */
export const REFUSED_CONN = -1;

// [connections, requests, shortBodies, errors, refused, maxConnections (0: none), handed over]
const HEADER = 7;
const REFUSED = 4;
const LIMIT = 5;
/** Accepted fds on their way to the thread that will admit them (a channel between threads). */
const HANDOFF = 6;

/**
 * A server-wide count kept beyond this process's memory (the multi-process workers' board):
 * `reserve()` takes a slot or says there is none, `release()` gives one back.
 */
export interface ConnectionGate {
  reserve(): boolean;
  release(): void;
}

/** A server's counters at one moment ({@link Server.stats}). */
export interface StatsSnapshot {
  /** Connections open now. */
  connections: number;
  /** Connections accepted and served so far, per worker (thread or process). */
  accepted: number[];
  /**
   * Connections closed at once, unread, because `maxConnections` were open on the server,
   * or `maxConnectionsPerClient` from the client's address (not counted in `accepted`).
   */
  refused: number;
  /** Complete requests received so far. */
  requests: number;
  /** Bytes written to clients so far. */
  bytesOut: number;
  /**
   * File bodies that ended short (the file shrank while it was sent): each connection was
   * closed after what was sent, since its next reply would have landed inside the body.
   */
  shortBodies: number;
  /**
   * Zero-copy sends (`zerocopyThreshold`) the kernel reported done so far, and of those the
   * ones it copied after all (every one over loopback).
   */
  zerocopy: ZerocopyCounts;
  /** Errors thrown by user code (protocol modules, HTTP handlers) so far; each failed only its request. */
  errors: number;
  /**
   * Sends of reply data the ring models (`proactor`, `multi-proactor`) submitted so far: one
   * per batch of the replies queued while a connection's previous send was in flight, so far
   * fewer than `requests` under pipelining. 0 on the models that write with write(2).
   */
  sends: number;
}

/** What a thread attaches to the same counters with (Stats.share, Stats.attach). */
export interface SharedStats {
  workers: number;
  buffer: SharedArrayBuffer;
  bytesBuffer: SharedArrayBuffer;
  /** The per-client table (client-table.ts), with a per-client limit. */
  clients?: SharedArrayBuffer;
}

export class Stats {
  readonly buffer: SharedArrayBuffer;
  readonly bytesBuffer: SharedArrayBuffer;
  private readonly ints: Int32Array;
  private readonly bytes: BigInt64Array;
  private deferring = false;
  private heldRequests = 0;
  private heldBytes = 0;
  private heldSends = 0;
  private gate: ConnectionGate | undefined;
  private clients: ClientGate | undefined;
  private table: ClientTable | undefined;
  /** The peer's address, as peerAddress writes it (only with a per-client limit). */
  private readonly peer = new Uint8Array(16);

  constructor(
    readonly workers: number,
    shared?: { buffer: SharedArrayBuffer; bytesBuffer: SharedArrayBuffer; clients?: SharedArrayBuffer },
  ) {
    this.buffer = shared?.buffer ?? new SharedArrayBuffer(4 * (HEADER + Math.max(1, workers)));
    this.bytesBuffer = shared?.bytesBuffer ?? new SharedArrayBuffer(8 * 4); // bytes out, zero-copy sends, copied, sends
    this.ints = new Int32Array(this.buffer);
    this.bytes = new BigInt64Array(this.bytesBuffer);
    if (shared?.clients) this.clients = this.table = ClientTable.attach(shared.clients);
  }

  /** What a worker thread needs to attach to the same counters (and the same per-client table). */
  share(): SharedStats {
    const s: SharedStats = { workers: this.workers, buffer: this.buffer, bytesBuffer: this.bytesBuffer };
    if (this.table) s.clients = this.table.buffer;
    return s;
  }

  static attach(s: SharedStats): Stats {
    return new Stats(s.workers, s);
  }

  /**
   * Sets the server-wide limit on connections open (ServeOptions.maxConnections) in the shared
   * block, so every thread attached to it enforces the same one, and with a finite
   * `perClient` (ServeOptions.maxConnectionsPerClient) makes the per-client table that
   * share() hands to them. Infinity: none. Called before share().
   */
  limit(maxConnections: number, perClient = Infinity): this {
    Atomics.store(this.ints, LIMIT, Number.isFinite(maxConnections) ? maxConnections : 0);
    if (Number.isFinite(perClient)) {
      this.clients = this.table = ClientTable.create(perClient, Math.min(MAX_CLIENTS, maxConnections));
    }
    return this;
  }

  /** Counts connections per client address in a gate shared beyond this process (the multi-process board). */
  useClientGate(gate: ClientGate): this {
    this.clients = gate;
    return this;
  }

  /** Counts connections against a gate shared beyond this process (on top of the limit here). */
  useGate(gate: ConnectionGate): this {
    this.gate = gate;
    return this;
  }

  /**
   * Connection `fd` was accepted by `worker`: takes a slot of the server's limit (and, with a
   * per-client limit, one of its client address's) and counts it, or counts it refused when
   * either is full, and the caller closes it unread. Returns the connection's ticket (>= 0),
   * which the caller gives back through closed(ticket) exactly once however the connection
   * ends, or REFUSED_CONN. A compare-and-swap (the client table: its lock), so two threads
   * cannot both take the last slot. Without a per-client limit, `fd` is not looked at.
   */
  admit(worker: number, fd: number): number {
    const max = Atomics.load(this.ints, LIMIT);
    if (max > 0) {
      for (let open = Atomics.load(this.ints, 0); ;) {
        if (open >= max) return this.refuse();
        const was = Atomics.compareExchange(this.ints, 0, open, open + 1);
        if (was === open) break;
        open = was;
      }
    } else {
      Atomics.add(this.ints, 0, 1);
    }
    if (this.gate && !this.gate.reserve()) {
      Atomics.sub(this.ints, 0, 1);
      return this.refuse();
    }
    let ticket = 0;
    if (this.clients) {
      // A socket whose peer is gone already (ENOTCONN) is not served either.
      ticket = native.peerAddress(fd, this.peer) > 0 ? this.clients.reserve(this.peer) : 0;
      if (ticket === 0) {
        Atomics.sub(this.ints, 0, 1);
        this.gate?.release();
        return this.refuse();
      }
    }
    Atomics.add(this.ints, HEADER + worker, 1);
    return ticket;
  }

  private refuse(): number {
    Atomics.add(this.ints, REFUSED, 1);
    return REFUSED_CONN;
  }

  /**
   * `n` accepted fds are being handed to another thread, which will admit them (call before
   * the fd can reach it; -n when it could not be sent after all). A drain's wait for the
   * connections to close counts these too (whenNoConnections), so that a connection between
   * two threads is not closed as if none were left.
   */
  handing(n: number): void {
    Atomics.add(this.ints, HANDOFF, n);
  }

  /** The receiving thread has judged a handed fd (admitted it, or refused it): see handing(). */
  handed(): void {
    Atomics.sub(this.ints, HANDOFF, 1);
  }

  /** Accepted fds handed to a thread that has not judged them yet. */
  get inHandoff(): number {
    return Atomics.load(this.ints, HANDOFF);
  }

  /** A connection admit() gave `ticket` has closed: its slots are free again. */
  closed(ticket: number): void {
    Atomics.sub(this.ints, 0, 1);
    this.gate?.release();
    if (ticket > 0) this.clients?.release(ticket);
  }

  /** Holds requests, bytes out and sends in this thread until flush() (once per batch, before its replies leave). */
  deferred(): this {
    this.deferring = true;
    return this;
  }

  /** Adds what deferred() held to the shared counters. */
  flush(): void {
    if (this.heldRequests !== 0) Atomics.add(this.ints, 1, this.heldRequests);
    if (this.heldBytes !== 0) Atomics.add(this.bytes, 0, BigInt(this.heldBytes));
    if (this.heldSends !== 0) Atomics.add(this.bytes, 3, BigInt(this.heldSends));
    this.heldRequests = this.heldBytes = this.heldSends = 0;
  }

  requests(n = 1): void {
    if (this.deferring) this.heldRequests += n;
    else Atomics.add(this.ints, 1, n);
  }

  shortBody(): void {
    Atomics.add(this.ints, 2, 1);
  }

  /** An error thrown by user code (a protocol module, an HTTP handler). */
  error(): void {
    Atomics.add(this.ints, 3, 1);
  }

  sent(n: number): void {
    if (n <= 0) return;
    if (this.deferring) this.heldBytes += n;
    else Atomics.add(this.bytes, 0, BigInt(n));
  }

  zerocopy(sends: number, copied: number): void {
    if (sends > 0) Atomics.add(this.bytes, 1, BigInt(sends));
    if (copied > 0) Atomics.add(this.bytes, 2, BigInt(copied));
  }

  /** A ring send of reply data was submitted. */
  send(): void {
    if (this.deferring) this.heldSends++;
    else Atomics.add(this.bytes, 3, 1n);
  }

  /** Overwrites a worker's figures (the multi-process parent, from a child's report). */
  set(worker: number, accepted: number): void {
    Atomics.store(this.ints, HEADER + worker, accepted);
  }

  snapshot(): StatsSnapshot {
    const accepted: number[] = [];
    for (let i = 0; i < this.workers; i++) accepted.push(Atomics.load(this.ints, HEADER + i));
    return {
      connections: Atomics.load(this.ints, 0),
      accepted,
      refused: Atomics.load(this.ints, REFUSED),
      requests: Atomics.load(this.ints, 1),
      bytesOut: Number(Atomics.load(this.bytes, 0)),
      shortBodies: Atomics.load(this.ints, 2),
      zerocopy: { sends: Number(Atomics.load(this.bytes, 1)), copied: Number(Atomics.load(this.bytes, 2)) },
      errors: Atomics.load(this.ints, 3),
      sends: Number(Atomics.load(this.bytes, 3)),
    };
  }
}
