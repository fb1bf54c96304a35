/**
 * A load-generator run with errors is no figure: the one rule (bench/tools.ts
 * loadgenFailure) and every scenario that turns load-generator runs into the metrics the
 * claims and targets read (servers, latency, static, pollution, and the load generator's
 * agreement with wrk and redis-benchmark in anchors-node and redis-benchmark; lt-et, whose
 * load the load generator makes). Pure functions over
 * synthetic results: an errored round never reaches a claim's figures, its errors still
 * show in the table with the reason it was not counted.
 */
import { describe, expect, it } from 'vitest';
import { judgeClaims } from '../dist/bench/claims.js';
import { loadgenFailure, loadgenMeasured } from '../dist/bench/tools.js';
import * as servers from '../dist/bench/scenarios/servers.js';
import * as latency from '../dist/bench/scenarios/latency.js';
import * as statics from '../dist/bench/scenarios/static.js';
import * as pollution from '../dist/bench/scenarios/pollution.js';
import * as anchors from '../dist/bench/scenarios/anchors-node.js';
import * as ltEt from '../dist/bench/scenarios/lt-et.js';
import { loadgenRound, redisReport } from '../dist/bench/scenarios/redis-benchmark.js';
import type { Comparison } from '../dist/bench/runner.js';
import { summarize } from '../dist/bench/stats.js';
import { judgeTargets } from '../dist/bench/targets.js';

const NO_ERRORS = { connect: 0, reset: 0, badReply: 0, errorReply: 0, lost: 0 };

/** A synthetic load-generator result: clean unless `errors` or `ended` say otherwise. */
function run(rps: number, o: { errors?: Partial<typeof NO_ERRORS>; ended?: string; p99?: number } = {}) {
  const p99 = o.p99 ?? 500;
  return {
    requests: Math.round(rps),
    rps,
    seconds: 1,
    received: Math.round(rps),
    bytesIn: rps * 100,
    bytesInWindow: rps * 100,
    ended: o.ended ?? 'done',
    errors: { ...NO_ERRORS, ...o.errors },
    latencyUs: { p50: p99 / 5, p99, p999: p99 * 2, count: Math.round(rps) },
  };
}

/** Half the connections reset: the run a fast-looking broken server gives. */
const RESETS = { errors: { reset: 25, lost: 25 } };

const claim = (m: Record<string, number>, ran: string, id: number) =>
  judgeClaims(m, new Set([ran]), { cores: 4, serverCpus: 2 }).find((c) => c.id === id)!;

describe('loadgenFailure: when a load-generator run is a figure', () => {
  it('a clean run that ended as asked is one', () => {
    expect(loadgenFailure(run(1000))).toBeUndefined();
    expect(loadgenMeasured(run(1000))).toBe(true);
  });

  it('any connect error, reset, bad reply, error reply or lost request makes it none, named', () => {
    for (const [kind, text] of [
      ['connect', 'connect errors 1'],
      ['reset', 'resets 1'],
      ['badReply', 'bad replies 1'],
      ['errorReply', 'error replies 1'],
      ['lost', 'lost 1'],
    ] as const) {
      const why = loadgenFailure(run(1000, { errors: { [kind]: 1 } }));
      expect([kind, why]).toEqual([kind, expect.stringContaining(text)]);
      expect(why).toMatch(/^not counted: /);
    }
  });

  it('a run that did not end as asked, or measured no reply, is none', () => {
    for (const ended of ['stopped', 'stalled', 'unreachable'])
      expect(loadgenFailure(run(1000, { ended }))).toContain(`ended '${ended}'`);
    expect(loadgenFailure(run(0))).toContain('no reply in the window');
    expect(loadgenFailure({ ...run(1000), rps: NaN })).toContain('no reply in the window');
  });

  it('the stated allowance of cut replies covers lost requests alone, never beside a reset or bad reply', () => {
    expect(loadgenFailure(run(10, { errors: { lost: 1 } }), { cutReplies: 1 })).toBeUndefined();
    expect(loadgenFailure(run(10, { errors: { lost: 2 } }), { cutReplies: 1 })).toContain('lost 2');
    expect(loadgenFailure(run(10, { errors: { lost: 1, reset: 1 } }), { cutReplies: 1 })).toContain('lost 1');
    expect(loadgenFailure(run(10, { errors: { lost: 1 } }))).toContain('lost 1');
  });
});

