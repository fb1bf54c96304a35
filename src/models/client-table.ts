/**
 * The per-client connection limit (ServeOptions.maxConnectionsPerClient) of the models that
 * run in one process: a table in a SharedArrayBuffer that every thread of the server
 * attaches to, keyed by the client's IP address (16 bytes: an IPv4 client as its
 * IPv4-mapped IPv6 address, as the addon's peerAddress writes it), each entry counting the
 * connections that address has open on the server.
 *
 * Layout (Int32 words): a header [lock, clients, slots, maxClients, limit, seed], then one
 * slot of 6 words per entry [state, count, address × 4], open addressing with linear
 * probing. Every change is made under the header's lock (a compare-and-swap spin lock:
 * the critical sections are a short probe, and no user code runs inside them), so two
 * threads can never both take a client's last connection, and an address has at most one
 * entry. Only a thread that close() terminate()s after its grace (one stuck in user code)
 * could die holding it; by then every thread of the server is stopping, and one left
 * spinning on it is terminated the same way, so close() still resolves. An entry never moves while it counts connections: a connection holds its entry's
 * index (its ticket) and gives it back by that, however and on whichever thread it ends.
 * An entry whose count falls to 0 is a tombstone, reused by the next new address that
 * probes past it, and turned back into an empty slot when an empty slot follows it. Those
 * that stay (a live entry follows them) are swept once they are a quarter of the slots: a
 * tombstone on no live entry's probe path is emptied. So addresses coming and going cannot
 * fill the table with tombstones, which would make every new address's probe a scan of it.
 *
 * Bounded: at most `maxClients` addresses hold connections at once (MAX_CLIENTS, or the
 * server's maxConnections when that is smaller, since no more addresses can then hold one),
 * in twice as many slots rounded up to a power of two. A connect from a new address while
 * the table holds `maxClients` is refused as a connect past the limit is: serving clients
 * that cannot be counted would be serving them without a limit.
 */

/** The most client addresses the table tracks at once (3 MiB of table at this size). */
export const MAX_CLIENTS = 65536;

const LOCK = 0;
const CLIENTS = 1;
const SLOTS = 2;
const MAX = 3;
const LIMIT = 4;
const SEED = 5;
const DEADS = 6; // tombstones now
const SWEEP_AT = 7; // the tombstone count at which release() sweeps
const HEADER = 8;
const SLOT = 6;
const EMPTY = 0;
const LIVE = 1;
const DEAD = 2;

/** A slot of the client's limit: a ticket (>= 1) to give back, or 0 when refused. */
export interface ClientGate {
  /** Takes a connection of `client`'s limit (16 bytes): its ticket, or 0 when the client is at its limit or cannot be counted. */
  reserve(client: Uint8Array): number;
  /** A connection that reserve() admitted has closed: its client's slot is free again. */
  release(ticket: number): void;
}

