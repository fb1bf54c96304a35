/**
 * The charting libraries (vega, vega-lite) are optional: with them the report has SVG
 * charts; without them the report is still written and says how to add them. The second
 * case runs the built benchmark modules from a fresh project that has no vega anywhere on
 * its resolution path (a copy of dist/ in a temp directory, with only node-gyp-build beside
 * it), in a child process, as a user without the optional peers would.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../dist/src/sys/native.js';

const require = createRequire(import.meta.url);
const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };
const addon = process.env.RAWIO_ADDON ?? nodeGypBuild.path(packageRoot);
const work = mkdtempSync(join(tmpdir(), 'rawio-charts-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Writes a one-scenario report with one chart into outDir, from the dist/ under root. */
const WRITE = `
const root = process.argv[1], out = process.argv[2];
const { buildReport, writeReport } = await import(root + '/dist/bench/report.js');
const { machine } = await import(root + '/dist/bench/machine.js');
const chart = { title: 'C', xLabel: 'x', yLabel: 'y', series: [{ name: 's', points: [[1, 2], [2, 3]] }] };
const r = buildReport({
  profile: 'quick', rawio: '0.0.0', machine: machine(),
  cpuPlan: { serverCpus: [0], clientCpus: [0], separate: false },
  scenarios: [{ name: 'demo', title: 'Demo', description: 'd', status: 'ok', seconds: 1, log: [],
    result: { tables: [], charts: [chart], metrics: {} } }],
});
console.log(JSON.stringify(await writeReport(r, out)));
`;

function writeFrom(root: string, out: string): string[] {
  const res = spawnSync(process.execPath, ['--input-type=module', '-e', WRITE, root, out], {
    cwd: root,
    env: { ...process.env, RAWIO_ADDON: addon },
    encoding: 'utf8',
  });
  expect(res.status, res.stderr).toBe(0);
  return JSON.parse(res.stdout.trim().split('\n').pop()!) as string[];
}

describe('bench charts', () => {
  it('are drawn where vega and vega-lite are installed (the repository: devDependencies)', () => {
    const out = join(work, 'with');
    const files = writeFrom(packageRoot, out);
    expect(files).toContain('charts/demo-1.svg');
    expect(readFileSync(join(out, 'charts/demo-1.svg'), 'utf8')).toMatch(/^<svg/);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).not.toContain('npm install vega vega-lite');
  });

  it('are left out, with a line saying how to add them, where vega is not installed', () => {
    const project = join(work, 'project');
    mkdirSync(join(project, 'node_modules'), { recursive: true });
    cpSync(join(packageRoot, 'dist'), join(project, 'dist'), { recursive: true });
    cpSync(join(packageRoot, 'package.json'), join(project, 'package.json'));
    symlinkSync(dirname(require.resolve('node-gyp-build/package.json')), join(project, 'node_modules/node-gyp-build'));
    // Nothing named vega may be reachable from the copy, or the test would prove nothing.
    for (let d = join(project, 'dist/bench'); d !== dirname(d); d = dirname(d))
      for (const m of ['vega', 'vega-lite']) expect(existsSync(join(d, 'node_modules', m)), d).toBe(false);

    const out = join(work, 'without');
    const files = writeFrom(project, out);
    expect([...files].sort()).toEqual(['report.html', 'report.json', 'report.md']);
    expect(readdirSync(join(out, 'charts'))).toEqual([]);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toContain('> charts were not drawn');
    expect(md).toContain('`npm install vega vega-lite`');
    const json = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { notes?: string[] };
    expect(json.notes?.join('\n')).toContain('npm install vega vega-lite');
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('npm install vega vega-lite');
  });
});
