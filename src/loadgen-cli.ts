/**
 * `rawio loadgen`: the native load generator from the command line, aimed at a server on
 * this machine or another (`--target HOST:PORT`). Flags are read by the parser every
 * subcommand shares (./cli-args.ts: `node:util` parseArgs, strict), so an unknown flag is
 * an error naming the known ones. Prints human text (throughput, errors,
 * p50 … p99.999; `--latency` adds the HDR percentile spectrum), or with `--json` one JSON
 * object holding the result and the HDR table rows. SIGINT ends the window early. A run
 * that measured nothing (no reply in its window; by count, fewer replies than asked) is
 * printed and then a CommandFailure saying what happened (`runFailure`), exit status 1.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { CommandFailure, optionUsageError, parseFlags, UsageError, wholeNumber, wholeNumbers } from './cli-args.js';
import { loadgen, resolveTarget, type LoadgenOptions, type LoadgenResult, type RespMix } from './loadgen/index.js';
import { loadgenAddon } from './loadgen/addon.js';
import { checkLoadgenOptions, MAX_MS } from './loadgen/options.js';
import { formatHdrTable, hdrTable } from './loadgen/percentiles.js';
import { constants } from './sys/constants.js';
import { getAffinity, getrlimit, setrlimit } from './sys/process.js';

export const loadgenUsage = `rawio loadgen --target HOST:PORT [options]

  --target HOST:PORT   the server ([v6]:PORT for IPv6; a name is looked up once)
  --protocol P         http | echo | resp | raw (default http)
  --path PATH          http: the request path (default /)
  --command C          resp: ping | set | get | setget, or a mix of weights such as
                       get:9,set:1 (default ping)
  --keyspace N         resp: distinct keys (default 1000)
  --value-size N       resp SET: value bytes (default 16)
  --payload-size N     echo: bytes per request (default 64)
  --file FILE          raw: the bytes of one request
  --reply-size N       raw: bytes of one reply (default: as many as the request)
  --connections N      concurrent connections (default 10)
  --pipeline N         requests in flight per connection (default 1)
  --threads N          native threads (default 1)
  --duration T         measured window, e.g. 10s, 500ms, 2m (default 10s)
  --requests N         stop after N requests instead (the warm-up's included)
  --stall T            with --requests: give up after T without a reply (default 10s)
  --warmup T           replies in the first T are not recorded (default 0); give a server
                       that starts a thread or process per new connection (thread-per-
                       connection) one, or its start-up is what a short window measures
  --rate R             fixed rate, requests/s over all connections; latency counts from
                       each request's intended send time (default 0: closed loop)
  --cpus LIST          pin the load generator's threads to these CPUs, e.g. 0 or 0,1
  --latency            print the full HDR percentile spectrum
  --json               print one JSON object (the result and the HDR table)
  --help               this text

Exit status 1, with one line saying what happened, when the server answered no request in
the measured window, or by --requests fewer than asked (a connection that fails is retried
after a back-off; a run by count gives up when every connection failed 8 times in a row or
no reply came for --stall); a run where only some connections were answered is measured
and says how many. The load generator is its own addon (rawio_loadgen.node): built in a clone of rawio, not
shipped prebuilt in the npm package; if it is missing this command says how to build it.`;

const FLAGS = {
  target: { type: 'string' },
  protocol: { type: 'string' },
  path: { type: 'string' },
  command: { type: 'string' },
  keyspace: { type: 'string' },
  'value-size': { type: 'string' },
  'payload-size': { type: 'string' },
  file: { type: 'string' },
  'reply-size': { type: 'string' },
  connections: { type: 'string' },
  pipeline: { type: 'string' },
  threads: { type: 'string' },
  duration: { type: 'string' },
  requests: { type: 'string' },
  stall: { type: 'string' },
  warmup: { type: 'string' },
  rate: { type: 'string' },
  cpus: { type: 'string' },
  latency: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

function whole(flag: string, s: string | undefined): number | undefined {
  return s === undefined ? undefined : wholeNumber(flag, s);
}

/**
 * `10s`, `500ms`, `2m`, or plain seconds, in whole milliseconds from `minMs` to the engine's
 * hour: a time outside it is said as a time (`--duration wants a time from 1ms to 60m`),
 * not as the milliseconds it rounds to.
 */
