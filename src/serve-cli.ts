/**
 * `rawio serve`: starts any model with any protocol from the command line, prints the
 * address, and runs until SIGINT or SIGTERM, then closes the server cleanly (every
 * connection closed, every thread and process gone) and exits.
 */
import { parseFlags, UsageError, wholeNumber, wholeNumbers } from './cli-args.js';
import { startBenchAgent } from './models/bench-agent.js';
import { serve } from './models/serve.js';
import { serveOptionTable, type ServeOptionRow } from './models/serve-options.js';
import type { ServeOptions } from './models/types.js';
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
  --mmap WORDS       file bodies by --transfer mmap, any of (comma-separated): populate
                     (MAP_POPULATE), reuse (send again from a cached whole-file mapping),
                     and one of normal | random | sequential | willneed (madvise)
  --backlog N        the listen(2) backlog (default 511)
  --zerocopy-threshold BYTES
                     reply data of this many bytes or more is sent zero-copy (MSG_ZEROCOPY
                     in the reactor models, SEND_ZC in proactor; default 0: never)
  --cpus LIST        pin the model's I/O threads to these CPUs, e.g. 0 or 0,1
  --bench-agent A    also answer GET http://A/cpu with this server's CPU time (all its
                     threads and worker processes), for \`rawio bench --target\` on another
                     machine; A is PORT (on 127.0.0.1) or HOST:PORT

  Per-connection limits (README, "Connection limits"):
  --max-in-flight N    requests handled and not yet answered (default 1024)
  --max-output BYTES   reply bytes not yet taken by the client before the next
                       request waits (default 1 MiB)
  --max-files N        file bodies open (default 16)
  --max-queue BYTES    unsent output that drops the client: the largest reply (default 64 MiB)
  --max-header BYTES   http/static request head, 431 past it (default 8192)
  --max-request BYTES  http body / resp command, 413 / protocol error past it
  --header-timeout MS  a started request must arrive whole within this (default 10000)
  --idle-timeout MS    close after this long without progress (default 30000)
  --help               this text`;

/** maxQueue → max-queue: the flag of each ServeOptions key. */
const flagOf = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * The flags of `rawio serve`, one per ServeOptions key (so an option added to the table
 * has its flag), parsed into ServeOptions; an unknown flag or a number that is not a whole
 * number is a UsageError. The values' ranges are `serve()`'s to check.
 */
export function parseServeArgs(argv: string[]): ServeOptions {
  const rows = (Object.entries(serveOptionTable) as [keyof ServeOptions, ServeOptionRow][]).filter(
    ([, row]) => row.cli !== 'none',
  );
  const flags = Object.fromEntries(rows.map(([key]) => [flagOf(key), { type: 'string' as const }]));
  const { values } = parseFlags('serve', argv, flags);
  const opts: Record<string, unknown> = {};
  for (const [key, row] of rows) {
    const flag = flagOf(key);
    const text = (values as Record<string, string | undefined>)[flag];
    if (text === undefined) continue;
    if (row.cli === 'words') opts[key] = mmapWords(flag, text);
    else opts[key] = row.cli === 'int' ? wholeNumber(flag, text) : row.cli === 'ints' ? wholeNumbers(flag, text) : text;
  }
  return opts as unknown as ServeOptions;
}

/** `--mmap populate,reuse,sequential` → { populate: true, reuse: true, advice: 'sequential' }. */
function mmapWords(flag: string, text: string): MmapTransferOptions {
  const out: MmapTransferOptions = {};
  for (const word of text.split(',').map((w) => w.trim())) {
    if (word === 'populate' || word === 'reuse') out[word] = true;
    else if ((mmapAdviceNames as readonly string[]).includes(word)) out.advice = word as MmapAdvice;
    else throw new UsageError(`--${flag} takes populate, reuse, ${mmapAdviceNames.join(', ')}; got '${word}'`);
  }
  return out;
}

/** `--bench-agent`, taken out of argv: it starts the agent and is no serve() option. */
function takeAgent(argv: string[]): { rest: string[]; agent?: string } {
  const rest: string[] = [];
  let agent: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--bench-agent') {
      agent = argv[++i];
      if (agent === undefined || agent.startsWith('-')) throw new UsageError('serve: --bench-agent needs a value');
    } else if (a.startsWith('--bench-agent=')) agent = a.slice('--bench-agent='.length);
    else rest.push(a);
  }
  return { rest, agent };
}

export async function serveMain(argv: string[]): Promise<number> {
  const { rest, agent: agentAt } = takeAgent(argv);
  const opts = parseServeArgs(rest);
  const agent = agentAt === undefined ? undefined : await startBenchAgent(agentAt);
  const server = await serve(opts);
  console.log(`rawio: ${server.model} serving on ${server.host}:${server.port}`);
  if (agent) console.log(`rawio: bench agent on http://${agent.host}:${agent.port}/cpu`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  await agent?.close();
  const s = server.stats();
  console.log(`rawio: closed after ${s.accepted.reduce((a, b) => a + b, 0)} connections, ${s.requests} requests`);
  return 0;
}
