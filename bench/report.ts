/**
 * The benchmark report: report.json (a versioned schema, `rawio-bench/1`, for tools),
 * report.md (tables, the claims with their verdicts, the targets, whether each verdict held
 * across repeated runs), report.html (the same, self-contained, charts inline; see
 * report-html.ts) and one SVG per chart under charts/. The runner hands over what ran; this
 * module only formats and writes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHARTS_MISSING, hasData, renderSvg } from './charts.js';
import { renderHtml } from './report-html.js';
import { judgeClaims, type Metrics } from './claims.js';
import { describeCpuPlan, describeMachine, type Machine } from './machine.js';
import type { ClaimResult, Profile, ScenarioResult, Table } from './scenario.js';
import { floorCell, judgeTargets, type TargetResult } from './targets.js';
import { heldAcross, heldWord, type Held } from './verdict.js';

export const SCHEMA = 'rawio-bench/1';

export interface ScenarioRecord {
  name: string;
  title: string;
  description: string;
  status: 'ok' | 'failed';
  error?: string;
  seconds: number;
  log: string[];
  result?: ScenarioResult;
  /** Chart files written for this scenario, relative to the output folder. */
  chartFiles?: string[];
}

export interface Report {
  schema: typeof SCHEMA;
  createdAt: string;
  profile: Profile;
  rawio: string;
  cpuPlan: { serverCpus: number[]; clientCpus: number[]; separate: boolean };
  machine: Machine;
  scenarios: ScenarioRecord[];
  claims: ClaimResult[];
  targets: TargetResult[];
  /** What the reader should know about the report itself (charts not drawn, and why). */
  notes?: string[];
  /** With --repeat N: every claim's and target's verdict in each of the N runs, and whether it held. */
  repeats?: { runs: number; held: Held[] };
}

/** The verdicts of one run, keyed as the repeats table names them. */
export function verdictsOf(r: Report): Map<string, string> {
  const m = new Map<string, string>();
  for (const c of r.claims) m.set(`claim ${c.id}: ${c.claim}`, c.verdict);
  for (const t of r.targets) if (t.status !== 'reported') m.set(`target: ${t.target}`, t.status);
  return m;
}

/**
 * Attaches to the last report whether each verdict held over all `reports` (runs of one
 * profile). The scenario tables are the last run's, so a scenario that failed in an
 * earlier run is named in the notes, with its run and error.
 */
export function withRepeats(reports: readonly Report[]): Report {
  const last = reports[reports.length - 1]!;
  const failures = reports.flatMap((r, i) =>
    i === reports.length - 1
      ? []
      : r.scenarios
          .filter((s) => s.status === 'failed')
          .map((s) => `Run ${i + 1} of ${reports.length}: scenario ${s.name} failed: ${s.error ?? 'no error given'}`),
  );
  const notes = [...(last.notes ?? []), ...failures];
  return {
    ...last,
    ...(notes.length > 0 ? { notes } : {}),
    repeats: { runs: reports.length, held: heldAcross(reports.map(verdictsOf)) },
  };
}

export function buildReport(o: Omit<Report, 'schema' | 'createdAt' | 'claims' | 'targets'>): Report {
  // A figure that is not a finite number (NaN: every run behind it failed) is left out, so a
  // rule reads it as not measured, never as a ratio that misses or a claim that depends.
  const metrics: Metrics = {};
  for (const s of o.scenarios)
    for (const [k, v] of Object.entries(s.result?.metrics ?? {})) if (Number.isFinite(v)) metrics[k] = v;
  const ran = new Set(o.scenarios.filter((s) => s.status === 'ok').map((s) => s.name));
  const failed: Record<string, string> = {};
  for (const s of o.scenarios) if (s.status === 'failed') failed[s.name] = s.error ?? 'no error given';
  return {
    schema: SCHEMA,
    createdAt: new Date().toISOString(),
    ...o,
    claims: judgeClaims(metrics, ran, { cores: o.machine.cores, serverCpus: o.cpuPlan.serverCpus.length, failed }),
    targets: judgeTargets(metrics, failed, ran),
  };
}

const esc = (s: string | number) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');

/**
 * Text as a Markdown code span outside a table: fenced by more backticks than any run inside
 * it, so a backtick in an error cannot end the span, and `|` left as it is (a table's escape
 * would show its backslash here).
 */
