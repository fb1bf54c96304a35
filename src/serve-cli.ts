/**
 * `rawio serve`: starts any model with any protocol from the command line, prints the
 * address, and runs until SIGINT, SIGTERM or SIGHUP, then closes the server cleanly (every
 * connection closed, every thread and process gone) and exits 0. SIGHUP is a hang-up here,
 * not a reload: the server has no configuration to read again, and a foreground command
 * whose terminal went away should end as it does on SIGTERM. A second signal while the
 * server closes (a close waiting on a request that never ends) stops at once: every
 * process the command started is killed and it exits 128 + the signal's number. With
 * `--drain MS` the first signal closes gracefully (Server.close's `drain`): what each
 * connection has asked is answered before it closes, for at most MS.
 */
import { constants } from 'node:os';
import { CommandFailure, optionUsageError, parseFlags, UsageError, wholeNumber, wholeNumbers } from './cli-args.js';
import { MAX_DRAIN_MS } from './models/drain.js';
import { descendantPids, parseAgentAddress, startBenchAgent, type BenchAgent } from './models/bench-agent.js';
import { serve } from './models/serve.js';
import { resolveServeOptions, serveOptionTable, type ServeOptionRow } from './models/serve-options.js';
import type { ResolvedServeOptions, ServeOptions, Server } from './models/types.js';
import { mmapAdviceNames, type MmapAdvice } from './sys/mmap.js';
import type { MmapTransferOptions } from './transfer/mmap-options.js';

export const serveUsage = `rawio serve --model M --protocol P [options]

  --model M          iterative | thread-per-connection | single | worker-pool |
                     multi-reactor | multi-reactor-pool | multi-process | proactor |
                     multi-proactor
  --protocol P       echo | http | resp | static
  --handler FILE     http: the module whose handle(request) answers each request
  --host H           address to bind, or a name to resolve (default 127.0.0.1)
  --port N           port (default 0: any free port; the chosen one is printed)
  --workers N        threads or processes, by model (default: the CPU count;
                     thread-per-connection: its cap, 256; iterative, single: one)
  --pool N           multi-reactor-pool: handler threads (default: the CPU count)
  --backend B        select | poll | epoll | epoll-et, for the reactor models (default epoll)
  --accept S         multi-process: reuseport | exclusive | mutex (default reuseport)
  --root DIR         static: the directory served
  --transfer T       file bodies: readwrite | mmap | sendfile | splice | uring | direct | auto
                     (default auto)
  --directio N       file bodies: 'auto' switches to direct IO at N bytes or more
                     (default 4 MiB)
  --mmap WORDS       file bodies by --transfer mmap, any of (comma-separated): populate
                     (MAP_POPULATE), reuse (send again from a cached whole-file mapping),
                     and one of normal | random | sequential | willneed (madvise)
  --backlog N        the listen(2) backlog (default 511)
  --zerocopy-threshold BYTES
                     reply data of this many bytes or more is sent zero-copy (MSG_ZEROCOPY
                     in the reactor models, SEND_ZC in proactor and multi-proactor;
                     default 0: never)
  --cpus LIST        pin the model's I/O threads to these CPUs, e.g. 0 or 0,1
  --keyspace-size BYTES
                     resp: the keyspace's capacity, 65536 to 4294967295 (default 64 MiB);
                     past it a write answers -OOM
  --bench-agent A    also answer GET http://A/cpu with this server's CPU time (all its
                     threads and worker processes), for \`rawio bench --target\` on another
                     machine; A is PORT (on 127.0.0.1) or HOST:PORT

  Per-connection limits (README, "Connection limits"):
  --max-in-flight N    requests handled and not yet answered (default 1024)
  --max-output BYTES   reply bytes not yet taken by the client before the next
                       request waits (default 1 MiB)
  --max-files N        file bodies open (default 16)
  --max-queue BYTES    reply bytes the kernel refused past which the client is dropped
                       (default 64 MiB)
  --max-header BYTES   http/static request head, 431 past it (414: the request line
                       alone) (default 8192)
  --max-request BYTES  http body / resp command, 413 / protocol error past it (default
                       8 MiB http body, 64 KiB static body, 16 MiB resp command)
  --header-timeout MS  what a started request has in hand to arrive whole; a second
                       back for every --min-request-rate bytes of it, up to this
                       (default 10000)
  --idle-timeout MS    close after this long without progress; the same credit for
                       the bytes of a request arriving, up to this (default 30000)
  --min-request-rate B bytes a second: a request arriving at least this fast is never
                       cut by the header or idle timeout; Infinity: no credit, a started
                       request must arrive whole within the header timeout (default 16384)

  Server-wide limits (README, "Connection limits"):
  --max-connections N  connections open on the whole server, every thread and worker
                       process together; a connect past it is closed at once, unread,
                       and counted as refused (default: no limit)
  --max-connections-per-client N
                       the same, counted per client IP address (default: no limit)

  Closing:
  --drain MS           on the first signal, close gracefully: refuse new connects, let each
                       connection answer the requests it has read, then close it; at most MS
                       (default: close every connection at once)

  --help               this text

Runs until SIGINT, SIGTERM or SIGHUP, then closes every connection, thread and worker
process and exits 0; the same signal again while it closes stops it at once, every process
it started killed, exit status 128 + the signal's number (130 for SIGINT).`;

