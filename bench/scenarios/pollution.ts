/**
 * Page-cache pollution (claim 5): a stream of large-file transfers (their pages dropped
 * with posix_fadvise DONTNEED before every run, so each is read from disk) beside many
 * requests for small hot files, all from one `static` server. Two servers side by side:
 * `transfer: 'sendfile'` for everything (the large files go through the page cache) and
 * `transfer: 'auto'` (nginx's `directio`: at or above `directio` bytes, O_DIRECT reads
 * through io_uring, so the large files bypass the cache). Measured: small-file requests
 * per second and p99 latency, and the large stream's MB/s. A method this build lacks is
 * reported 'not available'.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadgen } from '../loadgen.js';
import { compare } from '../runner.js';
import { loadgenFailure, type LoadgenRun } from '../tools.js';
import { formatFloor, noiseFloor } from '../verdict.js';
import type { BenchContext, Scenario, ScenarioResult } from '../scenario.js';
import { constants } from '../../src/sys/constants.js';
import { fadvise, open } from '../../src/sys/file.js';
import { close } from '../../src/sys/socket.js';
import { fmt, median } from '../stats.js';
import { startModel, type MeasuredServer } from '../lib/measured-servers.js';
import { fetchWhole } from '../lib/whole-reply.js';

const MiB = 1 << 20;
const MODES = { buffered: { transfer: 'sendfile' }, direct: { transfer: 'auto', directio: 1 * MiB } } as const;
export type Mode = keyof typeof MODES;
/** The byte the large and the small files are made of (the preflight checks every one). */
const LARGE_FILL = 97;
const SMALL_FILL = 98;
const PREFLIGHT_STALL_MS = 10_000;

function settings(ctx: BenchContext) {
  return ctx.profile === 'full'
    ? { large: 4, largeMiB: 256, small: 2000, smallKiB: 4, clients: 8, conns: 4, seconds: 5, repeats: 3 }
    : { large: 2, largeMiB: 128, small: 500, smallKiB: 4, clients: 4, conns: 4, seconds: 2, repeats: 2 };
}
type Settings = ReturnType<typeof settings>;

/** The large and small files (exported for the preflight's test). */
export function writeFiles(root: string, s: Pick<Settings, 'large' | 'largeMiB' | 'small' | 'smallKiB'>): void {
  mkdirSync(root, { recursive: true });
  const chunk = Buffer.alloc(MiB, LARGE_FILL);
  for (let i = 0; i < s.large; i++) {
    const fd = openSync(join(root, `large-${i}.bin`), 'w');
    for (let m = 0; m < s.largeMiB; m++) writeSync(fd, chunk);
    fsyncSync(fd); // DONTNEED drops only clean pages
    closeSync(fd);
  }
  const small = Buffer.alloc(s.smallKiB * 1024, SMALL_FILL);
  for (let i = 0; i < s.small; i++) {
    const fd = openSync(join(root, `small-${i}.txt`), 'w');
    writeSync(fd, small);
    closeSync(fd);
  }
}

/** Drops the large files' pages, so every run reads them from the device. */
function dropLarge(root: string, n: number): void {
  for (let i = 0; i < n; i++) {
    const fd = open(join(root, `large-${i}.bin`), constants.O_RDONLY as number);
    fadvise(fd, 0, 0, constants.POSIX_FADV_DONTNEED as number);
    close(fd);
  }
}

export interface Sample {
  smallRps: number;
  smallP99: number;
  largeMBps: number;
  errors: number;
  /** Why the round is no figure (its figures NaN), or undefined when it is one. */
  excluded?: string;
}

type Run = LoadgenRun & { latencyUs: { p99: number }; bytesInWindow: number; seconds: number };

/**
 * One round's sample from its runs, large streams and small clients: its errors always,
 * its figures only when every run is a measurement (loadgenFailure), else NaN (the rounds
 * stay paired for the A/A floor, the medians leave it out). A large stream (one connection,
 * one request at a time) may lose the one file still arriving when its drain runs out on a
 * clean server: a 128 MiB read from the device outlasts 500 ms. That one cut reply is no
 * error; the small clients get no such allowance.
 */
