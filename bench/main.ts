/**
 * `npm run bench` / `rawio bench`: runs the registered scenarios (the quick profile unless
 * --full), with a progress bar on stderr, then writes report.md, report.html, report.json
 * and the SVG charts to the output folder (./bench-out by default) and prints the tables and
 * the claims' verdicts — or, with --json, the report itself on stdout. With --repeat N the
 * whole profile runs N times; the report is the last run's, with a table of whether each
 * claim's and target's verdict held in all N.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseFlags, UsageError, wholeNumber } from '../src/cli-args.js';
import { packageRoot } from '../src/sys/native.js';
import { machine } from './machine.js';
import { Progress } from './progress.js';
import { scenarios } from './registry.js';
import { REMOTE_USAGE, remoteMain } from '../src/bench-remote.js';
import { buildReport, markdownTable, withRepeats, writeReport, type Report, type ScenarioRecord } from './report.js';
import { cpuPlan, type CpuPlan } from './runner.js';
import { heldWord } from './verdict.js';
import type { Profile, Scenario } from './scenario.js';

export interface BenchOptions {
  profile: Profile;
  only?: string[];
  out: string;
  json: boolean;
  /** Runs of the whole profile (--repeat N); 1 unless asked. */
  repeat?: number;
}

export const BENCH_USAGE = `rawio bench [--quick | --full] [--only SCENARIO,...] [--repeat N] [--out DIR] [--json]

  --quick       the quick profile (default): a few minutes on 2 cores
  --full        the long profile: more sizes, connections and repeats
  --only A,B    run only these scenarios (${scenarios.map((s) => s.name).join(', ') || 'none registered'})
  --repeat N    run the whole profile N times and report whether each verdict held in all N
  --out DIR     where report.md, report.html, report.json and charts/ go (default ./bench-out)
  --json        print report.json on stdout instead of the tables`;

/** Parses bench arguments; throws a UsageError for an unknown flag or a missing value. */
export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  const { values } = parseFlags('bench', argv, {
    quick: { type: 'boolean' },
    full: { type: 'boolean' },
    only: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean' },
    repeat: { type: 'string' },
  });
  const o: BenchOptions = {
    profile: values.full ? 'full' : 'quick',
    out: values.out ?? 'bench-out',
    json: !!values.json,
  };
  if (values.quick && values.full) throw new UsageError('bench: --quick and --full are one or the other');
  if (values.only !== undefined) {
    o.only = values.only.split(',').filter(Boolean);
    if (o.only.length === 0) throw new UsageError('bench: --only wants scenario names, e.g. --only copy,read');
    const unknown = o.only.filter((n) => !scenarios.some((s) => s.name === n));
    if (unknown.length)
      throw new UsageError(
        `bench: --only: no scenario named ${unknown.join(', ')}; known: ${scenarios.map((s) => s.name).join(', ')}`,
      );
  }
  if (values.repeat !== undefined) o.repeat = repeatCount(values.repeat);
  return o;
}

function repeatCount(v: string): number {
  const n = wholeNumber('repeat', v);
  if (n < 1 || n > 100) throw new UsageError(`--repeat wants a whole number from 1 to 100, got ${v}`);
  return n;
}

function choose(only: string[] | undefined): Scenario[] {
  if (!only) return scenarios;
  const unknown = only.filter((n) => !scenarios.some((s) => s.name === n));
  if (unknown.length)
    throw new Error(`no scenario named ${unknown.join(', ')}; known: ${scenarios.map((s) => s.name).join(', ')}`);
  return scenarios.filter((s) => only.includes(s.name));
}

async function runOne(
  s: Scenario,
  o: BenchOptions,
  plan: CpuPlan,
  p: Progress,
  tmpDir: string,
): Promise<ScenarioRecord> {
  const log: string[] = [];
  const rec: ScenarioRecord = {
    name: s.name,
    title: s.title,
    description: s.description,
    status: 'ok',
    seconds: 0,
    log,
  };
  const t0 = performance.now();
  p.startScenario(s.name);
  try {
    rec.result = await s.run({
      profile: o.profile,
      serverCpus: plan.serverCpus,
      clientCpus: plan.clientCpus,
      progress: (f, label) => p.update(f, label),
      log: (m) => {
        log.push(m);
        p.log(`  ${s.name}: ${m}`);
      },
      tmpDir,
    });
  } catch (e) {
    rec.status = 'failed';
    rec.error = e instanceof Error ? e.message : String(e);
    p.log(`  ${s.name} failed: ${rec.error}`);
  }
  p.endScenario();
  rec.seconds = (performance.now() - t0) / 1000;
  return rec;
}

