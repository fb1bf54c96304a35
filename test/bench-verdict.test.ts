/**
 * The noise-aware verdicts: the A/A floor, targets and claims read against it, the
 * anchor-judged targets, and whether verdicts held across repeated runs. All pure
 * functions over figures given here.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { combineGrades, judgeClaims } from '../dist/bench/claims.js';
import { parseBenchArgs } from '../dist/bench/main.js';
import { buildReport, renderMarkdown, withRepeats, type Report } from '../dist/bench/report.js';
import { ticksPerSecond } from '../dist/bench/lib/external.js';
import { recordWrkRun, wrkReport } from '../dist/bench/scenarios/http-wrk.js';
import { duelReport } from '../dist/bench/scenarios/uring-read-duel.js';
import { redisReport } from '../dist/bench/scenarios/redis-benchmark.js';
import { c10kReport } from '../dist/bench/scenarios/c10k.js';
import { formatRatio } from '../dist/bench/stats.js';
import { floorCell, judgeTargets, ratioText } from '../dist/bench/targets.js';
import {
  formatFloor,
  gradeClaim,
  heldAcross,
  heldWord,
  judgeAll,
  judgeRatio,
  noiseFloor,
  withinFloor,
} from '../dist/bench/verdict.js';

/** A quick-profile report's inputs besides its scenarios: the server on CPU 0, the client on CPU 1. */
const quick = (machine: object) => ({
  profile: 'quick' as const,
  rawio: '0',
  cpuPlan: { serverCpus: [0], clientCpus: [1], separate: true },
  machine: machine as unknown as Parameters<typeof buildReport>[0]['machine'],
});

describe('noise floor', () => {
  it('is the largest A/A spread as a factor, the same whichever side is larger', () => {
    expect(noiseFloor([100, 100, 100], [110, 95, 100])).toBeCloseTo(1.1, 10);
    expect(noiseFloor([110], [100])).toBeCloseTo(noiseFloor([100], [110])!, 12);
    expect(noiseFloor([5, 5], [5, 5])).toBe(1);
  });

  it('skips unusable pairs and is undefined with none', () => {
    expect(noiseFloor([], [])).toBeUndefined();
    expect(noiseFloor([NaN, 0, -1, 100], [100, 100, 100, 120])).toBeCloseTo(1.2, 10);
    expect(noiseFloor([NaN], [1])).toBeUndefined();
    expect(noiseFloor([1, 2, 3], [1])).toBe(1); // only the rounds both have
  });

  it('says the floor in words', () => {
    expect(formatFloor(1.083)).toBe('A/A floor ±8.3%');
    expect(formatFloor(undefined)).toBe('no A/A floor');
  });
});

describe('a floor that is no floor', () => {
  it('(NaN, 0, under 1) reads as none: in the verdict, in the words and in the targets table', () => {
    for (const bad of [NaN, 0, 0.5, -1]) {
      expect(formatFloor(bad)).toBe('no A/A floor');
      expect(withinFloor(1.1, 1.1, bad)).toBe(false);
      const t = judgeTargets({ 'http-wrk.single-over-nginx.c50.rps': 1.09, 'http-wrk.floor.rps': bad }).find((x) =>
        /single >= 1\.1x nginx/.test(x.target),
      )!;
      expect(t.status).toBe('missed');
      expect(t.figures).toMatch(/; no A\/A floor$/);
      expect(t.floor).toBeUndefined();
      expect(floorCell(t)).toBe('not measured');
    }
    expect(formatFloor(1)).toBe('A/A floor ±0.0%');
  });
});

describe('withinFloor', () => {
  it('measures distance in log space, symmetric over and under the bound', () => {
    expect(withinFloor(1.1, 1, 1.1)).toBe(true);
    expect(withinFloor(1 / 1.1, 1, 1.1)).toBe(true);
    expect(withinFloor(1.11, 1, 1.1)).toBe(false);
    expect(withinFloor(0.9, 1, 1.1)).toBe(false); // 1/0.9 = 1.111 > 1.1
  });

  it('is never true without a usable floor or bound', () => {
    expect(withinFloor(1, 1, undefined)).toBe(false);
    expect(withinFloor(1, 1, 0.5)).toBe(false);
    expect(withinFloor(1, 0, 2)).toBe(false);
    expect(withinFloor(0, 1, 2)).toBe(false);
    expect(withinFloor(NaN, 1, 2)).toBe(false);
  });
});

describe('judgeRatio', () => {
  const floor = 1.05;
  it('meets or misses when the ratio is clear of the floor', () => {
    expect(judgeRatio(1.5, { min: 1.3 }, floor)).toBe('met');
    expect(judgeRatio(1.1, { min: 1.3 }, floor)).toBe('missed');
    expect(judgeRatio(0.5, { min: 0, max: 0.8 }, floor)).toBe('met');
    expect(judgeRatio(1.0, { min: 0, max: 0.8 }, floor)).toBe('missed');
  });

  it('reads "within noise" near either bound, on both sides', () => {
    expect(judgeRatio(1.28, { min: 1.3 }, floor)).toBe('within noise');
    expect(judgeRatio(1.33, { min: 1.3 }, floor)).toBe('within noise');
    expect(judgeRatio(0.82, { min: 0, max: 0.8 }, floor)).toBe('within noise');
    expect(judgeRatio(0.78, { min: 0, max: 0.8 }, floor)).toBe('within noise');
    expect(judgeRatio(1.16, { min: 0.85, max: 1.15 }, floor)).toBe('within noise');
  });

  it('falls back to the plain rule with no floor, and misses a ratio that is not a number', () => {
    expect(judgeRatio(1.29, { min: 1.3 }, undefined)).toBe('missed');
    expect(judgeRatio(1.3, { min: 1.3 }, undefined)).toBe('met');
    expect(judgeRatio(NaN, { min: 1 }, 2)).toBe('missed');
  });

  it('combines several ratios: a clear miss wins, then noise, then met', () => {
    expect(judgeAll(['met', 'within noise', 'missed'])).toBe('missed');
    expect(judgeAll(['met', 'within noise'])).toBe('within noise');
    expect(judgeAll(['met', 'met'])).toBe('met');
  });
});

describe('gradeClaim', () => {
  const t = { confirmAt: 1.05, refuteAt: 1 };
  it('confirms, refutes or depends clear of the floor', () => {
    expect(gradeClaim(1.2, t, 1.02)).toBe('confirmed');
    expect(gradeClaim(0.9, t, 1.02)).toBe('refuted');
    expect(gradeClaim(1.025, t, 1.001)).toBe('depends');
  });

  it('is within noise near either threshold', () => {
    expect(gradeClaim(1.06, t, 1.02)).toBe('within noise');
    expect(gradeClaim(0.99, t, 1.02)).toBe('within noise');
    expect(gradeClaim(1.2, t, 1.2)).toBe('within noise');
  });

  it('flips direction when a lower ratio confirms', () => {
    const low = { confirmAt: 1.05, refuteAt: 1.1, lowerConfirms: true };
    expect(gradeClaim(0.95, low, 1.01)).toBe('confirmed');
    expect(gradeClaim(1.3, low, 1.01)).toBe('refuted');
    expect(gradeClaim(1.075, low, 1.001)).toBe('depends');
    expect(gradeClaim(1.09, low, 1.02)).toBe('within noise');
  });
});

