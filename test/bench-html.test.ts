/**
 * report.html in a real browser: a small report (a scenario with a table and a chart, one
 * that failed, verdicts across repeated runs) is written and opened in headless Chromium
 * (Debian's `chromium`), which dumps the DOM it rendered and logs every console message —
 * including any fetch the page's Content-Security-Policy blocked — to stderr. Skips, saying
 * why, where Chromium is not installed.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHARTS_MISSING, hasData, PALETTE, spansDecades, vegaLiteSpec } from '../dist/bench/charts.js';
import { describeMachine, machine } from '../dist/bench/machine.js';
import { buildReport, renderMarkdown, withRepeats, writeReport, type Report } from '../dist/bench/report.js';
import { renderHtml } from '../dist/bench/report-html.js';
import { cpuPlan } from '../dist/bench/runner.js';
import { which } from '../dist/bench/tools.js';

const chromium = which('chromium') ?? which('chromium-browser');

function sampleReport(): Report {
  const r = buildReport({
    profile: 'quick',
    rawio: '0.0.0',
    cpuPlan: cpuPlan(),
    machine: machine(),
    scenarios: [
      {
        name: 'demo',
        title: 'Demo <scenario> & friends',
        description: 'a scenario with a table and a chart',
        status: 'ok',
        seconds: 1,
        log: ['a log line'],
        result: {
          tables: [{ title: 'T', columns: ['server', 'req/s'], rows: [['<b>single</b>', 1000]], note: 'n' }],
          charts: [
            {
              title: 'C',
              xLabel: 'x',
              yLabel: 'y',
              series: [
                {
                  name: 's',
                  points: [
                    [1, 2, 1, 3],
                    [2, 3000, 2500, 3100],
                  ],
                },
                {
                  name: 'anchor',
                  anchor: true,
                  points: [
                    [1, 5],
                    [2, 6],
                  ],
                },
              ],
            },
          ],
          metrics: { 'http-wrk.proactor-over-nginx.c50.rps': 1.25, 'http-wrk.floor.rps': 1.05 },
        },
      },
      { name: 'broken', title: 'Broken', description: 'failed', status: 'failed', error: 'boom', seconds: 0, log: [] },
    ],
  });
  return withRepeats([r, r]);
}

/** Chromium's rendered DOM and its stderr (console messages appear there as INFO:CONSOLE lines). */
function render(file: string, profileDir: string): Promise<{ dom: string; stderr: string }> {
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    `--user-data-dir=${profileDir}`,
    '--enable-logging=stderr',
    '--v=0',
    '--dump-dom',
    `file://${file}`,
  ];
  return new Promise((resolve, reject) => {
    execFile(chromium!, args, { timeout: 90_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`chromium failed: ${err.message}\n${stderr}`));
      resolve({ dom: stdout, stderr });
    });
  });
}

describe('charts', () => {
  type Spec = {
    layer: { mark: { type: string }; encoding: Record<string, { scale?: { type?: string; range?: unknown[] } }> }[];
  };
  const series = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ name: `s${i}`, points: [[1, 10 + i]] as [number, number][] }));

  it('gives every series its own colour, up to twenty', () => {
    const spec = vegaLiteSpec({ title: 't', xLabel: 'x', yLabel: 'y', series: series(11) }) as Spec;
    const range = spec.layer[0]!.encoding.color!.scale!.range as string[];
    expect(range).toHaveLength(11);
    expect(new Set(range).size).toBe(11);
    expect(new Set(PALETTE).size).toBe(20);
  });

  it('turns the y axis logarithmic when the values span orders of magnitude', () => {
    expect(spansDecades([1, 1400])).toBe(true);
    expect(spansDecades([1, 50])).toBe(false);
    expect(spansDecades([0, 1000])).toBe(false); // no log of zero
    const wide = {
      title: 't',
      xLabel: 'x',
      yLabel: 'y',
      series: [
        {
          name: 'a',
          points: [
            [1, 1],
            [2, 1400],
          ],
        },
      ],
    };
    expect((vegaLiteSpec(wide as never) as Spec).layer[0]!.encoding.y!.scale!.type).toBe('log');
    expect((vegaLiteSpec({ ...wide, logY: false } as never) as Spec).layer[0]!.encoding.y!.scale!.type).toBeUndefined();
  });

  it('leaves out a point that is not a number, and a whisker without both ends', () => {
    const c = {
      title: 't',
      xLabel: 'x',
      yLabel: 'y',
      series: [
        {
          name: 'a',
          points: [
            [1, NaN, NaN, NaN], // every round failed
            [2, 5, NaN, 6],
            [3, Infinity],
            [4, 7, 6, 8],
          ],
        },
      ],
    };
    const spec = vegaLiteSpec(c as never) as { data: { values: Record<string, unknown>[] } };
    expect(spec.data.values.map((d) => [d.x, d.y, d.lo, d.hi])).toEqual([
      [2, 5, undefined, undefined],
      [4, 7, 6, 8],
    ]);
    expect(hasData(c as never)).toBe(true);
    expect(hasData({ ...c, series: [{ name: 'a', points: [[1, NaN]] }] } as never)).toBe(false);
  });

  it('draws no chart with no point, and does not say vega is missing for it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rawio-html-'));
    try {
      const r = sampleReport();
      const demo = r.scenarios.find((s) => s.name === 'demo')!;
      demo.result!.charts = [
        { title: 'failed', xLabel: 'x', yLabel: 'y', series: [{ name: 's', points: [[1, NaN, NaN, NaN]] }] },
        ...demo.result!.charts!,
      ];
      await writeReport(r, dir);
      expect(demo.chartFiles).toEqual(['charts/demo-2.svg']);
      expect(r.notes ?? []).not.toContain(CHARTS_MISSING);
      const html = readFileSync(join(dir, 'report.html'), 'utf8');
      expect(html).not.toMatch(/NaN/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('draws min–max whiskers where points carry them, and anchors dashed', () => {
    const c = {
      title: 't',
      xLabel: 'x',
      yLabel: 'y',
      series: [
        { name: 'a', points: [[1, 2, 1, 3]] },
        { name: 'nginx', anchor: true, points: [[1, 2]] },
      ],
    };
    const spec = vegaLiteSpec(c as never) as Spec & { data: { values: { anchor: string }[] } };
    expect(spec.layer.map((l) => l.mark.type)).toEqual(['line', 'rule']);
    expect(spec.data.values.map((v) => v.anchor)).toEqual(['rawio', 'anchor']);
    expect(spec.layer[0]!.encoding.strokeDash!.scale!.range).toEqual([
      [1, 0],
      [6, 4],
    ]);
  });
  it("draws a bar chart's anchor as a dashed line across each group, not as a bar", () => {
    const c = {
      title: 't',
      xLabel: 'x',
      yLabel: 'y',
      kind: 'bar',
      series: [
        { name: 'single', points: [[50, 2, 1, 3]] },
        { name: 'nginx', anchor: true, points: [[50, 2]] },
      ],
    };
    const spec = vegaLiteSpec(c as never) as Spec;
    expect(spec.layer.map((l) => l.mark.type)).toEqual(['bar', 'tick', 'rule']);
  });
});

