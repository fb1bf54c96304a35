/**
 * scripts/check-prebuilds.mjs, which npm runs before `npm publish` (prepublishOnly): a
 * package without both prebuilt addons, or with one built for the wrong CPU, is not
 * published. Run against a scratch directory laid out as the repository's prebuilds/.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { titled } from './helpers/skips.js';

const script = new URL('../scripts/check-prebuilds.mjs', import.meta.url).pathname;
const addon = new URL('../build/Release/rawio.node', import.meta.url).pathname; // this machine's (x86-64)
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'rawio-prebuilds-'));
  dirs.push(d);
  for (const cpu of ['x64', 'arm64']) mkdirSync(join(d, 'prebuilds', `linux-${cpu}`), { recursive: true });
  return d;
}

function check(root: string): { status: number | null; stderr: string } {
  return spawnSync(process.execPath, [script, root], { encoding: 'utf8' });
}

/** This machine's addon with its ELF e_machine set to `machine` (a header field, nothing else changed). */
function retarget(to: string, machine: number): void {
  const bytes = readFileSync(addon);
  bytes.writeUInt16LE(machine, 18);
  writeFileSync(to, bytes);
}

describe('check-prebuilds (npm publish refuses a package without its prebuilt addons)', () => {
  it('is what package.json runs before publishing', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts.prepublishOnly).toBe('node scripts/check-prebuilds.mjs');
  });

  // The addon built here stands in for the x64 prebuild; an arm64 one is made by retargeting it.
  const notX64 = process.arch === 'x64' ? undefined : `the addon built here is ${process.arch}, not the x64 prebuild`;
  it.skipIf(notX64)(titled('passes with both, each an ELF shared object for its CPU', notX64), () => {
    const d = scratch();
    copyFileSync(addon, join(d, 'prebuilds/linux-x64/rawio.node'));
    retarget(join(d, 'prebuilds/linux-arm64/rawio.node'), 183);
    expect(check(d)).toMatchObject({ status: 0, stderr: '' });
  });

  it('refuses a missing one, one for the wrong CPU, and a file that is no shared object, naming each', () => {
    const d = scratch();
    let r = check(d);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/linux-x64\/rawio\.node: ENOENT/);
    expect(r.stderr).toMatch(/linux-arm64\/rawio\.node: ENOENT/);

    retarget(join(d, 'prebuilds/linux-x64/rawio.node'), 62);
    retarget(join(d, 'prebuilds/linux-arm64/rawio.node'), 62); // an x86-64 build where arm64's goes
    r = check(d);
    expect(r.status).toBe(1);
    expect(r.stderr).not.toMatch(/linux-x64/);
    expect(r.stderr).toMatch(/linux-arm64\/rawio\.node: built for ELF machine 62, not 183/);

    writeFileSync(join(d, 'prebuilds/linux-arm64/rawio.node'), 'not a binary');
    expect(check(d).stderr).toMatch(/linux-arm64\/rawio\.node: not an ELF shared object/);
  });
});
