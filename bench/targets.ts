/**
 * rawio's own performance targets: ratios measured side by side in one run, each read from
 * the scenarios' named metrics and judged by the anchor's own client where it is installed
 * (wrk for HTTP in http-wrk, redis-benchmark for RESP, fio for reads). Each target names
 * its scenario's A/A noise floor: a ratio closer to its bound than the floor reads "within
 * noise" (bench/verdict.ts). Beside the HTTP req/s targets, server CPU per request. The load
 * generator's agreement with wrk and redis-benchmark is reported, not judged. Where a target
 * is missed the report shows by how much; where its scenarios did not run (or an anchor is
 * not installed) it is 'not measured'. A req/s target the bare C server (the least a server
 * can do) clearly misses too under the same client reads 'client-bound': the client, not
 * the server, decides that ratio on this machine.
 */
import type { Metrics } from './claims.js';
import { formatFloor, judgeAll, judgeRatio, type TargetVerdict } from './verdict.js';

/**
 * 'client-bound': clearly missed, and the bare C server (bench/c/bare-server.c, the least a server
 * can do) is itself clearly short of the bound under the same client: the anchor's client
 * cannot show that ratio on this machine, whatever the server does.
 */
export type TargetStatus = 'met' | 'missed' | 'within noise' | 'client-bound' | 'not measured' | 'reported';

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
  /** Ratios that must all be >= min (and <= max when given); a null denominator: the metric is a ratio. */
  pairs: [string, string | null][];
  min: number;
  max?: number;
  /** The metric holding the scenario's A/A floor. */
  floorKey?: string;
  /** The client whose figures decide it. */
  judgedBy: string;
  /** Server CPU per request, numerator / denominator, shown beside a req/s ratio. */
  cpu?: [string, string];
  /** A figure to show, never judged (the load generator beside the anchors' own clients). */
  reportOnly?: boolean;
  /**
   * The same ratio for the bare C server, pair by pair with `pairs`: where the target is
   * clearly missed and the bare server is clearly (beyond the floor) short of `min` too, the pair reads
   * 'client-bound'.
   */
  bare?: [string, string | null][];
  /** The bare C server's figure for this ratio, shown beside it as a reference, never judged. */
  bareReference?: [string, string | null];
  /** Metric flags a scenario sets when it could not measure a side, with the reason to show. */
  unmeasured?: [string, string][];
}

const HTTP_FLOOR = 'http-wrk.floor.rps';
const CPU_FLOOR = 'http-wrk.floor.cpuUsPerReq';

/** A rawio HTTP server against nginx under wrk: req/s at least `rpsMin`x, server CPU per request at most `cpuMax`x. */
function overNginx(server: string, rpsMin: number, cpuMax: number): Target[] {
  const what = `HTTP hello by wrk, 50 conns: ${server}`;
  const key = (m: 'rps' | 'cpuUsPerReq'): [string, null] => [`http-wrk.${server}-over-nginx.c50.${m}`, null];
  return [
    {
      target: `${what} >= ${rpsMin}x nginx req/s${server === 'proactor' ? ' (1 worker)' : ''}`,
      pairs: [key('rps')],
      bare: [['http-wrk.bare-over-nginx.c50.rps', null]],
      cpu: [`http-wrk.${server}.c50.cpuUsPerReq`, 'http-wrk.nginx.c50.cpuUsPerReq'],
      min: rpsMin,
      floorKey: HTTP_FLOOR,
      judgedBy: 'wrk',
    },
    {
      target: `${what} server CPU per request <= ${cpuMax}x nginx`,
      pairs: [key('cpuUsPerReq')],
      bareReference: ['http-wrk.bare-over-nginx.c50.cpuUsPerReq', null],
      min: 0,
      max: cpuMax,
      floorKey: CPU_FLOOR,
      judgedBy: 'wrk (server CPU from /proc)',
    },
  ];
}