describe('servers: an errored round is no figure of claims 6, 8, 9 and 11', () => {
  const row = (server: string, rounds: ReturnType<typeof run>[]) => {
    const r = {
      protocol: 'http' as 'http' | 'echo' | 'resp',
      connections: 50,
      pipeline: 1,
      server,
      rps: [] as number[],
      p50: [] as number[],
      p99: [] as number[],
      errors: 0,
      excluded: [] as string[],
    };
    for (const x of rounds) servers.recordRound(r, x);
    return r;
  };

  it('a server that resets in every round has no req/s, and claim 6 reads not measured', () => {
    const rows = [
      row('single', [run(10_000), run(10_000), run(10_000)]),
      row('multi-reactor', [run(90_000, RESETS), run(90_000, RESETS), run(90_000, RESETS)]),
    ];
    const m = servers.metricsOf(rows);
    expect(m['servers.http.multi-reactor.c50.rps']).toBeUndefined();
    expect(m['servers.http.multi-reactor.c50.p99us']).toBeUndefined();
    expect(m['servers.http.multi-reactor.c50.errors']).toBe(150);
    expect(m['servers.http.single.c50.rps']).toBe(10_000);
    expect(claim(m, 'servers', 6).verdict).toBe('not measured');
    // its row is still shown, with its errors and why it is not counted
    const t = servers.tableOf(rows);
    const shown = t.rows.find((r) => r[2] === 'multi-reactor')!;
    const col = (name: string) => shown[t.columns.indexOf(name)];
    expect(col('req/s')).toBe('no figure');
    expect(col('rounds')).toBe('0 of 3');
    expect(col('errors')).toBe(150);
    expect(col('not counted')).toMatch(/3 round\(s\) not counted: resets 25, lost 25/);
  });

  it('an errored round is dropped from the median, the others counted, the round count shown', () => {
    const single = row('single', [run(10_000), run(10_000), run(10_000)]);
    const mr = row('multi-reactor', [run(20_000), run(900_000, RESETS), run(22_000)]);
    const m = servers.metricsOf([single, mr]);
    expect(m['servers.http.multi-reactor.c50.rps']).toBe(21_000);
    expect(claim(m, 'servers', 6).figures).toContain('2.10x');
    const t = servers.tableOf([single, mr]);
    const shown = t.rows.find((r) => r[2] === 'multi-reactor')!;
    expect(shown[t.columns.indexOf('rounds')]).toBe('2 of 3');
    expect(shown[t.columns.indexOf('min–max')]).not.toContain('900');
  });

  it('claims 9 and 11 and the A/A floor never read an errored round', () => {
    const aa = row('single A/A', [run(10_000), run(1_000, { errors: { badReply: 3 } }), run(10_000)]);
    const rows = [
      row('single', [run(10_000), run(10_000), run(10_000)]),
      aa,
      row('multi-reactor-1', [run(50_000, { errors: { connect: 1 } }), run(50_000, { ended: 'stalled' })]),
      row('proactor', [run(10_000), run(10_000)]),
      row('multi-proactor-1', [run(50_000, { errors: { errorReply: 9 } })]),
    ];
    const m = servers.metricsOf(rows);
    // a floor from the clean pairs only: 1, not the 10x a bad-reply round would make
    expect(m['servers.http.floor.c50']).toBe(1);
    expect(m['servers.http.multi-reactor-1.c50.rps']).toBeUndefined();
    expect(m['servers.http.multi-proactor-1.c50.rps']).toBeUndefined();
    expect(claim(m, 'servers', 9).verdict).toBe('not measured');
    expect(claim(m, 'servers', 11).verdict).toBe('not measured');
  });

  it('claim 8 reads not measured when the proactor only answered with errors', () => {
    const rows = ['http', 'echo', 'resp'].flatMap((protocol) =>
      [row('single', [run(10_000)]), row('proactor', [run(40_000, RESETS)])].map((r) => ({
        ...r,
        protocol: protocol as 'http' | 'echo' | 'resp',
      })),
    );
    const m = servers.metricsOf(rows);
    for (const p of ['http', 'echo', 'resp']) expect(m[`servers.${p}.proactor.c50.rps`]).toBeUndefined();
    expect(claim(m, 'servers', 8).verdict).toBe('not measured');
  });
});

