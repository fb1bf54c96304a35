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
  cores: number;
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
  return (
    `Linux ${m.kernel}, ${m.cpuModel}, ${m.cores} CPUs, ${m.memoryGiB} GiB, Node ${m.node}; ` +
    `${mitigated}/${Object.keys(m.mitigations).length} vulnerability mitigations active; ` +
    `loopback scatter-gather: ${m.loopbackSg === null ? 'unknown' : m.loopbackSg ? 'on' : 'off'}`
  );
}
