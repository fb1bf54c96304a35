#!/usr/bin/env node
/**
 * The `rawio` command: `rawio probe [--json]`, `rawio serve ...`, `rawio loadgen ...`,
 * `rawio bench ...`, `rawio --help`, `rawio --version`.
 * Commands live in one table, each with its usage and a lazily imported implementation,
 * so adding one (`serve`, by the models) is one entry, and `rawio probe` never loads the
 * benchmark suite. The suite lives in the repository, not in the npm package: in an
 * installed package `rawio bench` says where to get it.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseFlags, UsageError } from './cli-args.js';
import { probe, type ProbeResult } from './probe.js';

export interface Command {
  summary: string;
  usage: string;
  /** Resolves with the exit code. */
  run(argv: string[]): Promise<number>;
  /** The long help (`rawio <command> --help`), where the usage line is not enough. */
  help?: () => Promise<string>;
}

const yesNo = (b: boolean | null) => (b === null ? 'unknown' : b ? 'yes' : 'no');

function printProbe(p: ProbeResult): void {
  const lim = (l: { soft: number; hard: number }) => `${l.soft} (hard ${l.hard})`;
  const u = p.ioUring;
  const lines = [
    `kernel          ${p.kernel.release}`,
    `cpus            ${p.cpus}`,
    `io_uring        ${u.supported === null ? 'unknown' : u.supported ? 'supported' : 'not supported'} (${u.setup}; io_uring_disabled=${u.disabled ?? 'n/a'})`,
    ...(u.opcodes ? [`  opcodes       ${u.opcodes.join(' ')}`] : []),
    ...Object.entries(u.options ?? {}).map(
      ([name, o]) => `  ${name.padEnd(20)}${o.supported ? 'supported' : 'not supported'} (${o.detail})`,
    ),
    `zero-copy send  MSG_ZEROCOPY ${yesNo(p.zerocopySend.msgZerocopy)}, io_uring SEND_ZC ${yesNo(p.zerocopySend.sendZc)}`,
    `RLIMIT_NOFILE   ${lim(p.limits.nofile)}`,
    `RLIMIT_MEMLOCK  ${lim(p.limits.memlock)}`,
    `pipe-max-size   ${p.limits.pipeMaxSize ?? 'n/a'}`,
    `FD_SETSIZE      ${p.fdSetSize}`,
    `direct IO       ${p.directIo ? `${p.directIo.path}: memory ${p.directIo.memAlign}, offset ${p.directIo.offsetAlign} (${p.directIo.source})` : 'n/a'}`,
    ...Object.entries(p.netdev).map(
      ([dev, f]) =>
        `netdev ${dev.padEnd(9)}${Object.entries(f)
          .map(([k, v]) => `${k} ${v === null ? '?' : v ? 'on' : 'off'}`)
          .join(', ')}`,
    ),
  ];
  console.log(lines.join('\n'));
}

const BENCH_NOT_INSTALLED = [
  'rawio bench: the benchmark suite is not part of the npm package; run it from a clone of rawio:',
  '  git clone https://github.com/rawio/rawio.git && cd rawio && npm ci && npm run bench',
  '(`rawio bench --target HOST:PORT`, which measures a server elsewhere, works here: rawio bench --help)',
].join('\n');