function printSummary(r: Report, files: string[], out: string): void {
  for (const s of r.scenarios) {
    console.log(`\n== ${s.title} (${s.seconds.toFixed(0)} s)${s.status === 'failed' ? ` FAILED: ${s.error}` : ''}`);
    const tables = s.result?.tables ?? [];
    for (const t of tables) console.log(`\n${markdownTable(t)}`);
    // A section with no table (a tool it needs is not installed: wrk, redis-benchmark) says
    // why here too: the progress lines that said so went to stderr, and may be gone.
    if (tables.length === 0 && s.status !== 'failed') for (const l of s.log) console.log(`  ${l}`);
  }
  console.log('\nClaims:');
  for (const c of r.claims) console.log(`  ${c.id}. [${c.verdict}] ${c.claim} — ${c.figures}`);
  console.log('Targets:');
  // a target not measured says why: its figures are that reason ("not measured: …")
  for (const t of r.targets) console.log(`  [${t.status}] ${t.target} — ${t.figures.replace(/^not measured: /, '')}`);
  if (r.repeats) {
    const word = r.repeats.held.map(heldWord);
    const flipped = r.repeats.held.filter((_, i) => word[i] === 'no');
    const partly = r.repeats.held.filter((_, i) => word[i] === 'partly measured');
    const count = (w: string) => word.filter((x) => x === w).length;
    console.log(
      `\nAcross ${r.repeats.runs} runs: ${count('yes')} verdicts held, ${flipped.length} did not, ` +
        `${partly.length} measured in only some runs, ${count('not measured')} not measured in any run`,
    );
    for (const h of [...flipped, ...partly]) console.log(`  ${h.id}: ${h.verdicts.join(' · ')}`);
  }
  for (const n of r.notes ?? []) console.log(`\n${n}`);
  console.log(
    `\nWrote ${files.length} files to ${out}: report.md, report.html, report.json, ${files.length - 3} charts`,
  );
}

/**
 * One run of the chosen scenarios: their records, in order. A scenario that throws (its
 * server went away, and the load generator says so) is recorded as failed with the reason,
 * and the next one runs.
 */
export async function runSession(
  chosen: Scenario[],
  o: BenchOptions,
  plan: CpuPlan,
  label: string,
  later = 0,
): Promise<ScenarioRecord[]> {
  const estimates = chosen.map((s) => ({ name: s.name, estimate: s.estimate[o.profile] }));
  const progress = new Progress(estimates, process.stderr, undefined, later);
  if (label) progress.log(label);
  if (!plan.separate) progress.log('one CPU only: server and load generator share it, figures are pessimistic');
  const tmpDir = mkdtempSync(join(process.cwd(), '.rawio-bench-'));
  const records: ScenarioRecord[] = [];
  try {
    for (const s of chosen) records.push(await runOne(s, o, plan, progress, tmpDir));
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
    progress.finish();
  }
  return records;
}

/** Runs a benchmark session (--repeat times); resolves with the exit code (1 if a scenario failed). */
export async function runBench(o: BenchOptions): Promise<number> {
  const chosen = choose(o.only);
  const plan = cpuPlan();
  const m = machine();
  const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  const runs = o.repeat ?? 1;
  const reports: Report[] = [];
  let failed = false;
  // the runs after this one, for the time left: as long as the last one took, or as estimated
  let perRun = chosen.reduce((a, s) => a + s.estimate[o.profile], 0);
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const label = runs > 1 ? `run ${i + 1} of ${runs}` : '';
    const records = await runSession(chosen, o, plan, label, (runs - i - 1) * perRun);
    perRun = (performance.now() - t0) / 1000;
    failed ||= records.some((r) => r.status === 'failed');
    reports.push(
      buildReport({ profile: o.profile, rawio: pkg.version, cpuPlan: plan, machine: m, scenarios: records }),
    );
  }
  const report = runs > 1 ? withRepeats(reports) : reports[0]!;
  const out = resolve(o.out);
  const files = await writeReport(report, out);
  if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else printSummary(report, files, out);
  return failed ? 1 : 0;
}

export async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(`${BENCH_USAGE}\n\nA server on another machine:\n\n${REMOTE_USAGE}`);
    return 0;
  }
  if (argv.some((a) => a === '--target' || a.startsWith('--target='))) return remoteMain(argv);
  return runBench(parseBenchArgs(argv));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      console.error(e instanceof Error ? e.message : String(e));
      process.exitCode = e instanceof UsageError ? 2 : 1;
    },
  );
}
