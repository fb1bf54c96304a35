/**
 * Model-based test of every Poller backend: fast-check draws random sequences of add / modify /
 * remove / close / write / read over real socketpairs and pipes, and after each step the
 * backend's wait(…, 0) is compared with a reference model of readiness (select(2), poll(2),
 * epoll(7)). Level-triggered backends must report exactly the registered fds that are ready,
 * with exactly the ready bits of their mask. For epoll-et the model is "reported once per
 * new edge": every fd that just became ready for its mask (new data arrived, or add/modify
 * armed it while ready) must be reported; beyond those, only a writer whose peer just read
 * (the kernel's write-space wakeup) may be; nothing that is not ready ever is; and a second
 * wait with nothing in between reports nothing. More runs: RAWIO_MODEL_RUNS (default 150 sequences of 10–80 steps).
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Poller, constants as c, createPoller, pollerNames, sys } from '../helpers/rawio.js';
import { leakedSince, openFds } from '../helpers/fds.js';

const IN = c.EPOLLIN;
const OUT = c.EPOLLOUT;
const RUNS = Number(process.env.RAWIO_MODEL_RUNS ?? 150);
const SLOTS = 3; // channels alive at once, each a socketpair or a pipe

/** One end of a channel: its fd, where its writes land, and what it may be registered for. */
interface End {
  fd: number;
  canRead: boolean;
  canWrite: boolean;
  /** Bytes queued towards this end (readable while > 0). */
  queued: number;
  /** The registered mask, or undefined. */
  mask?: number;
}
interface Channel {
  kind: 'pipe' | 'socketpair';
  ends: [End, End];
}

type Cmd =
  | { op: 'open'; slot: number; pipe: boolean }
  | { op: 'close'; slot: number; removeFirst: boolean }
  | { op: 'add' | 'modify'; slot: number; end: number; mask: number }
  | { op: 'remove'; slot: number; end: number }
  | { op: 'write'; slot: number; end: number; len: number }
  | { op: 'read'; slot: number; end: number; len: number };

const slot = fc.integer({ min: 0, max: SLOTS - 1 });
const end = fc.integer({ min: 0, max: 1 });
const maskArb = fc.constantFrom(IN, OUT, IN | OUT);
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ op: fc.constant('open' as const), slot, pipe: fc.boolean() }),
  fc.record({ op: fc.constant('close' as const), slot, removeFirst: fc.boolean() }),
  fc.record({ op: fc.constant('add' as const), slot, end, mask: maskArb }),
  fc.record({ op: fc.constant('add' as const), slot, end, mask: maskArb }),
  fc.record({ op: fc.constant('modify' as const), slot, end, mask: maskArb }),
  fc.record({ op: fc.constant('remove' as const), slot, end }),
  fc.record({ op: fc.constant('write' as const), slot, end, len: fc.integer({ min: 1, max: 300 }) }),
  fc.record({ op: fc.constant('write' as const), slot, end, len: fc.integer({ min: 1, max: 300 }) }),
  fc.record({ op: fc.constant('read' as const), slot, end, len: fc.integer({ min: 1, max: 400 }) }),
);

/** The readiness bits of an end (small writes never fill a buffer; peers stay open). */
function ready(e: End): number {
  return (e.canRead && e.queued > 0 ? IN : 0) | (e.canWrite ? OUT : 0);
}

function waitMap(p: Poller): Map<number, number> {
  const out = new Int32Array(2 * 64);
  const n = p.wait(out, 0);
  expect(n).toBeGreaterThanOrEqual(0);
  const m = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    expect(m.has(out[2 * i]!)).toBe(false); // each fd once per wait
    m.set(out[2 * i]!, out[2 * i + 1]!);
  }
  return m;
}

class Harness {
  readonly chans: (Channel | undefined)[] = new Array<Channel | undefined>(SLOTS).fill(undefined);
  /** epoll-et: fds that just got an edge the backend owes us. */
  readonly edges = new Set<number>();
  /** epoll-et: fds the kernel may wake without owing it: a writer whose peer just read (write space). */
  readonly maybe = new Set<number>();
  readonly buf = Buffer.alloc(400, 0x61);
  constructor(
    readonly p: Poller,
    readonly et: boolean,
  ) {}

  registered(): End[] {
    return this.chans.flatMap((ch) => (ch === undefined ? [] : ch.ends.filter((e) => e.mask !== undefined)));
  }

