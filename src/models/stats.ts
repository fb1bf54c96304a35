/**
 * Live server counters that every thread of a model can update without messages: a
 * SharedArrayBuffer of Int32 slots (connections open, requests, accepts per worker) and
 * BigInt64 slots for bytes out and the zero-copy sends (those the kernel reported done, and
 * of them those it copied), updated with Atomics. Worker threads receive the
 * buffer in their workerData; processes (the multi-process model) report through IPC
 * and the parent adds their figures into its own block.
 */
import type { ZerocopyCounts } from '../sys/msg-zerocopy.js';

const HEADER = 3; // [connections, requests, shortBodies]

/** A server's counters at one moment ({@link Server.stats}). */
export interface StatsSnapshot {
  /** Connections open now. */
  connections: number;
  /** Connections accepted so far, per worker (thread or process). */
  accepted: number[];
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
}

export class Stats {
  readonly buffer: SharedArrayBuffer;
  readonly bytesBuffer: SharedArrayBuffer;
  private readonly ints: Int32Array;
  private readonly bytes: BigInt64Array;

  constructor(
    readonly workers: number,
    shared?: { buffer: SharedArrayBuffer; bytesBuffer: SharedArrayBuffer },
  ) {
    this.buffer = shared?.buffer ?? new SharedArrayBuffer(4 * (HEADER + Math.max(1, workers)));
    this.bytesBuffer = shared?.bytesBuffer ?? new SharedArrayBuffer(8 * 3); // bytes out, zero-copy sends, copied
    this.ints = new Int32Array(this.buffer);
    this.bytes = new BigInt64Array(this.bytesBuffer);
  }

  /** What a worker thread needs to attach to the same counters. */
  share(): { workers: number; buffer: SharedArrayBuffer; bytesBuffer: SharedArrayBuffer } {
    return { workers: this.workers, buffer: this.buffer, bytesBuffer: this.bytesBuffer };
  }

  static attach(s: { workers: number; buffer: SharedArrayBuffer; bytesBuffer: SharedArrayBuffer }): Stats {
    return new Stats(s.workers, s);
  }

  accepted(worker: number): void {
    Atomics.add(this.ints, HEADER + worker, 1);
    Atomics.add(this.ints, 0, 1);
  }

  closed(): void {
    Atomics.sub(this.ints, 0, 1);
  }

  requests(n = 1): void {
    Atomics.add(this.ints, 1, n);
  }

  shortBody(): void {
    Atomics.add(this.ints, 2, 1);
  }

  sent(n: number): void {
    if (n > 0) Atomics.add(this.bytes, 0, BigInt(n));
  }

  zerocopy(sends: number, copied: number): void {
    if (sends > 0) Atomics.add(this.bytes, 1, BigInt(sends));
    if (copied > 0) Atomics.add(this.bytes, 2, BigInt(copied));
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
      requests: Atomics.load(this.ints, 1),
      bytesOut: Number(Atomics.load(this.bytes, 0)),
      shortBodies: Atomics.load(this.ints, 2),
      zerocopy: { sends: Number(Atomics.load(this.bytes, 1)), copied: Number(Atomics.load(this.bytes, 2)) },
    };
  }
}