export function parseDuration(flag: string, s: string | undefined, minMs = 1): number | undefined {
  if (s === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s);
  if (!m) throw new UsageError(`--${flag} wants a time such as 10s, 500ms or 2m, got '${s}'`);
  const scale = m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000;
  const ms = Math.round(Number(m[1]) * scale);
  if (!(ms >= minMs && ms <= MAX_MS))
    throw new UsageError(`--${flag} wants a time from ${minMs}ms to ${MAX_MS / 60_000}m, got '${s}'`);
  return ms;
}

/** The largest weight of a command mix (the engine's). */
const MAX_WEIGHT = 1_000_000;

/** `ping`, `setget`, … or a weighted mix `get:9,set:1`: each command once, weights 0 to 1e6, not all 0. */
export function parseCommand(s: string | undefined): LoadgenOptions['command'] {
  if (s === undefined || !s.includes(':')) return s as LoadgenOptions['command'];
  const mix: RespMix = {};
  for (const part of s.split(',')) {
    const [name, weight, ...rest] = part.split(':');
    if (name !== 'ping' && name !== 'set' && name !== 'get')
      throw new UsageError(`--command mix: unknown command '${name}' (ping, set, get)`);
    if (mix[name] !== undefined) throw new UsageError(`--command mix: '${name}' is given more than once`);
    const w = whole('command', rest.length ? `${weight}:${rest.join(':')}` : weight)!;
    if (w < 0 || w > MAX_WEIGHT)
      throw new UsageError(`--command mix: a weight is a whole number from 0 to ${MAX_WEIGHT}, got '${part}'`);
    mix[name] = w;
  }
  if (Object.values(mix).every((w) => w === 0))
    throw new UsageError(`--command mix: the weights are all 0, got '${s}'`);
  return mix;
}

/** The flags of one protocol: given with another they would do nothing. */
const protocolFlags: Record<string, LoadgenOptions['protocol']> = {
  path: 'http',
  command: 'resp',
  keyspace: 'resp',
  'value-size': 'resp',
  'payload-size': 'echo',
  file: 'raw',
  'reply-size': 'raw',
};

/** `--rate R`: a plain decimal number of requests per second (the engine checks its range). */
function rateOf(text: string): number {
  if (!/^\d+(?:\.\d+)?$/.test(text))
    throw new UsageError(`--rate wants requests per second, e.g. 1000 or 0.5 (0: closed loop), got '${text}'`);
  return Number(text);
}

/** `--cpus LIST`: CPUs this process may run on, as `rawio serve --cpus` checks them. */
function cpuList(text: string): number[] {
  const allowed = getAffinity();
  const cpus = wholeNumbers('cpus', text);
  for (const c of cpus)
    if (!allowed.includes(c))
      throw new UsageError(`--cpus wants CPUs this process may use (${allowed.join(', ')}), got '${text}'`);
  return cpus;
}

/** The largest request `--file` may hold (the engine's). */
const MAX_PAYLOAD = 16 << 20;

/** `--file FILE`: its bytes, 1 to 16 MiB, or a UsageError naming the flag. */
function readPayload(file: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new UsageError(`--file ${file}: ${(e as Error).message}`);
  }
  if (bytes.length === 0 || bytes.length > MAX_PAYLOAD)
    throw new UsageError(`--file ${file}: a request is 1 byte to 16 MiB, the file holds ${bytes.length}`);
  return bytes;
}

/** loadgen() option → its flag (`durationMs` → `--duration`). */
const flagOfOption: Record<string, string> = {
  host: '--target',
  port: '--target',
  protocol: '--protocol',
  path: '--path',
  command: '--command',
  keyspace: '--keyspace',
  valueSize: '--value-size',
  payloadSize: '--payload-size',
  payload: '--file',
  replySize: '--reply-size',
  connections: '--connections',
  pipeline: '--pipeline',
  threads: '--threads',
  durationMs: '--duration',
  requests: '--requests',
  stallMs: '--stall',
  warmupMs: '--warmup',
  rate: '--rate',
  cpus: '--cpus',
};

/** One TCP connection to the target, closed at once: a CommandFailure if it cannot be made in 5 s. */
async function reachable(host: string, port: number, target: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const socket = connect({ host, port, timeout: 5000 });
    const fail = (e: Error) => {
      socket.destroy();
      reject(new CommandFailure(`--target ${target}: cannot connect: ${e.message}`, { cause: e }));
    };
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('timeout', () => fail(new Error(`no answer in 5 s (${host}:${port})`)));
    socket.once('error', fail);
  });
}

