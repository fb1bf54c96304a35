// The objects rawio's hot paths read a property of on every call (the addon's exports, the
// constants table, the native Ring class, a Ring and its prototypes) have fast properties:
// V8 looks a dictionary-mode object's properties up by hash in a generic load, which the batch
// read loop once paid on every `native.x` (the addon's exports are set one at a time). Checked
// in a child with --allow-natives-syntax (%HasFastProperties).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Ring } from './helpers/rawio.js';

const child = fileURLToPath(new URL('./fixtures/fast-properties-child.mjs', import.meta.url));

describe('fast properties on the hot paths', () => {
  it('the addon, the constants, the native Ring class and every Ring object have fast properties', () => {
    const out = JSON.parse(execFileSync(process.execPath, ['--allow-natives-syntax', child], { encoding: 'utf8' }));
    const expected: Record<string, boolean> = { native: true, constants: true, nativeRing: true };
    if (Ring.supported()) Object.assign(expected, { ring: true, Ring: true, RingBatch: true, RingCore: true });
    expect(out).toEqual(expected);
  });
});
