/**
 * `rawio serve`: starts any model with any protocol from the command line, prints the
 * address, and runs until SIGINT or SIGTERM, then closes the server cleanly (every
 * connection closed, every thread and process gone) and exits.
 */
import { parseArgs } from 'node:util';
import { startBenchAgent } from './bench-agent.js';
import { serve } from './serve.js';
import type { ServeOptions } from './types.js';

export const serveUsage = `rawio serve --model M --protocol P [options]

  --model M        iterative | thread-per-connection | single | worker-pool |
                   multi-reactor | multi-reactor-pool | multi-process | proactor
  --protocol P     echo | http | resp | static
  --host H         address to bind (default 127.0.0.1)
  --port N         port (default 0: any free port; the chosen one is printed)
  --workers N      threads or processes, by model (default: the CPU count;
                   thread-per-connection: its cap, 256)
  --pool N         multi-reactor-pool: handler threads (default: the CPU count)
  --backend B      select | poll | epoll | epoll-et, for the reactor models (default epoll)
  --accept S       multi-process: reuseport | exclusive | mutex (default reuseport)
  --root DIR       static: the directory served
  --transfer T     static: readwrite | mmap | sendfile | splice | uring | direct | auto
                   (default auto)
  --directio N     static: 'auto' switches to direct IO for files of N bytes or more
  --cpus LIST      pin the model's I/O threads to these CPUs, e.g. 0 or 0,1
  --bench-agent A  also answer GET http://A/cpu with this server's CPU time (all its
                   threads and worker processes), for \`rawio bench --target\` on another
                   machine; A is PORT (on 127.0.0.1) or HOST:PORT
  --help           this text`;

const int = (s: string | undefined) => (s === undefined ? undefined : Number(s));

export function parseServeArgs(argv: string[]): ServeOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      protocol: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      workers: { type: 'string' },
      pool: { type: 'string' },
      backend: { type: 'string' },
      accept: { type: 'string' },
      root: { type: 'string' },
      transfer: { type: 'string' },
      directio: { type: 'string' },
      cpus: { type: 'string' },
    },
    strict: true,
  });
  const opts = {
    model: values.model,
    protocol: values.protocol,
    host: values.host,
    port: int(values.port),
    workers: int(values.workers),
    pool: int(values.pool),
    backend: values.backend,
    accept: values.accept,
    root: values.root,
    transfer: values.transfer,
    directio: int(values.directio),
    cpus: values.cpus?.split(',').map(Number),
  };
  for (const k of Object.keys(opts) as (keyof typeof opts)[]) if (opts[k] === undefined) delete opts[k];
  return opts as ServeOptions;
}

/** The `--bench-agent` address, taken out of argv (it is no server option). */
function takeAgent(argv: string[]): { rest: string[]; agent?: string } {
  const rest: string[] = [];
  let agent: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--bench-agent') agent = argv[++i] ?? '';
    else if (a.startsWith('--bench-agent=')) agent = a.slice('--bench-agent='.length);
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
