/**
 * rawio's own performance targets (docs/DESIGN.md, "Performance targets"): ratios measured side by side in one run, each
 * read from the scenarios' named metrics. Where a target is missed the report shows by how
 * much; where its scenarios did not run (or an anchor such as nginx is not installed) it
 * is 'not measured'.
 */
import type { Metrics } from './claims.js';

export type TargetStatus = 'met' | 'missed' | 'not measured';

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
}

interface Target {
  target: string;
  /** Ratios that must all be >= min (and <= max when given); a null denominator: the metric is a ratio. */
  pairs: [string, string | null][];
  min: number;
  max?: number;
  /** Metric flags a scenario sets when it could not measure a side, with the reason to show. */
  unmeasured?: [string, string][];
}

const nginx = 'anchors.nginx.hello.c50.rps';
// node:http as measured beside the models in the servers scenario (same run, interleaved)
const nodeHttp = 'servers.http.node-http.c50.rps';

const TARGETS: Target[] = [
  {
    target: 'Load generator agrees with wrk within 15% (node:http, 50 connections)',
    // the median of the paired (interleaved) ratios, steadier than a ratio of medians
    pairs: [['anchors.loadgen-over-wrk.node-http.c50', null]],
    min: 0.85,
    max: 1.15,
  },
  {
    target: 'HTTP hello, 50 conns: single >= 1.0x nginx (1 worker)',
    pairs: [['servers.http.single.c50.rps', nginx]],
    min: 1,
  },
  {
    target: 'HTTP hello, 50 conns: proactor >= 1.2x nginx',
    pairs: [['servers.http.proactor.c50.rps', nginx]],
    min: 1.2,
  },
  {
    target: 'HTTP hello, 50 conns: single and proactor >= 2.5x node:http',
    pairs: [
      ['servers.http.single.c50.rps', nodeHttp],
      ['servers.http.proactor.c50.rps', nodeHttp],
    ],
    min: 2.5,
  },
  {
    target: 'RESP SET/GET, 50 conns: single >= 1.0x redis-server',
    pairs: [['servers.resp.single.c50.rps', 'anchors.redis.c50.rps']],
    min: 1,
  },
  {
    target: 'RESP SET/GET, 50 conns, 16-deep pipeline: single >= 0.8x redis-server',
    pairs: [['servers.resp.single.c50p16.rps', 'anchors.redis.c50p16.rps']],
    min: 0.8,
  },
  {
    target: '4 KiB O_DIRECT random reads at QD32: Ring >= 0.95x fio io_uring (same ring setup, paired 1 s runs)',
    pairs: [['uring-read.ring-defer-over-fio.qd32', null]],
    min: 0.95,
  },
  {
    // copy-c runs rawio and the C driver interleaved in one scenario, against one sink
    target: 'File → socket, every method at 1 MiB and 64 MiB: >= 0.95x the same syscalls from C',
    pairs: ['readwrite', 'mmap', 'sendfile', 'splice'].flatMap((m) =>
      ['1MiB', '64MiB'].map((s): [string, string] => [`copy-c.rawio.${m}.${s}.MBps`, `copy-c.c.${m}.${s}.MBps`]),
    ),
    min: 0.95,
    unmeasured: [
      ['copy-c.c.no-compiler', 'no C compiler (cc, gcc or clang) to build bench/c/transfer.c'],
      ['copy-c.c.build-failed', 'bench/c/transfer.c did not compile (see the copy-c log)'],
      ['copy-c.c.no-source', 'bench/c/transfer.c is missing from this install'],
      ['copy-c.c.unsafe-cache', 'no private directory in the temp dir to build the C driver in'],
    ],
  },
];

/** "a / b >= 1" for the report, next to the figures. */
function ruleOf(t: Target): string {
  const ratios = t.pairs.map(([a, b]) => (b === null ? a : `${a} / ${b}`));
  const shown = ratios.length > 2 ? `${ratios[0]} (and ${ratios.length - 1} more alike)` : ratios.join(' and ');
  return `${shown} >= ${t.min}${t.max !== undefined ? ` and <= ${t.max}` : ''}`;
}

export function judgeTargets(m: Metrics): TargetResult[] {
  return TARGETS.map((t) => {
    const measured = t.pairs.filter(([a, b]) => m[a] !== undefined && (b === null || (m[b] ?? 0) > 0));
    const base = { target: t.target, keys: t.pairs, min: t.min, ...(t.max ? { max: t.max } : {}), rule: ruleOf(t) };
    if (measured.length === 0) {
      const flagged = t.unmeasured?.find(([k]) => m[k]);
      if (flagged) return { ...base, figures: `not measured: ${flagged[1]}`, status: 'not measured' as const };
      const missing = [...new Set(t.pairs.flatMap(([a, b]) => [a, b]).filter((k) => k !== null && m[k] === undefined))];
      const why = `not measured: no ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ' …' : ''}`;
      return { ...base, figures: why, status: 'not measured' as const };
    }
    const ratios = measured.map(([a, b]) => ({ a, r: b === null ? m[a]! : m[a]! / m[b]! }));
    const ok = ratios.every(({ r }) => r >= t.min && (t.max === undefined || r <= t.max));
    const figures = ratios
      .map(({ a, r }) => {
        const miss = r < t.min ? ` (missed by ${((1 - r / t.min) * 100).toFixed(0)}%)` : '';
        const over = t.max !== undefined && r > t.max ? ` (over by ${((r / t.max - 1) * 100).toFixed(0)}%)` : '';
        return `${measured.length > 1 ? `${a}: ` : ''}${r.toFixed(2)}x${miss}${over}`;
      })
      .join(', ');
    const partial = measured.length < t.pairs.length ? ` [${measured.length}/${t.pairs.length} measured]` : '';
    return { ...base, figures: figures + partial, status: ok ? ('met' as const) : ('missed' as const) };
  });
}
