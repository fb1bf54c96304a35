/**
 * What a running server holds, read from /proc: its open fds and resident memory. Most
 * models run on threads of this process; `multi-process` runs in child processes (this
 * process's children, from /proc/self/task/<tid>/children), whose figures are summed.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

function childPids(): number[] {
  const pids: number[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const list = readFileSync(`/proc/self/task/${tid}/children`, 'utf8').trim();
      if (list) pids.push(...list.split(/\s+/).map(Number));
    } catch {
      // the thread exited meanwhile
    }
  }
  return pids;
}

const pidsOf = (model: string): (number | 'self')[] => (model === 'multi-process' ? childPids() : ['self']);

function fdCount(pid: number | 'self'): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

function rssBytes(pid: number | 'self'): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Open fds of the server's processes (this process's own included for the in-process models). */
export function serverFds(model: string): number {
  return pidsOf(model).reduce<number>((n, p) => n + fdCount(p), 0);
}

/** Resident bytes of the server's processes (this process for the in-process models). */
export function serverRss(model: string): number {
  return pidsOf(model).reduce<number>((n, p) => n + rssBytes(p), 0);
}

/** Samples `read()` every few ms until stopped; `peak` is the highest value seen. */
export function sampler(read: () => number, everyMs = 5): { peak: () => number; stop: () => number } {
  let peak = read();
  const timer = setInterval(() => (peak = Math.max(peak, read())), everyMs);
  return {
    peak: () => peak,
    stop: () => {
      clearInterval(timer);
      peak = Math.max(peak, read());
      return peak;
    },
  };
}

/** How many of the server's open fds point at what `match` accepts (readlink of /proc/<pid>/fd/<n>: `socket:[…]`, a path …). */
export function serverFdsTo(model: string, match: (target: string) => boolean): number {
  let n = 0;
  for (const pid of pidsOf(model)) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (match(readlinkSync(`/proc/${pid}/fd/${fd}`))) n++;
      } catch {
        // closed meanwhile
      }
    }
  }
  return n;
}
