/**
 * A many-producer, one-consumer message queue in a SharedArrayBuffer: how rawio's models
 * move work between threads without structured cloning. The main reactor deals accepted
 * fds to sub-reactors through one; reactors hand framed requests to pool workers and get
 * replies back through others. Producers serialise on a spin lock (held for a copy of a
 * few bytes); the consumer alone moves the head, so it takes no lock.
 *
 * Waking the consumer: a reactor blocked in epoll_wait cannot see Atomics.notify, so a
 * channel may carry an eventfd that the reactor watches in its own epoll set (memcached's
 * and Netty's way); a pool worker with no I/O of its own blocks in Atomics.wait instead.
 * Either way a producer signals only when the consumer has announced that it may sleep
 * (the `armed` flag), so a busy consumer costs producers no syscall.
 *
 * A message is a header of eight float64s (length, tag and six numeric fields) followed by
 * an optional payload, stored as bytes in a ring that wraps.
 */
import { native } from '../sys/native.js';
import { EVENTFD_ONE } from '../sys/eventfd-one.js';

const LOCK = 0;
const ARMED = 1;
// HEAD and TAIL count bytes modulo 2 * capacity, so that full and empty differ.
const HEAD = 2;
const TAIL = 3;
const CONTROL_INTS = 4;
const HEADER_BYTES = 64;

type AsyncWait = { async: false; value: string } | { async: true; value: Promise<string> };
// Atomics.waitAsync (Node 16+) is not in the ES2023 lib's types.
const atomicsWaitAsync = (
  Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, ms: number): AsyncWait }
).waitAsync;

/**
 * Resolves once `ints[index]` may have changed from `value` (a notify) or `ms` passed,
 * letting the thread's event loop run meanwhile. Node 20 neither keeps a thread's loop
 * alive for a pending waitAsync nor fires its timeout while the loop is idle, so a plain
 * timer races it.
 */