/** Fds a run needs beside its connections: an epoll fd per thread, and some to spare. */
const FD_SPARE = 16;

/** How many more fds this process may open now (the soft RLIMIT_NOFILE less those open). */
function freeFds(): number {
  const { soft } = getrlimit(constants.RLIMIT_NOFILE!);
  try {
    return soft - (readdirSync('/proc/self/fd').length - 1);
  } catch {
    return Infinity; // no /proc: no telling, the run counts EMFILE as it comes
  }
}

/**
 * `--connections N` holds N sockets at once: a count the open-file limit cannot hold would
 * run with the connections that fit and the rest failing EMFILE, a measurement of fewer
 * connections than asked. The soft limit is raised as far as the hard one allows (Node
 * starts with it at the hard one, so `ulimit -n` usually set both); past that it is the
 * flag's mistake, said before anything connects.
 */
function checkFds(connections: number, threads: number): void {
  const need = connections + threads + FD_SPARE;
  let free = freeFds();
  if (free >= need) return;
  const { soft, hard } = getrlimit(constants.RLIMIT_NOFILE!);
  if (hard > soft) {
    try {
      setrlimit(constants.RLIMIT_NOFILE!, { soft: Math.min(hard, soft + need - free), hard });
      free = freeFds();
      if (free >= need) return;
    } catch {
      // left as it is: said below
    }
  }
  const fit = Math.max(0, free - threads - FD_SPARE);
  throw new UsageError(
    `--connections ${connections} needs as many file descriptors; the open-file limit (ulimit -n ${hard === Infinity ? 'unlimited' : hard}) leaves room for ${fit}`,
  );
}

/**
 * Runs the load generator for a command line: an option loadgen() refuses is the flag's
 * UsageError; a target that refuses a first connection is a CommandFailure rather than a
 * run of nothing but connect errors (by count, one that would never end).
 */
export async function runLoadgen(
  opts: LoadgenOptions & { target: string },
  argv: readonly string[],
  signal?: AbortSignal,
): Promise<LoadgenResult> {
  const { target, ...run } = opts;
  const flagText = (flag: string) => {
    const at = argv.findIndex((a) => a === flag || a.startsWith(`${flag}=`));
    if (at < 0) return undefined;
    return argv[at]!.includes('=') ? argv[at]!.slice(argv[at]!.indexOf('=') + 1) : argv[at + 1];
  };
  try {
    checkLoadgenOptions(run);
  } catch (e) {
    throw optionUsageError(e, (name) => flagOfOption[name], flagText) ?? e;
  }
  checkFds(run.connections ?? 1, run.threads ?? 1);
  loadgenAddon(); // a missing addon says so and how to build it, before anything connects
  await reachable(run.host ?? '127.0.0.1', run.port, target);
  return loadgen({ ...run, signal });
}
export async function parseLoadgenArgs(
  argv: string[],
): Promise<LoadgenOptions & { target: string; latency: boolean; json: boolean }> {
  const { values } = parseFlags('loadgen', argv, FLAGS);
  if (!values.target) throw new UsageError('--target HOST:PORT is required');
  const target = values.target;
  let host: string;
  let port: number;
  try {
    ({ host, port } = await resolveTarget(target));
  } catch (e) {
    throw (
      optionUsageError(
        e,
        (name) => (name === 'target' ? '--target' : undefined),
        () => target,
      ) ?? new CommandFailure(`--target ${target}: ${(e as Error).message}`, { cause: e })
    );
  }
  const protocol = (values.protocol ?? 'http') as LoadgenOptions['protocol'];
  for (const [flag, with_] of Object.entries(protocolFlags))
    if (values[flag as keyof typeof values] !== undefined && protocol !== with_)
      throw new UsageError(`--${flag} goes with --protocol ${with_}`);
  if (protocol === 'raw' && values.file === undefined) throw new UsageError('--protocol raw needs --file FILE');
  const requests = whole('requests', values.requests);
  // A run by duration has its window to end it: the stall bound is a count's alone.
  if (values.stall !== undefined && requests === undefined) throw new UsageError('--stall goes with --requests');
  const opts: LoadgenOptions & { target: string; latency: boolean; json: boolean } = {
    target: values.target,
    host,
    port,
    protocol,
    path: values.path,
    command: parseCommand(values.command),
    keyspace: whole('keyspace', values.keyspace),
    valueSize: whole('value-size', values['value-size']),
    payloadSize: whole('payload-size', values['payload-size']),
    payload: values.file === undefined ? undefined : readPayload(values.file),
    replySize: whole('reply-size', values['reply-size']),
    connections: whole('connections', values.connections) ?? 10,
    pipeline: whole('pipeline', values.pipeline),
    threads: whole('threads', values.threads),
    durationMs: parseDuration('duration', values.duration) ?? (requests === undefined ? 10_000 : undefined),
    requests,
    stallMs: parseDuration('stall', values.stall),
    warmupMs: parseDuration('warmup', values.warmup, 0),
    rate: values.rate === undefined ? undefined : rateOf(values.rate),
    cpus: values.cpus === undefined ? undefined : cpuList(values.cpus),
    latency: values.latency ?? false,
    json: values.json ?? false,
  };
  return opts;
}

