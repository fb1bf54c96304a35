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
import { machine } from '../dist/bench/machine.js';
import { buildReport, withRepeats, writeReport, type Report } from '../dist/bench/report.js';
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
                    [1, 2],
                    [2, 3],
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

  it.skipIf(!chromium)(
    'renders every section in headless Chromium with no console message',
    async () => {
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
        expect((dom.match(/<section/g) ?? []).length).toBe(3 + r.scenarios.length);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    120_000,
  );
});

if (!chromium) console.warn('report.html browser test skipped: chromium is not installed (apt-get install chromium)');