/** maxQueue → max-queue: the flag of each ServeOptions key. */
const flagOf = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

const rows = (Object.entries(serveOptionTable) as [keyof ServeOptions, ServeOptionRow][]).filter(
  ([, row]) => row.cli !== 'none',
);

/** `rawio serve`'s command line: the serve() options, the bench agent's address, and each flag's text. */
export interface ServeCommand {
  opts: ServeOptions;
  agent?: string;
  /** --drain: the first signal closes gracefully for at most this many ms. */
  drain?: number;
  /** The text of each flag given, by flag name (`port` → '8080'). */
  given: Record<string, string>;
}

/**
 * The flags of `rawio serve`, one per ServeOptions key (so an option added to the table
 * has its flag) and `--bench-agent`, parsed into ServeOptions; an unknown flag or a number
 * that is not a whole number is a UsageError. The values' ranges are `serve()`'s to check.
 */
export function parseServeCommand(argv: string[]): ServeCommand {
  const flags = Object.fromEntries(rows.map(([key]) => [flagOf(key), { type: 'string' as const }]));
  const { values } = parseFlags('serve', argv, {
    ...flags,
    'bench-agent': { type: 'string' },
    drain: { type: 'string' },
  });
  const given = Object.fromEntries(
    Object.entries(values).filter((e): e is [string, string] => typeof e[1] === 'string'),
  );
  const opts: Record<string, unknown> = {};
  for (const [key, row] of rows) {
    const flag = flagOf(key);
    const text = given[flag];
    if (text === undefined) continue;
    if (row.cli === 'words') opts[key] = mmapWords(flag, text);
    else if (row.cli === 'rate') opts[key] = text === 'Infinity' ? Infinity : wholeNumber(flag, text);
    else opts[key] = row.cli === 'int' ? wholeNumber(flag, text) : row.cli === 'ints' ? wholeNumbers(flag, text) : text;
  }
  const drain = given.drain === undefined ? undefined : wholeNumber('drain', given.drain);
  if (drain !== undefined && (drain < 0 || drain > MAX_DRAIN_MS))
    throw new UsageError(`--drain wants ms from 0 to ${MAX_DRAIN_MS}, got '${given.drain}'`);
  return { opts: opts as unknown as ServeOptions, agent: given['bench-agent'], drain, given };
}

/** The serve() options of a `rawio serve` command line (parseServeCommand's `opts`). */
export function parseServeArgs(argv: string[]): ServeOptions {
  return parseServeCommand(argv).opts;
}

/** `--mmap populate,reuse,sequential` → { populate: true, reuse: true, advice: 'sequential' }. */
function mmapWords(flag: string, text: string): MmapTransferOptions {
  const out: MmapTransferOptions = {};
  const seen = new Set<string>();
  for (const word of text.split(',').map((w) => w.trim())) {
    if (seen.has(word)) throw new UsageError(`--${flag} names '${word}' twice`);
    seen.add(word);
    if (word === 'populate' || word === 'reuse') out[word] = true;
    else if ((mmapAdviceNames as readonly string[]).includes(word)) {
      if (out.advice !== undefined)
        throw new UsageError(`--${flag} takes one madvise advice, got '${out.advice}' and '${word}'`);
      out.advice = word as MmapAdvice;
    } else throw new UsageError(`--${flag} takes populate, reuse, ${mmapAdviceNames.join(', ')}; got '${word}'`);
  }
  return out;
}

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * What went wrong, said for the command line: an option serve() refuses names its flag
 * (a UsageError), a missing --root is the flag's mistake too, a bind that fails names the
 * address and a host that does not resolve the flag (CommandFailures); anything else as is.
 */
function commandError(e: unknown, cmd: ServeCommand): Error {
  const given = (flag: string) => cmd.given[flag.slice(2)];
  const flagFor = (key: string) =>
    Object.hasOwn(serveOptionTable, key) && serveOptionTable[key as keyof ServeOptions].cli !== 'none'
      ? `--${flagOf(key)}`
      : undefined;
  const usage = optionUsageError(e, flagFor, given);
  if (usage) return usage;
  const err = e as { code?: unknown; syscall?: unknown; path?: unknown; hostname?: unknown };
  if (cmd.opts.root !== undefined && err.path === cmd.opts.root)
    return new UsageError(`--root wants a directory: ${messageOf(e)}`);
  if (err.syscall === 'listen' || err.syscall === 'bind')
    return new CommandFailure(
      `cannot listen on ${cmd.opts.host ?? '127.0.0.1'}:${cmd.opts.port ?? 0}: ${messageOf(e)}`,
      { cause: e },
    );
  if (err.syscall === 'getaddrinfo' || err.hostname !== undefined)
    return new CommandFailure(`--host ${cmd.opts.host}: ${messageOf(e)}`, { cause: e });
  return e instanceof Error ? e : new CommandFailure(messageOf(e));
}

