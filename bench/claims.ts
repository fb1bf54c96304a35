/**
 * The classic claims about I/O models that the bench judges, each with the scenario(s) that test it and a
 * rule — a function over the scenarios' named metrics — that decides confirmed, refuted or
 * depends (on what). A claim whose scenarios did not run is 'not measured'; nothing here
 * is decided by hand. The metric keys each rule reads are written next to it: a scenario
 * that tests a claim publishes those keys in its result's `metrics`.
 */
import type { ClaimResult, Verdict } from './scenario.js';
import { digitsApart, fmt } from './stats.js';
import { formatFloor, gradeClaim, usableFloor, withinFloor, type ClaimGrade } from './verdict.js';

/** Every metric of every scenario that ran, keys as the scenarios published them. */
export type Metrics = Record<string, number>;

interface Decision {
  verdict: Exclude<Verdict, 'not measured'>;
  figures: string;
}

/** What a rule may need of the machine beside the figures. */
export interface ClaimContext {
  /** CPUs of the machine (the bench's allowed set). */
  cores: number;
  /**
   * CPUs the servers were pinned to (runner.ts cpuPlan: one on any machine, the client has
   * another); when absent, all but the client's.
   */
  serverCpus?: number;
  /** Scenarios that failed, with their errors: the reason a claim reading them is not measured. */
  failed?: Readonly<Record<string, string>>;
}

export interface Claim {
  id: number;
  claim: string;
  scenarios: string[];
  /** The rule in words, as the report prints it. */
  rule: string;
  /** Metric keys the rule reads (patterns with <…> placeholders), for scenario authors. */
  keys: string[];
  decide(m: Metrics, ctx: ClaimContext): Decision | null;
}

/**
 * A ratio as "1.23x", with the digits that tell it from each of its rule's `bounds`: 0.8996
 * against 0.9 reads 0.8996x, never a 0.90x beside a verdict 0.9004 would not get.
 */
const x = (v: number, bounds: readonly number[] = []) => `${v.toFixed(digitsApart(v, bounds))}x`;

/** Values of keys matching re, keyed by the re's first capture group. */
function pick(m: Metrics, re: RegExp): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of Object.entries(m)) {
    const g = re.exec(k);
    if (g && Number.isFinite(v)) out.set(g[1]!, v);
  }
  return out;
}

/** Growth from the smallest to the largest N of `multiplex.<backend>.n<N>.us`. */
function growth(m: Metrics, backend: string): { ratio: number; lo: number; hi: number } | null {
  const byN = [...pick(m, new RegExp(`^multiplex\\.${backend}\\.n(\\d+)\\.us$`))].sort(
    (a, b) => Number(a[0]) - Number(b[0]),
  );
  if (byN.length < 2) return null;
  const [lo, hi] = [byN[0]!, byN[byN.length - 1]!];
  // a cost of 0 at the smallest N is no figure to grow from (0/0 would read "barely grew")
  if (!(lo[1] > 0)) return null;
  return { ratio: hi[1] / lo[1], lo: Number(lo[0]), hi: Number(hi[0]) };
}

/** Pairs a/b over the sizes both measured, from keys `copy.<method>.<size>.<cache>.MBps`. */
function copyRatios(m: Metrics, a: string, b: string): [string, number][] {
  const pa = pick(m, new RegExp(`^copy\\.${a}\\.(.+)\\.MBps$`));
  const pb = pick(m, new RegExp(`^copy\\.${b}\\.(.+)\\.MBps$`));
  return [...pa].filter(([k]) => pb.has(k) && pb.get(k)! > 0).map(([k, v]) => [k, v / pb.get(k)!]);
}

/**
 * "r >= min in every cell": confirmed where every cell clears `min`, refuted where none
 * does, depends otherwise (naming where it holds). A cell within its A/A floor of `min`
 * (`floorOf`) could land either side: the verdict stands only if it is the same with those
 * cells counted either way, and reads "within noise" if not.
 */
