/**
 * The Node options a multi-process worker is started with. A worker runs rawio's own entry
 * (process-entry.ts), so the parent's `process.execArgv` is passed on without the options
 * that would make Node run something else or hold the worker: `-e`/`--eval` and
 * `-p`/`--print` (the worker would run the user's script again, start its own server and
 * spawn workers of its own, without end) with `--input-type` (refused without them),
 * `--run`, `-i`, `-c`, `-h`, `-v`, `--prof-process`, `--inspect*` (a second debugger on the
 * same port), `--test*` and `--watch*`. Options that only shape the runtime (`--require`,
 * `--import`, `--max-old-space-size`, `--conditions` …) are kept.
 */

/** Options dropped with the value that follows them, unless written `--opt=value`. */
const WITH_VALUE = new Set([
  '-e',
  '--eval',
  '-p',
  '--print',
  '--input-type',
  '--run',
  '--inspect-port',
  '--debug-port',
  '--inspect-publish-uid',
  '--test-name-pattern',
  '--test-skip-pattern',
  '--test-reporter',
  '--test-reporter-destination',
  '--test-shard',
  '--test-concurrency',
  '--test-timeout',
  '--test-isolation',
  '--test-coverage-include',
  '--test-coverage-exclude',
  '--test-coverage-branches',
  '--test-coverage-functions',
  '--test-coverage-lines',
  '--watch-path',
]);
const FLAGS = new Set([
  '-i',
  '--interactive',
  '-c',
  '--check',
  '-h',
  '--help',
  '-v',
  '--version',
  '--v8-options',
  '--completion-bash',
  '--prof-process',
]);
const PREFIXES = ['--inspect', '--test', '--experimental-test', '--watch'];

/** `execArgv` without the options a worker must not inherit (see the file comment). */
export function workerExecArgv(execArgv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    const name = arg.startsWith('--') ? arg.split('=', 1)[0]! : arg;
    if (WITH_VALUE.has(name) || /^-[a-zA-Z]*[ep][a-zA-Z]*$/.test(arg)) {
      // `-e code`, `--eval=code`, and short clusters that end in one of them (`-pe code`).
      if (name === arg) i++;
      continue;
    }
    if (FLAGS.has(name) || PREFIXES.some((p) => name.startsWith(p))) continue;
    out.push(arg);
  }
  return out;
}

/**
 * NODE_OPTIONS for a multi-process worker: the parent's, less `--input-type`, which Node
 * refuses for a process whose entry is a file (ERR_INPUT_TYPE_NOT_ALLOWED) — a parent started
 * as `NODE_OPTIONS=--input-type=module node -e …` would otherwise see every worker fail — and
 * less `--inspect*`, as from execArgv: with `--inspect-brk` or `--inspect-wait` every worker
 * would wait at its first line for a debugger, and serve() for them, for ever. The variable
 * is returned as it is when it holds no such option (its quoting untouched).
 */
export function workerNodeOptions(nodeOptions: string | undefined): string | undefined {
  if (nodeOptions === undefined || !/(^|\s)--(input-type|inspect)/.test(nodeOptions)) return nodeOptions;
  const words = nodeOptions.split(/\s+/).filter(Boolean);
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === '--input-type' || w === '--inspect-port' || w === '--inspect-publish-uid') i++;
    else if (!w.startsWith('--input-type=') && !w.startsWith('--inspect')) out.push(w);
  }
  return out.join(' ');
}
