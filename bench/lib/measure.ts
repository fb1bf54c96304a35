/**
 * Measuring one run of something: wall time, this process's CPU time (user + system) and
 * its voluntary / involuntary context switches, from getrusage(2) via
 * process.resourceUsage(); and the median of repeated runs.
 */

export interface Sample {
  seconds: number;
  cpuSeconds: number;
  voluntary: number;
  involuntary: number;
}

export async function measure(fn: () => Promise<void> | void): Promise<Sample> {
  const r0 = process.resourceUsage();
  const t0 = process.hrtime.bigint();
  await fn();
  const t1 = process.hrtime.bigint();
  const r1 = process.resourceUsage();
  return {
    seconds: Number(t1 - t0) / 1e9,
    cpuSeconds: (r1.userCPUTime - r0.userCPUTime + r1.systemCPUTime - r0.systemCPUTime) / 1e6,
    voluntary: r1.voluntaryContextSwitches - r0.voluntaryContextSwitches,
    involuntary: r1.involuntaryContextSwitches - r0.involuntaryContextSwitches,
  };
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Per-GiB figures of samples that each moved `bytes`, as medians. */
export function summarize(samples: Sample[], bytes: number) {
  const gib = bytes / 2 ** 30;
  return {
    mbps: median(samples.map((s) => bytes / s.seconds / 1e6)),
    cpuPerGiB: median(samples.map((s) => s.cpuSeconds / gib)),
    volPerGiB: median(samples.map((s) => s.voluntary / gib)),
    involPerGiB: median(samples.map((s) => s.involuntary / gib)),
  };
}

export const round = (x: number, digits = 2) => Number(x.toFixed(digits));

/** A human size: 4096 → '4 KiB'. */
export function sizeLabel(n: number): string {
  if (n >= 1 << 20) return `${n / (1 << 20)} MiB`;
  if (n >= 1 << 10) return `${n / (1 << 10)} KiB`;
  return `${n} B`;
}