function codeSpan(text: string): string {
  const t = text.replace(/\r?\n/g, ' ');
  const fence = '`'.repeat(Math.max(0, ...(t.match(/`+/g) ?? []).map((r) => r.length)) + 1);
  const pad = t.startsWith('`') || t.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${t}${pad}${fence}`;
}

export function markdownTable(t: Table): string {
  const head = `| ${t.columns.map(esc).join(' | ')} |`;
  const align = `|${t.columns.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`;
  const rows = t.rows.map((r) => `| ${r.map(esc).join(' | ')} |`);
  return [`**${t.title}**`, '', head, align, ...rows, '', ...(t.note ? [`_${t.note}_`, ''] : [])].join('\n');
}

const VERDICT: Record<ClaimResult['verdict'], string> = {
  confirmed: '✅ confirmed',
  refuted: '❌ refuted',
  depends: '⚖️ depends',
  'within noise': '〰️ within noise',
  'not measured': '— not measured',
};

function claimsSection(r: Report): string[] {
  const lines = ['## Claims', '', '| # | claim | verdict | figures | rule |', '|---|---|---|---|---|'];
  for (const c of r.claims)
    lines.push(`| ${c.id} | ${esc(c.claim)} | ${VERDICT[c.verdict]} | ${esc(c.figures)} | ${esc(c.rule)} |`);
  lines.push('', '## Targets', '', '| target | judged by | status | figures | A/A floor | rule |');
  lines.push('|---|---|---|---|---|---|');
  for (const t of r.targets)
    lines.push(
      `| ${esc(t.target)} | ${esc(t.judgedBy)} | ${t.status} | ${esc(t.figures)} | ${floorCell(t)} | ${esc(t.rule)} |`,
    );
  if (r.repeats) {
    lines.push(
      '',
      `## Verdicts across ${r.repeats.runs} runs`,
      '',
      '| claim or target | held in all | verdicts run by run |',
    );
    lines.push('|---|---|---|');
    for (const h of r.repeats.held)
      lines.push(`| ${esc(h.id)} | ${heldWord(h) === 'no' ? '**no**' : heldWord(h)} | ${h.verdicts.join(' · ')} |`);
  }
  return [...lines, ''];
}

export function renderMarkdown(r: Report): string {
  const cpu = describeCpuPlan(r.cpuPlan);
  const out = [
    `# rawio benchmark report`,
    '',
    `${r.createdAt} · rawio ${r.rawio} · profile \`${r.profile}\` · ${cpu}`,
    '',
    `**Machine:** ${describeMachine(r.machine)}`,
    '',
    ...(r.notes ?? []).flatMap((n) => [`> ${n}`, '']),
    ...claimsSection(r),
  ];
  for (const s of r.scenarios) {
    out.push(`## ${s.title}`, '', `\`${s.name}\` · ${s.seconds.toFixed(0)} s · ${s.description}`, '');
    if (s.status === 'failed') out.push(`**Failed:** ${codeSpan(s.error ?? 'unknown error')}`, '');
    for (const t of s.result?.tables ?? []) out.push(markdownTable(t));
    for (const f of s.chartFiles ?? []) out.push(`![${s.name}](${f})`, '');
    if (s.log.length)
      out.push('<details><summary>log</summary>', '', ...s.log.map((l) => `- ${l}`), '', '</details>', '');
  }
  const mit = Object.entries(r.machine.mitigations);
  if (mit.length) {
    out.push('## Machine details', '', '| vulnerability | status |', '|---|---|');
    for (const [k, v] of mit) out.push(`| ${k} | ${esc(v)} |`);
    out.push('');
  }
  return out.join('\n');
}

/** Writes the charts, report.json, report.md and report.html into outDir; returns the files written. */
export async function writeReport(r: Report, outDir: string): Promise<string[]> {
  mkdirSync(join(outDir, 'charts'), { recursive: true });
  const files: string[] = [];
  const svgs = new Map<string, string[]>();
  let chartsMissing = false;
  const notDrawn: string[] = [];
  for (const s of r.scenarios) {
    s.chartFiles = [];
    svgs.set(s.name, []);
    for (const [i, c] of (s.result?.charts ?? []).entries()) {
      // no point to draw (every run behind it failed): no empty frame; the tables say why
      if (!hasData(c)) continue;
      let svg: string | null;
      try {
        svg = await renderSvg(c);
      } catch (e) {
        // vega is there but failed on this chart: say so, not that vega is missing
        notDrawn.push(`chart "${c.title}" of ${s.name} was not drawn: ${(e as Error).message}`);
        continue;
      }
      if (svg === null) {
        chartsMissing = true;
        continue;
      }
      const rel = `charts/${s.name}-${i + 1}.svg`;
      writeFileSync(join(outDir, rel), svg);
      s.chartFiles.push(rel);
      svgs.get(s.name)!.push(svg);
      files.push(rel);
    }
  }
  if (chartsMissing || notDrawn.length > 0)
    r.notes = [...(r.notes ?? []), ...(chartsMissing ? [CHARTS_MISSING] : []), ...notDrawn];
  writeFileSync(join(outDir, 'report.json'), `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(join(outDir, 'report.md'), renderMarkdown(r));
  writeFileSync(join(outDir, 'report.html'), renderHtml(r, svgs));
  return [...files, 'report.json', 'report.md', 'report.html'];
}
