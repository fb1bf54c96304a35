/**
 * `rawio loadgen` and `rawio bench --target` across a veth pair: `rawio serve` (with its
 * bench agent) runs in one network namespace, the load generator in another, joined by a
 * veth link with addresses from 198.18.0.0/15 that exist only inside the two namespaces
 * (bench/lib/netns.ts), so nothing is sent anywhere else. The counts the client reports
 * must equal what the server says it served; the two processes must really be in different
 * namespaces. The namespaces are always removed (afterAll; a crashed run's are removed by
 * the next). Where namespaces cannot be made (no CAP_NET_ADMIN, no `ip`) the suite skips
 * and says why.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createVethPair,
  listNamespaces,
  netnsUnavailable,
  removeLeftovers,
  type VethPair,
} from '../dist/bench/lib/netns.js';
import { packageRoot } from '../dist/src/sys/native.js';
import { exited } from './helpers/procs.js';
import { titled } from './helpers/skips.js';

const CLI = join(packageRoot, 'dist/src/cli.js');
const unavailable = netnsUnavailable();
const PORT = 8080;
const AGENT = 9100;

interface Served {
  child: ChildProcess;
  out: string[];
}

/** Starts `rawio serve` in the server namespace; resolves once it and its agent listen. */
function startServer(pair: VethPair): Promise<Served> {
  const argv = pair.exec(pair.serverNs, [
    process.execPath,
    CLI,
    'serve',
    '--model',
    'single',
    '--protocol',
    'http',
    '--host',
    pair.serverAddr,
    '--port',
    String(PORT),
    '--bench-agent',
    `${pair.serverAddr}:${AGENT}`,
  ]);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += String(d)));
    child.stdout!.on('data', (d: Buffer) => {
      out.push(...String(d).split('\n').filter(Boolean));
      if (out.some((l) => l.includes('bench agent on'))) resolve({ child, out });
    });
    child.once('exit', (code) => reject(new Error(`rawio serve exited with ${code}: ${err}`)));
  });
}

/** Runs the rawio command in the client namespace and parses its JSON output. */
function client(pair: VethPair, args: string[]): Record<string, unknown> {
  const argv = pair.exec(pair.clientNs, [process.execPath, CLI, ...args, '--json']);
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

describe.skipIf(unavailable)(titled('loadgen across a veth pair', unavailable), () => {
  let pair: VethPair;
  let server: Served | undefined;
  const target = () => `${pair.serverAddr}:${PORT}`;

  beforeAll(async () => {
    pair = createVethPair();
    server = await startServer(pair);
  }, 30_000);

  afterAll(async () => {
    if (server) {
      // exited() answers at once for a server already gone (the last test stops it; a signal
      // that ended it leaves exitCode null, and an 'exit' listener added then never fires).
      const done = exited(server.child);
      server.child.kill('SIGTERM'); // a no-op for a child already gone
      await done;
    }
    pair?.remove();
  });

  it("removes a crashed run's namespaces, and only those", () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // exited: its pid names no process
    const stale = `rawio-veth-${dead}-0-srv`;
    expect(spawnSync('ip', ['netns', 'add', stale]).status).toBe(0);
    expect(removeLeftovers()).toEqual([stale]);
    expect(listNamespaces()).not.toContain(stale);
    expect(listNamespaces()).toEqual(expect.arrayContaining([pair.serverNs, pair.clientNs]));
  });

  it('runs server and client in two namespaces, neither of them this one', () => {
    const mine = readlinkSync('/proc/self/ns/net');
    const serverNs = readlinkSync(`/proc/${server!.child.pid}/ns/net`);
    const argv = pair.exec(pair.clientNs, ['readlink', '/proc/self/ns/net']);
    const clientNs = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' }).stdout.trim();
    expect(new Set([mine, serverNs, clientNs]).size).toBe(3);
  });

  it('rawio loadgen: a count of HTTP requests, every one answered, with the HDR table', () => {
    const r = client(pair, ['loadgen', '--target', target(), '--connections', '8', '--requests', '3000']);
    expect(r.sent).toBe(3000);
    expect(r.received).toBe(3000);
    expect(r.requests).toBe(3000);
    expect(r.connects).toBe(8);
    expect(r.errors).toEqual({ connect: 0, reset: 0, badReply: 0, errorReply: 0, lost: 0 });
    const hdr = r.hdr as { percentile: number; totalCount: number }[];
    expect(hdr[0]!.percentile).toBe(0);
    expect(hdr.at(-1)!.percentile).toBe(1);
    expect(hdr.at(-1)!.totalCount).toBe(3000);
    for (let i = 1; i < hdr.length; i++) expect(hdr[i]!.totalCount).toBeGreaterThanOrEqual(hdr[i - 1]!.totalCount);
  });

  it('rawio loadgen at a fixed rate, pipelined over two threads', () => {
    const r = client(pair, [
      'loadgen',
      '--target',
      target(),
      '--connections',
      '4',
      '--threads',
      '2',
      '--pipeline',
      '4',
      '--rate',
      '2000',
      '--requests',
      '1000',
    ]);
    expect(r.received).toBe(1000);
    expect((r.errors as Record<string, number>).lost).toBe(0);
  });

  it('rawio bench --target reads the server CPU from its bench agent across the link', () => {
    const r = client(pair, [
      'bench',
      '--target',
      target(),
      '--server-info',
      `http://${pair.serverAddr}:${AGENT}/cpu`,
      '--requests',
      '2000',
    ]);
    expect(r.received).toBe(2000);
    const s = r.server as { userSeconds: number; systemSeconds: number; perRequestUs: number; pids: number[] };
    expect(s.pids).toContain(server!.child.pid);
    expect(s.userSeconds + s.systemSeconds).toBeGreaterThan(0);
    expect(s.perRequestUs).toBeGreaterThan(0);
  });

  it('the server counted what the clients received, then the namespaces are gone', async () => {
    const closed = exited(server!.child);
    server!.child.kill('SIGTERM');
    await closed;
    const closing = server!.out.find((l) => l.startsWith('rawio: closed after'));
    expect(closing).toMatch(/ (\d+) requests$/);
    expect(Number(/ (\d+) requests$/.exec(closing!)![1])).toBe(3000 + 1000 + 2000);
    pair.remove();
    expect(listNamespaces()).not.toContain(pair.serverNs);
    expect(listNamespaces()).not.toContain(pair.clientNs);
  });
});
