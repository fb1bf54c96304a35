/**
 * The progress display on stderr: what runs, how far the whole run is, and the time left,
 * estimated from each scenario's own estimate and corrected by how fast it really goes.
 * On a TTY it is one bar redrawn in place, with log lines printed above it; elsewhere
 * (CI, a pipe) it degrades to plain lines, at most one every few seconds.
 */

export interface ProgressSink {
  isTTY: boolean;
  columns?: number;
  write(s: string): boolean;
}

/** 42 → "42s", 169 → "2m49s"; rounded to the second first, so 119.7 reads 2m00s, not 1m60s. */
export function fmtTime(seconds: number): string {
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export class Progress {
  private done = 0; // estimated seconds of the scenarios already finished
  private current: {
    name: string;
    estimate: number;
    fraction: number;
    label: string;
    started: number;
    /** When the scenario first reported progress past 0, and how far: its pace is measured from there. */
    paceFrom?: { at: number; fraction: number };
  } = { name: '', estimate: 0, fraction: 0, label: '', started: 0 };
  private lastPlain = 0;
  private readonly total: number;

  /**
   * `later`: seconds of work after this run's scenarios (with --repeat N, the runs still to
   * come), added to the time left so that the bar speaks of the whole session.
   */
  constructor(
    private readonly estimates: { name: string; estimate: number }[],
    private readonly out: ProgressSink = process.stderr,
    private readonly now: () => number = () => performance.now() / 1000,
    private readonly later = 0,
  ) {
    this.total = estimates.reduce((a, e) => a + e.estimate, 0) || 1;
  }

  startScenario(name: string): void {
    const e = this.estimates.find((x) => x.name === name)?.estimate ?? 0;
    this.current = { name, estimate: e, fraction: 0, label: 'starting', started: this.now() };
    this.draw(true);
  }

  /**
   * The scenario's progress, 0..1. It never goes back: a scenario that restarts a count for
   * each of its parts would otherwise have its whole elapsed time extrapolated over a part's
   * first few percent, and read minutes left for a scenario of seconds.
   */
  update(fraction: number, label: string): void {
    this.current.fraction = Math.min(1, Math.max(this.current.fraction, fraction));
    this.current.label = label;
    if (this.current.fraction > 0 && !this.current.paceFrom)
      this.current.paceFrom = { at: this.now(), fraction: this.current.fraction };
    this.draw(false);
  }

  endScenario(): void {
    this.done += this.current.estimate;
    this.current.fraction = 1;
  }

  log(line: string): void {
    if (this.out.isTTY) this.out.write(`\r\x1b[2K${line}\n`);
    else this.out.write(`${line}\n`);
    this.draw(true);
  }

  finish(): void {
    if (this.out.isTTY) this.out.write('\r\x1b[2K');
  }

  /**
   * Seconds left: the rest of this scenario at its observed pace, the estimates after it, and
   * any later runs. The pace is measured from the scenario's first progress past 0, not from
   * its start: the set-up before it (files written, servers started, a C driver compiled)
   * is not work the fraction counts, and over a fraction of a few percent it made seconds
   * read as minutes (9 s of set-up, then 0.056 done at 10 s: 2m49s left). Until it has
   * moved 5% from there, the scenario's own estimate.
   */
  remaining(): number {
    const c = this.current;
    const elapsed = this.now() - c.started;
    const p = c.paceFrom;
    const rest =
      p && c.fraction - p.fraction > 0.05
        ? ((this.now() - p.at) / (c.fraction - p.fraction)) * (1 - c.fraction)
        : Math.max(0, c.estimate - elapsed);
    return rest + Math.max(0, this.total - this.done - c.estimate) + this.later;
  }

  fraction(): number {
    return Math.min(1, (this.done + this.current.estimate * this.current.fraction) / this.total);
  }

  line(width: number): string {
    const f = this.fraction();
    const text = ` ${(f * 100).toFixed(0).padStart(3)}%  ${fmtTime(this.remaining())} left  ${this.current.name}: ${this.current.label}`;
    const barWidth = Math.max(10, Math.min(30, width - text.length - 2));
    const full = Math.round(f * barWidth);
    return `[${'#'.repeat(full)}${'.'.repeat(barWidth - full)}]${text}`.slice(0, width - 1);
  }

  private draw(force: boolean): void {
    if (this.out.isTTY) {
      this.out.write(`\r\x1b[2K${this.line(this.out.columns || 80)}`);
      return;
    }
    const t = this.now();
    if (!force && t - this.lastPlain < 5) return;
    this.lastPlain = t;
    this.out.write(`${this.line(200)}\n`);
  }
}
