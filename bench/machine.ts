/**
 * The machine a benchmark ran on, recorded beside its figures: kernel, CPU model and
 * cores, Node and V8, memory, the CPU vulnerability mitigations in force (they change
 * syscall costs by tens of percent: /sys/devices/system/cpu/vulnerabilities), whether the
 * loopback device does scatter-gather (ETHTOOL_GSG), and rawio's full probe().
 */
import { readFileSync, readdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { probe, type ProbeResult } from '../src/probe.js';

export interface Machine {
  kernel: string;
  cpuModel: string;
  /** CPUs the bench may run on (its affinity: `taskset -c 0` makes it 1). */
  cores: number;
  /** CPUs online in the machine (absent in reports from before it was recorded). */
  onlineCpus?: number;
  node: string;
  v8: string;
  memoryGiB: number;
  /** Vulnerability name → the kernel's one-line status ('Mitigation: …', 'Not affected' …). */
  mitigations: Record<string, string>;
  /** The loopback device does scatter-gather; null when ethtool did not answer. */
  loopbackSg: boolean | null;
  probe: ProbeResult;
}

function cpuModel(): string {
  try {
    const m = /^(model name|Model|cpu model)\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[2]!.trim();
  } catch {
    // fall through to what os.cpus() knows
  }
  return cpus()[0]?.model ?? 'unknown';
}

export function mitigations(dir = '/sys/devices/system/cpu/vulnerabilities'): Record<string, string> {
  const out: Record<string, string> = {};
  try {
    for (const name of readdirSync(dir).sort()) out[name] = readFileSync(`${dir}/${name}`, 'utf8').trim();
  } catch {
    // not exposed (containers may hide /sys): an empty record says so
  }
  return out;
}

export function machine(): Machine {
  const p = probe();
  return {
    kernel: p.kernel.release,
    cpuModel: cpuModel(),
    cores: p.cpus,
    onlineCpus: cpus().length || p.cpus,
    node: process.version,
    v8: process.versions.v8,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    mitigations: mitigations(),
    loopbackSg: p.netdev.lo?.sg ?? null,
    probe: p,
  };
}

/** One line for a report's header. */
export function describeMachine(m: Machine): string {
  const mitigated = Object.values(m.mitigations).filter((s) => s.startsWith('Mitigation')).length;
  const online = m.onlineCpus ?? m.cores;
  const cpuWord = (n: number) => `${n} CPU${n === 1 ? '' : 's'}`;
  // the machine's CPUs, and how many the bench was allowed when that is fewer (taskset)
  const cpus = online > m.cores ? `${cpuWord(online)} (${m.cores} allowed to the bench)` : cpuWord(m.cores);
  const known = Object.keys(m.mitigations).length;
  // /sys hidden (a container): not "0/0 active", which reads as none in force
  const mitigations = known > 0 ? `${mitigated}/${known} vulnerability mitigations active` : 'mitigations unknown';
  return (
    `Linux ${m.kernel}, ${m.cpuModel}, ${cpus}, ${m.memoryGiB} GiB, Node ${m.node}; ${mitigations}; ` +
    `loopback scatter-gather: ${m.loopbackSg === null ? 'unknown' : m.loopbackSg ? 'on' : 'off'}`
  );
}

/** Where the servers and the load generator ran, for a report's header. */
export function describeCpuPlan(plan: { serverCpus: number[]; clientCpus: number[]; separate: boolean }): string {
  return plan.separate
    ? `servers pinned to CPU ${plan.serverCpus.join(',')}, load generator to CPU ${plan.clientCpus.join(',')}`
    : 'one CPU: servers and load generator share it';
}