export async function waitAsync(ints: Int32Array, index: number, value: number, ms: number): Promise<void> {
  const w = atomicsWaitAsync(ints, index, value, ms);
  if (!w.async) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([w.value, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

export interface ChannelInit {
  sab: SharedArrayBuffer;
  capacity: number;
  /** An eventfd the consumer watches, or -1 for an Atomics.wait consumer. */
  signalFd: number;
}

/**
 * One received message: a tag, six numeric slots and a payload, which is a view into a buffer
 * reused by the next `pop`. What the slots mean is messages.ts's business: read a message
 * through its reader there, never by slot.
 */
export interface Message {
  tag: number;
  a: number;
  b: number;
  c: number;
  d: number;
  e: number;
  f: number;
  payload: Uint8Array;
}

export class Channel {
  readonly init: ChannelInit;
  private readonly ctl: Int32Array;
  private readonly ring: Uint8Array;
  private readonly cap: number;
  private readonly hdr = new Float64Array(8);
  private readonly hdrBytes = new Uint8Array(this.hdr.buffer);
  private scratch = new Uint8Array(4096);

  /** A new channel of `capacity` bytes (rounded up to a multiple of 8). */
  static create(capacity: number, signalFd = -1): ChannelInit {
    const cap = Math.ceil(capacity / 8) * 8;
    return { sab: new SharedArrayBuffer(CONTROL_INTS * 4 + cap), capacity: cap, signalFd };
  }

  constructor(init: ChannelInit) {
    this.init = init;
    this.cap = init.capacity;
    this.ctl = new Int32Array(init.sab, 0, CONTROL_INTS);
    this.ring = new Uint8Array(init.sab, CONTROL_INTS * 4, this.cap);
  }

  /**
   * Appends a message; false when the channel has no room for it (the caller keeps it and
   * retries later: nothing is dropped silently). Called through messages.ts's writers.
   */
  push(tag: number, a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, payload?: Uint8Array): boolean {
    const plen = payload ? payload.length : 0;
    const need = HEADER_BYTES + Math.ceil(plen / 8) * 8;
    if (need > this.cap) throw new RangeError(`message of ${plen} bytes exceeds the channel's capacity`);
    while (Atomics.compareExchange(this.ctl, LOCK, 0, 1) !== 0);
    const head = Atomics.load(this.ctl, HEAD);
    const tail = Atomics.load(this.ctl, TAIL);
    const used = tail >= head ? tail - head : tail + 2 * this.cap - head;
    if (used + need > this.cap) {
      Atomics.store(this.ctl, LOCK, 0);
      return false;
    }
    this.hdr[0] = plen;
    this.hdr[1] = tag;
    this.hdr[2] = a;
    this.hdr[3] = b;
    this.hdr[4] = c;
    this.hdr[5] = d;
    this.hdr[6] = e;
    this.hdr[7] = f;
    this.copyIn(tail, this.hdrBytes);
    if (payload) this.copyIn(tail + HEADER_BYTES, payload);
    // Release: the bytes above are visible before the consumer sees the new tail.
    Atomics.store(this.ctl, TAIL, (tail + need) % (2 * this.cap));
    Atomics.store(this.ctl, LOCK, 0);
    this.signal();
    return true;
  }

  /** Takes the oldest message into `out`; false when the channel is empty. */
  pop(out: Message): boolean {
    const head = Atomics.load(this.ctl, HEAD);
    if (head === Atomics.load(this.ctl, TAIL)) return false;
    this.copyOut(head, this.hdrBytes);
    const plen = this.hdr[0]!;
    if (plen > this.scratch.length) this.scratch = new Uint8Array(Math.max(plen, this.scratch.length * 2));
    const payload = this.scratch.subarray(0, plen);
    if (plen > 0) this.copyOut(head + HEADER_BYTES, payload);
    out.tag = this.hdr[1]!;
    out.a = this.hdr[2]!;
    out.b = this.hdr[3]!;
    out.c = this.hdr[4]!;
    out.d = this.hdr[5]!;
    out.e = this.hdr[6]!;
    out.f = this.hdr[7]!;
    out.payload = payload;
    Atomics.store(this.ctl, HEAD, (head + HEADER_BYTES + Math.ceil(plen / 8) * 8) % (2 * this.cap));
    return true;
  }

  /**
   * The consumer announces it is about to sleep. It must check `pop` once more after
   * arming (a message pushed in between would otherwise wait for the next one).
   */
  arm(): void {
    Atomics.store(this.ctl, ARMED, 1);
  }

  /** The consumer is awake: clears the flag and, for an eventfd channel, resets the eventfd. */
  disarm(): void {
    Atomics.store(this.ctl, ARMED, 0);
    if (this.init.signalFd >= 0) native.read(this.init.signalFd, this.hdrBytes, 0, 8);
  }

  /**
   * Blocks an Atomics.wait consumer until a message may be there (or `timeoutMs` passes).
   *
   * It sleeps on the armed flag, not on the tail: only while the flag is still set. A
   * producer signals by clearing the flag and then notifying, and that producer may be one
   * whose message this consumer has already taken (it pushed, the consumer popped and armed
   * again, then the producer's signal cleared the new flag). Sleeping on the tail, the
   * consumer would then sleep with the flag cleared, and the next producer, seeing it
   * cleared, would not notify: a message left waiting for good. Sleeping on the flag, a
   * cleared flag ends the wait at once and the consumer looks again.
   */
  waitForMessage(timeoutMs = Infinity): void {
    this.arm();
    if (Atomics.load(this.ctl, TAIL) === Atomics.load(this.ctl, HEAD)) Atomics.wait(this.ctl, ARMED, 1, timeoutMs);
    Atomics.store(this.ctl, ARMED, 0);
  }

  /**
   * waitForMessage without blocking the thread: resolves when a message may be there or
   * `timeoutMs` passed, letting promises and timers run meanwhile (Atomics.waitAsync).
   */
  async waitForMessageAsync(timeoutMs: number): Promise<void> {
    this.arm();
    // On the armed flag, as waitForMessage and for the same reason.
    if (Atomics.load(this.ctl, TAIL) === Atomics.load(this.ctl, HEAD)) await waitAsync(this.ctl, ARMED, 1, timeoutMs);
    Atomics.store(this.ctl, ARMED, 0);
  }

  private signal(): void {
    if (Atomics.compareExchange(this.ctl, ARMED, 1, 0) !== 1) return;
    if (this.init.signalFd >= 0) native.write(this.init.signalFd, EVENTFD_ONE, 0, 8);
    else Atomics.notify(this.ctl, ARMED);
  }

  private copyIn(pos: number, src: Uint8Array): void {
    const at = pos % this.cap;
    const first = Math.min(src.length, this.cap - at);
    this.ring.set(src.subarray(0, first), at);
    if (first < src.length) this.ring.set(src.subarray(first), 0);
  }

  private copyOut(pos: number, dst: Uint8Array): void {
    const at = pos % this.cap;
    const first = Math.min(dst.length, this.cap - at);
    dst.set(this.ring.subarray(at, at + first));
    if (first < dst.length) dst.set(this.ring.subarray(0, dst.length - first), first);
  }
}