/** What `lastError` means, in words. */
function lastErrorText(code: string, protocol: string): string {
  if (code === 'ECONNREFUSED') return 'connections refused (ECONNREFUSED)';
  if (code === 'EOF') return 'connections closed with requests unanswered (EOF)';
  if (code === 'EPROTO') return `replies that are not ${protocol} (EPROTO)`;
  if (code === 'ECONNRESET') return 'connections reset (ECONNRESET)';
  return code;
}

/** The errors that happened, e.g. `connect errors 12, lost 3; last: connections refused (ECONNREFUSED)`. */
export function errorSummary(o: LoadgenOptions, r: LoadgenResult): string {
  const e = r.errors;
  const parts = (
    [
      ['connect errors', e.connect],
      ['resets', e.reset],
      ['bad replies', e.badReply],
      ['error replies', e.errorReply],
      ['lost', e.lost],
    ] as const
  )
    .filter(([, n]) => n > 0)
    .map(([what, n]) => `${what} ${n}`);
  const last = r.lastError === null ? '' : `; last: ${lastErrorText(r.lastError, o.protocol)}`;
  return parts.length === 0 ? 'no errors' : `${parts.join(', ')}${last}`;
}

/** Failed attempts in a row on every connection after which a run by count gives up (the engine's). */
const GIVE_UP_FAILURES = 8;

const timeText = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);

/**
 * Why a run is a failure of the command, in one sentence, or undefined when it measured
 * something: the server answered no request in the measured window; by count, fewer than
 * asked (also when the run gave up: `ended` 'unreachable' or 'stalled'). A run where some
 * connections were never answered, or some requests lost, is a measurement with errors;
 * a run stopped by its signal is judged by its window alone.
 */
export function runFailure(o: LoadgenOptions, r: LoadgenResult): string | undefined {
  const asked = o.requests;
  const errors = errorSummary(o, r);
  if (asked !== undefined && r.ended !== 'stopped') {
    const answered = `${r.received} of ${asked} requests`;
    if (r.ended === 'unreachable')
      return `${r.received > 0 ? `the server went away after answering ${answered}` : `the server answered ${answered}`}: every connection failed ${GIVE_UP_FAILURES} times in a row (${errors})`;
    if (r.ended === 'stalled')
      return `no reply for ${timeText(o.stallMs ?? 10_000)}: the server answered ${answered} (${errors})`;
    if (r.received < asked) return `the server answered ${answered} (${errors})`;
    return undefined;
  }
  if (r.requests > 0) return undefined;
  const window = `the ${r.seconds.toFixed(2)} s window`;
  return r.received > 0
    ? `no reply inside ${window}, ${r.received} outside it: nothing was measured (${errors})`
    : `the server answered no request in ${window} (${errors})`;
}

