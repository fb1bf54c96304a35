/**
 * rawio's own performance targets: ratios measured side by side in one run, each read from
 * the scenarios' named metrics and judged by the anchor's own client where it is installed
 * (wrk for HTTP in http-wrk, redis-benchmark for RESP, fio for reads). Each target names
 * its scenario's A/A noise floor: a ratio closer to its bound than the floor reads "within
 * noise" (bench/verdict.ts). Beside the HTTP req/s targets, server CPU per request. The load
 * generator's agreement with wrk and redis-benchmark is reported, not judged. Where a target
 * is missed the report shows by how much; where its scenarios did not run (or an anchor is
 * not installed) it is 'not measured'. A target the bare server of the same path (the least
 * a server can do) clearly misses too reads 'client-bound' (req/s: the client, not the
 * server, decides that ratio on this machine — unless the server is clearly below the bare
 * server, whose rate shows the client allowed more) or 'kernel-bound' (CPU per request: the
 * system calls alone cost more than the bound).
 */
import type { Metrics } from './claims.js';
import { digitsApart } from './stats.js';
import { formatFloor, judgeAll, judgeRatio, usableFloor, withinFloor, type TargetVerdict } from './verdict.js';

/**
 * Where a target is clearly missed and the bare server of the same I/O path (bench/c: the
 * least a server can do) clearly misses the same bound under the same client:
 * 'client-bound' for a req/s bound (the client, not the server, sets the ratio on this
 * machine; not where the server is clearly below the bare server's ratio, for then the
 * client allowed more than the server reached), 'kernel-bound' for a CPU-per-request bound
 * (the system calls alone cost more).
 */
export type BoundStatus = 'client-bound' | 'kernel-bound';

export type TargetStatus = 'met' | 'missed' | 'within noise' | BoundStatus | 'not measured' | 'reported';

export interface TargetResult {
  target: string;
  /** The metric keys of the ratio, numerator / denominator (null: the metric is the ratio). */
  keys: [string, string | null][];
  min: number;
  max?: number;
  /** The rule in words: which ratio, against which bound. */
  rule: string;
  figures: string;
  status: TargetStatus;
  /** The A/A noise floor (a factor >= 1) the verdict was read against, when measured. */
  floor?: number;
  /** The client whose figures decide it (the anchor's own where installed). */
  judgedBy: string;
}

interface Target {
  target: string;
  /** The scenarios whose metrics it reads: one that failed is named as the reason it is not measured. */
  scenarios: string[];
  /** Ratios that must all be >= min (and <= max when given); a null denominator: the metric is a ratio. */
  pairs: [string, string | null][];
  min: number;
  max?: number;
  /** The metric holding the scenario's A/A floor. */
  floorKey?: string;
  /** Instead of `floorKey`: each pair's own A/A floor metric, pair by pair with `pairs`. */
  floorKeys?: string[];
  /** The client whose figures decide it. */
  judgedBy: string;
  /** Server CPU per request, numerator / denominator, shown beside a req/s ratio. */
  cpu?: [string, string];
  /**
   * The server's kernel (system) time per request over the anchor's whole CPU per request,
   * as one metric (null denominator) or numerator / denominator: the share of the anchor's
   * cost that the server's syscalls and the TCP stack take before any code of its own runs.
   */
  kernel?: [string, string | null];
  /** A figure to show, never judged (the load generator beside the anchors' own clients). */
  reportOnly?: boolean;
  /**
   * The bare server of the same I/O path and the same ratio for it, pair by pair with
   * `pairs`: where a pair is clearly missed and the bare server clearly misses the same bound
   * (beyond the floor), the pair reads `means`. Its figure is shown beside the target's.
   */
  bare?: { name: string; pairs: [string, string | null][]; means: BoundStatus };
  /** Metric flags a scenario sets when it could not measure a side, with the reason to show. */
  unmeasured?: [string, string][];
}