describe('claims against the servers floor', () => {
  const ran = new Set(['servers']);
  const m = (proactor: number, floor?: number) => ({
    'servers.http.single.c50.rps': 100,
    'servers.http.proactor.c50.rps': proactor,
    ...(floor === undefined ? {} : { 'servers.http.floor.c50': floor }),
  });
  const claim8 = (x: Record<string, number>) => judgeClaims(x, ran, { cores: 2 }).find((c) => c.id === 8)!;

  it('claim 8 is within noise when proactor/single sits inside the A/A floor', () => {
    expect(claim8(m(103, 1.1)).verdict).toBe('within noise');
    expect(claim8(m(103, 1.1)).figures).toMatch(/A\/A floor ±10\.0%/);
    expect(claim8(m(130, 1.1)).verdict).toBe('confirmed');
    expect(claim8(m(80, 1.1)).verdict).toBe('refuted');
    expect(claim8(m(103)).verdict).toBe('depends'); // no floor: the plain rule
  });

  it('claim 8 is within noise, not "depends", when the clear protocols agree and one is within noise', () => {
    // resp 1.04x sits within ±10% of 1.05: it could confirm or not
    const x = {
      ...m(130, 1.01),
      'servers.resp.single.c50.rps': 100,
      'servers.resp.proactor.c50.rps': 104,
      'servers.resp.floor.c50': 1.1,
    };
    expect(claim8(x).verdict).toBe('within noise');
    expect(combineGrades(['confirmed', 'within noise'])).toBe('within noise');
    expect(combineGrades(['refuted', 'refuted'])).toBe('refuted');
    expect(combineGrades(['confirmed', 'refuted', 'within noise'])).toBe('depends');
    expect(combineGrades(['within noise'])).toBe('within noise');
  });

  it('claim 8 depends when protocols disagree', () => {
    const x = { ...m(130, 1.01), 'servers.resp.single.c50.rps': 100, 'servers.resp.proactor.c50.rps': 80 };
    expect(claim8(x).verdict).toBe('depends');
    expect(claim8(x).figures).toMatch(/http: 1\.30x \(confirmed.*resp: 0\.80x \(refuted/);
  });
});

describe('claim 6 and the CPUs the servers have', () => {
  const m = { 'servers.http.single.c50.rps': 100, 'servers.http.multi-reactor.c50.rps': 101 };
  const claim6 = (ctx: { cores: number; serverCpus?: number }) =>
    judgeClaims(m, new Set(['servers']), ctx).find((c) => c.id === 6)!;

  it('depends when the servers are pinned to one CPU, however many the machine has', () => {
    // cpuPlan pins every server to one CPU: multi-reactor has nothing to scale onto
    expect(claim6({ cores: 8, serverCpus: 1 }).verdict).toBe('depends');
    expect(claim6({ cores: 8, serverCpus: 1 }).figures).toMatch(/servers on 1 of 8 CPUs.*one server CPU/);
    expect(claim6({ cores: 8, serverCpus: 4 }).verdict).toBe('refuted');
    expect(claim6({ cores: 2 }).verdict).toBe('depends');
  });

  it("is read against the report's CPU plan", () => {
    const r = buildReport({
      ...quick({ cores: 8 }),
      scenarios: [
        {
          name: 'servers',
          title: '',
          description: '',
          status: 'ok',
          seconds: 1,
          log: [],
          result: { tables: [], metrics: m },
        },
      ],
    });
    expect(r.claims.find((c) => c.id === 6)!.verdict).toBe('depends');
  });
});

describe("a claim's figure next to its threshold", () => {
  const ran = new Set(['lt-et', 'servers', 'pollution', 'copy']);
  const claim = (m: Record<string, number>, id: number) => judgeClaims(m, ran, { cores: 2 }).find((c) => c.id === id)!;

  it('has the digits that tell it from the threshold, so two verdicts never share one figure', () => {
    // 0.8996 confirms claim 2 (<= 0.9), 0.9004 does not: "0.90x" would read the same for both
    const under = claim({ 'lt-et.et-over-lt.wakeups': 0.8996 }, 2);
    const over = claim({ 'lt-et.et-over-lt.wakeups': 0.9004 }, 2);
    expect([under.verdict, over.verdict]).toEqual(['confirmed', 'depends']);
    expect(under.figures).toMatch(/^ET\/LT wakeups 0\.8996x/);
    expect(over.figures).toMatch(/^ET\/LT wakeups 0\.9004x/);
    // claim 8, several protocols against 1.05
    const c8 = claim({ 'servers.http.proactor.c50.rps': 104.96, 'servers.http.single.c50.rps': 100 }, 8);
    expect(c8.figures).toMatch(/^http: 1\.0496x \(depends/);
    // claim 3 against 2, cell by cell
    const c3 = claim({ 'copy.sendfile.1MiB.warm.MBps': 199.99, 'copy.readwrite.1MiB.warm.MBps': 100 }, 3);
    expect(c3.verdict).toBe('refuted');
    expect(c3.figures).toMatch(/^1MiB\.warm: 1\.9999x/);
    // far from any threshold: two digits as before
    expect(claim({ 'lt-et.et-over-lt.wakeups': 0.5 }, 2).figures).toMatch(/^ET\/LT wakeups 0\.50x/);
  });
});

describe('claim 1 against the multiplex floor', () => {
  const m = (epollHi: number, floor?: number) => ({
    'multiplex.select.n10.us': 1,
    'multiplex.select.n1000.us': 9,
    'multiplex.poll.n10.us': 1,
    'multiplex.poll.n1000.us': 7,
    'multiplex.epoll.n10.us': 1,
    'multiplex.epoll.n1000.us': epollHi,
    ...(floor === undefined ? {} : { 'multiplex.floor': floor }),
  });
  const claim1 = (x: Record<string, number>) => judgeClaims(x, new Set(['multiplex']), { cores: 2 })[0]!;
  it('is within noise when a growth sits inside the floor of its bound, decided otherwise', () => {
    expect(claim1(m(1.1, 1.05)).verdict).toBe('confirmed');
    expect(claim1(m(1.45, 1.1)).verdict).toBe('within noise');
    expect(claim1(m(1.45)).verdict).toBe('confirmed');
    expect(claim1(m(3, 1.1)).verdict).toBe('depends');
  });

  it('is not measured, never "barely grew", when the smallest N cost nothing', () => {
    // 0 µs at N = 10: no growth can be read from it (0/0 is NaN, 9/0 is Infinity)
    for (const hi of [0, 9]) {
      const c = claim1({ ...m(1.1, 1.05), 'multiplex.select.n10.us': 0, 'multiplex.select.n1000.us': hi });
      expect(c.verdict).toBe('not measured');
      expect(c.figures).not.toMatch(/NaN|Infinity/);
    }
  });
});

describe('claim 7 from the c10k levels', () => {
  const level = (model: string, n: number, ok: boolean, why?: string) => ({
    model,
    n,
    ok,
    reached: ok ? n : 100,
    rssMiB: ok ? 50 : NaN,
    threads: ok ? 10 : NaN,
    seconds: 1,
    ...(why === undefined ? {} : { why }),
  });
  const claim7 = (rows: ReturnType<typeof level>[]) =>
    judgeClaims(c10kReport(rows).metrics!, new Set(['c10k']), { cores: 2 }).find((c) => c.id === 7)!;

  it('is confirmed by the model failing below 10 000, never by the client failing', () => {
    const server = [level('thread-per-connection', 1000, false, 'only 363 served after 30 s')];
    expect(claim7(server).verdict).toBe('confirmed');
    // the client could not open its connections: no model could have held them
    const client = [
      level('thread-per-connection', 1000, false, 'client: connect: EADDRNOTAVAIL'),
      level('thread-per-connection', 5000, false, 'client: connect: EADDRNOTAVAIL'),
    ];
    const c = claim7(client);
    expect(c.verdict).toBe('not measured');
    expect(c.figures).not.toMatch(/failed at 10 000/);
  });

  it('names the level it failed at, measured; a level past the thread cap is never a failure', () => {
    expect(claim7([level('thread-per-connection', 1000, false, 'only 363 served after 30 s')]).figures).toMatch(
      /failed at 1,000 connections/,
    );
    const capped = (tpcMiB: number, reactorMiB?: number) => [
      { ...level('thread-per-connection', 1000, true), rssMiB: tpcMiB },
      { ...level('thread-per-connection', 5000, false, 'serve() caps workers'), capped: true },
      ...(reactorMiB === undefined ? [] : [{ ...level('multi-reactor', 1000, true), rssMiB: reactorMiB }]),
    ];
    // held 1 000, not tried at 5 000: the memory at 1 000 decides, and the cap is named
    const big = claim7(capped(600, 100));
    expect(big.verdict).toBe('confirmed');
    expect(big.figures).toMatch(/thread cap kept .* at 5,000 connections.*held 1,000 connections with 6\.00?x/);
    expect(big.figures).not.toMatch(/failed/);
    expect(claim7(capped(150, 100)).verdict).toBe('refuted');
    expect(claim7(capped(300, 100)).verdict).toBe('depends');
    // nothing to weigh its memory against: not measured, never confirmed by the cap alone
    expect(claim7(capped(600)).verdict).toBe('not measured');
    const metrics = c10kReport(capped(600, 100)).metrics!;
    expect(metrics['c10k.thread-per-connection.n5000.ok']).toBeUndefined();
    expect(metrics['c10k.thread-per-connection.cappedAt']).toBe(5000);
    expect(metrics['c10k.thread-per-connection.failedAt']).toBeUndefined();
  });
});

describe('claim 5 against the pollution floor', () => {
  const claim5 = (direct: number, floor?: number) =>
    judgeClaims(
      {
        'pollution.small.rps.buffered': 100,
        'pollution.small.rps.direct': direct,
        ...(floor === undefined ? {} : { 'pollution.floor': floor }),
      },
      new Set(['pollution']),
      { cores: 2 },
    ).find((c) => c.id === 5)!;
  it('reads direct/buffered against the buffered A/A floor', () => {
    expect(claim5(112, 1.05).verdict).toBe('within noise');
    expect(claim5(130, 1.05).verdict).toBe('confirmed');
    expect(claim5(90, 1.05).verdict).toBe('refuted');
    expect(claim5(112).verdict).toBe('confirmed');
  });
});

describe('targets judged by the anchors', () => {
  const byName = (m: Record<string, number>, re: RegExp) => judgeTargets(m).find((t) => re.test(t.target))!;

  it('judges HTTP by wrk, req/s and CPU per request, against the wrk A/A floor', () => {
    const m = {
      'http-wrk.proactor-over-nginx.c50.rps': 1.27,
      'http-wrk.proactor-over-nginx.c50.cpuUsPerReq': 0.6,
      'http-wrk.single-over-nginx.c50.rps': 0.9,
      'http-wrk.floor.rps': 1.05,
      'http-wrk.floor.cpuUsPerReq': 1.02,
    };
    const rps = byName(m, /proactor >= 1\.3x nginx req\/s/);
    expect(rps.status).toBe('within noise');
    expect(rps.floor).toBe(1.05);
    expect(rps.figures).toMatch(/within noise.*A\/A floor ±5\.0%/);
    expect(byName(m, /proactor server CPU per request/).status).toBe('met');
    expect(byName(m, /single >= 1\.1x nginx/).status).toBe('missed');
    expect(byName(m, /single >= 1\.1x nginx/).figures).toMatch(/missed by 18%/);
    expect(byName(m, /single server CPU/).status).toBe('not measured');
  });

  it('judges RESP by redis-benchmark, SET and GET both', () => {
    const m = {
      'redisbench.single.set.p16.rps': 95,
      'redisbench.redis.set.p16.rps': 100,
      'redisbench.single.get.p16.rps': 50,
      'redisbench.redis.get.p16.rps': 100,
      'redisbench.floor.p16.rps': 1.02,
    };
    const t = byName(m, /-P 16: single >= 0\.9x/);
    expect(t.status).toBe('missed');
    expect(t.figures).toMatch(/set.*0\.95x.*get.*0\.50x \(missed by 44%\)/);
    expect(byName({ ...m, 'redisbench.single.get.p16.rps': 92 }, /-P 16/).status).toBe('met');
    const withCpu = { ...m, 'redisbench.single.p16.cpuUsPerReq': 1.5, 'redisbench.redis.p16.cpuUsPerReq': 1 };
    expect(byName(withCpu, /-P 16/).figures).toMatch(/server CPU per request 1\.50x; A\/A floor ±2\.0%/);
  });

  it('reads a req/s target client-bound only when the bare server of its path clearly misses it too', () => {
    const m = {
      'http-wrk.single-over-nginx.c50.rps': 0.97,
      'http-wrk.floor.rps': 1.03,
    };
    const single = (extra: Record<string, number>) => byName({ ...m, ...extra }, /single >= 1\.1x nginx/);
    // the least a server can do reaches 1.02x under wrk: 1.1x cannot be shown
    const bound = single({ 'http-wrk.bare-over-nginx.c50.rps': 1.02 });
    expect(bound.status).toBe('client-bound');
    expect(bound.figures).toMatch(/0\.97x \(missed by 12%\) \(client-bound: the bare C server: 1\.02x\)/);
    // the bare server reaches the bound: rawio's miss is its own, and the figure says so
    const own = single({ 'http-wrk.bare-over-nginx.c50.rps': 1.2 });
    expect(own.status).toBe('missed');
    expect(own.figures).toMatch(/\(the bare C server: 1\.20x\)/);
    // the bare server within the floor of the bound: no excuse either
    expect(single({ 'http-wrk.bare-over-nginx.c50.rps': 1.08 }).status).toBe('missed');
    // no bare figure: as before
    expect(single({}).status).toBe('missed');
    // a ratio within noise of its bound stays within noise, and a met one stays met
    expect(single({ 'http-wrk.single-over-nginx.c50.rps': 1.09, 'http-wrk.bare-over-nginx.c50.rps': 1 }).status).toBe(
      'within noise',
    );
    expect(single({ 'http-wrk.single-over-nginx.c50.rps': 1.2, 'http-wrk.bare-over-nginx.c50.rps': 1 }).status).toBe(
      'met',
    );
    // the proactor is read against the io_uring bare server, not the epoll one
    const proactor = (extra: Record<string, number>) =>
      byName({ 'http-wrk.proactor-over-nginx.c50.rps': 1, 'http-wrk.floor.rps': 1.03, ...extra }, /proactor >= 1\.3x/);
    expect(proactor({ 'http-wrk.bare-over-nginx.c50.rps': 1 }).status).toBe('missed');
    const pb = proactor({ 'http-wrk.bare-uring-over-nginx.c50.rps': 1.05 });
    expect(pb.status).toBe('client-bound');
    expect(pb.figures).toMatch(/the bare io_uring server: 1\.05x/);
  });

  it('never reads client-bound a server clearly below the rate the bare server reached under the same client', () => {
    const single = (r: number, bare: number) =>
      byName(
        {
          'http-wrk.single-over-nginx.c50.rps': r,
          'http-wrk.bare-over-nginx.c50.rps': bare,
          'http-wrk.floor.rps': 1.03,
        },
        /single >= 1\.1x nginx/,
      );
    // wrk allowed 1.05x (the bare server reached it), the server made 0.50x: its own miss
    const own = single(0.5, 1.05);
    expect(own.status).toBe('missed');
    expect(own.figures).toMatch(/0\.50x \(missed by 55%\) \(the bare C server: 1\.05x\)/);
    expect(own.figures).not.toMatch(/client-bound/);
    // 1.00x beside the bare server's 1.08x: farther apart than two floors (1.03² ≈ 1.061)
    expect(single(1, 1.08).status).toBe('missed');
    // within two floors of the bare server, or above it: the client's limit
    expect(single(1, 1.05).status).toBe('client-bound');
    // the bare server's figure has the digits that show it misses the bound too
    const close = byName(
      {
        'http-wrk.single-over-nginx.c50.rps': 1.0999,
        'http-wrk.bare-over-nginx.c50.rps': 1.0999,
        'http-wrk.floor.rps': 1.00005,
      },
      /single >= 1\.1x nginx/,
    );
    expect(close.status).toBe('client-bound');
    expect(close.figures).toMatch(/^1\.0999x \(missed by 0\.009%\) \(client-bound: the bare C server: 1\.0999x\)/);
    expect(single(1.04, 1.0).status).toBe('client-bound');
    // RESP pair by pair: GET clearly below its bare server is a miss of its own
    const resp = byName(
      {
        'redisbench.single.set.p1.rps': 100,
        'redisbench.redis.set.p1.rps': 100,
        'redisbench.bare.set.p1.rps': 98,
        'redisbench.single.get.p1.rps': 60,
        'redisbench.redis.get.p1.rps': 100,
        'redisbench.bare.get.p1.rps': 98,
        'redisbench.floor.p1.rps': 1.02,
      },
      /redis-benchmark, 50 conns: single >= 1\.1x/,
    );
    expect(resp.status).toBe('missed');
    expect(resp.figures).toMatch(/set\.p1\.rps: 1\.00x \(missed by 9%\) \(client-bound: /);
    expect(resp.figures).toMatch(/get\.p1\.rps: 0\.60x \(missed by 45%\) \(the bare C server: 0\.98x\)/);
  });

  it('reads the node:http target against the bare server of each path', () => {
    const m = {
      'http-wrk.single.c50.rps': 95,
      'http-wrk.proactor.c50.rps': 96,
      'http-wrk.node-http.c50.rps': 40,
      'http-wrk.floor.rps': 1.03,
    };
    const t = (extra: Record<string, number>) => byName({ ...m, ...extra }, /2\.5x node:http/);
    // both bare servers reach only ~2.4x node:http under wrk: the target cannot be shown
    const bound = t({ 'http-wrk.bare.c50.rps': 96, 'http-wrk.bare-uring.c50.rps': 97 });
    expect(bound.status).toBe('client-bound');
    expect(bound.figures).toMatch(/client-bound: the bare server of its path: 2\.40x/);
    // the io_uring one reaches 3x: the proactor's miss is its own
    expect(t({ 'http-wrk.bare.c50.rps': 96, 'http-wrk.bare-uring.c50.rps': 120 }).status).toBe('missed');
  });

  it('reads a CPU-per-request target kernel-bound only when the bare server of its path costs more than the bound', () => {
    const m = { 'http-wrk.floor.cpuUsPerReq': 1.02 };
    const cpu = (server: 'single' | 'proactor', r: number, extra: Record<string, number>) =>
      byName(
        { ...m, [`http-wrk.${server}-over-nginx.c50.cpuUsPerReq`]: r, ...extra },
        new RegExp(`${server} server CPU per request`),
      );
    const single = cpu('single', 1.05, { 'http-wrk.bare-over-nginx.c50.cpuUsPerReq': 0.97 });
    expect(single.status).toBe('kernel-bound');
    expect(single.figures).toMatch(/1\.05x \(over by 17%\) \(kernel-bound: the bare C server: 0\.97x\)/);
    // the bare server under the bound: the rest is rawio's own cost
    expect(cpu('single', 1.05, { 'http-wrk.bare-over-nginx.c50.cpuUsPerReq': 0.85 }).status).toBe('missed');
    // within the floor of the bound: no excuse
    expect(cpu('single', 1.05, { 'http-wrk.bare-over-nginx.c50.cpuUsPerReq': 0.91 }).status).toBe('missed');
    // the proactor against the io_uring one only
    expect(cpu('proactor', 1.0, { 'http-wrk.bare-over-nginx.c50.cpuUsPerReq': 0.97 }).status).toBe('missed');
    expect(cpu('proactor', 1.0, { 'http-wrk.bare-uring-over-nginx.c50.cpuUsPerReq': 0.9 }).status).toBe('kernel-bound');
    // met stays met
    expect(cpu('proactor', 0.7, { 'http-wrk.bare-uring-over-nginx.c50.cpuUsPerReq': 0.9 }).status).toBe('met');
  });

  it('judges RESP pairs one by one against the bare server: one clear miss of its own is a miss', () => {
    const m = {
      'redisbench.single.set.p1.rps': 100,
      'redisbench.redis.set.p1.rps': 100,
      'redisbench.single.get.p1.rps': 100,
      'redisbench.redis.get.p1.rps': 100,
      'redisbench.bare.set.p1.rps': 95,
      'redisbench.bare.get.p1.rps': 95,
      'redisbench.floor.p1.rps': 1.02,
    };
    const t = (extra: Record<string, number>) =>
      byName({ ...m, ...extra }, /redis-benchmark, 50 conns: single >= 1\.1x/).status;
    expect(t({})).toBe('client-bound');
    expect(t({ 'redisbench.bare.get.p1.rps': 130 })).toBe('missed');
    expect(t({ 'redisbench.single.get.p1.rps': 120 })).toBe('client-bound');
    expect(t({ 'redisbench.single.get.p1.rps': 109 })).toBe('within noise');
  });

  it("reports the load generator's agreement with wrk and redis-benchmark, never judges it", () => {
    const t = byName({ 'anchors.loadgen-over-wrk.node-http.c50': 1.74 }, /Load generator \/ wrk, node:http/);
    expect(t.status).toBe('reported');
    expect(t.figures).toBe('1.74x');
    const rb = byName(
      { 'redisbench.loadgen.redis.set.p1.rps': 90, 'redisbench.redis.set.p1.rps': 100 },
      /Load generator \/ redis-benchmark/,
    );
    expect(rb.status).toBe('reported');
    // each pair named; the three not measured listed by what they lack
    expect(rb.figures).toMatch(
      /^redisbench\.loadgen\.redis\.set\.p1\.rps: 0\.90x \[1\/4 measured; no redisbench\.loadgen\.redis\.get\.p1\.rps, /,
    );
  });

  it('every server target names its floor', () => {
    const t = judgeTargets({});
    const servers = t.filter((x) => /HTTP|RESP|O_DIRECT/.test(x.target));
    expect(servers.length).toBeGreaterThan(0);
    for (const x of servers) expect([x.target, x.rule]).toEqual([x.target, expect.stringMatching(/\S/)]);
    expect(t.every((x) => x.status === 'not measured')).toBe(true);
  });
});

describe('a scenario that failed', () => {
  it('is named, with its error, as why its claims and targets are not measured', () => {
    const r = buildReport({
      ...quick({ cores: 2 }),
      scenarios: [
        {
          name: 'servers',
          title: '',
          description: '',
          status: 'failed',
          error: 'server child exited (1)',
          seconds: 1,
          log: [],
        },
        { name: 'http-wrk', title: '', description: '', status: 'failed', error: 'wrk: boom', seconds: 1, log: [] },
      ],
    });
    const claim8 = r.claims.find((c) => c.id === 8)!;
    expect(claim8.verdict).toBe('not measured');
    expect(claim8.figures).toBe('scenario servers failed: server child exited (1)');
    expect(r.claims.find((c) => c.id === 1)!.figures).toBe('scenario multiplex did not run');
    const t = r.targets.find((x) => /single >= 1\.1x nginx/.test(x.target))!;
    expect(t.status).toBe('not measured');
    expect(t.figures).toBe('not measured: scenario http-wrk failed: wrk: boom');
    const nginx = r.targets.find((x) => /Load generator \/ wrk, nginx/.test(x.target))!;
    expect(nginx.figures).toMatch(/scenario servers failed: .*; scenario http-wrk failed: wrk: boom/);
    // and one whose scenario was not chosen (--only) says that
    const fio = r.targets.find((x) => /QD32/.test(x.target))!;
    expect(fio.figures).toBe('not measured: scenario uring-read did not run');
  });
});

describe('a wrk run with errors', () => {
  it('is no figure of req/s nor of CPU per request, and the rounds stay paired', () => {
    const into = { rps: [], cpuUsPerReq: [], kernelUsPerReq: [], p99: [], clientBusy: [] } as Parameters<
      typeof recordWrkRun
    >[0];
    const run = (errors: number, requests = 200_000) => ({
      rps: requests / 2,
      requests,
      errors,
      latencyUs: { p50: 100, p90: 200, p99: 300 },
    });
    const hz = ticksPerSecond();
    // 2 s of server CPU over 200 000 requests, 1.5 s of it in the kernel
    recordWrkRun(into, run(0), { user: hz / 2, system: 1.5 * hz }, 0.9);
    recordWrkRun(into, run(5), { user: hz / 100, system: 0 }, 0.9); // a server failing fast looks cheap: no figure
    recordWrkRun(into, run(0, 0), { user: 5, system: 5 }, 0.9);
    expect(into.rps).toEqual([100_000, NaN, NaN]);
    expect(into.cpuUsPerReq).toEqual([10, NaN, NaN]);
    expect(into.kernelUsPerReq).toEqual([7.5, NaN, NaN]);
    expect(into.p99).toEqual([300, NaN, NaN]);
    expect(into.clientBusy).toHaveLength(3);
  });
});

describe('an anchor that is not there', () => {
  // The targets a pattern names: at least one, so no loop over them below can pass by running zero times.
  const of = (m: Record<string, number>, re: RegExp) => {
    const found = judgeTargets(m).filter((t) => re.test(t.target));
    expect(found.length, `targets matching ${re}`).toBeGreaterThan(0);
    return found;
  };
  it('names the missing tool or server as the reason, not the metric keys', () => {
    for (const t of of({ 'http-wrk.no-nginx': 1, 'http-wrk.single.c50.rps': 1 }, /x nginx|<= 0\.\dx nginx/))
      expect(t.figures).toBe('not measured: nginx is not installed');
    for (const t of of({ 'redisbench.redis-failed': 1 }, /redis-benchmark, 50 conns/))
      expect(t.figures).toBe('not measured: redis-server did not start (see the redis-benchmark log)');
    for (const t of of({ 'uring-read.no-fio': 1 }, /fio io_uring/))
      expect(t.figures).toBe('not measured: fio is not installed');
  });

  it('tells a fio that failed from one that is not installed', () => {
    for (const t of of({ 'uring-read.fio-failed': 1 }, /fio io_uring/))
      expect(t.figures).toBe('not measured: fio did not run (see the uring-read log for what it said)');
    const [qd32] = of({ 'uring-read.fio-failed.qd32': 1, 'uring-read.ring-as-fio-over-fio.qd1': 1 }, /QD32:/);
    expect(qd32!.figures).toBe('not measured: fio failed at QD32 (see the uring-read log for what it said)');
  });
});

describe('a ratio next to its bound', () => {
  const single = (r: number) =>
    judgeTargets({ 'http-wrk.single-over-nginx.c50.rps': r }).find((t) => /single >= 1\.1x nginx/.test(t.target))!;

  it('shows the digits that tell it from the bound, and a miss under 1% as such', () => {
    // no floor: 1.0996 misses 1.1, and must not read "1.10x (missed by 0%)"
    expect(single(1.0996).status).toBe('missed');
    expect(single(1.0996).figures).toMatch(/^1\.0996x \(missed by 0\.04%\)/);
    expect(single(1.1004).figures).toMatch(/^1\.1004x; no A\/A floor/);
    expect(single(1.104).figures).toMatch(/^1\.104x/);
    expect(single(1.04).figures).toMatch(/^1\.04x \(missed by 5%\)/);
    expect(ratioText(0.8, [0.8])).toBe('0.80x');
  });

  it('never prints a small ratio as nothing: 0.004 is not "0.00x (missed by 100%)"', () => {
    const t = single(0.004);
    expect(t.status).toBe('missed');
    expect(t.figures).toMatch(/^0\.0040x \(missed by 99\.6%\)/);
    expect(single(0).figures).toMatch(/^0\.00x \(missed by 100%\)/); // nothing at all reads so
    expect(ratioText(0.05, [])).toBe('0.050x');
    expect(ratioText(0.5, [])).toBe('0.50x');
  });

  it('never prints a missed ratio as its bound, however close it comes', () => {
    // 1.0999999 misses 1.1 with no floor: four digits ("1.1000x") would print the bound itself
    const near = single(1.0999999);
    expect(near.status).toBe('missed');
    expect(near.figures).toMatch(/^1\.0999999x \(missed by/);
    const fio = judgeTargets({ 'uring-read.ring-as-fio-over-fio.qd1': 0.94996 }).find((t) => /QD1:/.test(t.target))!;
    expect(fio.status).toBe('missed');
    expect(fio.figures).toMatch(/^0\.94996x \(missed by/);
    // lower is better: a CPU ratio a hair over its bound reads over, with the digits that show it
    const cpu = judgeTargets({ 'http-wrk.single-over-nginx.c50.cpuUsPerReq': 0.90004 }).find((t) =>
      /single server CPU/.test(t.target),
    )!;
    expect(cpu.status).toBe('missed');
    expect(cpu.figures).toMatch(/^0\.90004x \(over by/);
    for (const r of [1.1 - 1e-9, 1.1 + 1e-12, 0.95 - 1e-15])
      for (const b of [1.1, 0.95]) if (r !== b) expect(ratioText(r, [b])).not.toBe(`${b.toFixed(2)}x`);
  });
});

describe("a scenario's table beside its target", () => {
  const summary = (median: number) => ({ n: 3, median, min: 0.9, max: 1, q1: median, q3: median });

  it("prints a target's ratio with the digits that tell it from the bound, as the target does", () => {
    expect(formatRatio(summary(0.9496), [0.95])).toBe('0.9496x (0.90–1.00)');
    expect(formatRatio(summary(0.9496))).toBe('0.95x (0.90–1.00)'); // no bound: two digits
    expect(formatRatio(summary(0.95), [0.95])).toBe('0.95x (0.90–1.00)');
  });

  it('the Ring duel: "Ring as fio / fio" never reads 0.95x where the target says missed', () => {
    const side = (median: number) => ({ n: 5, median, min: median, max: median, q1: median, q3: median });
    const result = {
      qd: 1,
      iops: { Ring: side(100), 'Ring as fio': side(94.96), fio: side(100), 'fio A/A': side(100) },
      cpuUs: { Ring: 1, 'Ring as fio': 1, fio: 1, 'fio A/A': 1 },
      ring: summary(1),
      asFio: { ...summary(0.9496), min: 0.94, max: 0.96 },
      fioFailed: false,
    };
    const { table, metrics } = duelReport([result], 5);
    const target = judgeTargets(metrics).find((t) => /QD1:/.test(t.target))!;
    expect(target.status).toBe('missed');
    expect(target.figures).toMatch(/^0\.9496x/);
    expect(table.rows[0]![table.columns.indexOf('Ring as fio / fio')]).toBe('0.9496x (0.94–0.96)');
    // a side with no figure reads "—", not NaN
    const noFio = duelReport([{ ...result, iops: { ...result.iops, fio: side(NaN) } }], 5);
    expect(noFio.table.rows[0]![3]).toBe('—');
  });

  it("http-wrk: each server's ratio x nginx against its own target's bound, req/s and CPU", () => {
    const run = (rps: number, cpu: number, kernel: number) => ({
      rps: [rps, rps],
      cpuUsPerReq: [cpu, cpu],
      kernelUsPerReq: [kernel, kernel],
      p99: [1, 1],
      clientBusy: [1, 1],
    });
    const samples = new Map([
      ['single', run(1099.6, 9.0004, 7)],
      ['proactor', run(1299.9, 8, 6.8)],
      ['nginx', run(1000, 10, 6)],
      ['nginx A/A', run(1000, 10, 6)],
    ]);
    const { tables, metrics } = wrkReport(samples);
    const t = tables[0]!;
    const cell = (server: string, col: string) => t.rows.find((r) => r[0] === server)![t.columns.indexOf(col)];
    expect(cell('single', 'x nginx req/s')).toMatch(/^1\.0996x/);
    expect(cell('single', 'x nginx CPU/req')).toMatch(/^0\.90004x/);
    expect(cell('proactor', 'x nginx req/s')).toMatch(/^1\.2999x/);
    expect(cell('proactor', 'x nginx CPU/req')).toMatch(/^0\.80x/);
    const targets = judgeTargets(metrics!);
    expect(targets.find((x) => /single >= 1\.1x nginx/.test(x.target))!.figures).toMatch(/^1\.0996x/);
    expect(targets.find((x) => /single server CPU/.test(x.target))!.figures).toMatch(/^0\.90004x \(over by/);
    // the kernel's share: its own column, and beside each target's figures against nginx's whole CPU per request
    expect(cell('single', 'of it kernel µs/req')).toBe('7.00');
    expect(metrics!['http-wrk.single.c50.kernelUsPerReq']).toBe(7);
    expect(metrics!['http-wrk.proactor-kernel-over-nginx.c50.cpuUsPerReq']).toBeCloseTo(0.68, 10);
    expect(targets.find((x) => /single server CPU/.test(x.target))!.figures).toMatch(
      /; of it the kernel's alone 0\.70x/,
    );
    expect(targets.find((x) => /proactor >= 1\.3x nginx/.test(x.target))!.figures).toMatch(
      /; server CPU per request 0\.80x; of it the kernel's alone 0\.68x/,
    );
  });
});

describe("report.md: a failed scenario's error", () => {
  it('is one code span, whatever backticks and pipes it holds', () => {
    const r = buildReport({
      ...quick({ cores: 2, mitigations: {} }),
      scenarios: [
        {
          name: 'copy',
          title: 'copy',
          description: '',
          status: 'failed',
          error: 'Command failed: `fio` | head\nsecond line',
          seconds: 1,
          log: [],
        },
      ],
    });
    expect(renderMarkdown(r)).toContain('**Failed:** ``Command failed: `fio` | head second line``');
  });
});

describe('redis-benchmark: the table beside the RESP targets', () => {
  it("shows the ratio the target judges (of the medians), with the digits that tell it from the target's bound", () => {
    // three rounds whose paired ratios (1.0, 0.9996, 1.44: median 1.0) differ from the ratio
    // of the medians (1099.6 / 1000): the table and the target must show the same figure
    const samples: Record<string, number[]> = {};
    for (const t of ['set', 'get']) {
      samples[`redis-benchmark|redis-server|1|${t}`] = [1000, 1100, 900];
      samples[`redis-benchmark|redis-server A/A|1|${t}`] = [1000, 1100, 900];
      samples[`redis-benchmark|single|1|${t}`] = [1000, 1099.6, 1300];
    }
    // server CPU per request and its kernel share, by server
    samples['cpu|redis-server|1'] = [10, 10, 10];
    samples['kernel|redis-server|1'] = [7, 7, 7];
    samples['cpu|single|1'] = [12, 12, 12];
    samples['kernel|single|1'] = [6.5, 6.5, 6.5];
    const live = [
      { name: 'redis-server' as const, key: 'redis' },
      { name: 'single' as const, key: 'single' },
    ];
    const { tables, metrics } = redisReport(samples, live, [1], []);
    const t = tables[0]!;
    const col = t.columns.indexOf('x redis-server (redis-benchmark)');
    const row = t.rows.find((r) => r[1] === 'SET' && r[2] === 'single')!;
    expect(row[col]).toBe('1.0996x (1.00–1.44)');
    const target = judgeTargets(metrics!).find((x) => /redis-benchmark, 50 conns: single >= 1\.1x/.test(x.target))!;
    expect(target.status).toBe('missed');
    expect(target.figures).toMatch(/set\.p1\.rps: 1\.0996x \(missed by/);
    expect(target.figures).toMatch(/; server CPU per request 1\.20x; of it the kernel's alone 0\.65x/);
    expect(metrics!['redisbench.single.p1.kernelUsPerReq']).toBe(6.5);
    const cpuRow = t.rows.find((r) => r[1] === 'SET+GET' && r[2] === 'single')!;
    expect(cpuRow[3]).toBe('server CPU 12.00 µs/req (kernel 6.50)');
  });
});

describe('a figure that is not a number', () => {
  // NaN is what a median of runs that all failed comes to (wrk errors on every run, a
  // server that died): it must read "not measured" with the reason, never a verdict.
  const byName = (m: Record<string, number>, re: RegExp) => judgeTargets(m).find((t) => re.test(t.target))!;

  it('leaves a target not measured, naming the figure, rather than missed', () => {
    const t = byName(
      { 'http-wrk.single-over-nginx.c50.rps': NaN, 'http-wrk.floor.rps': 1.05 },
      /single >= 1\.1x nginx/,
    );
    expect(t.status).toBe('not measured');
    expect(t.figures).toMatch(/not measured: no http-wrk\.single-over-nginx\.c50\.rps/);
    const resp = byName(
      {
        'redisbench.single.set.p1.rps': 100,
        'redisbench.redis.set.p1.rps': NaN,
        'redisbench.single.get.p1.rps': NaN,
        'redisbench.redis.get.p1.rps': 100,
      },
      /single >= 1\.1x redis-server$/,
    );
    expect(resp.status).toBe('not measured');
  });

  it('judges the pairs that are numbers, says how many were, and never reads met on them alone', () => {
    const t = byName(
      {
        'redisbench.single.set.p1.rps': 120,
        'redisbench.redis.set.p1.rps': 100,
        'redisbench.single.get.p1.rps': NaN,
        'redisbench.redis.get.p1.rps': 100,
        'redisbench.single.p1.cpuUsPerReq': NaN,
        'redisbench.redis.p1.cpuUsPerReq': 10,
      },
      /single >= 1\.1x redis-server$/,
    );
    // SET met; GET's runs all failed, and it could miss: the target is not measured
    expect(t.status).toBe('not measured');
    expect(t.figures).toMatch(
      /^redisbench\.single\.set\.p1\.rps: 1\.20x \[1\/2 measured; no redisbench\.single\.get\.p1\.rps\]/,
    );
    expect(t.figures).not.toMatch(/NaN|CPU per request/);
    // a clear miss of a pair that ran stands, whatever the other would have been
    const missed = byName(
      {
        'redisbench.single.set.p1.rps': 50,
        'redisbench.redis.set.p1.rps': 100,
        'redisbench.redis.get.p1.rps': 100,
      },
      /single >= 1\.1x redis-server$/,
    );
    expect(missed.status).toBe('missed');
    // within noise, or client-bound, on half the pairs: not measured either
    const noisy = byName(
      {
        'redisbench.single.set.p1.rps': 109,
        'redisbench.redis.set.p1.rps': 100,
        'redisbench.redis.get.p1.rps': 100,
        'redisbench.floor.p1.rps': 1.05,
      },
      /single >= 1\.1x redis-server$/,
    );
    expect(noisy.status).toBe('not measured');
  });

  it('leaves a claim not measured rather than "depends"', () => {
    const ran = new Set(['servers', 'pollution']);
    const m = {
      'servers.http.single.c50.rps': 100,
      'servers.http.proactor.c50.rps': NaN,
      'pollution.small.rps.buffered': 100,
      'pollution.small.rps.direct': NaN,
    };
    const c = judgeClaims(m, ran, { cores: 2 });
    expect(c.find((x) => x.id === 8)!.verdict).toBe('not measured');
    expect(c.find((x) => x.id === 5)!.verdict).toBe('not measured');
  });

  it("is left out of the report's metrics, so no rule reads it", () => {
    const r = buildReport({
      ...quick({ cores: 2 }),
      scenarios: [
        {
          name: 'lt-et',
          title: 'lt-et',
          description: '',
          status: 'ok',
          seconds: 1,
          log: [],
          result: {
            tables: [],
            metrics: { 'lt-et.et-over-lt.wakeups': 0.5, 'lt-et.floor': NaN, 'http-wrk.floor.rps': NaN },
          },
        },
        {
          name: 'http-wrk',
          title: 'http-wrk',
          description: '',
          status: 'ok',
          seconds: 1,
          log: [],
          result: { tables: [], metrics: { 'http-wrk.single-over-nginx.c50.rps': 1.5, 'http-wrk.floor.rps': NaN } },
        },
      ],
    });
    const claim2 = r.claims.find((c) => c.id === 2)!;
    expect(claim2.verdict).toBe('confirmed');
    expect(claim2.figures).toMatch(/no A\/A floor/);
    const t = r.targets.find((x) => /single >= 1\.1x nginx/.test(x.target))!;
    expect(t.status).toBe('met');
    expect(t.floor).toBeUndefined();
    expect(JSON.stringify([r.claims, r.targets])).not.toMatch(/NaN/);
  });
});

describe('--repeat', () => {
  it('parses a whole count and refuses others', () => {
    expect(parseBenchArgs(['--repeat', '3']).repeat).toBe(3);
    expect(parseBenchArgs(['--repeat=1']).repeat).toBe(1);
    for (const bad of ['0', '1.5', 'x', '101']) expect(() => parseBenchArgs(['--repeat', bad])).toThrow(/--repeat/);
  });

  it('says which verdicts held in every run', () => {
    const runs = [
      new Map([
        ['a', 'met'],
        ['b', 'missed'],
      ]),
      new Map([
        ['a', 'met'],
        ['b', 'within noise'],
      ]),
      new Map([['a', 'met']]),
    ];
    expect(heldAcross(runs)).toEqual([
      { id: 'a', verdicts: ['met', 'met', 'met'], held: true },
      { id: 'b', verdicts: ['missed', 'within noise', 'not measured'], held: false },
    ]);
    expect(heldAcross([])).toEqual([]);
  });

  it('attaches the held table to the last run of a profile', () => {
    const report = (v: 'met' | 'missed'): Report =>
      ({
        scenarios: [],
        claims: [{ id: 1, claim: 'c', rule: '', figures: '', verdict: 'confirmed' }],
        targets: [
          { target: 't', status: v, keys: [], min: 1, rule: '', figures: '' },
          { target: 'r', status: 'reported', keys: [], min: 1, rule: '', figures: '' },
        ],
      }) as unknown as Report;
    const r = withRepeats([report('met'), report('missed'), report('met')]);
    expect(r.repeats!.runs).toBe(3);
    expect(r.repeats!.held).toEqual([
      { id: 'claim 1: c', verdicts: ['confirmed', 'confirmed', 'confirmed'], held: true },
      { id: 'target: t', verdicts: ['met', 'missed', 'met'], held: false },
    ]);
    expect(r.notes).toBeUndefined();
  });

  it('names a scenario that failed in an earlier run, whose table the report no longer has', () => {
    const report = (failed: boolean): Report =>
      ({
        scenarios: [
          { name: 'pollution', status: failed ? 'failed' : 'ok', error: failed ? 'boom' : undefined },
          { name: 'copy', status: 'ok' },
        ],
        claims: [],
        targets: [],
        notes: ['charts: vega missing'],
      }) as unknown as Report;
    const r = withRepeats([report(false), report(true), report(false)]);
    expect(r.notes).toEqual(['charts: vega missing', 'Run 2 of 3: scenario pollution failed: boom']);
  });

  it('reads a verdict never measured in any run as "not measured", not as held', () => {
    const held = heldAcross([
      new Map([
        ['never', 'not measured'],
        ['held', 'met'],
        ['flipped', 'met'],
      ]),
      new Map([
        ['held', 'met'],
        ['flipped', 'missed'],
      ]),
    ]);
    expect(held.map((h) => [h.id, heldWord(h)])).toEqual([
      ['never', 'not measured'],
      ['held', 'yes'],
      ['flipped', 'no'],
    ]);
  });
});

describe('--repeat with a run that did not measure a verdict', () => {
  it('reads "partly measured", not as a flip, when the runs that measured it agree', () => {
    const held = heldAcross([
      new Map([
        ['lost once', 'met'],
        ['flipped and lost', 'met'],
      ]),
      // a tool missing, or the scenario failed, in this run
      new Map([
        ['lost once', 'not measured'],
        ['flipped and lost', 'not measured'],
      ]),
      new Map([
        ['lost once', 'met'],
        ['flipped and lost', 'missed'],
      ]),
    ]);
    expect(held.map((h) => [h.id, heldWord(h)])).toEqual([
      ['lost once', 'partly measured'],
      ['flipped and lost', 'no'],
    ]);
  });

  it('tables it so in report.md, neither "yes" nor a bold "no"', () => {
    const report = (failed: boolean): Report =>
      buildReport({
        ...quick({ cores: 2, mitigations: {} }),
        scenarios: [
          failed
            ? { name: 'lt-et', title: 'lt-et', description: '', status: 'failed', error: 'boom', seconds: 1, log: [] }
            : {
                name: 'lt-et',
                title: 'lt-et',
                description: '',
                status: 'ok',
                seconds: 1,
                log: [],
                result: { tables: [], metrics: { 'lt-et.et-over-lt.wakeups': 0.5, 'lt-et.floor': 1.01 } },
              },
        ],
      });
    const r = withRepeats([report(false), report(true), report(false)]);
    const claim2 = r.repeats!.held.find((h) => h.id.startsWith('claim 2:'))!;
    expect(claim2.verdicts).toEqual(['confirmed', 'not measured', 'confirmed']);
    expect(heldWord(claim2)).toBe('partly measured');
    const md = renderMarkdown(r);
    expect(md).toMatch(/\| claim 2: [^|]+ \| partly measured \| confirmed · not measured · confirmed \|/);
  });
});

describe('rawio bench --repeat', () => {
  it('runs the chosen scenarios N times and tables every verdict by run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rawio-repeat-'));
    try {
      const main = new URL('../dist/bench/main.js', import.meta.url).pathname;
      // multiplex: the shortest scenario (a few seconds), and it decides claim 1
      const args = [main, '--only', 'multiplex', '--repeat', '2', '--out', dir];
      const out = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, args, { timeout: 110_000 }, (e, stdout) => (e ? reject(e) : resolve(stdout))),
      );
      expect(out).toMatch(/Across 2 runs: \d+ verdicts held, \d+ did not/);
      const r = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
      expect(r.repeats.runs).toBe(2);
      const claim1 = r.repeats.held.find((h: { id: string }) => h.id.startsWith('claim 1:'));
      expect(claim1.verdicts).toHaveLength(2);
      expect(claim1.verdicts.every((v: string) => v !== 'not measured')).toBe(true);
      expect(readFileSync(join(dir, 'report.md'), 'utf8')).toMatch(/## Verdicts across 2 runs/);
      expect(readFileSync(join(dir, 'report.html'), 'utf8')).toMatch(/id="repeats"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
