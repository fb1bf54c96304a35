/**
 * `rawio bench --target HOST:PORT [--server-info URL] [loadgen flags]`: measures a server on
 * another machine. It is the one part of `rawio bench` the npm package carries (the
 * benchmark suite stays in the repository), since it needs only the load generator. The load generator runs here (every `rawio loadgen` flag applies); the
 * server's CPU time comes from its bench agent (`rawio serve --bench-agent`, src/models/
 * bench-agent.ts), read before and after the run, so the result still gives server CPU per
 * request beside the client's. Without --server-info the server's side is left unmeasured.
 * A run that measured nothing fails as `rawio loadgen`'s does (exit status 1, one line).
 */
import { CommandFailure, UsageError } from './cli-args.js';
import { jsonOnFailure, parseLoadgenArgs, printResult, runFailure, runLoadgen } from './loadgen-cli.js';

export const REMOTE_USAGE = `rawio bench --target HOST:PORT [--server-info URL] [rawio loadgen flags]

  --target HOST:PORT   the server to measure, here or on another machine
  --server-info URL    its bench agent, e.g. http://10.0.0.2:9100/cpu, started with
                       \`rawio serve ... --bench-agent 0.0.0.0:9100\` (default: CPU unmeasured)
  and every flag of \`rawio loadgen --help\` (--protocol, --connections, --duration, --json, ...)`;

interface AgentCpu {
  pid: number;
  pids: number[];
  userSeconds: number;
  systemSeconds: number;
}

async function readAgent(url: string): Promise<AgentCpu> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  } catch (e) {
    // fetch says only 'fetch failed'; what failed (ECONNREFUSED, a timeout) is its cause
    const cause = (e as { cause?: { message?: string } }).cause?.message;
    throw new CommandFailure(`--server-info ${url}: ${cause ?? (e as Error).message}`, { cause: e });
  }
  if (!res.ok) throw new Error(`--server-info ${url}: HTTP ${res.status}`);
  const body = (await res.json()) as AgentCpu;
  if (typeof body.userSeconds !== 'number') throw new Error(`--server-info ${url}: not a rawio bench agent`);
  return body;
}

export interface RemoteServerCpu {
  userSeconds: number;
  systemSeconds: number;
  /** Server CPU (user + system) per reply the client received, in microseconds. */
  perRequestUs: number;
  pids: number[];
}

export async function remoteMain(argv: readonly string[]): Promise<number> {
  const rest = [...argv];
  let info: string | undefined;
  const at = rest.findIndex((a) => a === '--server-info' || a.startsWith('--server-info='));
  if (at >= 0) {
    const [flag] = rest.splice(at, 1);
    info = flag!.includes('=') ? flag!.slice(flag!.indexOf('=') + 1) : rest.splice(at, 1)[0];
    if (!info || info.startsWith('-')) throw new UsageError('bench: --server-info needs a URL');
    if (rest.some((a) => a === '--server-info' || a.startsWith('--server-info=')))
      throw new UsageError('bench: --server-info is given more than once');
    if (!URL.canParse(info) || !/^https?:$/.test(new URL(info).protocol))
      throw new UsageError(`bench: --server-info wants an http:// URL, got '${info}'`);
  }
  const { target, latency, json, ...run } = await jsonOnFailure('bench', rest, () => parseLoadgenArgs(rest));
  const before = info ? await jsonOnFailure('bench', rest, () => readAgent(info)) : undefined;
  const r = await jsonOnFailure('bench', rest, () => runLoadgen({ ...run, target }, rest));
  // A run that measured nothing is printed as it is and fails, its server CPU unread (a
  // server that went away took its agent with it).
  const failure = runFailure(run, r);
  if (failure !== undefined) {
    printResult(target, run, r, { json, latency });
    throw new CommandFailure(failure);
  }
  const after = info ? await jsonOnFailure('bench', rest, () => readAgent(info)) : undefined;
  let server: RemoteServerCpu | undefined;
  if (before && after) {
    const user = after.userSeconds - before.userSeconds;
    const system = after.systemSeconds - before.systemSeconds;
    server = {
      userSeconds: user,
      systemSeconds: system,
      perRequestUs: r.received ? ((user + system) * 1e6) / r.received : 0,
      pids: after.pids,
    };
  }
  const clientPerRequestUs = r.received ? (r.cpuSeconds * 1e6) / r.received : 0;
  if (json) {
    printResult(target, run, r, { json, latency }, { clientPerRequestUs, server: server ?? null });
  } else {
    printResult(target, run, r, { json, latency });
    console.log(`  client CPU per request ${clientPerRequestUs.toFixed(2)} us`);
    console.log(
      server
        ? `  server CPU ${server.userSeconds.toFixed(2)} s user + ${server.systemSeconds.toFixed(2)} s system ` +
            `(${server.pids.length} process(es)): ${server.perRequestUs.toFixed(2)} us per request`
        : '  server CPU not measured (no --server-info)',
    );
  }
  return 0;
}