/** rawio's `single` against redis-server under redis-benchmark, SET and GET at pipeline depth `depth`. */
function overRedis(depth: number, min: number): Target {
  return {
    target: `RESP SET and GET by redis-benchmark, 50 conns${depth > 1 ? `, -P ${depth}` : ''}: single >= ${min}x redis-server`,
    pairs: ['set', 'get'].map((t) => [`redisbench.single.${t}.p${depth}.rps`, `redisbench.redis.${t}.p${depth}.rps`]),
    bare: ['set', 'get'].map((t) => [`redisbench.bare.${t}.p${depth}.rps`, `redisbench.redis.${t}.p${depth}.rps`]),
    cpu: [`redisbench.single.p${depth}.cpuUsPerReq`, `redisbench.redis.p${depth}.cpuUsPerReq`],
    min,
    floorKey: `redisbench.floor.p${depth}.rps`,
    judgedBy: 'redis-benchmark',
  };
}

/** The load generator beside an anchor's own client: agreement within 15% is shown, never judged. */
function agreement(target: string, pairs: [string, string | null][]): Target {
  return { target, pairs, min: 0.85, max: 1.15, reportOnly: true, judgedBy: 'reported, not judged' };
}

const TARGETS: Target[] = [
  ...overNginx('proactor', 1.3, 0.8),
  ...overNginx('single', 1.1, 0.9),
  {
    target: 'HTTP hello by wrk, 50 conns: single and proactor >= 2.5x node:http',
    pairs: [
      ['http-wrk.single.c50.rps', 'http-wrk.node-http.c50.rps'],
      ['http-wrk.proactor.c50.rps', 'http-wrk.node-http.c50.rps'],
    ],
    min: 2.5,
    floorKey: HTTP_FLOOR,
    judgedBy: 'wrk',
  },
  overRedis(1, 1.1),
  overRedis(16, 0.9),
  // one target per depth, each read against its own depth's A/A floor (uring-read-duel.ts)
  ...[1, 32, 128].map((qd): Target => ({
    target: `4 KiB O_DIRECT random reads at QD${qd}: Ring >= 0.95x fio io_uring (same ring setup and submit pattern, paired 1 s runs)`,
    pairs: [[`uring-read.ring-as-fio-over-fio.qd${qd}`, null]],
    min: 0.95,
    floorKey: `uring-read.floor.qd${qd}`,
    judgedBy: 'fio',
  })),
  {
    // copy-c runs rawio and the C driver interleaved in one scenario, against one sink
    target: 'File → socket, every method at 1 MiB and 64 MiB: >= 0.95x the same syscalls from C',
    pairs: ['readwrite', 'mmap', 'sendfile', 'splice'].flatMap((m) =>
      ['1MiB', '64MiB'].map((s): [string, string] => [`copy-c.rawio.${m}.${s}.MBps`, `copy-c.c.${m}.${s}.MBps`]),
    ),
    min: 0.95,
    judgedBy: 'the C driver (bench/c/transfer.c)',
    unmeasured: [
      ['copy-c.c.no-compiler', 'no C compiler (cc, gcc or clang) to build bench/c/transfer.c'],
      ['copy-c.c.build-failed', 'bench/c/transfer.c did not compile (see the copy-c log)'],
      ['copy-c.c.no-source', 'bench/c/transfer.c is missing from this install'],
      ['copy-c.c.unsafe-cache', 'no private directory in the temp dir to build the C driver in'],
    ],
  },
  agreement('Load generator / wrk, node:http, 50 connections (paired, interleaved)', [
    ['anchors.loadgen-over-wrk.node-http.c50', null],
  ]),
  agreement('Load generator / wrk, nginx, 50 connections (servers vs http-wrk scenario)', [
    ['anchors.nginx.hello.c50.rps', 'http-wrk.nginx.c50.rps'],
  ]),
  agreement(
    'Load generator / redis-benchmark, redis-server SET and GET, 50 conns, -P 1 and -P 16',
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
  const noise = t.floorKey ? ` (within the A/A floor ${t.floorKey} of a bound: within noise)` : '';
  return `${shown} ${bounds}${noise}`;
}

export function judgeTargets(m: Metrics): TargetResult[] {
  return TARGETS.map((t) => {
    const measured = t.pairs.filter(([a, b]) => m[a] !== undefined && (b === null || (m[b] ?? 0) > 0));
    const base = {
      target: t.target,
      judgedBy: t.judgedBy,
      keys: t.pairs,
      min: t.min,
      ...(t.max ? { max: t.max } : {}),
      rule: ruleOf(t),
    };
    if (measured.length === 0) {
      const flagged = t.unmeasured?.find(([k]) => m[k]);
      if (flagged) return { ...base, figures: `not measured: ${flagged[1]}`, status: 'not measured' as const };
      const missing = [...new Set(t.pairs.flatMap(([a, b]) => [a, b]).filter((k) => k !== null && m[k] === undefined))];
      const why = `not measured: no ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ' …' : ''}`;
      return { ...base, figures: why, status: 'not measured' as const };
    }
    const floor = t.floorKey === undefined ? undefined : m[t.floorKey];
    const ratioOf = ([a, b]: [string, string | null]) =>
      m[a] === undefined || (b !== null && !((m[b] ?? 0) > 0)) ? undefined : b === null ? m[a]! : m[a]! / m[b]!;
    const ratios = measured.map((pair) => ({ a: pair[0], r: ratioOf(pair)!, bare: bareRatio(t, pair, ratioOf) }));
    const verdicts = ratios.map(({ r, bare }): TargetVerdict | 'client-bound' => {
      const v = judgeRatio(r, t, floor);
      // clearly missed, and the least a server can do is clearly short too under the same client
      return v === 'missed' &&
        bare !== undefined &&
        bare < t.min &&
        judgeRatio(bare, { min: t.min }, floor) === 'missed'
        ? 'client-bound'
        : v;
    });
    const figures = ratios
      .map(({ a, r, bare }, i) => {
        const noise = verdicts[i] === 'within noise' ? ' (within noise)' : '';
        if (verdicts[i] === 'client-bound')
          return `${measured.length > 1 ? `${a}: ` : ''}${r.toFixed(2)}x (client-bound: the bare C server reaches ${bare!.toFixed(2)}x)`;
        const miss = !t.reportOnly && !noise && r < t.min ? ` (missed by ${((1 - r / t.min) * 100).toFixed(0)}%)` : '';
        const over =
          !t.reportOnly && !noise && t.max !== undefined && r > t.max
            ? ` (over by ${((r / t.max - 1) * 100).toFixed(0)}%)`
            : '';
        return `${measured.length > 1 ? `${a}: ` : ''}${r.toFixed(2)}x${noise}${miss}${over}`;
      })
      .join(', ');
    const partial = measured.length < t.pairs.length ? ` [${measured.length}/${t.pairs.length} measured]` : '';
    const noise = t.floorKey === undefined ? '' : `; ${formatFloor(floor)}`;
    const cpu = t.cpu && m[t.cpu[0]] && m[t.cpu[1]] ? m[t.cpu[0]]! / m[t.cpu[1]]! : undefined;
    const cpuText = cpu === undefined ? '' : `; server CPU per request ${cpu.toFixed(2)}x`;
    const reference = t.bareReference ? ratioOf(t.bareReference) : undefined;
    const refText = reference === undefined ? '' : `; the bare C server: ${reference.toFixed(2)}x`;
    const status = t.reportOnly ? ('reported' as const) : judgeWithClient(verdicts);
    const shown = figures + partial + cpuText + refText + noise;
    return { ...base, figures: shown, status, ...(floor !== undefined ? { floor } : {}) };
  });
}

/** The bare server's ratio for the pair of `t` at the index of `pair`, when measured. */
function bareRatio(
  t: Target,
  pair: [string, string | null],
  ratioOf: (p: [string, string | null]) => number | undefined,
): number | undefined {
  const bare = t.bare?.[t.pairs.indexOf(pair)];
  return bare === undefined ? undefined : ratioOf(bare);
}

/** Missed if any pair clearly is; else within noise if any is; else client-bound if any is; else met. */
function judgeWithClient(verdicts: (TargetVerdict | 'client-bound')[]): TargetStatus {
  const judged = verdicts.filter((v): v is TargetVerdict => v !== 'client-bound');
  if (judged.length === verdicts.length) return judgeAll(judged);
  const rest = judged.length === 0 ? 'met' : judgeAll(judged);
  return rest === 'met' ? 'client-bound' : rest;
}

/** "±4.2%", or what is missing. */
export function floorCell(t: TargetResult): string {
  if (t.floor !== undefined) return `±${((t.floor - 1) * 100).toFixed(1)}%`;
  return t.judgedBy === 'reported, not judged' ? '' : 'not measured';
}