describe('latency: an errored round has no percentiles', () => {
  const row = (server: string, rounds: ReturnType<typeof run>[]) => {
    const r = {
      protocol: 'http' as 'http' | 'resp',
      server,
      rate: 1000,
      pct: { p50: [] as number[], p99: [] as number[], p999: [] as number[] },
      achieved: [] as number[],
      errors: 0,
      excluded: [] as string[],
    };
    for (const x of rounds) latency.recordRound(r, x);
    return r;
  };

  it('a round with errors leaves the medians, one with none everywhere leaves no metric', () => {
    const rows = [
      row('single', [run(1000, { p99: 400 }), run(1000, { p99: 50, errors: { lost: 40 } }), run(1000, { p99: 600 })]),
      row('iterative', [run(20, { p99: 10, errors: { lost: 49, connect: 2 } })]),
    ];
    const res = latency.report(rows);
    expect(res.metrics!['latency.http.single.p99us']).toBe(500);
    expect(res.metrics!['latency.http.iterative.p99us']).toBeUndefined();
    const t = res.tables[0]!;
    const it = t.rows.find((r) => r[1] === 'iterative')!;
    expect(it[t.columns.indexOf('rounds')]).toBe('0 of 1');
    expect(it[t.columns.indexOf('errors')]).toBe(51);
    expect(it[t.columns.indexOf('not counted')]).toContain('lost 49');
    expect(t.rows.find((r) => r[1] === 'single')![t.columns.indexOf('rounds')]).toBe('2 of 3');
  });
});

describe('static: an errored round is no req/s, MB/s or CPU figure', () => {
  const cell = (server: string, key: string, size: number) => ({
    size,
    server,
    key,
    connections: 50,
    rps: [] as number[],
    cpuUsPerReq: [] as number[],
    p99us: [] as number[],
    errors: 0,
    errorKinds: {} as Record<string, number>,
    excluded: [] as string[],
  });

  it('a server that resets is absent from the metrics, shown with its errors; an errored round leaves the medians', () => {
    const size = 64 << 10;
    const nginx = cell('nginx sendfile on', 'nginx-sendfile', size);
    const bad = cell('rawio sendfile', 'rawio-sendfile', size);
    const some = cell('rawio readwrite', 'rawio-readwrite', size);
    const samples: Record<string, number[]> = {};
    const feed = (c: ReturnType<typeof cell>, rounds: ReturnType<typeof run>[]) =>
      (samples[c.server] = rounds.map((r) => statics.recordRound(c, r, 0.5).mbps));
    feed(nginx, [run(1000), run(1000)]);
    feed(bad, [run(50_000, RESETS), run(50_000, RESETS)]);
    feed(some, [run(2000), run(90_000, { errors: { errorReply: 5 } })]);
    const summary = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, summarize(v)]));
    const comparison: Comparison = { samples, summary };
    const res = statics.report([{ size, cells: [nginx, bad, some], comparison }], [], true);
    expect(res.metrics!['static.rawio-sendfile.64k.rps']).toBeUndefined();
    expect(res.metrics!['static.rawio-sendfile.64k.MBps']).toBeUndefined();
    expect(res.metrics!['static.rawio-sendfile.64k.cpuUsPerReq']).toBeUndefined();
    expect(res.metrics!['static.rawio-sendfile.64k.errors']).toBe(100);
    expect(res.metrics!['static.rawio-readwrite.64k.rps']).toBe(2000);
    expect(res.metrics!['static.rawio-readwrite.64k.cpuUsPerReq']).toBe(250);
    const t = res.tables[0]!;
    const row = t.rows.find((r) => r[1] === 'rawio sendfile')!;
    expect(row[t.columns.indexOf('req/s')]).toBe('no figure');
    expect(row[t.columns.indexOf('errors')]).toBe(100);
    expect(row[t.columns.indexOf('not counted')]).toContain('resets 25');
    expect(t.rows.find((r) => r[1] === 'rawio readwrite')![t.columns.indexOf('rounds')]).toBe('1 of 2');
  });
});

