/**
 * The benchmark machinery: statistics, interleaving, argument parsing, claims and targets
 * rules, the progress display, the report writer (JSON schema, Markdown, SVG), wrk output
 * parsing, pinned server children, the `rawio` command, and a run with none of the outside
 * tools installed.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { claims, judgeClaims } from '../dist/bench/claims.js';
import { settle, startNginx, ticksPerSecond, treeCpuTicks } from '../dist/bench/lib/external.js';
import { loadgen } from '../dist/bench/loadgen.js';
import { describeMachine, machine } from '../dist/bench/machine.js';
import { parseBenchArgs } from '../dist/bench/main.js';
import { fmtTime, Progress } from '../dist/bench/progress.js';
import { buildReport, writeReport } from '../dist/bench/report.js';
import { compare, cpuPlan } from '../dist/bench/runner.js';
import { startServer } from '../dist/bench/server.js';
import { report as acceptReport } from '../dist/bench/scenarios/accept.js';
import { c10kFraction } from '../dist/bench/scenarios/c10k.js';
import { duelProgress } from '../dist/bench/scenarios/uring-read-duel.js';
import { report as pollutionReport } from '../dist/bench/scenarios/pollution.js';
import { median, pairedRatio, quantile, summarize } from '../dist/bench/stats.js';
import { judgeTargets } from '../dist/bench/targets.js';
import { parseWrk, which, wrkMeasured } from '../dist/bench/tools.js';
import { eventually } from './helpers/wait.js';
import { titled } from './helpers/skips.js';

describe('stats', () => {
  it('medians, quartiles and paired ratios', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(summarize([5, 1, 3])).toEqual({ n: 3, median: 3, min: 1, max: 5, q1: 2, q3: 4 });
    expect(pairedRatio([2, 4, 9], [1, 2, 3]).median).toBe(2);
    expect(pairedRatio([2, 4, 9], [1, 2, 3]).max).toBe(3);
  });

  it('leaves out a failed run (NaN): inside a sort it would make the median arbitrary', () => {
    expect(summarize([300, NaN, 500, 100])).toEqual({ n: 3, median: 300, min: 100, max: 500, q1: 200, q3: 400 });
    expect(summarize([NaN, Infinity])).toMatchObject({ n: 0, median: NaN });
    // a round where either side failed is not a pair
    expect(pairedRatio([NaN, 2, 3, 8], [1, 1, 1, NaN])).toMatchObject({ n: 2, median: 2.5, min: 2, max: 3 });
  });

  it('takes the median of an even count as the mean of the middle two, in every scenario', () => {
    expect(median([10, 30])).toBe(20);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
    // the quick profile runs accept and pollution twice: the median of two is their mean, not the larger
    const accepted = acceptReport(
      new Map([['reuseport', { accepted: [5, 5, 5, 5], rate: [1000, 3000], errors: 0 }]]),
      4,
    );
    expect(accepted.metrics!['accept.reuseport.connPerSec']).toBe(2000);
    const sample = (smallRps: number) => ({ smallRps, smallP99: smallRps / 10, largeMBps: smallRps / 100, errors: 0 });
    const polluted = pollutionReport(
      { buffered: [sample(100), sample(300)], direct: [sample(200), sample(600), sample(400), sample(500)] },
      new Map(),
      { large: 2, largeMiB: 128, small: 500, smallKiB: 4, clients: 4, conns: 4, seconds: 2, repeats: 2 },
      undefined,
    );
    expect(polluted.metrics).toMatchObject({
      'pollution.small.rps.buffered': 200,
      'pollution.small.p99us.buffered': 20,
      'pollution.small.rps.direct': 450,
    });
    // and no scenario picks a middle element of a sorted copy by hand
    const dir = new URL('../bench/scenarios/', import.meta.url);
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      const src = readFileSync(new URL(f, dir), 'utf8');
      expect([f, /sort\([^)]*\)[^;\n]*\)\[[^\]]*(length|>> 1|\/ 2)/.test(src)]).toEqual([f, false]);
    }
  });
});

describe('compare', () => {
  it('interleaves A B then B A and discards the warm-up rounds', async () => {
    const order: string[] = [];
    const mk = (name: string, v: number) => ({ name, run: async (round: number) => (order.push(name), v + round) });
    const c = await compare([mk('A', 10), mk('B', 20)], { warmup: 1, repeats: 2 });
    expect(order).toEqual(['A', 'B', 'B', 'A', 'A', 'B']);
    expect(c.samples).toEqual({ A: [11, 12], B: [21, 22] });
    expect(c.summary.A!.median).toBe(11.5);
  });
});

describe('bench arguments', () => {
  it('parses the documented options and refuses others', () => {
    expect(parseBenchArgs([])).toEqual({ profile: 'quick', out: 'bench-out', json: false });
    expect(parseBenchArgs(['--full', '--only', 'copy,read', '--out=x', '--json'])).toEqual({
      profile: 'full',
      only: ['copy', 'read'],
      out: 'x',
      json: true,
    });
    expect(() => parseBenchArgs(['--fast'])).toThrow(/unknown option/);
    expect(() => parseBenchArgs(['--out'])).toThrow(/needs a value/);
    expect(() => parseBenchArgs(['--only', 'a,b'])).toThrow(/no scenario named a, b/);
  });
});

describe('claims and targets', () => {
  const ran = new Set(['multiplex', 'copy', 'servers']);
  it('decides each claim by its rule, and says when it was not measured', () => {
    const m = {
      'multiplex.select.n10.us': 1,
      'multiplex.select.n1000.us': 9,
      'multiplex.poll.n10.us': 1,
      'multiplex.poll.n1000.us': 7,
      'multiplex.epoll.n10.us': 1,
      'multiplex.epoll.n1000.us': 1.1,
      'copy.sendfile.1MiB.warm.MBps': 3000,
      'copy.readwrite.1MiB.warm.MBps': 2000,
      'copy.sendfile.64MiB.warm.MBps': 5000,
      'copy.readwrite.64MiB.warm.MBps': 2000,
    };
    const byId = new Map(judgeClaims(m, ran, { cores: 2 }).map((c) => [c.id, c]));
    expect(byId.get(1)!.verdict).toBe('confirmed');
    expect(byId.get(3)!.verdict).toBe('depends');
    expect(byId.get(3)!.figures).toMatch(/64MiB/);
    expect(byId.get(2)!.verdict).toBe('not measured');
    expect(byId.get(8)!.verdict).toBe('not measured'); // servers ran but published nothing
    expect(byId.get(11)!.verdict).toBe('not measured');
    const mp = judgeClaims(
      { 'servers.http.multi-proactor-1.c50.rps': 100, 'servers.http.proactor.c50.rps': 120 },
      ran,
      { cores: 2 },
    ).find((c) => c.id === 11)!;
    expect(mp.verdict).toBe('confirmed');
    expect(mp.figures).toContain('multi-proactor(1)/proactor 0.83x');
    expect(judgeClaims({ ...m, 'multiplex.epoll.n1000.us': 5 }, ran, { cores: 2 })[0]!.verdict).toBe('depends');
  });

  it('reads claim 3 cell by cell against the copy A/A floors: a verdict a noisy cell could change is within noise', () => {
    const claim3 = (m: Record<string, number>) => judgeClaims(m, ran, { cores: 2 }).find((c) => c.id === 3)!;
    const cells = {
      'copy.sendfile.1MiB.warm.MBps': 3900,
      'copy.readwrite.1MiB.warm.MBps': 2000,
      'copy.sendfile.64MiB.warm.MBps': 5000,
      'copy.readwrite.64MiB.warm.MBps': 2000,
    };
    // 1.95x against a 1% floor: clearly short of 2x there, so it depends
    const clear = claim3({ ...cells, 'copy.floor.1MiB.warm': 1.01, 'copy.floor.64MiB.warm': 1.01 });
    expect(clear.verdict).toBe('depends');
    expect(clear.figures).toMatch(/>= 2x only at 64MiB\.warm/);
    // the same 1.95x against a 5% floor: confirmed or depends, the run cannot tell
    const noisy = claim3({ ...cells, 'copy.floor.1MiB.warm': 1.05, 'copy.floor.64MiB.warm': 1.01 });
    expect(noisy.verdict).toBe('within noise');
    expect(noisy.figures).toMatch(/1MiB\.warm: 1\.95x \(within noise\)/);
    expect(noisy.figures).toMatch(/A\/A floors up to ±5\.0%/);
    // a noisy cell that cannot change the verdict does not blur it: both far under 2x
    const refuted = claim3({
      'copy.sendfile.1MiB.warm.MBps': 1000,
      'copy.readwrite.1MiB.warm.MBps': 2000,
      'copy.sendfile.64MiB.warm.MBps': 2500,
      'copy.readwrite.64MiB.warm.MBps': 2000,
      'copy.floor.1MiB.warm': 1.05,
      'copy.floor.64MiB.warm': 1.05,
    });
    expect(refuted.verdict).toBe('refuted');
  });

  it('reads claim 2 from the paired ET/LT median against the LT A/A floor', () => {
    const claim2 = (m: Record<string, number>) =>
      judgeClaims(m, new Set(['lt-et']), { cores: 2 }).find((c) => c.id === 2)!;
    const medians = { 'lt-et.lt.wakeupsPerMiB': 1.4, 'lt-et.et.wakeupsPerMiB': 1.38 };
    expect(claim2({ ...medians, 'lt-et.et-over-lt.wakeups': 0.5, 'lt-et.floor': 1.05 }).verdict).toBe('confirmed');
    expect(claim2({ ...medians, 'lt-et.et-over-lt.wakeups': 1.3, 'lt-et.floor': 1.05 }).verdict).toBe('refuted');
    expect(claim2({ ...medians, 'lt-et.et-over-lt.wakeups': 0.95, 'lt-et.floor': 1.01 }).verdict).toBe('depends');
    // 0.98x against a 10% floor: the next run could land on either side of 1
    const noisy = claim2({ ...medians, 'lt-et.et-over-lt.wakeups': 0.98, 'lt-et.floor': 1.1 });
    expect(noisy.verdict).toBe('within noise');
    expect(noisy.figures).toBe('ET/LT wakeups 0.98x (LT 1.4/MiB), A/A floor ±10.0%');
    // the paired median decides, not the ratio of the medians (here 0.99x)
    expect(claim2({ ...medians, 'lt-et.et-over-lt.wakeups': 2, 'lt-et.floor': 1.05 }).verdict).toBe('refuted');
    // a report from before the paired ratio: the medians' ratio, without a floor
    const old = claim2({ 'lt-et.lt.wakeupsPerMiB': 2, 'lt-et.et.wakeupsPerMiB': 1 });
    expect(old.verdict).toBe('confirmed');
    expect(old.figures).toMatch(/no A\/A floor/);
    expect(claim2({}).verdict).toBe('not measured');
  });

  it('reads claim 11 against the servers A/A floor', () => {
    const claim11 = (r: number, floor?: number) =>
      judgeClaims(
        {
          'servers.http.multi-proactor-1.c50.rps': 100 * r,
          'servers.http.proactor.c50.rps': 100,
          ...(floor === undefined ? {} : { 'servers.http.floor.c50': floor }),
        },
        ran,
        { cores: 2 },
      ).find((c) => c.id === 11)!;
    expect(claim11(1.03, 1.01).verdict).toBe('confirmed');
    expect(claim11(1.03, 1.04).verdict).toBe('within noise');
    expect(claim11(1.03, 1.04).figures).toMatch(/A\/A floor ±4\.0%/);
    expect(claim11(1.2, 1.04).verdict).toBe('refuted');
    expect(claim11(1.07, 1.01).verdict).toBe('depends');
  });

  it('reports a missed target and by how much', () => {
    const t = judgeTargets({ 'http-wrk.proactor-over-nginx.c50.rps': 1.04 });
    expect(t[0]!.status).toBe('missed');
    expect(t[0]!.figures).toMatch(/missed by 20%/);
    expect(judgeTargets({ 'http-wrk.proactor-over-nginx.c50.rps': 1.32 })[0]!.status).toBe('met');
    expect(t[1]!.status).toBe('not measured');
  });
});

describe('progress', () => {
  it('prints plain lines when stderr is not a TTY, with the time left', () => {
    const out: string[] = [];
    let now = 0;
    const p = new Progress(
      [
        { name: 'a', estimate: 10 },
        { name: 'b', estimate: 30 },
      ],
      {
        isTTY: false,
        write: (s) => (out.push(s), true),
      },
      () => now,
    );
    p.startScenario('a');
    now = 5;
    p.update(0.5, 'half');
    expect(p.remaining()).toBeCloseTo(35);
    p.endScenario();
    p.startScenario('b');
    expect(p.fraction()).toBeCloseTo(0.25);
    expect(out.join('')).toMatch(/a: half/);
    expect(out.every((l) => !l.includes('\x1b'))).toBe(true);
  });

  it('never lets a scenario fall back: the time left is not extrapolated over a restarted count', () => {
    let now = 0;
    const p = new Progress([{ name: 'c10k', estimate: 60 }], { isTTY: false, write: () => true }, () => now);
    p.startScenario('c10k');
    now = 2;
    p.update(0.1, 'first part');
    now = 10;
    p.update(0.5, 'first part');
    expect(p.remaining()).toBeCloseTo(10); // 0.4 in 8 s: 0.5 more in 10 s
    now = 13;
    p.update(0.06, 'second part, counting afresh'); // was read as 13 s for 6%: 3m24s left
    expect(p.fraction()).toBeCloseTo(0.5);
    expect(p.remaining()).toBeCloseTo((11 / 0.4) * 0.5);
  });

  it('measures the pace from the first progress, not across the set-up before it', () => {
    let now = 0;
    const p = new Progress([{ name: 's', estimate: 20 }], { isTTY: false, write: () => true }, () => now);
    p.startScenario('s');
    p.update(0, 'writing the test file');
    now = 9;
    p.update(0.02, 'first run done');
    now = 10;
    p.update(0.056, 'second run done'); // from the start: 10 s for 5.6%, 2m49s left
    expect(p.remaining()).toBeCloseTo(10); // too little progress to read a pace: the estimate
    now = 11;
    p.update(0.092, 'third run done');
    expect(p.remaining()).toBeCloseTo((2 / 0.072) * 0.908); // 7.2% in 2 s
  });

  it('says the time left in minutes and seconds, rounded to the second first', () => {
    expect([42, 59.4, 59.6, 60, 119.7, 169, 3600].map(fmtTime)).toEqual([
      '42s',
      '59s',
      '1m00s',
      '1m00s',
      '2m00s',
      '2m49s',
      '60m00s',
    ]);
  });

  it('counts the runs still to come with --repeat', () => {
    let now = 0;
    const sink = { isTTY: false, write: () => true };
    const p = new Progress([{ name: 'a', estimate: 10 }], sink, () => now, 2 * 12); // two more runs of 12 s
    p.startScenario('a');
    now = 5;
    p.update(0.5, 'half');
    expect(p.remaining()).toBeCloseTo(5 + 24);
  });

  it("c10k's fraction is the whole scenario's, rising across its models", () => {
    const at = { models: 3, deadline: 30, levels: 2, n: 1000 };
    const seq = [
      c10kFraction({ ...at, model: 0, seconds: 1, level: 0, got: 100 }),
      c10kFraction({ ...at, model: 0, seconds: 29, level: 1, got: 100 }), // slow: time says how far
      c10kFraction({ ...at, model: 1, seconds: 0.1, level: 0, got: 0 }),
      c10kFraction({ ...at, model: 1, seconds: 1, level: 1, got: 1000 }), // fast: connections say it
      c10kFraction({ ...at, model: 2, seconds: 2, level: 1, got: 500 }),
    ];
    for (let i = 1; i < seq.length; i++) expect(seq[i]!).toBeGreaterThanOrEqual(seq[i - 1]!);
    expect(seq[3]).toBeCloseTo(2 / 3);
    expect(seq[4]).toBeCloseTo((2 + 0.75) / 3);
  });

  it("uring-read's duel fills the rest of the bar, each depth its whole share", () => {
    // the duel starts at half-way, after the grid; three depths share the other half
    expect(duelProgress(0.5, 0, 0, 12)).toBeCloseTo(0.5);
    expect(duelProgress(0.5, 0, 12, 12)).toBeCloseTo(0.5 + 0.5 / 3); // where the next depth starts
    expect(duelProgress(0.5, 1, 0, 12)).toBeCloseTo(0.5 + 0.5 / 3);
    expect(duelProgress(0.5, 2, 12, 12)).toBeCloseTo(1);
  });
});

describe('machine line', () => {
  const base = { kernel: '6.1', cpuModel: 'X', node: 'v20', v8: '', memoryGiB: 4, mitigations: {}, loopbackSg: true };
  const line = (cores: number, onlineCpus?: number) =>
    describeMachine({ ...base, cores, onlineCpus } as unknown as Parameters<typeof describeMachine>[0]);

  it("names the machine's CPUs, and the bench's share when taskset gave it fewer", () => {
    expect(line(2, 2)).toMatch(/, 2 CPUs, /);
    expect(line(1, 2)).toMatch(/, 2 CPUs \(1 allowed to the bench\), /);
    expect(line(1, 1)).toMatch(/, 1 CPU, /);
    expect(line(4)).toMatch(/, 4 CPUs, /); // a report from before onlineCpus
  });

  it('says the mitigations are unknown where /sys does not show them, not "0/0 active"', () => {
    expect(line(2, 2)).toMatch(/; mitigations unknown; /);
    const shown = describeMachine({
      ...base,
      cores: 2,
      mitigations: { meltdown: 'Not affected', spectre_v2: 'Mitigation: Retpolines' },
    } as unknown as Parameters<typeof describeMachine>[0]);
    expect(shown).toMatch(/; 1\/2 vulnerability mitigations active; /);
  });

  it('records both on this machine, the bench within it', () => {
    const m = machine();
    expect(m.onlineCpus).toBeGreaterThanOrEqual(m.cores);
  });
});

describe('report', () => {
  it('writes report.json (rawio-bench/1), report.md and an SVG per chart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rawio-report-'));
    try {
      const r = buildReport({
        profile: 'quick',
        rawio: '0.0.0',
        cpuPlan: cpuPlan(),
        machine: machine(),
        scenarios: [
          {
            name: 'demo',
            title: 'Demo',
            description: 'd',
            status: 'ok',
            seconds: 1,
            log: [],
            result: {
              tables: [{ title: 'T', columns: ['a', 'b'], rows: [['x|y', 1]] }],
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
              metrics: { 'demo.x': 1 },
            },
          },
        ],
      });
      const files = await writeReport(r, dir);
      const json = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
      expect(json.schema).toBe('rawio-bench/1');
      expect(json.claims).toHaveLength(claims.length);
      expect(json.machine.cores).toBeGreaterThan(0);
      const md = readFileSync(join(dir, 'report.md'), 'utf8');
      expect(md).toMatch(/## Claims/);
      expect(md).toContain('x\\|y');
      expect(files).toContain('charts/demo-1.svg');
      expect(readFileSync(join(dir, 'charts/demo-1.svg'), 'utf8')).toMatch(/^<svg/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tools', () => {
  it('parses wrk output', () => {
    const out = `Running 2s test @ http://127.0.0.1:8080/
  Latency Distribution
     50%  210.00us
     75%  300.00us
     90%    1.20ms
     99%    2.00ms
  44000 requests in 2.00s, 5.00MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
Requests/sec:  22000.50
`;
    const w = parseWrk(out);
    expect(w).toEqual({ rps: 22000.5, requests: 44000, latencyUs: { p50: 210, p90: 1200, p99: 2000 }, errors: 3 });
    expect(wrkMeasured(w)).toBe(false);
  });

  it('reads a captured wrk run of non-2xx replies as errors, no figure', () => {
    // wrk -t1 -c2 -d1s --latency against a server answering 404 to everything
    const w = parseWrk(readFileSync(new URL('./fixtures/wrk-non-2xx.txt', import.meta.url), 'utf8'));
    expect(w.rps).toBe(43298.49);
    expect(w.requests).toBe(47605);
    expect(w.errors).toBe(47605);
    expect(w.latencyUs).toEqual({ p50: 39, p90: 74, p99: 1840 });
    expect(wrkMeasured(w)).toBe(false);
    const clean = { ...w, errors: 0 };
    expect(wrkMeasured(clean)).toBe(true);
    expect(wrkMeasured({ ...clean, requests: 0 })).toBe(false);
    expect(wrkMeasured({ ...clean, rps: NaN })).toBe(false); // no "Requests/sec" line
  });

  it('anchors-node and http-wrk both take a wrk run as a figure only by wrkMeasured', () => {
    for (const f of ['anchors-node', 'http-wrk']) {
      const src = readFileSync(new URL(`../bench/scenarios/${f}.ts`, import.meta.url), 'utf8');
      expect([f, /wrkMeasured\(w\)/.test(src)]).toEqual([f, true]);
    }
  });
});

describe('settle', () => {
  it('counts the CPU of a process tree, and waits for it to go quiet (up to its limit)', async () => {
    const busy = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
    try {
      // A spinning process is "never quiet" only if it gets the CPU: on a machine busy with
      // other work (CI runs test files side by side) a 100 ms window could give it none. At
      // the highest priority it is scheduled in every window; raising it needs root (else the
      // test runs at the usual priority, as before).
      try {
        setPriority(busy.pid!, -20);
      } catch {
        // not permitted: an unprivileged run
      }
      await new Promise((r) => setTimeout(r, 300));
      const child = treeCpuTicks(busy.pid!);
      expect(child).toBeGreaterThan(0);
      expect(treeCpuTicks(process.pid)).toBeGreaterThanOrEqual(child); // the child is in our tree
      expect(await settle([busy.pid!], 600)).toBeGreaterThanOrEqual(590); // never quiet: waits to the limit
    } finally {
      busy.kill('SIGKILL');
    }
    const idle = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 5000)'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 500)); // past Node's start-up
      expect(await settle([idle.pid!], 3000)).toBeLessThan(3000);
    } finally {
      idle.kill('SIGKILL');
    }
    expect(treeCpuTicks(0x7ffffff0)).toBe(0); // no such process
  });
});

describe("a server's CPU from /proc", () => {
  // A parent that, on "go", runs a child burning 0.3 s of CPU, waits for it (reaps it),
  // prints the child's own CPU µs and stays up: a multi-process master whose worker died
  // and was respawned, or an nginx master whose worker was replaced, within a window.
  const parent = `
    const { spawnSync } = require('node:child_process');
    const burn = 'for (;;) { const u = process.cpuUsage(); if (u.user + u.system > 300000) { console.log(u.user + u.system); break; } }';
    process.stdin.once('data', () => {
      const r = spawnSync(process.execPath, ['-e', burn], { encoding: 'utf8' });
      process.stdout.write('child ' + r.stdout.trim() + '\\n');
    });
    process.stdout.write('ready\\n');
    setTimeout(() => {}, 30000);`;

  it('counts a child that exited and was reaped within the window', async () => {
    const p = spawn(process.execPath, ['-e', parent], { stdio: ['pipe', 'pipe', 'ignore'] });
    try {
      let out = '';
      p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      const line = (re: RegExp) =>
        new Promise<RegExpMatchArray>((res, rej) => {
          const check = () => {
            const m = re.exec(out);
            if (m) return res(m);
            if (p.exitCode !== null) return rej(new Error(`parent exited: ${out}`));
            setTimeout(check, 20);
          };
          check();
        });
      await line(/ready/);
      const before = treeCpuTicks(p.pid!);
      p.stdin.write('go\n');
      const childUs = Number((await line(/child (\d+)/))[1]);
      const after = treeCpuTicks(p.pid!);
      expect(childUs).toBeGreaterThan(300000);
      // the reaped child's time is in the tree: at least its own CPU, less a tick of rounding
      const treeUs = ((after - before) / ticksPerSecond()) * 1e6;
      expect(treeUs).toBeGreaterThanOrEqual(childUs - 2e6 / ticksPerSecond());
    } finally {
      p.kill('SIGKILL');
    }
  });

  it('counts nginx from its master: the worker is in the tree', async (ctx) => {
    if (which('nginx') === null)
      ctx.skip('nginx is not installed (the bench runs it only where it is): nothing to count');
    const dir = mkdtempSync(join(tmpdir(), 'rawio-nginx-'));
    const n = (await startNginx(dir, cpuPlan().serverCpus))!;
    try {
      expect(n.rootPid).not.toBe(n.pid);
      const stat = readFileSync(`/proc/${n.pid}/stat`, 'utf8');
      expect(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])).toBe(n.rootPid); // the worker's parent
      expect(treeCpuTicks(n.rootPid)).toBeGreaterThanOrEqual(treeCpuTicks(n.pid));
    } finally {
      await n.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('pinned server child', () => {
  it('starts node:http pinned, serves the load generator, reports its count, exits on close', async () => {
    const plan = cpuPlan();
    const server = await startServer({
      module: new URL('../dist/bench/servers/node.js', import.meta.url).href,
      export: 'nodeHttp',
      cpus: plan.serverCpus,
    });
    const affinity = readFileSync(`/proc/${server.pid}/status`, 'utf8').match(/Cpus_allowed_list:\s*(\S+)/)![1];
    expect(affinity).toBe(plan.serverCpus.join(','));
    const r = await loadgen({
      port: server.port,
      protocol: 'http',
      connections: 2,
      durationMs: 200,
      cpus: plan.clientCpus,
    });
    expect((await server.stats()).requests).toBe(r.received);
    await server.close();
    expect(existsSync(`/proc/${server.pid}`)).toBe(false);
  });

  it('stats() of a child that has died rejects instead of waiting for ever, as does close() resolve', async () => {
    const server = await startServer({
      module: new URL('../dist/bench/servers/node.js', import.meta.url).href,
      export: 'nodeHttp',
      cpus: cpuPlan().serverCpus,
    });
    process.kill(server.pid, 'SIGKILL');
    expect(await eventually(() => !existsSync(`/proc/${server.pid}`))).toBe(true); // reaped: its 'exit' has come
    await expect(server.stats()).rejects.toThrow(
      /server child nodeHttp \(pid \d+\) killed by SIGKILL before its stats/,
    );
    await server.close();
  });
});

describe('pinning without taskset', () => {
  // PATH holds node, sh and redis-server, not taskset: each child must still be born on its
  // CPU, every thread of it (Node's helpers, redis-server's background threads).
  const allowed = cpuPlan();
  const oneCpu = allowed.separate ? undefined : 'one CPU allowed here: server and client cannot be pinned apart';

  it.skipIf(oneCpu)(
    titled('pins a server child and an external server from birth, every thread', oneCpu),

    () => {
      const dir = mkdtempSync(join(tmpdir(), 'rawio-no-taskset-'));
      try {
        const bin = join(dir, 'bin');
        mkdirSync(bin);
        symlinkSync(process.execPath, join(bin, 'node'));
        symlinkSync('/bin/sh', join(bin, 'sh'));
        const redis = which('redis-server');
        if (redis) symlinkSync(redis, join(bin, 'redis-server'));
        const cpu = allowed.clientCpus[0]!; // not the first CPU, where an unpinned thread may happen to be
        const dist = new URL('../dist/bench/', import.meta.url).href;
        const script = `
        const { readFileSync, readdirSync } = await import('node:fs');
        const { startServer } = await import('${dist}server.js');
        const { startRedis } = await import('${dist}lib/external.js');
        const { which } = await import('${dist}tools.js');
        const threads = (pid) => readdirSync('/proc/' + pid + '/task').map((t) =>
          /Cpus_allowed_list:\\s*(\\S+)/.exec(readFileSync('/proc/' + pid + '/task/' + t + '/status', 'utf8'))[1]);
        const out = { taskset: which('taskset'), parent: threads(process.pid)[0] };
        const s = await startServer({ module: '${dist}servers/node.js', export: 'nodeHttp', cpus: [${cpu}] });
        out.server = threads(s.pid);
        await s.close();
        const r = await startRedis([${cpu}]);
        if (r) { out.redis = threads(r.pid); await r.close(); }
        console.log(JSON.stringify(out));`;
        const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
          env: { PATH: bin, HOME: dir },
          encoding: 'utf8',
          timeout: 60_000,
        });
        expect(res.status, res.stderr).toBe(0);
        const out = JSON.parse(res.stdout) as { taskset: null; parent: string; server: string[]; redis?: string[] };
        expect(out.taskset).toBeNull();
        expect(out.parent).not.toBe(String(cpu)); // the bench's own thread is back on all its CPUs
        expect(out.server.length).toBeGreaterThan(1);
        expect(new Set(out.server)).toEqual(new Set([String(cpu)]));
        if (redis) expect(out.redis?.length).toBeGreaterThan(1);
        if (redis) expect(new Set(out.redis)).toEqual(new Set([String(cpu)]));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    70_000,
  );
});

describe('rawio command', () => {
  const cli = new URL('../dist/src/cli.js', import.meta.url).pathname;
  it('prints the probe as JSON and usage on --help', () => {
    const p = JSON.parse(execFileSync(cli, ['probe', '--json'], { encoding: 'utf8' }));
    expect(p.cpus).toBeGreaterThan(0);
    expect(execFileSync(cli, ['--help'], { encoding: 'utf8' })).toMatch(/rawio probe/);
  });
});

describe('a bench with none of its tools installed', () => {
  it('runs, and each section it could not measure says why in the summary on stdout', () => {
    // PATH holds node alone: no wrk, nginx, redis-server, redis-benchmark, fio, strace or cc.
    const dir = mkdtempSync(join(tmpdir(), 'rawio-bare-path-'));
    try {
      const bin = join(dir, 'bin');
      mkdirSync(bin);
      symlinkSync(process.execPath, join(bin, 'node'));
      const main = new URL('../dist/bench/main.js', import.meta.url).pathname;
      const res = spawnSync(process.execPath, [main, '--only', 'http-wrk,redis-benchmark', '--out', dir], {
        env: { PATH: bin, HOME: dir },
        encoding: 'utf8',
        timeout: 110_000,
      });
      expect(res.status, res.stderr).toBe(0);
      const section = (title: RegExp) => {
        const at = res.stdout.search(title);
        expect(at, res.stdout).toBeGreaterThanOrEqual(0);
        return res.stdout.slice(at, res.stdout.indexOf('\n== ', at + 1) >>> 0);
      };
      expect(section(/^== HTTP targets by wrk/m)).toMatch(/wrk is not installed/);
      expect(section(/^== redis-benchmark/m)).toMatch(/redis-benchmark is not installed/);
      expect(existsSync(join(dir, 'report.md'))).toBe(true);
      // and every target they decide says which tool it lacked, not which metric keys
      const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as {
        targets: { target: string; status: string; figures: string }[];
      };
      const of = (re: RegExp) => report.targets.filter((t) => re.test(t.target));
      expect(of(/by wrk/).length).toBeGreaterThan(0);
      for (const t of of(/by wrk/))
        expect([t.status, t.figures]).toEqual(['not measured', 'not measured: wrk is not installed']);
      for (const t of of(/by redis-benchmark/))
        expect([t.status, t.figures]).toEqual(['not measured', 'not measured: redis-benchmark is not installed']);
      // the summary on stdout gives the reason too
      expect(res.stdout).toMatch(/\[not measured\] HTTP hello by wrk.* — wrk is not installed/);
      expect(res.stdout).toMatch(/\[not measured\] 4 KiB O_DIRECT .* — scenario uring-read did not run/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
