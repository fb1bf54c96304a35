/**
 * The benchmark report: report.json (a versioned schema, `rawio-bench/1`, for tools),
 * report.md (tables, the claims with their verdicts, the targets) and one SVG per chart
 * under charts/. The runner hands over what ran; this module only formats and writes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHARTS_MISSING, renderSvg } from './charts.js';
import { judgeClaims, type Metrics } from './claims.js';
import { describeMachine, type Machine } from './machine.js';
import type { ClaimResult, Profile, ScenarioResult, Table } from './scenario.js';
import { judgeTargets, type TargetResult } from './targets.js';

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
}

export function buildReport(o: Omit<Report, 'schema' | 'createdAt' | 'claims' | 'targets'>): Report {
  const metrics: Metrics = {};
  for (const s of o.scenarios) Object.assign(metrics, s.result?.metrics ?? {});
  const ran = new Set(o.scenarios.filter((s) => s.status === 'ok').map((s) => s.name));
  return {
    schema: SCHEMA,
    createdAt: new Date().toISOString(),
    ...o,
    claims: judgeClaims(metrics, ran, { cores: o.machine.cores }),
    targets: judgeTargets(metrics),
  };
}

const esc = (s: string | number) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');

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
  'not measured': '— not measured',
};

function claimsSection(r: Report): string[] {
  const lines = ['## Claims', '', '| # | claim | verdict | figures | rule |', '|---|---|---|---|---|'];
  for (const c of r.claims)
    lines.push(`| ${c.id} | ${esc(c.claim)} | ${VERDICT[c.verdict]} | ${esc(c.figures)} | ${esc(c.rule)} |`);
  lines.push('', '## Targets', '', '| target | status | figures | rule |', '|---|---|---|---|');
  for (const t of r.targets) lines.push(`| ${esc(t.target)} | ${t.status} | ${esc(t.figures)} | ${esc(t.rule)} |`);
  return [...lines, ''];
}

export function renderMarkdown(r: Report): string {
  const cpu = r.cpuPlan.separate
    ? `servers pinned to CPU ${r.cpuPlan.serverCpus.join(',')}, load generator to CPU ${r.cpuPlan.clientCpus.join(',')}`
    : 'one CPU: servers and load generator share it';
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
    if (s.status === 'failed') out.push(`**Failed:** \`${esc(s.error ?? 'unknown error')}\``, '');
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

/** Writes the charts, report.json and report.md into outDir; returns the files written. */
export async function writeReport(r: Report, outDir: string): Promise<string[]> {
  mkdirSync(join(outDir, 'charts'), { recursive: true });
  const files: string[] = [];
  let chartsMissing = false;
  for (const s of r.scenarios) {
    s.chartFiles = [];
    for (const [i, c] of (s.result?.charts ?? []).entries()) {
      const svg = await renderSvg(c).catch(() => null);
      if (svg === null) {
        chartsMissing = true;
        continue;
      }
      const rel = `charts/${s.name}-${i + 1}.svg`;
      writeFileSync(join(outDir, rel), svg);
      s.chartFiles.push(rel);
      files.push(rel);
    }
  }
  if (chartsMissing) r.notes = [...(r.notes ?? []), CHARTS_MISSING];
  writeFileSync(join(outDir, 'report.json'), `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(join(outDir, 'report.md'), renderMarkdown(r));
  return [...files, 'report.json', 'report.md'];
}