/** copy-c's cells: method and file size, as its metric keys spell them. */
const COPY_CELLS = ['readwrite', 'mmap', 'sendfile', 'splice'].flatMap((m) =>
  ['1MiB', '64MiB'].map((size): [string, string] => [m, size]),
);

const HTTP_FLOOR = 'http-wrk.floor.rps';

/** Why the wrk targets are not measured, from the flags http-wrk sets. */
const HTTP_UNMEASURED: [string, string][] = [
  ['http-wrk.no-wrk', 'wrk is not installed'],
  ['http-wrk.no-nginx', 'nginx is not installed'],
  ['http-wrk.nginx-failed', 'nginx did not start (see the http-wrk log)'],
];

/** Why the redis-benchmark targets are not measured, from the flags redis-benchmark sets. */
const RESP_UNMEASURED: [string, string][] = [
  ['redisbench.no-redis-benchmark', 'redis-benchmark is not installed'],
  ['redisbench.no-redis-server', 'redis-server is not installed'],
  ['redisbench.redis-failed', 'redis-server did not start (see the redis-benchmark log)'],
];
const CPU_FLOOR = 'http-wrk.floor.cpuUsPerReq';

/** A rawio HTTP server against nginx under wrk: req/s at least `rpsMin`x, server CPU per request at most `cpuMax`x. */
function overNginx(server: 'single' | 'proactor', rpsMin: number, cpuMax: number): Target[] {
  const what = `HTTP hello by wrk, 50 conns: ${server}`;
  const key = (m: 'rps' | 'cpuUsPerReq', s: string = server): [string, null] => [
    `http-wrk.${s}-over-nginx.c50.${m}`,
    null,
  ];
  // the bare server of the same path: epoll for single, io_uring for the proactor
  const [bare, bareName] = server === 'proactor' ? ['bare-uring', 'bare io_uring server'] : ['bare', 'bare C server'];
  return [
    {
      target: `${what} >= ${rpsMin}x nginx req/s${server === 'proactor' ? ' (1 worker)' : ''}`,
      scenarios: ['http-wrk'],
      pairs: [key('rps')],
      bare: { name: bareName, pairs: [key('rps', bare)], means: 'client-bound' },
      cpu: [`http-wrk.${server}.c50.cpuUsPerReq`, 'http-wrk.nginx.c50.cpuUsPerReq'],
      kernel: [`http-wrk.${server}-kernel-over-nginx.c50.cpuUsPerReq`, null],
      min: rpsMin,
      floorKey: HTTP_FLOOR,
      judgedBy: 'wrk',
      unmeasured: HTTP_UNMEASURED,
    },
    {
      target: `${what} server CPU per request <= ${cpuMax}x nginx`,
      scenarios: ['http-wrk'],
      pairs: [key('cpuUsPerReq')],
      bare: { name: bareName, pairs: [key('cpuUsPerReq', bare)], means: 'kernel-bound' },
      kernel: [`http-wrk.${server}-kernel-over-nginx.c50.cpuUsPerReq`, null],
      min: 0,
      max: cpuMax,
      floorKey: CPU_FLOOR,
      judgedBy: 'wrk (server CPU from /proc)',
      unmeasured: HTTP_UNMEASURED,
    },
  ];
}

/** rawio's `single` against redis-server under redis-benchmark, SET and GET at pipeline depth `depth`. */
function overRedis(depth: number, min: number): Target {
  return {
    target: `RESP SET and GET by redis-benchmark, 50 conns${depth > 1 ? `, -P ${depth}` : ''}: single >= ${min}x redis-server`,
    scenarios: ['redis-benchmark'],
    pairs: ['set', 'get'].map((t) => [`redisbench.single.${t}.p${depth}.rps`, `redisbench.redis.${t}.p${depth}.rps`]),
    bare: {
      name: 'bare C server',
      pairs: ['set', 'get'].map((t) => [`redisbench.bare.${t}.p${depth}.rps`, `redisbench.redis.${t}.p${depth}.rps`]),
      means: 'client-bound',
    },
    cpu: [`redisbench.single.p${depth}.cpuUsPerReq`, `redisbench.redis.p${depth}.cpuUsPerReq`],
    kernel: [`redisbench.single.p${depth}.kernelUsPerReq`, `redisbench.redis.p${depth}.cpuUsPerReq`],
    min,
    floorKey: `redisbench.floor.p${depth}.rps`,
    judgedBy: 'redis-benchmark',
    unmeasured: RESP_UNMEASURED,
  };
}

