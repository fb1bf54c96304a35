/**
 * report.html: the benchmark report as one self-contained page — the machine and where the
 * servers and the load generator ran (as report.md heads it), the claims, the targets,
 * whether each verdict held across repeated runs, then every scenario's tables with its
 * charts inline as SVG, and the machine's mitigations — read in a browser the way
 * criterion's HTML report is. It loads
 * nothing: no script, no font, no image from anywhere, and a Content-Security-Policy that
 * forbids fetching anything, so it opens the same from a CI artifact or an offline laptop.
 */
import type { Report } from './report.js';
import { describeCpuPlan, describeMachine } from './machine.js';
import { floorCell } from './targets.js';
import { heldWord } from './verdict.js';
import type { Table } from './scenario.js';

const esc = (s: string | number) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const CSS = `body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}caption{text-align:left;font-weight:600}
.note{color:#555;font-size:90%}.met,.confirmed,.held{color:#176b2c}.missed,.refuted,.flipped{color:#a11}
.noise,.depends{color:#8a5a00}.client-bound,.kernel-bound{color:#555;font-style:italic}figure{margin:1em 0}details{margin:.5em 0}`;

/** The class a verdict or status is coloured with. */
function tone(v: string): string {
  if (v === 'within noise') return 'noise';
  return v.replace(/\s+/g, '-');
}

/** A figure (1,234 · 0.85x (0.72–1.36) · 12.5%), right-aligned in its column. */
/** The repeats table's "held in all" cell: its word and its colour class. */
const HELD_CELL: Record<ReturnType<typeof heldWord>, Cell> = {
  yes: ['yes', 'held'],
  no: ['no', 'flipped'],
  'partly measured': ['partly measured', 'unmeasured'],
  'not measured': ['not measured', 'unmeasured'],
};
const NUMERIC = /^[\d.,\s–x()%±-]+$/;

export function htmlTable(t: Table): string {
  const head = `<tr>${t.columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>`;
  const td = (c: string | number) => `<td${NUMERIC.test(String(c)) ? ' class="num"' : ''}>${esc(c)}</td>`;
  const rows = t.rows.map((r) => `<tr>${r.map(td).join('')}</tr>`).join('\n');
  const note = t.note ? `<p class="note">${esc(t.note)}</p>` : '';
  return `<table><caption>${esc(t.title)}</caption>\n${head}\n${rows}\n</table>${note}`;
}

function verdictSections(r: Report): string[] {
  const out = [
    '<section id="claims"><h2>Claims</h2>',
    htmlRows(
      ['#', 'claim', 'verdict', 'figures', 'rule'],
      r.claims.map((c) => [c.id, c.claim, [c.verdict, tone(c.verdict)], c.figures, c.rule]),
    ),
    '</section>',
    '<section id="targets"><h2>Targets</h2>',
    htmlRows(
      ['target', 'judged by', 'status', 'figures', 'A/A floor', 'rule'],
      r.targets.map((t) => [t.target, t.judgedBy, [t.status, tone(t.status)], t.figures, floorCell(t), t.rule]),
    ),
    '</section>',
  ];
  if (r.repeats) {
    out.push(`<section id="repeats"><h2>Verdicts across ${r.repeats.runs} runs</h2>`);
    out.push(
      htmlRows(
        ['claim or target', 'held in all', 'verdicts run by run'],
        r.repeats.held.map((h) => [h.id, HELD_CELL[heldWord(h)], h.verdicts.join(' · ')]),
      ),
      '</section>',
    );
  }
  return out;
}

type Cell = string | number | [string, string];

function htmlRows(columns: string[], rows: Cell[][]): string {
  const cell = (c: Cell) => (Array.isArray(c) ? `<td class="${c[1]}">${esc(c[0])}</td>` : `<td>${esc(c)}</td>`);
  const head = `<tr>${columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>`;
  return `<table>\n${head}\n${rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('\n')}\n</table>`;
}

/**
 * The page. `svgs` maps a scenario's name to its charts' SVG documents; the report's notes
 * (charts not drawn, and how to add them) head the page.
 */
export function renderHtml(r: Report, svgs: ReadonlyMap<string, string[]>): string {
  const body = [
    `<h1>rawio benchmark report</h1>`,
    `<p>${esc(r.createdAt)} · rawio ${esc(r.rawio)} · profile <code>${esc(r.profile)}</code> · ${esc(describeCpuPlan(r.cpuPlan))} · ${r.scenarios.length} scenarios</p>`,
    // the machine, as report.md names it: the figures mean nothing without it
    `<p><strong>Machine:</strong> ${esc(describeMachine(r.machine))}</p>`,
    ...(r.notes ?? []).map((n) => `<p class="note">${esc(n)}</p>`),
    ...verdictSections(r),
  ];
  for (const s of r.scenarios) {
    body.push(`<section id="scenario-${esc(s.name)}" class="scenario"><h2>${esc(s.title)}</h2>`);
    body.push(`<p class="note"><code>${esc(s.name)}</code> · ${s.seconds.toFixed(0)} s · ${esc(s.description)}</p>`);
    if (s.status === 'failed')
      body.push(`<p class="missed">Failed: <code>${esc(s.error ?? 'unknown error')}</code></p>`);
    for (const t of s.result?.tables ?? []) body.push(htmlTable(t));
    // vega's SVG is markup we produced from our own data, with the XML prologue dropped for inlining
    for (const svg of svgs.get(s.name) ?? []) body.push(`<figure>${svg.replace(/^<\?xml[^>]*>\s*/, '')}</figure>`);
    if (s.log.length)
      body.push(`<details><summary>log</summary><ul>${s.log.map((l) => `<li>${esc(l)}</li>`).join('')}</ul></details>`);
    body.push('</section>');
  }
  const mitigations = Object.entries(r.machine.mitigations ?? {});
  if (mitigations.length > 0)
    body.push(
      '<section id="machine"><h2>Machine details</h2>',
      htmlRows(['vulnerability', 'status'], mitigations),
      '</section>',
    );
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>rawio benchmark report ${esc(r.createdAt)}</title><style>${CSS}</style></head>`,
    `<body>\n${body.join('\n')}\n</body></html>\n`,
  ].join('\n');
}