export const commands: Record<string, Command> = {
  probe: {
    summary: 'what this kernel and machine allow (io_uring, limits, alignment, scatter-gather)',
    usage: 'rawio probe [--json] [--path DIR]',
    async run(argv) {
      const { values } = parseFlags('probe', argv, { json: { type: 'boolean' }, path: { type: 'string' } });
      const p = probe(values.path === undefined ? {} : { path: values.path });
      if (values.json) console.log(JSON.stringify(p, null, 2));
      else printProbe(p);
      return 0;
    },
  },
  serve: {
    summary: 'run a server: any model, any protocol, until SIGINT, SIGTERM or SIGHUP',
    usage: 'rawio serve --model M --protocol P [--port N] [--workers N] ... (rawio serve --help lists them all)',
    help: async () => (await import('./serve-cli.js')).serveUsage,
    async run(argv) {
      const { serveMain } = await import('./serve-cli.js');
      return serveMain(argv);
    },
  },
  loadgen: {
    summary: 'drive a server, here or on another machine, with the native load generator',
    usage:
      'rawio loadgen --target HOST:PORT [--protocol P] [--connections N] [--pipeline N] [--threads N] [--duration T | --requests N] [--rate R] [--latency] [--json]',
    help: async () => (await import('./loadgen-cli.js')).loadgenUsage,
    async run(argv) {
      const { loadgenMain } = await import('./loadgen-cli.js');
      return loadgenMain(argv);
    },
  },
  bench: {
    summary: 'run the benchmark suite and write report.md, report.html, report.json and charts (in a clone of rawio)',
    usage:
      'rawio bench [--quick | --full] [--only SCENARIO,...] [--repeat N] [--out DIR] [--json], or a server elsewhere: rawio bench --target HOST:PORT [--server-info URL] [rawio loadgen flags]',
    async run(argv) {
      if (existsSync(fileURLToPath(new URL('../bench/main.js', import.meta.url)))) {
        const { main } = await import('../bench/main.js');
        return main(argv);
      }
      // The npm package: no suite, but `--target` (a server elsewhere) needs only the load
      // generator, which the package carries.
      const { REMOTE_USAGE, remoteMain } = await import('./bench-remote.js');
      if (argv.includes('--help') || argv.includes('-h')) {
        console.log(
          `${BENCH_NOT_INSTALLED}\n\nA server on another machine, which this package measures:\n\n${REMOTE_USAGE}`,
        );
        return 0;
      }
      if (argv.some((a) => a === '--target' || a.startsWith('--target='))) return remoteMain(argv);
      console.error(BENCH_NOT_INSTALLED);
      return 1;
    },
  },
};

/** rawio's version, from the package.json beside dist/ (in a clone and in the npm package alike). */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function usage(): string {
  const width = Math.max(...Object.keys(commands).map((k) => k.length));
  return [
    'usage: rawio <command> [options]',
    '',
    ...Object.entries(commands).map(
      ([name, c]) => `  ${name.padEnd(width)}  ${c.summary}\n  ${' '.repeat(width)}  ${c.usage}`,
    ),
    '',
    'rawio <command> --help shows more about a command; rawio --version prints the version.',
    'Exit status: 0 done, 1 the command failed while running, 2 the command line is wrong.',
  ].join('\n');
}

/**
 * Runs `rawio ...` and resolves with the exit status: 0 done, 1 the command failed while
 * running (a CommandFailure, or any other error: its message, no stack), 2 the command
 * line is wrong (a UsageError: no or an unknown command, a bad flag or value), with the usage.
 */
export async function cli(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return 0;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    console.log(version());
    return 0;
  }
  if (!name) {
    console.error(`rawio: no command given\n\n${usage()}`);
    return 2;
  }
  const cmd = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!cmd) {
    console.error(`rawio: unknown command '${name}'; known: ${Object.keys(commands).join(', ')}\n\n${usage()}`);
    return 2;
  }
  if (name !== 'bench' && (rest.includes('--help') || rest.includes('-h'))) {
    console.log(cmd.help ? `usage: ${await cmd.help()}` : `usage: ${cmd.usage}\n\n${cmd.summary}`);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    const text = (e instanceof Error ? e.message : String(e)).replace(/^rawio: /, '');
    const message = text.startsWith(`${name}: `) ? text : `${name}: ${text}`;
    if (e instanceof UsageError) {
      console.error(`rawio ${message}\n\nusage: ${cmd.usage}`);
      return 2;
    }
    console.error(`rawio ${message}`);
    return 1;
  }
}

/** True when this file is the program (`rawio`, through npm's bin symlink), not an import. */
function isMain(): boolean {
  try {
    return !!process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  // A reader that went away (`rawio probe | head -1`, a terminal closed before SIGHUP) makes
  // writes fail with EPIPE or EIO: what was left to say is dropped, not thrown as a stack trace.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  cli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      console.error(`rawio: ${e instanceof Error ? e.message : String(e)}`);
      process.exitCode = 1;
    },
  );
}