/** The load generator beside an anchor's own client: agreement within 15% is shown, never judged. */
function agreement(target: string, scenarios: string[], pairs: [string, string | null][]): Target {
  return { target, scenarios, pairs, min: 0.85, max: 1.15, reportOnly: true, judgedBy: 'reported, not judged' };
}

/**
 * The bounds of the HTTP targets under wrk by server, req/s at least and CPU per request at
 * most x nginx; the bare server of a path is read against its server's. http-wrk prints its
 * ratios with the digits that tell them from these.
 */
export const WRK_BOUNDS = { single: { rps: 1.1, cpu: 0.9 }, proactor: { rps: 1.3, cpu: 0.8 } } as const;

/** The RESP targets' bound x redis-server by pipeline depth (redis-benchmark prints against them). */
export const RESP_BOUNDS: Readonly<Record<number, number>> = { 1: 1.1, 16: 0.9 };

/** The Ring-vs-fio target's bound (the duel's table prints against it). */
export const RING_VS_FIO_MIN = 0.95;

const TARGETS: Target[] = [
  ...overNginx('proactor', WRK_BOUNDS.proactor.rps, WRK_BOUNDS.proactor.cpu),
  ...overNginx('single', WRK_BOUNDS.single.rps, WRK_BOUNDS.single.cpu),
  {
    target: 'HTTP hello by wrk, 50 conns: single and proactor >= 2.5x node:http',
    scenarios: ['http-wrk'],
    pairs: [
      ['http-wrk.single.c50.rps', 'http-wrk.node-http.c50.rps'],
      ['http-wrk.proactor.c50.rps', 'http-wrk.node-http.c50.rps'],
    ],
    // each against the bare server of its path: wrk's ceiling over node:http's own rate
    bare: {
      name: 'bare server of its path',
      pairs: [
        ['http-wrk.bare.c50.rps', 'http-wrk.node-http.c50.rps'],
        ['http-wrk.bare-uring.c50.rps', 'http-wrk.node-http.c50.rps'],
      ],
      means: 'client-bound',
    },
    min: 2.5,
    floorKey: HTTP_FLOOR,
    judgedBy: 'wrk',
    unmeasured: [['http-wrk.no-wrk', 'wrk is not installed']],
  },
  overRedis(1, RESP_BOUNDS[1]!),
  overRedis(16, RESP_BOUNDS[16]!),
  // one target per depth, each read against its own depth's A/A floor (uring-read-duel.ts)
  ...[1, 32, 128].map((qd): Target => ({
    target: `4 KiB O_DIRECT random reads at QD${qd}: Ring >= ${RING_VS_FIO_MIN}x fio io_uring (same ring setup and submit pattern, paired 1 s runs)`,
    scenarios: ['uring-read'],
    pairs: [[`uring-read.ring-as-fio-over-fio.qd${qd}`, null]],
    min: RING_VS_FIO_MIN,
    floorKey: `uring-read.floor.qd${qd}`,
    judgedBy: 'fio',
    unmeasured: [
      ['uring-read.no-fio', 'fio is not installed'],
      ['uring-read.fio-failed', 'fio did not run (see the uring-read log for what it said)'],
      [`uring-read.fio-failed.qd${qd}`, `fio failed at QD${qd} (see the uring-read log for what it said)`],
    ],
  })),
  {
    // copy-c runs rawio and the C driver interleaved in one scenario, against one sink
    target: 'File → socket, every method at 1 MiB and 64 MiB: >= 0.95x the same syscalls from C',
    scenarios: ['copy-c'],
    pairs: COPY_CELLS.map(([m, s]): [string, string] => [`copy-c.rawio.${m}.${s}.MBps`, `copy-c.c.${m}.${s}.MBps`]),
    // each cell's own floor: the C driver measured twice a round
    floorKeys: COPY_CELLS.map(([m, s]) => `copy-c.floor.${m}.${s}`),
    min: 0.95,
    judgedBy: 'the C driver (bench/c/transfer.c)',
    unmeasured: [
      ['copy-c.c.no-compiler', 'no C compiler (cc, gcc or clang) to build bench/c/transfer.c'],
      ['copy-c.c.build-failed', 'bench/c/transfer.c did not compile (see the copy-c log)'],
      ['copy-c.c.no-source', 'bench/c/transfer.c is missing from this install'],
      ['copy-c.c.unsafe-cache', 'no private directory in the temp dir to build the C driver in'],
    ],
  },
  agreement(
    'Load generator / wrk, node:http, 50 connections (paired, interleaved)',
    ['anchors-node'],
    [['anchors.loadgen-over-wrk.node-http.c50', null]],
  ),
  agreement(
    'Load generator / wrk, nginx, 50 connections (servers vs http-wrk scenario)',
    ['servers', 'http-wrk'],
    [['anchors.nginx.hello.c50.rps', 'http-wrk.nginx.c50.rps']],
  ),
  agreement(
    'Load generator / redis-benchmark, redis-server SET and GET, 50 conns, -P 1 and -P 16',
    ['redis-benchmark'],
    [1, 16].flatMap((d) =>
      ['set', 'get'].map((t): [string, string] => [
        `redisbench.loadgen.redis.${t}.p${d}.rps`,
        `redisbench.redis.${t}.p${d}.rps`,
      ]),
    ),
  ),
];

