/**
 * `npm run bench` / `rawio bench`: runs the registered scenarios and prints their tables.
 * (A first runner: the full runner, report writer and progress bar come with the benchmark
 * suite.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { scenarios } from './registry.js';
import type { BenchContext, Profile, Table } from './scenario.js';

function printTable(t: Table): void {
  const widths = t.columns.map((c, i) => Math.max(c.length, ...t.rows.map((r) => String(r[i]).length)));
  const line = (cells: (string | number)[]) => cells.map((c, i) => String(c).padStart(widths[i]!)).join('  ');
  console.log(`\n${t.title}\n${line(t.columns)}`);
  for (const r of t.rows) console.log(line(r));
  if (t.note) console.log(t.note);
}

export async function main(argv: string[]): Promise<void> {
  const profile: Profile = argv.includes('--full') ? 'full' : 'quick';
  const onlyIdx = argv.indexOf('--only');
  const only = onlyIdx >= 0 ? new Set(argv[onlyIdx + 1]?.split(',')) : undefined;
  const chosen = scenarios.filter((s) => !only || only.has(s.name));
  if (chosen.length === 0) throw new Error(`no scenario matches ${[...(only ?? [])].join(',')}`);
  const tmp = mkdtempSync(join(process.cwd(), '.rawio-bench-'));
  try {
    for (const s of chosen) {
      const ctx: BenchContext = {
        profile,
        serverCpus: [0],
        clientCpus: [1],
        progress: () => {},
        log: (m) => console.log(`  ${m}`),
        tmpDir: tmp,
      };
      console.log(`== ${s.title}`);
      const result = await s.run(ctx);
      result.tables.forEach(printTable);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main(process.argv.slice(2));
