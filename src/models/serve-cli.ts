/**
 * `rawio serve`: starts any model with any protocol from the command line, prints the
 * address, and runs until SIGINT or SIGTERM, then closes the server cleanly (every
 * connection closed, every thread and process gone) and exits.
 */
import { parseArgs } from 'node:util';
import { serve } from './serve.js';
import type { ServeOptions } from './types.js';

export const serveUsage = `rawio serve --model M --protocol P [options]

  --model M        iterative | thread-per-connection | single | worker-pool |
                   multi-reactor | multi-reactor-pool | multi-process | proactor |
                   multi-proactor
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
      'max-in-flight': { type: 'string' },
      'max-output': { type: 'string' },
      'max-files': { type: 'string' },
      'max-queue': { type: 'string' },
      'max-header': { type: 'string' },
      'max-request': { type: 'string' },
      'header-timeout': { type: 'string' },
      'idle-timeout': { type: 'string' },
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
    maxInFlight: int(values['max-in-flight']),
    maxOutput: int(values['max-output']),
    maxFiles: int(values['max-files']),
    maxQueue: int(values['max-queue']),
    maxHeader: int(values['max-header']),
    maxRequest: int(values['max-request']),
    headerTimeout: int(values['header-timeout']),
    idleTimeout: int(values['idle-timeout']),
  };
  for (const k of Object.keys(opts) as (keyof typeof opts)[]) if (opts[k] === undefined) delete opts[k];
  return opts as ServeOptions;
}

export async function serveMain(argv: string[]): Promise<number> {
  const server = await serve(parseServeArgs(argv));
  console.log(`rawio: ${server.model} serving on ${server.host}:${server.port}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  const s = server.stats();
  console.log(`rawio: closed after ${s.accepted.reduce((a, b) => a + b, 0)} connections, ${s.requests} requests`);
  return 0;
}