/** "a / b >= 1" for the report, next to the figures. */
function ruleOf(t: Target): string {
  const ratios = t.pairs.map(([a, b]) => (b === null ? a : `${a} / ${b}`));
  const shown = ratios.length > 2 ? `${ratios[0]} (and ${ratios.length - 1} more alike)` : ratios.join(' and ');
  const bounds = [...(t.min > 0 ? [`>= ${t.min}`] : []), ...(t.max !== undefined ? [`<= ${t.max}`] : [])].join(' and ');
  if (t.reportOnly) return `${shown}, reported (agreement would be ${bounds}), not judged`;
  const noise = t.floorKey
    ? ` (within the A/A floor ${t.floorKey} of a bound: within noise)`
    : t.floorKeys
      ? ` (within its own A/A floor ${t.floorKeys[0]} … of a bound: within noise)`
      : '';
  return `${shown} ${bounds}${noise}`;
}

/**
 * Every target against the metrics; `failed` maps a scenario that failed to its error, and
 * `ran` (when given) names the scenarios that ran: the reasons a target is not measured.
 */
export function judgeTargets(
  m: Metrics,
  failed: Readonly<Record<string, string>> = {},
  ran?: ReadonlySet<string>,
): TargetResult[] {
  return TARGETS.map((t) => {
    // a figure that is not a finite number (NaN: every run of it failed) is no figure at all
    const has = (k: string) => Number.isFinite(m[k]);
    const measured = t.pairs.filter(([a, b]) => has(a) && (b === null || (has(b) && m[b]! > 0)));
    const base = {
      target: t.target,
      judgedBy: t.judgedBy,
      keys: t.pairs,
      min: t.min,
      ...(t.max ? { max: t.max } : {}),
      rule: ruleOf(t),
    };
    if (measured.length === 0) {
      const broke = t.scenarios.filter((s) => failed[s] !== undefined);
      if (broke.length > 0) {
        const why = broke.map((s) => `scenario ${s} failed: ${failed[s]}`).join('; ');
        return { ...base, figures: `not measured: ${why}`, status: 'not measured' as const };
      }
      const notRun = ran ? t.scenarios.filter((s) => !ran.has(s)) : [];
      if (notRun.length > 0) {
        const why = notRun.map((s) => `scenario ${s} did not run`).join('; ');
        return { ...base, figures: `not measured: ${why}`, status: 'not measured' as const };
      }
      const flagged = t.unmeasured?.find(([k]) => m[k]);
      if (flagged) return { ...base, figures: `not measured: ${flagged[1]}`, status: 'not measured' as const };
      const missing = [...new Set(t.pairs.flatMap(([a, b]) => [a, b]).filter((k) => k !== null && !has(k)))];
      const why = `not measured: no ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ' …' : ''}`;
      return { ...base, figures: why, status: 'not measured' as const };
    }
    const floor = t.floorKey === undefined ? undefined : usableFloor(m[t.floorKey]);
    // a pair's floor: its own where the target has one per pair, else the target's
    const floorOf = (pair: [string, string | null]) =>
      t.floorKeys ? usableFloor(m[t.floorKeys[t.pairs.indexOf(pair)]!]) : floor;
    const floors = measured.map(floorOf).filter((f): f is number => f !== undefined);
    const shownFloor = t.floorKeys ? (floors.length ? Math.max(...floors) : undefined) : floor;
    const ratioOf = ([a, b]: [string, string | null]) =>
      !has(a) || (b !== null && !(has(b) && m[b]! > 0)) ? undefined : b === null ? m[a]! : m[a]! / m[b]!;
    const ratios = measured.map((pair) => ({
      a: pair[0],
      r: ratioOf(pair)!,
      bare: bareRatio(t, pair, ratioOf),
      floor: floorOf(pair),
    }));
    const verdicts = ratios.map(({ r, bare, floor: f }): TargetVerdict | BoundStatus => {
      const v = judgeRatio(r, t, f);
      // clearly missed, and the least a server can do on the same path clearly misses too
      if (v !== 'missed' || bare === undefined || judgeRatio(bare, t, f) !== 'missed') return v;
      // but the client sets no ratio of a server clearly below the rate the bare server
      // reached under the same client: that shortfall is the server's own
      if (t.bare!.means === 'client-bound' && clearlyBelow(r, bare, f)) return v;
      return t.bare!.means;
    });
    const figures = ratios
      .map(({ a, r, bare }, i) => {
        const v = verdicts[i]!;
        const noise = v === 'within noise' ? ' (within noise)' : '';
        const miss = !t.reportOnly && !noise && r < t.min ? ` (missed by ${percent((1 - r / t.min) * 100)})` : '';
        const over =
          !t.reportOnly && !noise && t.max !== undefined && r > t.max
            ? ` (over by ${percent((r / t.max - 1) * 100)})`
            : '';
        const bound = v === 'client-bound' || v === 'kernel-bound' ? `${v}: ` : '';
        const bounds = [...(t.min > 0 ? [t.min] : []), ...(t.max !== undefined ? [t.max] : [])];
        // the bare server's ratio is read against the same bound: the same digits rule
        const barePart = bare === undefined ? '' : ` (${bound}the ${t.bare!.name}: ${ratioText(bare, bounds)})`;
        // a target of several pairs names each, however many were measured
        return `${t.pairs.length > 1 ? `${a}: ` : ''}${ratioText(r, bounds)}${noise}${miss}${over}${barePart}`;
      })
      .join(', ');
    // the figures the unmeasured pairs lack: not numbers, or a denominator that is not positive
    const lacking = [
      ...new Set(
        t.pairs
          .filter((p) => !measured.includes(p))
          .flatMap(([a, b]) => [...(has(a) ? [] : [a]), ...(b !== null && !(has(b) && m[b]! > 0) ? [b] : [])]),
      ),
    ];
    const partial =
      measured.length < t.pairs.length
        ? ` [${measured.length}/${t.pairs.length} measured; no ${lacking.slice(0, 3).join(', ')}${lacking.length > 3 ? ' …' : ''}]`
        : '';
    const noise =
      t.floorKey !== undefined
        ? `; ${formatFloor(floor)}`
        : t.floorKeys && shownFloor !== undefined
          ? `; A/A floors up to ±${((shownFloor - 1) * 100).toFixed(1)}%`
          : t.floorKeys
            ? `; ${formatFloor(undefined)}`
            : '';
    const cpu = t.cpu && has(t.cpu[0]) && has(t.cpu[1]) && m[t.cpu[1]]! > 0 ? m[t.cpu[0]]! / m[t.cpu[1]]! : undefined;
    const cpuText = cpu === undefined ? '' : `; server CPU per request ${cpu.toFixed(2)}x`;
    const kernel = t.kernel && ratioOf(t.kernel);
    const kernelText = kernel === undefined ? '' : `; of it the kernel's alone ${kernel.toFixed(2)}x`;
    const judged = judgeWithBounds(verdicts);
    // Some pairs not measured (every run behind them failed): only a clear miss stands, for
    // any figure of theirs keeps it missed; met, within noise or bound could each turn to
    // missed with them, so the target is not measured — never met on the pairs that ran.
    const status = t.reportOnly
      ? ('reported' as const)
      : measured.length < t.pairs.length && judged !== 'missed'
        ? ('not measured' as const)
        : judged;
    const shown = figures + partial + cpuText + kernelText + noise;
    return { ...base, figures: shown, status, ...(shownFloor !== undefined ? { floor: shownFloor } : {}) };
  });
}

