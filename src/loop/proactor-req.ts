/**
 * The Proactor's request records (liburing's `io_uring-cp` keeps one struct per request and
 * finds it again by user data): a table of records reused through a free list, so that the
 * hot path allocates nothing and every record has one hidden class.
 *
 * The kernel's user data is the slot plus the low bits of the record's generation (31 bits in
 * all: the Ring's batch range), so that a completion or a cancel aimed at an earlier use of a
 * slot never reaches the current one; the public id is slot + generation * SLOTS, which does
 * not wrap before 2^53.
 */

/** Receives an operation's result: `>= 0` (bytes, an fd, 0) or `-errno` (-ECANCELED after `cancel`). */
export type CompletionCallback = (res: number) => void;
/**
 * Receives what a multishot recv brings: `res > 0` bytes in `data`, which is valid only
 * during the call (its buffer goes back to the kernel after it); then once `0` (end of
 * stream) or `-errno`, with an empty `data`, when the recv has ended.
 */
export type RecvCallback = (res: number, data: Uint8Array) => void;

// Request kinds as small ints: a switch on them compiles to a jump table. SEND … WRITE are
// the kinds resubmitted after a short transfer.
export const ACCEPT = 0;
export const RECV = 1;
export const SEND = 2;
export const READ = 3;
export const WRITE = 4;
export const TIMEOUT = 5;
export const RECV_MULTI = 6;
export const SEND_ZC = 7;
// Direct descriptors (files in the ring's registered table, named by slot).
export const ACCEPT_DIRECT = 8;
export const SEND_FD = 9;
export const FD_INSTALL = 10;
export const CLOSE_SLOT = 11;
/** No SQE: completions another ring posts here with MSG_RING. */
export const INBOX = 12;
/** A multishot poll of this thread's libuv loop fd while run() owns the thread. */
export const NODE_LOOP = 13;

const SLOT_BITS = 20;
export const SLOTS = 1 << SLOT_BITS;
const SLOT_MASK = SLOTS - 1;
const GEN_MASK = (1 << (31 - SLOT_BITS)) - 1;

export const EMPTY: Uint8Array = new Uint8Array(0);
const noop: CompletionCallback = () => {};
const noopRecv: RecvCallback = () => {};

/**
 * One operation, from start to final completion. Every field is set in the constructor so
 * that all records share one hidden class: the loads in prep() and dispatch() stay
 * monomorphic. `buf` holds the buffer the kernel reads or writes until the final completion.
 */
export class Req {
  kind = RECV;
  cb: CompletionCallback = noop;
  onData: RecvCallback = noopRecv; // RECV_MULTI
  fd = -1;
  buf: Uint8Array = EMPTY;
  off = 0; // start of the request in buf
  len = 0; // bytes asked for
  pos = -1; // file position, -1 for streams
  done = 0; // bytes transferred so far (short-transfer resubmission)
  multishot = false; // ACCEPT: IORING_ACCEPT_MULTISHOT; RECV_MULTI: provided buffers, armed once
  cancelled = false;
  queued = false; // in the backlog, not in the SQ
  notifs = 0; // SEND_ZC: notifications still to come (the kernel reads buf until the last)
  final = 0; // SEND_ZC: the callback's result once sending is over
  sendOver = false; // SEND_ZC: no more requests will be issued
  gen = 0;
  id = 0; // public id; 0 while free
  ud = -1; // the kernel's user data; -1 while free

  constructor(readonly slot: number) {}
}

export class ReqTable {
  private readonly slots: Req[] = [];
  private readonly free: number[] = [];

  /** A free record (or a new one), reset, with a fresh id and user data. */
  alloc(kind: number, fd: number, buf: Uint8Array): Req {
    const slot = this.free.pop();
    let r: Req;
    if (slot !== undefined) r = this.slots[slot]!;
    else {
      if (this.slots.length === SLOTS) throw new RangeError(`more than ${SLOTS} proactor operations in flight`);
      r = new Req(this.slots.length);
      this.slots.push(r);
    }
    r.gen++;
    r.id = r.gen * SLOTS + r.slot;
    r.ud = r.slot | ((r.gen & GEN_MASK) << SLOT_BITS);
    r.kind = kind;
    r.fd = fd;
    r.buf = buf;
    r.off = 0;
    r.len = 0;
    r.pos = -1;
    r.done = 0;
    r.multishot = false;
    r.cancelled = false;
    r.notifs = 0;
    r.final = 0;
    r.sendOver = false;
    return r;
  }

  /** Returns the record to the free list, dropping its buffer and callbacks. */
  release(r: Req): void {
    r.cb = noop;
    r.onData = noopRecv;
    r.buf = EMPTY;
    r.id = 0;
    r.ud = -1;
    r.queued = false;
    this.free.push(r.slot);
  }

  /** The live record a completion's user data names, if it is still the current use of its slot. */
  byUserData(ud: number): Req | undefined {
    const r = this.slots[ud & SLOT_MASK];
    return r !== undefined && r.ud === ud ? r : undefined;
  }

  /** The live record with this public id. */
  byId(id: number): Req | undefined {
    const r = typeof id === 'number' && id > 0 ? this.slots[id % SLOTS] : undefined;
    return r !== undefined && r.id === id ? r : undefined;
  }

  /** Every live record. */
  live(): Req[] {
    return this.slots.filter((r) => r.id !== 0);
  }
}