describe('pollution: a round with errors is no figure of claim 5', () => {
  const settings = { large: 2, largeMiB: 128, small: 500, smallKiB: 4, clients: 2, conns: 4, seconds: 2, repeats: 2 };
  const large = () => [run(4), run(4)];

  it('a small client that reset makes the round no figure; none left: claim 5 reads not measured', () => {
    const direct = [
      pollution.sampleOf(large(), [run(50_000, RESETS), run(50_000)]),
      pollution.sampleOf(large(), [run(50_000), run(50_000, { errors: { lost: 3 } })]),
    ];
    const buffered = [pollution.sampleOf(large(), [run(5000), run(5000)])];
    expect(direct.every((x) => x.excluded !== undefined && Number.isNaN(x.smallRps))).toBe(true);
    const res = pollution.report({ buffered, direct }, new Map(), settings, 1.05);
    expect(res.metrics!['pollution.small.rps.direct']).toBeUndefined();
    expect(res.metrics!['pollution.small.rps.buffered']).toBe(10_000);
    expect(claim(res.metrics!, 'pollution', 5).verdict).toBe('not measured');
    const t = res.tables[0]!;
    const row = t.rows.find((r) => String(r[0]).startsWith('direct'))!;
    expect(row[t.columns.indexOf('small req/s')]).toBe('no figure');
    expect(row[t.columns.indexOf('rounds')]).toBe('0 of 2');
    expect(row[t.columns.indexOf('errors')]).toBe(53);
    expect(row[t.columns.indexOf('not counted')]).toContain('small client 0 not counted: resets 25');
  });

  it('an errored round leaves the median; one large file cut by the drain is no error', () => {
    const cut = [run(4, { errors: { lost: 1 } }), run(4)];
    const direct = [
      pollution.sampleOf(cut, [run(6000), run(6000)]),
      pollution.sampleOf(large(), [run(90_000, { errors: { badReply: 1 } }), run(90_000)]),
      pollution.sampleOf([run(4, { errors: { lost: 2 } }), run(4)], [run(80_000), run(80_000)]),
    ];
    expect(direct[0]!.excluded).toBeUndefined();
    expect(direct[0]!.errors).toBe(0);
    expect(direct[2]!.excluded).toContain('large stream 0 not counted: lost 2');
    const buffered = [pollution.sampleOf(large(), [run(5000), run(5000)])];
    const res = pollution.report({ buffered, direct }, new Map(), settings, 1.05);
    expect(res.metrics!['pollution.small.rps.direct']).toBe(12_000);
    expect(claim(res.metrics!, 'pollution', 5).figures).toContain('1.20x');
    const t = res.tables[0]!;
    expect(t.rows.find((r) => String(r[0]).startsWith('direct'))![t.columns.indexOf('rounds')]).toBe('1 of 3');
  });
});

/** What compare() makes of the samples: each contender's summary over its finite rounds. */
const comparisonOf = (samples: Record<string, number[]>): Comparison => ({
  samples,
  summary: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, summarize(v)])),
});

describe('anchors-node: an errored load-generator run is no figure of the loadgen/wrk agreement', () => {
  const acc = () => ({ latency: {}, cpuUsPerReq: [] as number[], errors: 0, excluded: [] as string[] });
  const lg = (rps: number, o: Parameters<typeof run>[1] = {}) => ({ ...run(rps, o), cpuSeconds: 0.1 });

  it('loadgen runs that all reset leave no req/s, p99 or ratio to wrk; an errored round leaves the median', () => {
    const a = acc();
    const bad = [lg(90_000, RESETS), lg(90_000, RESETS)].map((r) => anchors.recordLoadgenRound(a, r, true));
    expect(bad.every(Number.isNaN)).toBe(true);
    expect(a.errors).toBe(100);
    expect(a.excluded[0]).toContain('resets 25');
    const b = acc();
    const some = [lg(11_000), lg(90_000, { errors: { lost: 1 } }), lg(9_000)].map((r) =>
      anchors.recordLoadgenRound(b, r, true),
    );
    const caseOf = (loadgen: number[], server: 'node:http' | 'node:net echo', connections: number) => ({
      server,
      protocol: 'http' as const,
      connections,
      comparison: comparisonOf({ 'rawio loadgen': loadgen, wrk: [10_000, 10_000, 10_000].slice(0, loadgen.length) }),
      latency: { 'rawio loadgen': { p50: NaN, p99: NaN } },
      cpuUsPerReq: NaN,
      countsMatch: true,
      errors: 0,
    });
    const res = anchors.report([caseOf(bad, 'node:http', 50), caseOf(some, 'node:http', 1)], true);
    const m = res.metrics!;
    expect(m['anchors.node-http.c50.rps']).toBeUndefined();
    expect(m['anchors.loadgen-over-wrk.node-http.c50']).toBeUndefined();
    expect(m['anchors.wrk.node-http.c50.rps']).toBe(10_000);
    expect(m['anchors.node-http.c1.rps']).toBe(10_000);
    const t = judgeTargets(m).find((x) => x.target.startsWith('Load generator / wrk, node:http'))!;
    expect(t.status).toBe('not measured');
  });
});