  apply(cmd: Cmd): void {
    const ch = this.chans[cmd.slot];
    if (cmd.op === 'open') {
      if (ch !== undefined) return;
      const [a, b] = cmd.pipe ? sys.pipe() : sys.socketpair();
      const sock = !cmd.pipe;
      this.chans[cmd.slot] = {
        kind: cmd.pipe ? 'pipe' : 'socketpair',
        ends: [
          { fd: a, canRead: true, canWrite: sock, queued: 0 },
          { fd: b, canRead: sock, canWrite: true, queued: 0 },
        ],
      };
      return;
    }
    if (ch === undefined) return;
    if (cmd.op === 'close') return this.close(cmd.slot, ch, cmd.removeFirst);
    const e = ch.ends[cmd.end]!;
    const peer = ch.ends[1 - cmd.end]!;
    switch (cmd.op) {
      case 'add':
        if (e.mask !== undefined) {
          expect(() => this.p.add(e.fd, cmd.mask)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
          return;
        }
        this.p.add(e.fd, cmd.mask);
        return this.arm(e, cmd.mask);
      case 'modify':
        if (e.mask === undefined) {
          expect(() => this.p.modify(e.fd, cmd.mask)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
          return;
        }
        this.p.modify(e.fd, cmd.mask);
        return this.arm(e, cmd.mask);
      case 'remove':
        if (e.mask === undefined) {
          expect(() => this.p.remove(e.fd)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
          return;
        }
        this.p.remove(e.fd);
        e.mask = undefined;
        this.edges.delete(e.fd);
        return;
      case 'write': {
        if (!e.canWrite) return;
        expect(sys.write(e.fd, this.buf, 0, cmd.len)).toBe(cmd.len);
        peer.queued += cmd.len;
        if (peer.mask !== undefined && (peer.mask & IN) !== 0) this.edges.add(peer.fd); // new data: an edge
        return;
      }
      case 'read': {
        if (!e.canRead) return;
        const r = sys.read(e.fd, this.buf, 0, cmd.len);
        if (e.queued === 0) expect(r).toBe(-c.EAGAIN);
        else expect(r).toBe(Math.min(cmd.len, e.queued));
        if (r > 0) {
          e.queued -= r;
          if (peer.mask !== undefined && (peer.mask & OUT) !== 0) this.maybe.add(peer.fd);
        }
        return;
      }
    }
  }

  private arm(e: End, mask: number): void {
    e.mask = mask;
    // epoll_ctl ADD/MOD checks readiness at once: an ET fd ready for its new mask is owed one report.
    if ((ready(e) & mask) !== 0) this.edges.add(e.fd);
    else this.edges.delete(e.fd);
  }

  // epoll forgets an fd when its last reference closes; select and poll must be told first
  // (a closed fd in their sets is EBADF / POLLNVAL), so only epoll may skip the remove.
  private close(slot: number, ch: Channel, removeFirst: boolean): void {
    for (const e of ch.ends) {
      if (e.mask !== undefined && (removeFirst || !this.p.name.startsWith('epoll'))) this.p.remove(e.fd);
      this.edges.delete(e.fd);
      this.maybe.delete(e.fd);
      expect(sys.close(e.fd)).toBe(0);
    }
    this.chans[slot] = undefined;
  }

  check(): void {
    const got = waitMap(this.p);
    const regs = this.registered();
    const byFd = new Map(regs.map((e) => [e.fd, e]));
    for (const [fd, ev] of got) {
      const e = byFd.get(fd);
      expect(e, `fd ${fd} reported but not registered`).toBeDefined();
      const want = ready(e!) & e!.mask!;
      // Nothing is ever reported that is not ready (ET included): no phantom bits.
      expect(ev & (IN | OUT), `fd ${fd} bits`).toBe(this.et ? ev & want & (IN | OUT) : want);
      expect(want).not.toBe(0);
    }
    if (!this.et) {
      for (const e of regs) {
        if ((ready(e) & e.mask!) !== 0) expect(got.has(e.fd), `fd ${e.fd} ready but not reported`).toBe(true);
      }
      return;
    }
    for (const fd of got.keys()) {
      expect(this.edges.has(fd) || this.maybe.has(fd), `fd ${fd} reported without an edge`).toBe(true);
    }
    for (const fd of this.edges) {
      const e = byFd.get(fd)!;
      expect(got.has(fd), `fd ${fd} owed an edge`).toBe(true);
      expect(got.get(fd)! & IN & e.mask!, `fd ${fd} IN edge`).toBe(ready(e) & IN & e.mask!);
    }
    this.edges.clear();
    this.maybe.clear();
    // Reported once: with nothing in between, a second wait has nothing new.
    expect(waitMap(this.p).size).toBe(0);
  }

  dispose(): void {
    for (let i = 0; i < SLOTS; i++) {
      const ch = this.chans[i];
      if (ch !== undefined) this.close(i, ch, true);
    }
    this.p.close();
  }
}

describe.each(pollerNames)('Poller %s against a readiness model', (name) => {
  let before: Map<number, string>;
  beforeEach(() => (before = openFds()));
  afterEach(() => expect(leakedSince(before)).toEqual([]));

  it(`random add/modify/remove/close/write/read sequences (${RUNS} runs)`, () => {
    let steps = 0;
    fc.assert(
      fc.property(fc.array(cmdArb, { minLength: 10, maxLength: 80, size: 'max' }), (cmds) => {
        const h = new Harness(createPoller(name), name === 'epoll-et');
        try {
          h.check();
          for (const cmd of cmds) {
            h.apply(cmd);
            h.check();
            steps++;
          }
        } finally {
          h.dispose();
        }
      }),
      { numRuns: RUNS },
    );
    expect(steps).toBeGreaterThan(RUNS); // the sequences really ran
  });
});