/** The signals that close the server: the terminal's (Ctrl-C, a hang-up) and a supervisor's. */
const CLOSING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** How long a forced stop waits for the processes it killed to be reaped, at most. */
const REAP_MS = 2000;

/**
 * A second signal while closing: kills every process this one started (multi-process
 * workers, also those still starting), waits for them to be reaped so that none is left
 * behind as a zombie, and exits 128 + the signal's number, as a shell reports a command a
 * signal ended. The listening sockets close with the process.
 */
async function stopAtOnce(sig: NodeJS.Signals): Promise<never> {
  const pids = descendantPids();
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  const alive = () => {
    const now = new Set(descendantPids());
    return pids.some((p) => now.has(p));
  };
  for (const end = Date.now() + REAP_MS; alive() && Date.now() < end;)
    await new Promise((resolve) => setTimeout(resolve, 10));
  console.error(`rawio serve: ${sig} again while closing: stopped at once`);
  process.exit(128 + constants.signals[sig]);
}

/**
 * HOST:PORT as `rawio loadgen --target`, `--bench-agent` and a URL take it: an IPv6 address
 * in brackets (`[::1]:8080`), since its own colons would run into the port's.
 */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Runs `rawio serve` until SIGINT, SIGTERM or SIGHUP, then closes the server and exits 0.
 * The signal handlers are in place before anything starts: a signal while the server
 * starts closes it once it is up, so no worker is left behind. A second signal while it
 * closes stops at once (stopAtOnce). A server that fails while serving (a multi-process
 * master that gives up on crashing workers) is closed and exits 1.
 */
export async function serveMain(argv: string[]): Promise<number> {
  const cmd = parseServeCommand(argv);
  let resolved: ResolvedServeOptions;
  try {
    resolved = resolveServeOptions(cmd.opts);
    if (cmd.agent !== undefined) parseAgentAddress(cmd.agent);
  } catch (e) {
    if (e instanceof RangeError && e.message.startsWith('--bench-agent')) throw new UsageError(e.message);
    throw commandError(e, cmd);
  }
  let failure: unknown;
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  let closing = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (closing) return void stopAtOnce(sig);
    closing = true;
    const how = cmd.drain === undefined ? 'closing' : `draining for at most ${cmd.drain} ms`;
    console.log(`rawio: ${sig}: ${how} (${sig} again stops at once)`);
    stop();
  };
  const unhook = () => {
    for (const sig of CLOSING_SIGNALS) process.off(sig, onSignal);
  };
  for (const sig of CLOSING_SIGNALS) process.on(sig, onSignal);
  let agent: BenchAgent | undefined;
  let server: Server;
  try {
    if (resolved.handler !== undefined) {
      try {
        await import(resolved.handler);
      } catch (e) {
        throw new CommandFailure(`--handler ${cmd.opts.handler}: cannot load it: ${messageOf(e)}`, { cause: e });
      }
    }
    if (cmd.agent !== undefined) {
      try {
        agent = await startBenchAgent(cmd.agent);
      } catch (e) {
        throw new CommandFailure(`--bench-agent ${cmd.agent}: ${messageOf(e)}`, { cause: e });
      }
    }
    server = await serve(cmd.opts);
  } catch (e) {
    unhook();
    await agent?.close();
    throw commandError(e, cmd);
  }
  server.on('error', (e) => {
    failure ??= e;
    closing = true;
    stop();
  });
  // A signal that came while it started closes it at once: it never serves, and says so
  // rather than announcing an address that a client would find closing.
  const where = hostPort(server.host, server.port);
  if (closing) console.log(`rawio: ${server.model} started on ${where} and closes (the signal came while it started)`);
  else console.log(`rawio: ${server.model} serving on ${where}`);
  if (agent) console.log(`rawio: bench agent on http://${hostPort(agent.host, agent.port)}/cpu`);
  await stopped;
  // A failure while serving closes at once; a signal drains when --drain says so.
  await server.close(cmd.drain !== undefined && failure === undefined ? { drain: cmd.drain } : undefined);
  await agent?.close();
  unhook();
  const s = server.stats();
  const limits = [
    cmd.opts.maxConnections !== undefined ? '--max-connections' : '',
    cmd.opts.maxConnectionsPerClient !== undefined ? '--max-connections-per-client' : '',
  ].filter((f) => f !== '');
  const refused = s.refused > 0 ? ` (${s.refused} refused at ${limits.join(' or ')})` : '';
  console.log(
    `rawio: closed after ${s.accepted.reduce((a, b) => a + b, 0)} connections, ${s.requests} requests${refused}`,
  );
  if (failure !== undefined) {
    console.error(`rawio serve: ${messageOf(failure)}`);
    return 1;
  }
  return 0;
}
