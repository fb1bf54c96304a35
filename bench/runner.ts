/**
 * How the benchmarks measure: warm-up rounds that are thrown away, then repeated rounds in
 * which the things compared run interleaved (A B C, then C B A, so neither always goes
 * first after a pause), medians with their spread, and ratios of paired samples. Also the
 * CPU plan: the server on one CPU and the load generator on another when there are two or
 * more, so that they do not fight for the same core.
 */
import { availableParallelism } from 'node:os';
import { getAffinity } from '../src/sys/process.js';
import { pairedRatio, summarize, type Summary } from './stats.js';

export interface Contender {
  name: string;
  /** One measurement: a figure where more is better (req/s, MB/s), or as the scenario says. */
  run(round: number): Promise<number>;
}

export interface CompareOptions {
  /** Rounds run first and discarded (cold caches, JIT, TCP slow start). */
  warmup: number;
  repeats: number;
  /** Called before each measured run, for the progress bar. */
  onRun?(done: number, total: number, name: string): void;
}

export interface Comparison {
  samples: Record<string, number[]>;
  summary: Record<string, Summary>;
}

/** Runs every contender `warmup + repeats` times, interleaved, and summarizes. */
export async function compare(contenders: readonly Contender[], opts: CompareOptions): Promise<Comparison> {
  const samples: Record<string, number[]> = {};
  for (const c of contenders) samples[c.name] = [];
  const rounds = opts.warmup + opts.repeats;
  const total = rounds * contenders.length;
  let done = 0;
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? contenders : [...contenders].reverse();
    for (const c of order) {
      opts.onRun?.(done++, total, c.name);
      const v = await c.run(round);
      if (round >= opts.warmup) samples[c.name]!.push(v);
    }
  }
  const summary: Record<string, Summary> = {};
  for (const [name, s] of Object.entries(samples)) summary[name] = summarize(s);
  return { samples, summary };
}

/** The ratio a / b of two contenders of a comparison, from their paired samples. */
export function ratio(c: Comparison, a: string, b: string): Summary {
  return pairedRatio(c.samples[a] ?? [], c.samples[b] ?? []);
}

export interface CpuPlan {
  serverCpus: number[];
  clientCpus: number[];
  /** False on one CPU: server and client share it, and the report says so. */
  separate: boolean;
}

/** Server on the first allowed CPU, load generator on the second (or shared if only one). */
export function cpuPlan(): CpuPlan {
  let allowed: number[];
  try {
    allowed = getAffinity();
  } catch {
    allowed = Array.from({ length: availableParallelism() }, (_, i) => i);
  }
  if (allowed.length >= 2) return { serverCpus: [allowed[0]!], clientCpus: [allowed[1]!], separate: true };
  return { serverCpus: allowed, clientCpus: allowed, separate: false };
}