export function sampleOf(large: readonly Run[], small: readonly Run[]): Sample {
  const errs = (r: Run) => r.errors.connect + r.errors.reset + r.errors.badReply + r.errors.errorReply;
  const reasons = [
    ...large.map((r, i) => [`large stream ${i}`, loadgenFailure(r, { cutReplies: 1 })] as const),
    ...small.map((r, i) => [`small client ${i}`, loadgenFailure(r)] as const),
  ].filter(([, why]) => why !== undefined);
  // the lost requests past the allowance count as errors: every one of a small client's, a large stream's beyond its one
  const lost =
    small.reduce((a, r) => a + r.errors.lost, 0) + large.reduce((a, r) => a + Math.max(0, r.errors.lost - 1), 0);
  const errors = [...large, ...small].reduce((a, r) => a + errs(r), 0) + lost;
  if (reasons.length > 0)
    return {
      smallRps: NaN,
      smallP99: NaN,
      largeMBps: NaN,
      errors,
      excluded: reasons.map(([who, why]) => `${who} ${why}`).join('; '),
    };
  return {
    smallRps: small.reduce((a, r) => a + r.rps, 0),
    smallP99: Math.max(...small.map((r) => r.latencyUs.p99)),
    // the bytes read inside the window over its seconds (bytesIn holds the warm-up's and the drain's too)
    largeMBps: large.reduce((a, r) => a + r.bytesInWindow / r.seconds, 0) / 1e6,
    errors,
  };
}

async function once(ctx: BenchContext, t: MeasuredServer, root: string, round: number, s: ReturnType<typeof settings>) {
  dropLarge(root, s.large);
  const ms = round === 0 ? 500 : s.seconds * 1000;
  const base = {
    port: t.port,
    protocol: 'http' as const,
    durationMs: ms,
    warmupMs: 200,
    drainMs: 500,
    cpus: ctx.clientCpus,
  };
  const large = Array.from({ length: s.large }, (_, i) =>
    loadgen({ ...base, connections: 1, path: `/large-${i}.bin` }),
  );
  // each client hammers its own stripe of the small files, one file per client run
  const small = Array.from({ length: s.clients }, (_, i) =>
    loadgen({ ...base, connections: s.conns, path: `/small-${(i * 97 + round * 13) % s.small}.txt` }),
  );
  const [lr, sr] = await Promise.all([Promise.all(large), Promise.all(small)]);
  return sampleOf(lr, sr);
}

/**
 * One small file, then one large file, each read whole and checked byte by byte: a server
 * that stalls or sends a short or wrong body is reported, not measured. No deadline on
 * the whole reply: on a loaded machine a large file read with O_DIRECT may take seconds,
 * and only a stall (nothing for PREFLIGHT_STALL_MS) is a failure.
 */
export async function preflight(t: Pick<MeasuredServer, 'port'>): Promise<string | null> {
  for (const [path, fill] of [
    ['/small-0.txt', SMALL_FILL],
    ['/large-0.bin', LARGE_FILL],
  ] as const) {
    const r = await fetchWhole({ port: t.port, path, fill, stallMs: PREFLIGHT_STALL_MS });
    if (r.failure !== null) return `failed: ${r.failure}`;
  }
  return null;
}

/** Whether this build has a transfer method (its module under src/transfer). */
function hasMethod(name: string): boolean {
  return existsSync(fileURLToPath(new URL(`../../src/transfer/${name}.js`, import.meta.url)));
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const s = settings(ctx);
  const root = join(ctx.tmpDir, 'pollution');
  ctx.progress(0, `writing ${s.large} × ${s.largeMiB} MiB and ${s.small} small files`);
  writeFiles(root, s);
  const targets = new Map<Mode, MeasuredServer>();
  const notes = new Map<Mode, string>();
  const samples: Record<Mode, Sample[]> = { buffered: [], direct: [] };
  const aa: number[] = [];
  try {
    for (const m of Object.keys(MODES) as Mode[]) {
      if (m === 'direct' && !(hasMethod('auto') && hasMethod('direct'))) {
        notes.set(m, "not available: this build has no 'auto'/'direct' transfer");
        continue;
      }
      const st = await startModel(ctx, m, { model: 'single', protocol: 'static', root, ...MODES[m] });
      if (!st.ok) {
        notes.set(m, st.reason);
        continue;
      }
      const why = await preflight(st.target);
      if (why === null) targets.set(m, st.target);
      else {
        notes.set(m, why);
        await st.target.close();
      }
    }
    let n = 0;
    const total = (s.repeats + 1) * (targets.size + (targets.has('buffered') ? 1 : 0));
    const buffered = targets.get('buffered');
    await compare(
      [
        ...[...targets].map(([m, t]) => ({
          name: m,
          run: async (round: number) => {
            const x = await once(ctx, t, root, round, s);
            if (x.excluded !== undefined) ctx.log(`${m} round ${round}: ${x.excluded}`);
            if (round > 0) samples[m].push(x);
            return x.smallRps;
          },
        })),
        // A/A: the buffered server a second time each round, the floor claim 5 is read against
        ...(buffered
          ? [
              {
                name: 'buffered A/A',
                run: async (round: number) => {
                  const x = await once(ctx, buffered, root, round, s);
                  if (x.excluded !== undefined) ctx.log(`buffered A/A round ${round}: ${x.excluded}`);
                  if (round > 0) aa.push(x.smallRps);
                  return x.smallRps;
                },
              },
            ]
          : []),
      ],
      { warmup: 1, repeats: s.repeats, onRun: (_d, _t, name) => ctx.progress(n++ / total, name) },
    );
  } finally {
    for (const t of targets.values()) await t.close();
  }
  for (const [m, why] of notes) ctx.log(`${m}: ${why}`);
  const floor = noiseFloor(
    samples.buffered.map((x) => x.smallRps),
    aa,
  );
  return report(samples, notes, s, floor);
}