describe('redis-benchmark: an errored load-generator run is no figure of the agreement target', () => {
  it('a run with errors or not ended as asked reads NaN, logged; none counted: no metric', () => {
    const round = (set: ReturnType<typeof run>, get: ReturnType<typeof run>) =>
      loadgenRound('redis-server', 1, [
        { command: 'set', r: set },
        { command: 'get', r: get },
      ]);
    const clean = round(run(50_000), run(60_000));
    expect(clean).toEqual({ rps: [50_000, 60_000], errors: [] });
    const bad = round(run(90_000, RESETS), run(90_000, { ended: 'stopped' }));
    expect(bad.rps.every(Number.isNaN)).toBe(true);
    expect(bad.errors[0]).toMatch(/set -P 1: 50 errors, not counted: resets 25/);
    expect(bad.errors[1]).toMatch(/get -P 1: 0 errors, not counted: ended 'stopped'/);
    const samples: Record<string, number[]> = {};
    for (const [i, t] of (['set', 'get'] as const).entries()) {
      samples[`redis-benchmark|redis-server|1|${t}`] = [50_000, 50_000];
      samples[`loadgen|redis-server|1|${t}`] = [bad.rps[i]!, i === 0 ? bad.rps[i]! : clean.rps[i]!];
    }
    const { metrics } = redisReport(samples, [{ name: 'redis-server' as const, key: 'redis' }], [1], []);
    expect(metrics!['redisbench.loadgen.redis.set.p1.rps']).toBeUndefined();
    expect(metrics!['redisbench.loadgen.redis.get.p1.rps']).toBe(60_000);
  });
});

describe('lt-et: a round whose load had errors is no figure of claim 2', () => {
  const zero = { wakeups: 0, events: 0, bytes: 0 };
  /** A round: `wakeups` wakeups over 1 MiB echoed. */
  const round = (wakeups: number, r = run(1000)) =>
    ltEt.sampleOf(zero, { wakeups, events: wakeups * 2, bytes: 1 << 20 }, r);

  it('an errored round leaves the paired ratio and the floor; with none counted, claim 2 reads not measured', () => {
    const lt = [round(100), round(100), round(100)];
    const aa = [round(100), round(1, run(1000, RESETS)), round(100)];
    const et = [round(50), round(1, run(1000, { errors: { lost: 9 } })), round(50)];
    expect(et[1]!.excluded).toContain('lost 9');
    const res = ltEt.report({ lt, et, aa }, {}, 1);
    expect(res.metrics!['lt-et.et-over-lt.wakeups']).toBe(0.5);
    expect(res.metrics!['lt-et.et.wakeupsPerMiB']).toBe(50);
    expect(res.metrics!['lt-et.floor']).toBe(1);
    expect(res.tables[0]!.note).toContain('ET 1 of 3 (not counted: lost 9)');
    const none = [round(1, run(1000, RESETS)), round(1, run(1000, { ended: 'stalled' }))];
    const bad = ltEt.report({ lt: lt.slice(0, 2), et: none, aa: aa.slice(0, 1) }, {}, 1);
    expect(bad.metrics!['lt-et.et.wakeupsPerMiB']).toBeUndefined();
    expect(bad.metrics!['lt-et.et-over-lt.wakeups']).toBeUndefined();
    expect(claim(bad.metrics!, 'lt-et', 2).verdict).toBe('not measured');
    expect(bad.tables[0]!.rows.find((r) => String(r[0]).startsWith('ET'))![1]).toBe('no figure');
  });
});