export function formatResult(target: string, o: LoadgenOptions, r: LoadgenResult, latency: boolean): string {
  const e = r.errors;
  const l = r.latencyUs;
  const us = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)}ms` : `${v.toFixed(1)}us`);
  const mode = o.rate ? `fixed rate ${o.rate}/s (latency from intended send times)` : 'closed loop';
  const connections = o.connections ?? 1;
  // the bytes read in the window over its seconds: bytesIn holds the warm-up's and the drain's too
  const mibIn =
    r.seconds > 0 ? `${(r.bytesInWindow / r.seconds / 2 ** 20).toFixed(2)} MiB/s in` : `${r.bytesIn} bytes in`;
  const lines = [
    `rawio loadgen → ${target}: ${o.protocol}, ${connections} connections, pipeline ${o.pipeline ?? 1}, ${o.threads ?? 1} thread(s), ${mode}`,
    `  ${r.requests} requests in ${r.seconds.toFixed(2)} s: ${r.rps.toFixed(0)} req/s, ${mibIn}`,
    `  latency  mean ${us(l.mean)}  p50 ${us(l.p50)}  p90 ${us(l.p90)}  p99 ${us(l.p99)}  ` +
      `p99.9 ${us(l.p999)}  p99.99 ${us(l.p9999)}  p99.999 ${us(l.p99999)}  max ${us(l.max)}`,
    `  sent ${r.sent}, received ${r.received}, connects ${r.connects}; errors: connect ${e.connect}, ` +
      `reset ${e.reset}, bad reply ${e.badReply}, error reply ${e.errorReply}, lost ${e.lost}` +
      (r.lastError === null ? '' : `; last ${r.lastError}`),
  ];
  if (r.connectionsAnswered < connections)
    lines.push(`  answered on ${r.connectionsAnswered} of ${connections} connections`);
  if (r.ended !== 'done') lines.push(`  ended: ${r.ended}`);
  lines.push(`  client CPU ${r.cpuSeconds.toFixed(2)} s`);
  if (latency) lines.push('', formatHdrTable(r.histogram, l.mean));
  return lines.join('\n');
}

/**
 * Prints a run's result (`--json`: one object with the HDR table rows and `failure`, the
 * sentence the command fails with, or null for a measurement), as `rawio loadgen` does.
 */
export function printResult(
  target: string,
  o: LoadgenOptions,
  r: LoadgenResult,
  how: { json: boolean; latency: boolean },
  extra: Record<string, unknown> = {},
): void {
  if (how.json) {
    const { histogram, ...rest } = r;
    console.log(
      JSON.stringify(
        { target, ...rest, hdr: hdrTable(histogram), failure: runFailure(o, r) ?? null, ...extra },
        (_k, v: unknown) => (v === Infinity ? null : v),
      ),
    );
  } else {
    console.log(formatResult(target, o, r, how.latency));
  }
}

/**
 * With `--json`, a command that fails before it has a result to print (a target that does
 * not resolve or refuses its first connection, a missing addon) still prints one object on
 * stdout, `{ target, error }` with the line it fails with, so that a script reading stdout
 * always has one object to parse; a wrong command line (a UsageError, exit 2) prints none.
 * `argv` holds `--json` only as that flag: parseFlags refuses it in any other spelling.
 */
export async function jsonOnFailure<T>(command: string, argv: readonly string[], body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (e) {
    if (argv.includes('--json') && !(e instanceof UsageError)) {
      const at = argv.findIndex((a) => a === '--target' || a.startsWith('--target='));
      const target = at < 0 ? null : argv[at]!.includes('=') ? argv[at]!.slice(9) : (argv[at + 1] ?? null);
      const message = (e instanceof Error ? e.message : String(e)).replace(/^rawio: /, '');
      console.log(JSON.stringify({ target, error: `rawio ${command}: ${message}` }));
    }
    throw e;
  }
}

/** Runs `rawio loadgen`; a UsageError goes to the CLI, which prints it with the usage. */
export async function loadgenMain(argv: string[]): Promise<number> {
  const { target, latency, json, ...run } = await parseLoadgenArgs(argv).catch((e: unknown) =>
    jsonOnFailure('loadgen', argv, () => Promise.reject(e)),
  );
  const stop = new AbortController();
  const onSigint = () => stop.abort();
  process.once('SIGINT', onSigint);
  let r: LoadgenResult;
  try {
    r = await jsonOnFailure('loadgen', argv, () => runLoadgen({ ...run, target }, argv, stop.signal));
  } finally {
    process.off('SIGINT', onSigint);
  }
  printResult(target, run, r, { json, latency });
  const failure = runFailure(run, r);
  if (failure !== undefined) throw new CommandFailure(failure);
  return 0;
}