export class ClientTable implements ClientGate {
  readonly buffer: SharedArrayBuffer;
  readonly #ints: Int32Array;
  readonly #mask: number;
  readonly #words = new Int32Array(4);

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#ints = new Int32Array(buffer);
    this.#mask = Atomics.load(this.#ints, SLOTS) - 1;
  }

  /**
   * A new table: `limit` connections per client address, for at most `maxClients`
   * addresses at once.
   */
  static create(limit: number, maxClients = MAX_CLIENTS): ClientTable {
    let slots = 16;
    while (slots < 2 * maxClients) slots *= 2;
    const buffer = new SharedArrayBuffer(4 * (HEADER + SLOT * slots));
    const ints = new Int32Array(buffer);
    ints[SLOTS] = slots;
    ints[MAX] = maxClients;
    ints[LIMIT] = limit;
    ints[SEED] = (Math.random() * 0x100000000) | 0; // addresses chosen to collide cannot be planned
    ints[SWEEP_AT] = slots / 4;
    return new ClientTable(buffer);
  }

  /** The same table, in another thread (its `buffer` came in the thread's data). */
  static attach(buffer: SharedArrayBuffer): ClientTable {
    return new ClientTable(buffer);
  }

  /** Addresses holding connections now. */
  get clients(): number {
    return Atomics.load(this.#ints, CLIENTS);
  }

  /** Slots taken now: entries holding connections and the tombstones on their probe paths (a bound, for tests). */
  get occupied(): number {
    return Atomics.load(this.#ints, CLIENTS) + Atomics.load(this.#ints, DEADS);
  }

  /** The connections `client` (16 bytes) holds now. */
  count(client: Uint8Array): number {
    this.#key(client);
    this.#lock();
    try {
      const at = this.#find();
      return at.found ? this.#ints[this.#base(at.slot) + 1]! : 0;
    } finally {
      this.#unlock();
    }
  }

  reserve(client: Uint8Array): number {
    this.#key(client);
    const ints = this.#ints;
    this.#lock();
    try {
      const at = this.#find();
      if (at.found) {
        const c = this.#base(at.slot) + 1;
        if (ints[c]! >= ints[LIMIT]!) return 0;
        ints[c] = ints[c]! + 1;
        return at.slot + 1;
      }
      if (at.slot < 0 || ints[CLIENTS]! >= ints[MAX]!) return 0; // full: refused, not uncounted
      const b = this.#base(at.slot);
      if (ints[b] === DEAD) ints[DEADS] = ints[DEADS]! - 1;
      ints[b] = LIVE;
      ints[b + 1] = 1;
      ints.set(this.#words, b + 2);
      ints[CLIENTS] = ints[CLIENTS]! + 1;
      return at.slot + 1;
    } finally {
      this.#unlock();
    }
  }

  release(ticket: number): void {
    const ints = this.#ints;
    const slot = ticket - 1;
    this.#lock();
    try {
      const b = this.#base(slot);
      if (ints[b] !== LIVE || ints[b + 1]! <= 0) return; // not a held ticket: nothing to give back
      ints[b + 1] = ints[b + 1]! - 1;
      if (ints[b + 1]! > 0) return;
      ints[b] = DEAD;
      ints[CLIENTS] = ints[CLIENTS]! - 1;
      ints[DEADS] = ints[DEADS]! + 1;
      // A run of tombstones that ends at an empty slot is on no probe path: empty it.
      if (ints[this.#base((slot + 1) & this.#mask)] === EMPTY) {
        for (let s = slot; ints[this.#base(s)] === DEAD; s = (s - 1) & this.#mask) {
          ints[this.#base(s)] = EMPTY;
          ints[DEADS] = ints[DEADS]! - 1;
        }
      }
      if (ints[DEADS]! >= ints[SWEEP_AT]!) this.#sweep();
    } finally {
      this.#unlock();
    }
  }

  /**
   * Empties every tombstone on no live entry's probe path (from its home slot to where it
   * sits), under the lock. The next sweep waits for another quarter of the slots to die, so
   * its cost (a pass over the table and each live entry's path) is spread over that many
   * releases even when many tombstones must stay.
   */
  #sweep(): void {
    const ints = this.#ints;
    const mask = this.#mask;
    const onPath = new Uint8Array(mask + 1);
    for (let p = 0; p <= mask; p++) {
      const b = this.#base(p);
      if (ints[b] !== LIVE) continue;
      for (let s = this.#home(ints, b + 2); s !== p; s = (s + 1) & mask) onPath[s] = 1;
    }
    let dead = 0;
    for (let s = 0; s <= mask; s++) {
      const b = this.#base(s);
      if (ints[b] !== DEAD) continue;
      if (onPath[s] === 1) dead++;
      else ints[b] = EMPTY;
    }
    ints[DEADS] = dead;
    ints[SWEEP_AT] = dead + (mask + 1) / 4;
  }

  /** The home slot of the key in words `at` … `at + 3` of `w`. */
  #home(w: Int32Array, at: number): number {
    let h = this.#ints[SEED]!;
    for (let i = at; i < at + 4; i++) {
      h = Math.imul(h ^ w[i]!, 0x9e3779b1);
      h ^= h >>> 15;
    }
    h = Math.imul(h ^ (h >>> 13), 0x85ebca6b);
    h ^= h >>> 16;
    return h & this.#mask;
  }

  #base(slot: number): number {
    return HEADER + SLOT * slot;
  }

  #key(client: Uint8Array): void {
    if (client.length < 16) throw new RangeError('a client address is 16 bytes');
    const w = this.#words;
    for (let i = 0; i < 4; i++) {
      const o = i * 4;
      w[i] = client[o]! | (client[o + 1]! << 8) | (client[o + 2]! << 16) | (client[o + 3]! << 24);
    }
  }

  /** The key's slot (found), or where it goes (the first tombstone or empty slot on its path; -1: none). Under the lock. */
  #find(): { found: boolean; slot: number } {
    const ints = this.#ints;
    const w = this.#words;
    let free = -1;
    for (let n = 0, s = this.#home(w, 0); n <= this.#mask; n++, s = (s + 1) & this.#mask) {
      const b = this.#base(s);
      const state = ints[b];
      if (state === EMPTY) return { found: false, slot: free >= 0 ? free : s };
      if (state === DEAD) {
        if (free < 0) free = s;
      } else if (ints[b + 2] === w[0] && ints[b + 3] === w[1] && ints[b + 4] === w[2] && ints[b + 5] === w[3]) {
        return { found: true, slot: s };
      }
    }
    return { found: false, slot: free };
  }

  #lock(): void {
    while (Atomics.compareExchange(this.#ints, LOCK, 0, 1) !== 0) {
      // spin: the holder is in a short probe
    }
  }

  #unlock(): void {
    // The release store orders the table's plain writes before the next holder's reads.
    Atomics.store(this.#ints, LOCK, 0);
  }
}
