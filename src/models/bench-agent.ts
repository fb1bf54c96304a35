/**
 * The bench agent (`rawio serve --bench-agent [HOST:]PORT`): a small HTTP endpoint beside a
 * server that reports the server's CPU time, so that `rawio bench --target` on another
 * machine can still give server CPU per request. It reads proc(5): utime and stime of this
 * process (all its threads) and of every live descendant (the multi-process workers), plus
 * cutime and cstime (descendants already reaped). It binds 127.0.0.1 unless told otherwise:
 * it tells anyone who can reach it what the server costs, so reaching it from another machine
 * is an explicit choice (`--bench-agent 0.0.0.0:9100`, or an SSH tunnel).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** USER_HZ: proc(5)'s clock ticks, 100 on every Linux ABI rawio builds for (x86-64, arm64). */
const USER_HZ = 100;

export interface ProcessTreeCpu {
  pid: number;
  /** This process and the live descendants counted. */
  pids: number[];
  userSeconds: number;
  systemSeconds: number;
}

interface Stat {
  ppid: number;
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
}

/** /proc/PID/stat's fields after the command name (which may hold spaces and parentheses). */
function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // gone between the listing and the read
  }
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
  const n = (field: number) => Number(f[field - 3]);
  return { ppid: n(4), utime: n(14), stime: n(15), cutime: n(16), cstime: n(17) };
}

/** Every process's stat, by pid. */
function allStats(): Map<number, Stat> {
  const stats = new Map<number, Stat>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) stats.set(Number(name), s);
  }
  return stats;
}

/** `root` and its descendants, parents first. */
function treeOf(root: number, stats: Map<number, Stat>): number[] {
  const pids = [root];
  for (let i = 0; i < pids.length; i++)
    for (const [pid, s] of stats) if (s.ppid === pids[i] && !pids.includes(pid)) pids.push(pid);
  return pids;
}

/** The live descendants of `root` (children first), e.g. a multi-process server's workers. */
export function descendantPids(root: number = process.pid): number[] {
  return treeOf(root, allStats()).slice(1);
}

/** CPU time of `root` and its live descendants, with what reaped children left behind. */
export function processTreeCpu(root: number = process.pid): ProcessTreeCpu {
  const stats = allStats();
  const pids = treeOf(root, stats);
  let user = 0;
  let system = 0;
  for (const pid of pids) {
    const s = stats.get(pid);
    if (!s) continue;
    user += s.utime + s.cutime;
    system += s.stime + s.cstime;
  }
  return {
    pid: root,
    pids: pids.filter((p) => stats.has(p)),
    userSeconds: user / USER_HZ,
    systemSeconds: system / USER_HZ,
  };
}

/** `PORT` or `HOST:PORT` ([v6]:PORT) as a listen address; the host defaults to 127.0.0.1. */
export function parseAgentAddress(text: string): { host: string; port: number } {
  const m = /^(?:(?:\[([^\]]+)\]|([^:]+)):)?(\d+)$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new RangeError(`--bench-agent wants PORT or HOST:PORT, got '${text}'`);
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port };
}

export interface BenchAgent {
  host: string;
  port: number;
  close(): Promise<void>;
}

/** Starts the agent: `GET /cpu` answers the process tree's CPU time as JSON. */
export async function startBenchAgent(address: string, root: number = process.pid): Promise<BenchAgent> {
  const { host, port } = parseAgentAddress(address);
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/cpu' && req.url !== '/')) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(processTreeCpu(root)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  server.unref();
  const bound = server.address() as AddressInfo;
  return {
    host: bound.address,
    port: bound.port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