function byThreshold(
  ratios: [string, number][],
  min: number,
  what: string,
  floorOf: (k: string) => number | undefined = () => undefined,
): Decision | null {
  if (ratios.length === 0) return null;
  const noisy = new Set(ratios.filter(([k, r]) => withinFloor(r, min, floorOf(k))).map(([k]) => k));
  const figures = ratios.map(([k, r]) => `${k}: ${x(r, [min])}${noisy.has(k) ? ' (within noise)' : ''}`).join(', ');
  const verdictIf = (noiseHolds: boolean) => {
    const above = ratios.filter(([k, r]) => (noisy.has(k) ? noiseHolds : r >= min)).map(([k]) => k);
    return {
      above,
      verdict: above.length === ratios.length ? 'confirmed' : above.length === 0 ? 'refuted' : 'depends',
    };
  };
  const [hi, lo] = [verdictIf(true), verdictIf(false)];
  const floors = [...new Set(ratios.map(([k]) => usableFloor(floorOf(k))).filter((f) => f !== undefined))];
  const floorText = floors.length ? `; A/A floors up to ±${((Math.max(...floors) - 1) * 100).toFixed(1)}%` : '';
  if (hi.verdict !== lo.verdict) return { verdict: 'within noise', figures: figures + floorText };
  const verdict = hi.verdict as 'confirmed' | 'refuted' | 'depends';
  if (verdict !== 'depends') return { verdict, figures: figures + floorText };
  return { verdict, figures: `${figures}${floorText} — ${what} only at ${lo.above.join(', ')}` };
}

/** The A/A floor of the servers scenario for a protocol at 50 connections (`single` measured twice a round). */
const serversFloor = (m: Metrics, protocol: string) => m[`servers.${protocol}.floor.c50`];

/**
 * One verdict of several grades, each for a part (a protocol): the grades the clear parts
 * (not within noise) agree on; 'depends' when they disagree; and 'within noise' when they
 * agree but a part within noise could land on either side of them — that part would make
 * it hold or not, so it is not 'depends' (which says it holds here and not there).
 */
export function combineGrades(grades: readonly ClaimGrade[]): ClaimGrade {
  const clear = [...new Set(grades.filter((g) => g !== 'within noise'))];
  if (clear.length > 1) return 'depends';
  if (clear.length === 0 || grades.includes('within noise')) return 'within noise';
  return clear[0]!;
}

/** Several graded ratios, each one named, as one verdict (combineGrades). */
function combine(
  graded: [string, number, ClaimGrade][],
  floorOf: (k: string) => number | undefined,
  thresholds: readonly number[],
): Decision | null {
  if (graded.length === 0) return null;
  const figures = graded.map(([k, r, g]) => `${k}: ${x(r, thresholds)} (${g}, ${formatFloor(floorOf(k))})`).join(', ');
  return { verdict: combineGrades(graded.map(([, , g]) => g)), figures };
}

/** Claim 4's mapping kinds: the copy scenario's variant and how the verdict names it. */
const MMAP_KINDS: [variant: string, name: string][] = [
  ['mmap', 'a mapping per transfer'],
  ['mmap-populate', 'MAP_POPULATE'],
  ['mmap-reuse', 'a reused mapping'],
];

/** "<what> at 4KiB.warm, 1MiB.cold" per grade, grades in a fixed order, empty ones left out. */
function whereEach(graded: [string, ClaimGrade][], words: Record<ClaimGrade, string>): string {
  const order: ClaimGrade[] = ['confirmed', 'refuted', 'within noise', 'depends'];
  return order
    .map((g) => [g, graded.filter(([, x]) => x === g).map(([k]) => k)] as const)
    .filter(([, ks]) => ks.length > 0)
    .map(([g, ks]) => `${words[g]} at ${ks.join(', ')}`)
    .join('; ');
}

/**
 * How much less CPU per GiB variant `a` spends than `b` (b's CPU / a's, > 1: a is cheaper),
 * over the cells both measured, from keys `copy.<variant>.<size>.<cache>.cpuPerGiB`.
 */
