/**
 * The Reactor's timers: a binary min-heap ordered by due time (then by creation, so timers
 * due together fire in the order they were set), as libuv keeps its timers. Cancelling
 * marks the entry dead and lets it fall out of the heap when it reaches the top, which keeps
 * `clearTimer` O(1) and the heap free of searches.
 */

export interface TimerEntry {
  id: number;
  due: number;
  seq: number;
  /** 0 for a one-shot timer, the period (ms) for a repeating one. */
  interval: number;
  fn: () => void;
  dead: boolean;
}

export class TimerHeap {
  readonly #heap: TimerEntry[] = [];
  readonly #byId = new Map<number, TimerEntry>();
  #nextId = 1;
  #seq = 0;

  get size(): number {
    return this.#byId.size;
  }

  add(now: number, ms: number, fn: () => void, repeat: boolean): number {
    const id = this.#nextId++;
    const e: TimerEntry = {
      id,
      due: now + ms,
      seq: this.#seq++,
      interval: repeat ? Math.max(ms, 1) : 0,
      fn,
      dead: false,
    };
    this.#byId.set(id, e);
    this.#push(e);
    return id;
  }

  /** Cancels every timer. */
  clear(): void {
    for (const e of this.#byId.values()) e.dead = true;
    this.#byId.clear();
    this.#heap.length = 0;
  }

  cancel(id: number): void {
    const e = this.#byId.get(id);
    if (e === undefined) return;
    e.dead = true;
    this.#byId.delete(id);
  }

  /** Ms until the next live timer is due (0 when one is due already), or -1 when there is none. */
  timeout(now: number): number {
    const top = this.#top();
    if (top === undefined) return -1;
    return Math.max(0, Math.ceil(top.due - now));
  }

  /** The due time of the next live timer, or undefined. */
  nextDue(): number | undefined {
    return this.#top()?.due;
  }

  /**
   * Runs every timer due at `now`. A repeating timer is rescheduled from its due time (no
   * drift) but never into the past, so a stalled loop does not fire it in a burst. Timers
   * set by a callback with a 0 delay wait for the next turn, so a loop cannot starve I/O.
   * Once `stopped()` says so after a callback, the pass ends: the timers still due stay set.
   */
  runDue(now: number, stopped?: () => boolean): number {
    let ran = 0;
    const limit = this.#seq;
    for (let top = this.#top(); top !== undefined && top.due <= now && top.seq < limit; top = this.#top()) {
      this.#pop();
      if (top.interval > 0) {
        top.due = Math.max(top.due + top.interval, now);
        top.seq = this.#seq++;
        this.#push(top);
      } else {
        this.#byId.delete(top.id);
        top.dead = true;
      }
      ran++;
      top.fn();
      if (stopped?.() === true) break;
    }
    return ran;
  }

  #top(): TimerEntry | undefined {
    while (this.#heap.length > 0 && this.#heap[0]!.dead) this.#pop();
    return this.#heap[0];
  }

  #push(e: TimerEntry): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l]!, h[m]!)) m = l;
      if (r < h.length && before(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

function before(a: TimerEntry, b: TimerEntry): boolean {
  return a.due < b.due || (a.due === b.due && a.seq < b.seq);
}
