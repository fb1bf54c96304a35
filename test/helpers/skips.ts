/**
 * Why a test cannot run on this machine, for the conditions many tests share: each entry of
 * `why` is the reason the reporter should show, or undefined where the test can run. Each is
 * probed on first use (a file that never asks about nginx never spawns it).
 *
 * A test or suite that may skip says why in what the reporter shows, in one of two ways:
 *   it.skipIf(why.ring)(titled('reads a file', why.ring), …)   // "(skipped: …)" only when it skips
 *   it('reads a file', (ctx) => { if (why.ring) ctx.skip(why.ring); … })
 * test/skips.test.ts holds every test file to this.
 */
import { spawnSync } from 'node:child_process';
import { findCompiler } from '../../dist/bench/lib/c-driver.js';
import { Ring, sys } from './rawio.js';

/** Whether `cmd args` runs and exits 0. */
const runs = (cmd: string, args: string[]): boolean => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;

/** Whether a socket can listen on the IPv6 loopback (a container may have no IPv6). */
function ipv6Loopback(): boolean {
  try {
    sys.close(sys.listenTcp('::1', 0));
    return true;
  } catch {
    return false;
  }
}

const noRing = () => (Ring.supported() ? undefined : 'io_uring is not available here');

const probes = {
  ring: noRing,
  sendZc: () =>
    noRing() ??
    (Ring.probe().opcodes.includes('SEND_ZC') ? undefined : 'this kernel has no IORING_OP_SEND_ZC (Linux 6.0)'),
  cc: () => (findCompiler() ? undefined : 'no C compiler (cc, gcc, clang) on PATH'),
  nm: () => (runs('nm', ['--version']) ? undefined : 'nm (binutils) is not installed'),
  ipv6: () => (ipv6Loopback() ? undefined : 'no IPv6 loopback here'),
  nginx: () => (runs('/usr/sbin/nginx', ['-v']) ? undefined : 'no /usr/sbin/nginx (CI installs nginx-light)'),
  redis: () => (runs('/usr/bin/redis-server', ['--version']) ? undefined : 'no /usr/bin/redis-server (CI installs it)'),
  strace: () =>
    runs('strace', ['-o', '/dev/null', 'true'])
      ? undefined
      : 'strace cannot run here (not installed, or ptrace refused)',
} satisfies Record<string, () => string | undefined>;

/** For each common condition, why a test that needs it cannot run here; undefined where it can. */
export const why = {} as { readonly [K in keyof typeof probes]: string | undefined };
for (const [name, probe] of Object.entries(probes)) {
  let known = false;
  let reason: string | undefined;
  Object.defineProperty(why, name, {
    enumerable: true,
    get: () => {
      if (!known) [reason, known] = [probe(), true];
      return reason;
    },
  });
}

/** `title`, with "(skipped: reason)" after it when there is a reason to skip. */
export function titled(title: string, reason: string | false | undefined): string {
  return reason ? `${title} (skipped: ${reason})` : title;
}
