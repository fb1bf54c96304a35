/**
 * Two network namespaces joined by a veth pair, for running a server and the load generator
 * on either side of a real (virtual) link rather than loopback: ip-netns(8) and veth(4).
 * The pair is created inside the server namespace with its peer sent straight into the
 * client namespace, so the root namespace never holds either end, and the addresses come
 * from the benchmarking range 198.18.0.0/15 (RFC 2544), assigned only inside the two
 * namespaces: no traffic can leave them. Each pair's names carry the creating pid, so a run
 * that crashed is cleaned up by the next (`removeLeftovers`); `remove()` deletes both
 * namespaces, which also destroys the veth pair. Used by the veth test and the bench's
 * `veth` scenario.
 */
import { spawnSync } from 'node:child_process';

const PREFIX = 'rawio-veth-';
export const SERVER_ADDR = '198.18.0.1';
export const CLIENT_ADDR = '198.18.0.2';

function ip(args: string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.stderr ?? '').trim() || String(r.error ?? '') };
}

function must(args: string[]): string {
  const r = ip(args);
  if (!r.ok) throw new Error(`ip ${args.join(' ')}: ${r.err}`);
  return r.out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** rawio's namespaces present now (`ip netns list`). */
export function listNamespaces(): string[] {
  return ip(['netns', 'list'])
    .out.split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(PREFIX));
}

/** Deletes the namespaces of runs whose process is gone (a crashed test or bench). */
export function removeLeftovers(): string[] {
  const gone = listNamespaces().filter((n) => {
    const pid = Number(/^rawio-veth-(\d+)-/.exec(n)?.[1]);
    return Number.isInteger(pid) && !alive(pid);
  });
  for (const n of gone) ip(['netns', 'del', n]);
  return gone;
}

/** Why namespaces cannot be made here (no `ip`, no CAP_NET_ADMIN, no veth), or undefined. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces are Linux only';
  if (spawnSync('ip', ['-V']).status !== 0) return 'no `ip` command (install iproute2)';
  const probe = `${PREFIX}${process.pid}-probe`;
  const add = ip(['netns', 'add', probe]);
  if (!add.ok) return `cannot create a network namespace (needs CAP_NET_ADMIN): ${add.err}`;
  const veth = ip(['-n', probe, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1']);
  ip(['netns', 'del', probe]);
  if (!veth.ok) return `cannot create a veth pair: ${veth.err}`;
  return undefined;
}

export interface VethPair {
  serverNs: string;
  clientNs: string;
  serverAddr: string;
  clientAddr: string;
  /** The argv that runs `argv` inside namespace `ns`. */
  exec(ns: string, argv: string[]): string[];
  /** Deletes both namespaces (and with them the pair); safe to call twice. */
  remove(): void;
}

let made = 0;

/** Creates the two namespaces and the link between them; undoes what it made on failure. */
export function createVethPair(): VethPair {
  removeLeftovers();
  const base = `${PREFIX}${process.pid}-${made++}`;
  const serverNs = `${base}-srv`;
  const clientNs = `${base}-cli`;
  const remove = () => {
    for (const ns of [serverNs, clientNs]) if (listNamespaces().includes(ns)) ip(['netns', 'del', ns]);
  };
  try {
    must(['netns', 'add', serverNs]);
    must(['netns', 'add', clientNs]);
    must(['-n', serverNs, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1', 'netns', clientNs]);
    for (const [ns, dev, addr] of [
      [serverNs, 'veth0', SERVER_ADDR],
      [clientNs, 'veth1', CLIENT_ADDR],
    ] as const) {
      must(['-n', ns, 'addr', 'add', `${addr}/30`, 'dev', dev]);
      must(['-n', ns, 'link', 'set', dev, 'up']);
      must(['-n', ns, 'link', 'set', 'lo', 'up']);
    }
  } catch (e) {
    remove();
    throw e;
  }
  return {
    serverNs,
    clientNs,
    serverAddr: SERVER_ADDR,
    clientAddr: CLIENT_ADDR,
    exec: (ns, argv) => ['ip', 'netns', 'exec', ns, ...argv],
    remove,
  };
}