function cpuAdvantage(m: Metrics, a: string, b: string): [string, number][] {
  const pa = pick(m, new RegExp(`^copy\\.${a}\\.(.+)\\.cpuPerGiB$`));
  const pb = pick(m, new RegExp(`^copy\\.${b}\\.(.+)\\.cpuPerGiB$`));
  return [...pa].filter(([k, v]) => pb.has(k) && v > 0).map(([k, v]) => [k, pb.get(k)! / v]);
}

const cheaper = { confirmAt: 1, refuteAt: 1 };

/**
 * Both halves of a claim "A, but B": refuted where either half is (it fails wherever that
 * half does), confirmed where both are, depends where a half depends, else within noise.
 * Null (not measured) where B was not measured and A alone does not refute the claim.
 */
export function bothHalves(a: ClaimGrade, b: ClaimGrade | undefined): ClaimGrade | null {
  if (a === 'refuted' || b === 'refuted') return 'refuted';
  if (b === undefined) return null;
  if (a === 'confirmed' && b === 'confirmed') return 'confirmed';
  if (a === 'depends' || b === 'depends') return 'depends';
  return 'within noise';
}

/**
 * Claim 4, cell by cell and mapping kind by kind, on the sender's CPU per GiB (the copy a
 * method saves is CPU it does not spend; on a shared machine that is far steadier than
 * MB/s), each ratio read against its cell's A/A floor of CPU per GiB. Its halves (mmap beats
 * read + write; zero-copy beats the best mmap) are each combined over their cells and kinds
 * (combineGrades), then together (bothHalves).
 */
function decideClaim4(m: Metrics): Decision | null {
  const floorAt = (k: string) => m[`copy.floor-cpu.${k}`];
  const grades: ClaimGrade[] = [];
  const parts: string[] = [];
  const figures: string[] = [];
  const bestMmap = new Map<string, number>(); // the least CPU per GiB of any mapping kind
  for (const [variant, name] of MMAP_KINDS) {
    const ratios = cpuAdvantage(m, variant, 'readwrite');
    if (ratios.length === 0) continue;
    const graded = ratios.map(([k, r]): [string, ClaimGrade] => [k, gradeClaim(r, cheaper, floorAt(k))]);
    grades.push(...graded.map(([, g]) => g));
    const words = {
      confirmed: 'beats read + write',
      refuted: 'loses',
      'within noise': 'is within noise',
      depends: 'ties',
    };
    parts.push(`with ${name}, mmap ${whereEach(graded, words)}`);
    figures.push(`readwrite/${variant} ${ratios.map(([k, r]) => `${k} ${x(r, [1])}`).join(', ')}`);
    for (const [k] of ratios) {
      const cpu = m[`copy.${variant}.${k}.cpuPerGiB`]!;
      bestMmap.set(k, Math.min(bestMmap.get(k) ?? Infinity, cpu));
    }
  }
  if (parts.length === 0) return null;
  const zcCpu = (k: string) =>
    Math.min(m[`copy.sendfile.${k}.cpuPerGiB`] ?? Infinity, m[`copy.splice.${k}.cpuPerGiB`] ?? Infinity);
  const zc = [...bestMmap]
    .filter(([k]) => Number.isFinite(zcCpu(k)) && zcCpu(k) > 0)
    .map(([k, mm]): [string, number] => [k, mm / zcCpu(k)]);
  const zcGraded = zc.map(([k, r]): [string, ClaimGrade] => [k, gradeClaim(r, cheaper, floorAt(k))]);
  if (zc.length > 0) {
    const words = {
      confirmed: 'beats the best mmap',
      refuted: 'loses to mmap',
      'within noise': 'is within noise of mmap',
      depends: 'ties mmap',
    };
    parts.push(`sendfile or splice ${whereEach(zcGraded, words)}`);
    figures.push(`best mmap/best zero-copy ${zc.map(([k, r]) => `${k} ${x(r, [1])}`).join(', ')}`);
  }
  const floors = [...bestMmap.keys()].map((k) => `${k} ${formatFloor(floorAt(k))}`).join(', ');
  const text = `${parts.join('. ')}. (CPU per GiB: ${figures.join('; ')}; ${floors})`;
  // each half as the other claims of several parts combine theirs (a part within noise of
  // what the clear ones agree on: within noise, not depends); then both halves together
  const verdict = bothHalves(
    combineGrades(grades),
    zcGraded.length > 0 ? combineGrades(zcGraded.map(([, g]) => g)) : undefined,
  );
  return verdict === null ? null : { verdict, figures: text };
}

