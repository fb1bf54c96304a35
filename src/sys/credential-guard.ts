/**
 * The io_uring credential pitfall (CVE-2024-22017): a ring's requests run with the
 * credentials of the task that set it up, so a process that drops privileges (setuid(2),
 * setgid(2)) after creating a ring would still act as the old user through it. Every `Ring`
 * records the ids it was made under and refuses to submit once they differ.
 *
 * Reading four ids and the groups costs several syscalls, too much per operation, so the
 * process's set*id functions are wrapped to bump a generation counter, and a ring re-reads the
 * ids only when it moved: the per-operation cost is one integer comparison. The wrappers are
 * installed when the first ring is created, never on import: a program that makes no ring
 * keeps Node's own functions. (Changes made by native code that bypasses process.set*id are
 * not seen.)
 */

const SETTERS = ['setuid', 'seteuid', 'setgid', 'setegid', 'setgroups', 'initgroups'] as const;

let generation = 0;
let installed = false;

/** Wraps process.set*id once, so that every credential change moves `credentialGeneration()`. */
export function installCredentialGuard(): void {
  if (installed) return;
  installed = true;
  const proc = process as unknown as Record<string, unknown>;
  for (const name of SETTERS) {
    const orig = proc[name];
    if (typeof orig !== 'function') continue;
    proc[name] = function (this: unknown, ...a: unknown[]) {
      generation++; // before the call too: a change that throws half-way is still re-checked
      try {
        return orig.apply(this, a) as unknown;
      } finally {
        generation++;
      }
    } as never;
  }
}

/** Moves on every call to a process.set*id function made since the guard was installed. */
export function credentialGeneration(): number {
  return generation;
}

/** The process's ids as one comparable string: uid:euid:gid:egid:groups. */
export function credentials(): string {
  return [process.getuid?.(), process.geteuid?.(), process.getgid?.(), process.getegid?.(), process.getgroups?.()]
    .map(String)
    .join(':');
}
