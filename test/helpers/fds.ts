/**
 * fd accounting for tests: the open descriptors of this process from /proc/self/fd, so a
 * test can check that everything it opened was closed.
 */
import { readdirSync, readlinkSync } from 'node:fs';

export function openFds(): Map<number, string> {
  const out = new Map<number, string>();
  for (const name of readdirSync('/proc/self/fd')) {
    try {
      out.set(Number(name), readlinkSync(`/proc/self/fd/${name}`));
    } catch {
      // the fd readdir itself used, closed by now
    }
  }
  return out;
}

/** The fds open now that were not open in `before`, with what they point at. */
export function leakedSince(before: Map<number, string>): string[] {
  const leaked: string[] = [];
  for (const [fd, target] of openFds()) {
    if (before.get(fd) !== target) leaked.push(`${fd} -> ${target}`);
  }
  return leaked;
}
