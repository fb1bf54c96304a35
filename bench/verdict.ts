/**
 * Noise-aware verdicts: pure functions that turn a measured ratio, its rule and the A/A
 * noise floor of the same scenario into a verdict a reader can trust. The floor comes from
 * measuring one server twice, interleaved (A, A′, A′, A …): the spread of A/A′ is what
 * the machine alone does to a ratio. A ratio whose distance from the rule's bound is no
 * larger than that spread reads "within noise" — the next run could land either side — and
 * never met/missed or confirmed/refuted. Distances are taken in log space, so 1.1x over
 * and 1/1.1x under are the same distance.
 */

/** The A/A floor as a factor: 1.08 means the same server measured twice differed by up to 8%. */
export type Floor = number;

/**
 * The noise floor from paired A/A samples (same round, same server, measured twice): the
 * largest |ln(a/a′)| over the rounds, as a factor >= 1. Pairs with a non-positive or
 * non-finite side are skipped; undefined when no pair is usable.
 */
export function noiseFloor(a: readonly number[], aPrime: readonly number[]): Floor | undefined {
  let worst: number | undefined;
  for (let i = 0; i < Math.min(a.length, aPrime.length); i++) {
    const [x, y] = [a[i]!, aPrime[i]!];
    if (!(x > 0 && y > 0 && Number.isFinite(x) && Number.isFinite(y))) continue;
    worst = Math.max(worst ?? 0, Math.abs(Math.log(x / y)));
  }
  return worst === undefined ? undefined : Math.exp(worst);
}

/**
 * The floor when it is one (a factor >= 1, as noiseFloor gives); undefined for anything else
 * (NaN, 0, a factor under 1): the verdicts read no floor there, and the report says so
 * rather than print "±-100.0%" or "±NaN%".
 */
export function usableFloor(floor: number | undefined): Floor | undefined {
  return floor !== undefined && floor >= 1 ? floor : undefined;
}

/** Whether ratio r is within the floor of bound b: |ln(r/b)| <= ln(floor). */
export function withinFloor(r: number, bound: number, floor: Floor | undefined): boolean {
  if (usableFloor(floor) === undefined || !(r > 0) || !(bound > 0)) return false;
  return Math.abs(Math.log(r / bound)) <= Math.log(floor!) + 1e-12;
}

export type TargetVerdict = 'met' | 'missed' | 'within noise';

/** A target's verdict: r >= min (and <= max when given), unless r sits within the floor of a bound. */
export function judgeRatio(r: number, rule: { min: number; max?: number }, floor: Floor | undefined): TargetVerdict {
  if (!Number.isFinite(r)) return 'missed';
  if (withinFloor(r, rule.min, floor)) return 'within noise';
  if (rule.max !== undefined && withinFloor(r, rule.max, floor)) return 'within noise';
  return r >= rule.min && (rule.max === undefined || r <= rule.max) ? 'met' : 'missed';
}

/** Judges several ratios of one target: missed if any is clearly missed, else within noise if any is, else met. */
export function judgeAll(verdicts: readonly TargetVerdict[]): TargetVerdict {
  if (verdicts.includes('missed')) return 'missed';
  if (verdicts.includes('within noise')) return 'within noise';
  return 'met';
}

export type ClaimGrade = 'confirmed' | 'refuted' | 'depends' | 'within noise';

/**
 * A claim decided by one ratio: r >= confirmAt confirms, r <= refuteAt refutes, between
 * depends — unless r sits within the floor of either threshold, which reads "within noise".
 * `lowerConfirms` flips the direction (r <= confirmAt confirms, r >= refuteAt refutes).
 */
export function gradeClaim(
  r: number,
  t: { confirmAt: number; refuteAt: number; lowerConfirms?: boolean },
  floor: Floor | undefined,
): ClaimGrade {
  if (withinFloor(r, t.confirmAt, floor) || withinFloor(r, t.refuteAt, floor)) return 'within noise';
  if (t.lowerConfirms) return r <= t.confirmAt ? 'confirmed' : r >= t.refuteAt ? 'refuted' : 'depends';
  return r >= t.confirmAt ? 'confirmed' : r <= t.refuteAt ? 'refuted' : 'depends';
}

/** "±8%" for a floor factor of 1.08; "unmeasured" when no A/A ran. */
export function formatFloor(floor: Floor | undefined): string {
  const f = usableFloor(floor);
  return f === undefined ? 'no A/A floor' : `A/A floor ±${((f - 1) * 100).toFixed(1)}%`;
}

/** One verdict's history over repeated runs of the whole profile. */
export interface Held {
  id: string;
  verdicts: string[];
  /** True when every run gave the same verdict. */
  held: boolean;
}

/**
 * Whether each verdict held across runs: `runs[i]` maps an id (claim or target) to its
 * verdict in run i. An id missing from a run counts as 'not measured' there.
 */
export function heldAcross(runs: readonly ReadonlyMap<string, string>[]): Held[] {
  const ids = [...new Set(runs.flatMap((r) => [...r.keys()]))];
  return ids.map((id) => {
    const verdicts = runs.map((r) => r.get(id) ?? 'not measured');
    return { id, verdicts, held: verdicts.every((v) => v === verdicts[0]) };
  });
}

/**
 * How the repeats table reads a verdict's runs: held ('yes', the same in every run);
 * flipped ('no', the runs that measured it disagree); 'partly measured' (the runs that
 * measured it agree, but a run did not measure it: a tool missing, a scenario that failed —
 * no evidence that it flips, nor that it holds); or never measured at all.
 */
export function heldWord(h: Held): 'yes' | 'no' | 'partly measured' | 'not measured' {
  const measured = h.verdicts.filter((v) => v !== 'not measured');
  if (measured.length === 0) return 'not measured';
  if (measured.some((v) => v !== measured[0])) return 'no';
  return measured.length === h.verdicts.length ? 'yes' : 'partly measured';
}
