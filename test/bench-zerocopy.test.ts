// The zerocopy bench scenario in its quick form: every message size and variant measured,
// registered in the scenario list, and the kernel's verdict reported as the kernel gave it
// (over loopback it copies every zero-copy send, and the table says so, claiming no win).
import { release } from 'node:os';
import { afterAll, expect, it } from 'vitest';
import { scenarios } from '../dist/bench/registry.js';
import { zerocopy } from '../dist/bench/scenarios/zerocopy.js';
import { leakedSince, openFds } from './helpers/fds.js';
import { Ring } from './helpers/rawio.js';

const fdsBefore = openFds();
const [major = 0, minor = 0] = release().split('.').map(Number);
const usageReported = major > 6 || (major === 6 && minor >= 2); // IORING_SEND_ZC_REPORT_USAGE
afterAll(async () => {
  // the sink's IPC channel closes once the child has gone
  for (let i = 0; i < 100 && leakedSince(fdsBefore).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  expect(leakedSince(fdsBefore)).toEqual([]);
});

it('zerocopy: quick run measures send, MSG_ZEROCOPY and SEND_ZC and reports the kernel copying on loopback', async () => {
  expect(scenarios.map((s) => s.name)).toContain('zerocopy');
  const logs: string[] = [];
  const ctx = {
    profile: 'quick' as const,
    serverCpus: [0],
    clientCpus: [1],
    progress: () => {},
    log: (m: string) => logs.push(m),
    tmpDir: '/tmp',
  };
  const r = await zerocopy.run(ctx);
  const sendZc = Ring.supported() && Ring.probe().opcodes.includes('SEND_ZC');
  const variants = sendZc ? ['send', 'MSG_ZEROCOPY', 'SEND_ZC'] : ['send', 'MSG_ZEROCOPY'];
  const t = r.tables[0]!;
  expect(t.rows.map((row) => row[0])).toEqual(
    ['4 KiB', '64 KiB', '1 MiB', '4 MiB'].flatMap((s) => variants.map(() => s)),
  );
  for (const row of t.rows) {
    expect(row[2]).toBeGreaterThan(0); // MB/s
    if (row[1] === 'MSG_ZEROCOPY' || (row[1] === 'SEND_ZC' && usageReported))
      expect(row[5]).toMatch(/^100% of \d+ sends copied$/);
  }
  expect(t.note).toContain('copied every zero-copy send');
  for (const v of variants.filter((x) => x === 'MSG_ZEROCOPY' || (x === 'SEND_ZC' && usageReported)))
    expect(r.metrics![`zerocopy.${v}.1MiB.copiedFraction`]).toBe(1);
  if (!sendZc) expect(logs.join()).toContain('SEND_ZC not measured');
});
