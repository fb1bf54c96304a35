/**
 * The servers a scenario measures, started the same way whatever they are: a rawio model
 * (`serve()` in a pinned child), one of Node's own servers, or an external anchor (nginx,
 * redis-server). A server that cannot start (a model not in this build, an anchor not
 * installed) comes back as a reason instead, so a scenario reports it and goes on.
 */
import type { BenchContext } from '../scenario.js';
import { startServer } from '../server.js';
import { buildBareServer, buildBareUring, type CDriver } from './c-driver.js';
import { startBareServer, startNginx, startRedis } from './external.js';

export interface MeasuredServer {
  name: string;
  port: number;
  /** The process doing the serving (nginx: its worker), for strace and /proc/<pid>/status. */
  pid: number;
  /**
   * The root of the server's process tree, whose CPU (every thread and process under it,
   * reaped ones too: bench/lib/external.ts treeCpu) is the server's: the pinned child for
   * rawio's models and Node's servers (multi-process workers are its children), the master
   * for nginx.
   */
  rootPid: number;
  stats(): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

export type Started = { ok: true; target: MeasuredServer } | { ok: false; name: string; reason: string };

export const rawioServers = new URL('../servers/rawio.js', import.meta.url).href;
const nodeServers = new URL('../servers/node.js', import.meta.url).href;

export async function startModel(
  ctx: BenchContext,
  name: string,
  options: Record<string, unknown>,
  execArgv?: string[],
): Promise<Started> {
  try {
    const s = await startServer({
      module: rawioServers,
      export: 'serveRaised',
      options: { cpus: ctx.serverCpus, ...options },
      cpus: ctx.serverCpus,
      ...(execArgv ? { execArgv } : {}),
    });
    return {
      ok: true,
      target: { name, port: s.port, pid: s.pid, rootPid: s.pid, stats: () => s.stats(), close: () => s.close() },
    };
  } catch (e) {
    return { ok: false, name, reason: `not available: ${(e as Error).message.split('\n')[0]}` };
  }
}

export async function startNode(
  ctx: BenchContext,
  name: string,
  fn: 'nodeHttp' | 'nodeNetEcho' | 'nodeStatic',
  options: Record<string, unknown> = {},
): Promise<Started> {
  try {
    const s = await startServer({ module: nodeServers, export: fn, options, cpus: ctx.serverCpus });
    return {
      ok: true,
      target: { name, port: s.port, pid: s.pid, rootPid: s.pid, stats: () => s.stats(), close: () => s.close() },
    };
  } catch (e) {
    return { ok: false, name, reason: (e as Error).message };
  }
}

/** nginx (hello, or `nginxLocation` as the body of `location /`) or redis-server, when installed. */
export async function startAnchor(
  ctx: BenchContext,
  which: 'nginx' | 'redis',
  nginxLocation?: string,
): Promise<Started> {
  const name = which === 'nginx' ? 'nginx' : 'redis-server';
  try {
    const a =
      which === 'nginx'
        ? await startNginx(ctx.tmpDir, ctx.serverCpus, nginxLocation)
        : await startRedis(ctx.serverCpus);
    if (!a) return { ok: false, name, reason: 'not installed' };
    return {
      ok: true,
      target: { name, port: a.port, pid: a.pid, rootPid: a.rootPid, stats: async () => ({}), close: a.close },
    };
  } catch (e) {
    return { ok: false, name, reason: (e as Error).message };
  }
}

/**
 * The bare C server (bench/c/bare-server.c: epoll, one read and one send per ready
 * connection, fixed replies), compiled on first use. It does less than any real server, so
 * the rate a client reaches with it shows what that client allows on this machine.
 */
export function startBare(ctx: BenchContext, protocol: 'http' | 'resp'): Promise<Started> {
  return startBuilt(ctx, 'bare', buildBareServer(), [protocol]);
}

/**
 * bare-server's HTTP on io_uring (bench/c/bare-uring.c: multishot accept and recv, one send
 * in flight per connection, one io_uring_enter a turn): the proactor's yardstick.
 */
export function startBareUring(ctx: BenchContext): Promise<Started> {
  return startBuilt(ctx, 'bare-uring', buildBareUring(), []);
}

async function startBuilt(ctx: BenchContext, name: string, built: CDriver, args: string[]): Promise<Started> {
  if (!built.ok) return { ok: false, name, reason: built.reason };
  try {
    const a = await startBareServer(name, built.path, args, ctx.serverCpus);
    return {
      ok: true,
      target: { name, port: a.port, pid: a.pid, rootPid: a.rootPid, stats: async () => ({}), close: a.close },
    };
  } catch (e) {
    return { ok: false, name, reason: (e as Error).message };
  }
}
