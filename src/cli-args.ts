/**
 * The one argument parser behind every `rawio` subcommand (`probe`, `serve`, `loadgen`,
 * `bench`), and the command line's two kinds of failure. Flags are read by `node:util`
 * parseArgs in strict mode, with the rules parseArgs leaves to its caller made here, for
 * every command alike:
 * - an unknown or misspelt flag is an error naming the flags the command knows;
 * - a flag given twice is an error (which one was meant?), not the last one silently;
 * - a word that is no flag's value (`rawio serve extra`) is an error naming it;
 * - a value-taking flag followed by nothing, or by another flag, needs a value; a
 *   negative number after it is its value (`--port -1`, refused for its range, not taken
 *   for a flag named `-1`);
 * - `wholeNumber` turns a flag's text into a safe integer or says the flag wants one
 *   (`--workers abc`, `--port 1.5` and `--port ' 80'` must not become NaN, 1 or 80).
 * A UsageError (exit status 2) is a command line that cannot run as written; a
 * CommandFailure (exit status 1) is a command that started and failed (a port in use, a
 * handler that throws on import, a target that refuses connections).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Flags = NonNullable<ParseArgsConfig['options']>;

/** A command-line mistake: the message is meant for the user, the usage follows it. Exit status 2. */
export class UsageError extends Error {
  readonly code = 'ERR_RAWIO_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A command that could not do its work: the message is meant for the user. Exit status 1. */
export class CommandFailure extends Error {
  readonly code = 'ERR_RAWIO_COMMAND_FAILED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CommandFailure';
  }
}

function flagList(flags: Flags): string {
  return Object.entries(flags)
    .map(([name, f]) => `--${name}${f.type === 'string' ? ' VALUE' : ''}`)
    .join(', ');
}

/** The value-taking flag `arg` names (`--port`), if it is one written without `=`. */
function valueFlag(arg: string, options: Flags): string | undefined {
  if (!arg.startsWith('-') || arg.includes('=')) return undefined;
  const name = arg.startsWith('--')
    ? arg.slice(2)
    : Object.keys(options).find((k) => options[k]!.short === arg.slice(1));
  return name !== undefined && options[name]?.type === 'string' ? name : undefined;
}

/** A negative number, as a value (`-1`, `-0.5`), not a flag. */
const negativeNumber = /^-\d/;

/**
 * Parses `argv` for `command` against `flags` (plus `--help`); no positionals. Throws a
 * UsageError naming the known flags for an unknown one, saying which flag lacks its value,
 * which flag is repeated, or which word is no flag's value.
 */
export function parseFlags<F extends Flags>(
  command: string,
  argv: readonly string[],
  flags: F,
): { values: { [K in keyof F]?: F[K]['type'] extends 'boolean' ? boolean : string } & { help?: boolean } } {
  const options = { ...flags, help: { type: 'boolean', short: 'h' } } as Flags;
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      // Everything after it is a word, as the user wrote it (and so refused as one).
      args.push(...argv.slice(i));
      break;
    }
    const name = valueFlag(arg, options);
    if (name === undefined) {
      args.push(arg);
      continue;
    }
    const next = argv[i + 1];
    if (next === undefined || (next.startsWith('-') && !negativeNumber.test(next)))
      throw new UsageError(`${command}: --${name} needs a value`);
    args.push(`--${name}=${next}`);
    i++;
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true, tokens: true });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const arg = argv.find((a) => !isKnown(a, options)) ?? '';
      throw new UsageError(`${command}: unknown option '${arg}'; known: ${flagList(options)}`);
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      // Only a boolean flag given a value is left (`--json=yes`): value flags were joined above.
      const flag = /'(--?[\w-]+)/.exec((e as Error).message)?.[1] ?? '';
      throw new UsageError(`${command}: ${flag} takes no value`);
    }
    throw e;
  }
  const seen = new Set<string>();
  for (const t of parsed.tokens) {
    if (t.kind === 'positional')
      throw new UsageError(`${command}: unexpected argument '${t.value}' (every value follows its flag)`);
    if (t.kind !== 'option') continue;
    if (seen.has(t.name)) throw new UsageError(`${command}: --${t.name} is given more than once`);
    seen.add(t.name);
  }
  return { values: parsed.values } as never;
}

function isKnown(arg: string, options: Flags): boolean {
  if (!arg.startsWith('-') || negativeNumber.test(arg) || arg === '--') return true; // a value
  const name = arg.replace(/^--?/, '').split('=')[0]!;
  return Object.hasOwn(options, name) || Object.values(options).some((o) => o.short === name);
}

/** `text` as a safe integer: a UsageError saying `--flag` wants a whole number otherwise. */
export function wholeNumber(flag: string, text: string): number {
  if (!/^[+-]?\d+$/.test(text)) throw new UsageError(`--${flag} wants a whole number, got '${text}'`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new UsageError(`--${flag} wants a whole number below 2^53, got '${text}'`);
  return n;
}

/** A comma-separated list of whole numbers (`--cpus 0,1`). */
export function wholeNumbers(flag: string, text: string): number[] {
  return text.split(',').map((part) => wholeNumber(flag, part));
}

const argumentCodes = new Set(['ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE', 'ERR_OUT_OF_RANGE']);

/**
 * An API's argument error (a TypeError or RangeError coded as Node codes them, naming the
 * option: `The value of "maxQueue" is out of range. It must be …`) said as the command
 * line's: a UsageError naming the flag, what it takes and what it got. `flagOf` maps an
 * option name to its flag (`--max-queue`), or to undefined when it has none; `given` is
 * the flag's text on the command line, if any. Anything else is returned as undefined.
 */
export function optionUsageError(
  e: unknown,
  flagOf: (option: string) => string | undefined,
  given: (flag: string) => string | undefined,
): UsageError | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  if (!(e instanceof Error) || typeof code !== 'string' || !argumentCodes.has(code)) return undefined;
  const m =
    /^The value of "([^"]+)" is out of range\. It must be ([^]*)\. Received [^]*$/.exec(e.message) ??
    /^The "([^"]+)" argument must be ([^]*)\. Received [^]*$/.exec(e.message);
  if (m) {
    const flag = flagOf(m[1]!.split(/[.[ ]/)[0]!);
    if (flag === undefined) return undefined;
    const text = given(flag);
    return new UsageError(text === undefined ? `${flag} is required: ${m[2]}` : `${flag} wants ${m[2]}, got '${text}'`);
  }
  // `the 'accept' option is not used by the single model; …`
  const o = /^(?:the )?'(\w+)' option/.exec(e.message);
  const flag = o ? flagOf(o[1]!) : undefined;
  if (o && flag !== undefined) return new UsageError(`${flag}${e.message.slice(o[0].length)}`);
  return undefined;
}