describe('report.html', () => {
  it('is self-contained: no script, no stylesheet link, nothing to fetch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rawio-html-'));
    try {
      await writeReport(sampleReport(), dir);
      const html = readFileSync(join(dir, 'report.html'), 'utf8');
      expect(html).toMatch(/Content-Security-Policy" content="default-src 'none'/);
      expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\(/i);
      expect(html).not.toMatch(/\s(src|href)=/i);
      expect(html).toContain('&lt;b&gt;single&lt;/b&gt;'); // table cells are escaped
      expect(html).toMatch(/<figure><svg/); // the chart inline
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the machine, the CPU plan and the mitigations, as report.md does', () => {
    const r = {
      ...sampleReport(),
      cpuPlan: { serverCpus: [0], clientCpus: [1], separate: true },
      machine: {
        kernel: '6.1.0-<test>',
        cpuModel: 'Some CPU & co',
        cores: 1,
        onlineCpus: 2,
        node: 'v20.0.0',
        v8: '11',
        memoryGiB: 4,
        mitigations: { spectre_v2: 'Mitigation: Retpolines', meltdown: 'Not affected' },
        loopbackSg: true,
        probe: {},
      },
    } as unknown as Report;
    const html = renderHtml(r, new Map());
    const md = renderMarkdown(r);
    const line = describeMachine(r.machine);
    expect(line).toMatch(/2 CPUs \(1 allowed to the bench\).*1\/2 vulnerability mitigations active/);
    expect(md).toContain(line);
    expect(html).toContain(
      '<strong>Machine:</strong> Linux 6.1.0-&lt;test&gt;, Some CPU &amp; co, 2 CPUs (1 allowed to the bench)',
    );
    expect(html).toContain('servers pinned to CPU 0, load generator to CPU 1');
    expect(html).toMatch(/<section id="machine">[\s\S]*<td>spectre_v2<\/td><td>Mitigation: Retpolines<\/td>/);
  });

  it('renders every section in headless Chromium with no console message', async (ctx) => {
    if (!chromium) ctx.skip('Chromium is not installed (CI installs it): no browser to render the page');
    const dir = mkdtempSync(join(tmpdir(), 'rawio-html-'));
    try {
      const r = sampleReport();
      await writeReport(r, dir);
      const { dom, stderr } = await render(join(dir, 'report.html'), join(dir, 'chromium-profile'));
      const messages = stderr.split('\n').filter((l) => /CONSOLE/.test(l));
      expect(messages).toEqual([]);
      for (const id of ['claims', 'targets', 'repeats', 'scenario-demo', 'scenario-broken'])
        expect(dom).toContain(`id="${id}"`);
      expect(dom).toContain('Demo &lt;scenario&gt; &amp; friends');
      expect(dom).toMatch(/class="noise">within noise</); // the proactor target sits inside its floor
      expect(dom).toMatch(/<svg[^>]*>/);
      expect(dom).toContain('Failed: <code>boom</code>');
      const machineSection = Object.keys(r.machine.mitigations).length > 0 ? 1 : 0;
      expect((dom.match(/<section/g) ?? []).length).toBe(3 + r.scenarios.length + machineSection);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

if (!chromium) console.warn('report.html browser test skipped: chromium is not installed (apt-get install chromium)');