/** m[a] / m[b], or null when either is missing or not a finite number (a scenario whose runs all failed). */
function ratioOf(m: Metrics, a: string, b: string): number | null {
  return Number.isFinite(m[a]) && Number.isFinite(m[b]) && m[b]! > 0 ? m[a]! / m[b]! : null;
}

/** The thresholds of the claims decided by one ratio (gradeClaim), each beside its rule's words. */
const ET_LT = { confirmAt: 0.9, refuteAt: 1 };
const DIRECT_IO = { confirmAt: 1.1, refuteAt: 1 };
const SCALES = { confirmAt: 1.3, refuteAt: 1.05 };
const PROACTOR = { confirmAt: 1.05, refuteAt: 1 };
const NO_ADVANTAGE = { confirmAt: 1.05, refuteAt: 1.1, lowerConfirms: true };
const bounds = (t: { confirmAt: number; refuteAt: number }) => [t.confirmAt, t.refuteAt];

export const claims: Claim[] = [
  {
    id: 1,
    claim: "select and poll cost grows with the number of watched fds; epoll's does not.",
    scenarios: ['multiplex'],
    rule:
      'cost(largest N) / cost(smallest N) >= 2 for select and poll, and <= 1.5 for epoll; a growth within the ' +
      'A/A floor (epoll measured twice) of its bound: within noise',
    keys: ['multiplex.<select|poll|epoll>.n<N>.us', 'multiplex.floor'],
    decide(m) {
      const [s, p, e] = ['select', 'poll', 'epoll'].map((b) => growth(m, b));
      if (!s || !p || !e) return null;
      const floor = m['multiplex.floor'];
      const figures = `select ${x(s.ratio, [2])} (N ${s.lo}→${s.hi}), poll ${x(p.ratio, [2])}, epoll ${x(e.ratio, [1.5])}, ${formatFloor(floor)}`;
      const noisy = [s.ratio, p.ratio].some((r) => withinFloor(r, 2, floor)) || withinFloor(e.ratio, 1.5, floor);
      if (noisy) return { verdict: 'within noise', figures };
      const grow = s.ratio >= 2 && p.ratio >= 2;
      const flat = e.ratio <= 1.5;
      if (grow && flat) return { verdict: 'confirmed', figures };
      if (!grow && !flat) return { verdict: 'refuted', figures };
      return { verdict: 'depends', figures: `${figures} — ${grow ? 'epoll grew too' : 'select/poll barely grew'}` };
    },
  },
  {
    id: 2,
    claim: 'Edge-triggered epoll wakes less than level-triggered for the same work.',
    scenarios: ['lt-et'],
    rule:
      "wakeups per MiB, the median of the rounds' paired ET/LT ratios: <= 0.9 confirms, >= 1 refutes; within the " +
      'A/A floor (LT measured twice a round) of either bound: within noise',
    keys: ['lt-et.et-over-lt.wakeups', 'lt-et.floor', 'lt-et.<lt|et>.wakeupsPerMiB'],
    decide(m) {
      // A report from before the paired ratio: the ratio of the two medians.
      const r = m['lt-et.et-over-lt.wakeups'] ?? ratioOf(m, 'lt-et.et.wakeupsPerMiB', 'lt-et.lt.wakeupsPerMiB');
      if (r === null || !Number.isFinite(r)) return null;
      const floor = m['lt-et.floor'];
      const lt = m['lt-et.lt.wakeupsPerMiB'];
      const figures =
        `ET/LT wakeups ${x(r, bounds(ET_LT))}` +
        (lt === undefined ? '' : ` (LT ${fmt(lt, 1)}/MiB)`) +
        `, ${formatFloor(floor)}`;
      return { verdict: gradeClaim(r, { ...ET_LT, lowerConfirms: true }, floor), figures };
    },
  },
  {
    id: 3,
    claim: 'Zero-copy (sendfile) is at least 2x traditional read + write for file transfer.',
    scenarios: ['copy'],
    rule:
      'sendfile / readwrite throughput >= 2 at every size and cache state measured; a cell within its A/A floor ' +
      '(readwrite measured twice) of 2 counts either way, and a verdict that would change with it is within noise',
    keys: ['copy.<method>.<size>.<warm|cold>.MBps', 'copy.floor.<size>.<warm|cold>'],
    decide: (m) => byThreshold(copyRatios(m, 'sendfile', 'readwrite'), 2, '>= 2x', (k) => m[`copy.floor.${k}`]),
  },
  {
    id: 4,
    claim: 'mmap + write saves a copy over read + write, but is not the best zero-copy.',
    scenarios: ['copy'],
    rule:
      "at each size and cache state, on the sender's CPU per GiB, per mapping kind (per transfer, MAP_POPULATE, " +
      "reused): readwrite's / mmap's > 1 beats, < 1 loses; best mmap's / best of sendfile's and splice's > 1: mmap " +
      "is not the best; a ratio inside that cell's A/A floor of CPU per GiB (readwrite measured twice): within " +
      'noise. Each half over its cells: clear cells that disagree: depends; a cell within noise of what the ' +
      'clear ones agree on: within noise. Then either half refuted refutes, both confirmed confirm, a half that ' +
      'depends: depends, else within noise; zero-copy not measured: not measured unless the first half refutes. ' +
      'The verdict names where each part holds',
    keys: [
      'copy.<readwrite|mmap|mmap-populate|mmap-reuse|sendfile|splice>.<size>.<cache>.cpuPerGiB',
      'copy.floor-cpu.<size>.<cache>',
    ],
    decide: decideClaim4,
  },
  {
    id: 5,
    claim:
      'For large files under concurrency the page cache hurts: direct IO for the large ones keeps small hot files fast.',
    scenarios: ['pollution'],
    rule:
      'small-file req/s with direct for the large files >= 1.1 x without confirms; <= 1.0 refutes; within the ' +
      'A/A floor (buffered measured twice) of either: within noise',
    keys: ['pollution.small.rps.<buffered|direct>', 'pollution.small.p99us.<buffered|direct>', 'pollution.floor'],
    decide(m) {
      const r = ratioOf(m, 'pollution.small.rps.direct', 'pollution.small.rps.buffered');
      if (r === null) return null;
      const floor = m['pollution.floor'];
      const figures = `small-file throughput direct/buffered ${x(r, bounds(DIRECT_IO))}, ${formatFloor(floor)}`;
      return { verdict: gradeClaim(r, DIRECT_IO, floor), figures };
    },
  },
  {
    id: 6,
    claim: 'A single reactor cannot use more than one core; multi-reactor scales with cores.',
    scenarios: ['servers'],
    rule:
      'http at 50 connections: multi-reactor / single >= 1.3 confirms, <= 1.05 refutes (within the A/A floor of ' +
      'either: within noise); needs the servers pinned to >= 2 CPUs, the client on its own (else depends)',
    keys: ['servers.http.<single|multi-reactor>.c50.rps'],
    decide(m, ctx) {
      const r = ratioOf(m, 'servers.http.multi-reactor.c50.rps', 'servers.http.single.c50.rps');
      if (r === null) return null;
      const floor = serversFloor(m, 'http');
      // the server's own CPUs decide whether it can scale, not the machine's: the bench pins
      // every server to the CPUs of its plan, however many the machine has
      const serverCpus = ctx.serverCpus ?? Math.max(1, ctx.cores - 1);
      const figures = `multi-reactor/single ${x(r, bounds(SCALES))} with the servers on ${serverCpus} of ${ctx.cores} CPUs, ${formatFloor(floor)}`;
      if (serverCpus < 2) return { verdict: 'depends', figures: `${figures} — one server CPU: nothing to scale onto` };
      return { verdict: gradeClaim(r, SCALES, floor), figures };
    },
  },
  {
    id: 7,
    claim: 'Thread-per-connection does not survive C10K (threads, memory).',
    scenarios: ['c10k'],
    rule:
      'fails at 10 000 idle connections or fewer, or needs >= 5x the memory of multi-reactor at 10 000, confirms; ' +
      'holds them with < 2x refutes; between: depends. Levels past the thread cap serve() sets are not tried: ' +
      'then the memory at the most connections it held decides, and the verdict names the cap',
    keys: [
      'c10k.<model>.n<N>.ok (1/0)',
      'c10k.<model>.n<N>.rssMiB',
      'c10k.<model>.failedAt (connections)',
      'c10k.<model>.cappedAt (connections)',
    ],
    decide(m) {
      const tpc = 'c10k.thread-per-connection';
      const failedAt = m[`${tpc}.failedAt`];
      if (failedAt !== undefined && failedAt <= 10000)
        return { verdict: 'confirmed', figures: `thread-per-connection failed at ${fmt(failedAt)} connections` };
      const byMemory = (n: number, how: string): Decision | null => {
        const r = ratioOf(m, `${tpc}.n${n}.rssMiB`, `c10k.multi-reactor.n${n}.rssMiB`);
        if (r === null) return null;
        const figures = `${how} ${fmt(n)} connections with ${x(r, [5, 2])} the memory of multi-reactor`;
        return { verdict: r >= 5 ? 'confirmed' : r < 2 ? 'refuted' : 'depends', figures };
      };
      if (m[`${tpc}.n10000.ok`] === 1)
        return (
          byMemory(10000, 'held') ?? { verdict: 'refuted', figures: 'thread-per-connection held 10 000 connections' }
        );
      const cappedAt = m[`${tpc}.cappedAt`];
      if (cappedAt === undefined) return null;
      // Not tried past the cap: the memory at the most connections held says what more would cost.
      const held = Object.keys(m)
        .map((k) => new RegExp(`^${tpc}\\.n(\\d+)\\.ok$`).exec(k))
        .filter((g) => g !== null && m[g[0]] === 1)
        .map((g) => Number(g![1]))
        .sort((a, b) => b - a);
      const cap = `serve()'s thread cap kept thread-per-connection from being tried at ${fmt(cappedAt)} connections`;
      for (const n of held) {
        const r = byMemory(n, 'it held');
        if (r !== null) return { verdict: r.verdict, figures: `${cap}; ${r.figures}` };
      }
      return null; // no level held with multi-reactor's beside it: not measured
    },
  },
  {
    id: 8,
    claim: 'The proactor (io_uring) beats the reactor (epoll) for the same work.',
    scenarios: ['servers'],
    rule:
      'proactor / single req/s at 50 connections >= 1.05 for every protocol measured; <= 1.0 for all refutes; ' +
      "within the protocol's A/A floor of either bound: within noise",
    keys: ['servers.<protocol>.<proactor|single>.c50.rps', 'servers.<protocol>.floor.c50'],
    decide(m) {
      const graded: [string, number, ClaimGrade][] = [];
      for (const p of ['echo', 'http', 'resp']) {
        const r = ratioOf(m, `servers.${p}.proactor.c50.rps`, `servers.${p}.single.c50.rps`);
        if (r !== null) graded.push([p, r, gradeClaim(r, PROACTOR, serversFloor(m, p))]);
      }
      return combine(graded, (p) => serversFloor(m, p), bounds(PROACTOR));
    },
  },
  {
    id: 9,
    claim: 'Multi-reactor in a single thread has no advantage over a single reactor.',
    scenarios: ['servers'],
    rule:
      'http at 50 connections: multi-reactor with 1 sub-reactor / single <= 1.05 confirms; >= 1.1 refutes; ' +
      'within the A/A floor of either bound: within noise',
    keys: ['servers.http.multi-reactor-1.c50.rps', 'servers.http.single.c50.rps'],
    decide(m) {
      const r = ratioOf(m, 'servers.http.multi-reactor-1.c50.rps', 'servers.http.single.c50.rps');
      if (r === null) return null;
      const floor = serversFloor(m, 'http');
      const figures = `multi-reactor(1)/single ${x(r, bounds(NO_ADVANTAGE))}, ${formatFloor(floor)}`;
      return { verdict: gradeClaim(r, NO_ADVANTAGE, floor), figures };
    },
  },
  {
    id: 10,
    claim:
      'A stopped worker strands the connections SO_REUSEPORT queued to it; EPOLLEXCLUSIVE and the accept mutex keep serving.',
    scenarios: ['stalled-worker'],
    rule:
      'connections opened while one multi-process worker is stopped (200 ms or more before SIGCONT) and ' +
      'unanswered until SIGCONT: > 0 under ' +
      'reuseport and 0 under exclusive and mutex confirms; 0 under reuseport refutes; a strategy under which ' +
      'none was opened: not measured',
    keys: ['stalled-worker.<reuseport|exclusive|mutex>.unserved', 'stalled-worker.<strategy>.opened'],
    decide(m) {
      const u = (a: string) => m[`stalled-worker.${a}.unserved`];
      const [r, e, x] = [u('reuseport'), u('exclusive'), u('mutex')];
      if (r === undefined || e === undefined || x === undefined) return null;
      // a strategy under which no connection was opened during the stop (the client failed)
      // stranded none and served none: no evidence either way
      if (['reuseport', 'exclusive', 'mutex'].some((a) => !(m[`stalled-worker.${a}.opened`]! > 0))) return null;
      const of = (a: string) => `${a} ${u(a)} of ${m[`stalled-worker.${a}.opened`] ?? '?'}`;
      const figures = `stranded until SIGCONT: ${['reuseport', 'exclusive', 'mutex'].map(of).join(', ')}`;
      if (r === 0) return { verdict: 'refuted', figures };
      if (e === 0 && x === 0) return { verdict: 'confirmed', figures };
      return { verdict: 'depends', figures: `${figures} — the shared socket stranded some too` };
    },
  },
  {
    id: 11,
    claim: 'A main/sub proactor with one sub-ring has no advantage over a single proactor.',
    scenarios: ['servers'],
    rule:
      'http at 50 connections: multi-proactor with 1 sub-ring / proactor <= 1.05 confirms; >= 1.1 refutes; ' +
      'within the A/A floor of either bound: within noise',
    keys: ['servers.http.multi-proactor-1.c50.rps', 'servers.http.proactor.c50.rps'],
    decide(m) {
      const r = ratioOf(m, 'servers.http.multi-proactor-1.c50.rps', 'servers.http.proactor.c50.rps');
      if (r === null) return null;
      const floor = serversFloor(m, 'http');
      const figures = `multi-proactor(1)/proactor ${x(r, bounds(NO_ADVANTAGE))}, ${formatFloor(floor)}`;
      return { verdict: gradeClaim(r, NO_ADVANTAGE, floor), figures };
    },
  },
];

/** Judges every claim against the metrics of the scenarios that ran. */
export function judgeClaims(m: Metrics, ran: ReadonlySet<string>, ctx: ClaimContext): ClaimResult[] {
  return claims.map((c) => {
    const base = { id: c.id, claim: c.claim, rule: c.rule, scenarios: c.scenarios };
    const missing = c.scenarios.filter((s) => !ran.has(s));
    const d = missing.length < c.scenarios.length ? c.decide(m, ctx) : null;
    if (!d) {
      const failed = ctx.failed ?? {};
      const why = missing.length
        ? missing
            .map((s) => (failed[s] !== undefined ? `scenario ${s} failed: ${failed[s]}` : `scenario ${s} did not run`))
            .join('; ')
        : `no figures for ${c.keys.join(', ')} (see the scenario's log for what was not available)`;
      return { ...base, figures: why, verdict: 'not measured' as const };
    }
    return { ...base, ...d };
  });
}