/** The table and metrics of the samples (exported for the tests). */
export function report(
  samples: Record<Mode, Sample[]>,
  notes: Map<Mode, string>,
  s: ReturnType<typeof settings>,
  floor: number | undefined,
): ScenarioResult {
  const metrics: Record<string, number> = {};
  if (floor !== undefined) metrics['pollution.floor'] = floor;
  const rows: (string | number)[][] = [];
  for (const m of Object.keys(MODES) as Mode[]) {
    const xs = samples[m];
    const label = m === 'buffered' ? "buffered (transfer 'sendfile')" : "direct (transfer 'auto', directio 1 MiB)";
    if (xs.length === 0) {
      rows.push([label, notes.get(m) ?? 'not available', '', '', '', '', '']);
      continue;
    }
    const errors = xs.reduce((a, x) => a + x.errors, 0);
    const out = xs.filter((x) => x.excluded !== undefined);
    const rounds = `${xs.length - out.length} of ${xs.length}`;
    const why = out.length === 0 ? '' : `${out.length} round(s): ${out[0]!.excluded}`;
    // every round errored: no figure, so claim 5 reads not measured
    if (out.length === xs.length) {
      rows.push([label, 'no figure', '', '', rounds, errors, why]);
      continue;
    }
    const [rps, p99, mbps] = [
      median(xs.map((x) => x.smallRps)),
      median(xs.map((x) => x.smallP99)),
      median(xs.map((x) => x.largeMBps)),
    ];
    metrics[`pollution.small.rps.${m}`] = rps;
    metrics[`pollution.small.p99us.${m}`] = p99;
    metrics[`pollution.large.MBps.${m}`] = mbps;
    rows.push([label, fmt(rps), fmt(p99), fmt(mbps), rounds, errors, why]);
  }
  return {
    tables: [
      {
        title: 'Page-cache pollution: small hot files beside a stream of large ones',
        columns: ['large files sent', 'small req/s', 'small p99 µs', 'large MB/s', 'rounds', 'errors', 'not counted'],
        rows,
        note:
          `One 'single' static server per mode, pinned to the server CPU; ${s.large} clients each stream a ` +
          `${s.largeMiB} MiB file (pages dropped with fadvise DONTNEED before each run) while ${s.clients} × ${s.conns} ` +
          `connections ask for ${s.smallKiB} KiB files out of ${s.small}. Modes interleaved; medians. Large MB/s: the ` +
          'bytes the streams read inside the measured window (10^6 B, headers included) over its seconds. On a machine ' +
          'with plenty of free memory the large files cannot evict the small ones: what differs is the cost of ' +
          `reading them, not the cache. Noise: the buffered server measured twice a round, ${formatFloor(floor)}. ` +
          'A round in which any client had errors (connect, reset, bad or error reply, a small request lost; a large ' +
          'stream may lose the one file its drain cut) or did not end as asked is not counted (bench/tools.ts ' +
          'loadgenFailure): "rounds" says how many counted.',
      },
    ],
    metrics,
    data: samples,
  };
}

export const pollution: Scenario = {
  name: 'pollution',
  title: 'Page-cache pollution: direct IO for the large files, small hot files beside them',
  description:
    'Small-file throughput and p99 latency from a static server while large files stream, with the large ones sent ' +
    "by sendfile (through the page cache) vs 'auto' (O_DIRECT above 1 MiB). Tests claim 5.",
  estimate: { quick: 20, full: 60 },
  run,
};