/**
 * A ratio as "1.23x", with as many more digits as it takes to tell it from each bound:
 * 1.0996 against 1.1 reads 1.0996x, not a 1.10x that seems to meet the bound, and
 * 1.0999999 reads 1.0999999x, never a 1.1000x that equals it. Only a ratio exactly at a
 * bound prints as the bound.
 */
export function ratioText(r: number, bounds: readonly number[]): string {
  return `${r.toFixed(digitsApart(r, bounds))}x`;
}

/**
 * "18%", or "0.4%" under 1%: how far a ratio is past its bound. A miss short of all of it
 * never rounds up to "100%", which would say the server measured nothing: 99.6% reads so.
 */
function percent(x: number): string {
  if (x >= 99.5 && x < 100) return `${x.toPrecision(3)}%`;
  return x >= 0.995 ? `${x.toFixed(0)}%` : `${x.toPrecision(1)}%`;
}

/**
 * Whether ratio r is clearly below the bare server's: lower, and farther from it than the
 * noise of two ratios each read against the floor (both were measured against the same
 * denominator, each with its own spread: twice the floor in log space).
 */
function clearlyBelow(r: number, bare: number, floor: number | undefined): boolean {
  return r < bare && !withinFloor(r, bare, floor === undefined ? undefined : floor * floor);
}

/** The bare server's ratio for the pair of `t` at the index of `pair`, when measured. */
function bareRatio(
  t: Target,
  pair: [string, string | null],
  ratioOf: (p: [string, string | null]) => number | undefined,
): number | undefined {
  const bare = t.bare?.pairs[t.pairs.indexOf(pair)];
  return bare === undefined ? undefined : ratioOf(bare);
}

/** Missed if any pair clearly is; else within noise if any is; else bound (client or kernel) if any is; else met. */
function judgeWithBounds(verdicts: (TargetVerdict | BoundStatus)[]): TargetStatus {
  const judged = verdicts.filter((v): v is TargetVerdict => v !== 'client-bound' && v !== 'kernel-bound');
  const rest = judged.length === 0 ? 'met' : judgeAll(judged);
  if (rest !== 'met') return rest;
  return verdicts.find((v): v is BoundStatus => v === 'client-bound' || v === 'kernel-bound') ?? 'met';
}

/** "±4.2%", or what is missing. */
export function floorCell(t: TargetResult): string {
  if (t.floor !== undefined) return `±${((t.floor - 1) * 100).toFixed(1)}%`;
  return t.judgedBy === 'reported, not judged' ? '' : 'not measured';
}
