/**
 * The one argument parser behind every `rawio` subcommand (`serve`, `probe`, `bench`):
 * `node:util` parseArgs in strict mode, so an unknown or misspelt flag is an error that
 * names the flags the command knows, and a value-taking flag given without a value says
 * so. `wholeNumber` turns a flag's text into an integer or says the flag wants one
 * ("--workers abc" must not become NaN further down).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Flags = NonNullable<ParseArgsConfig['options']>;

/** A command-line mistake: the message is meant for the user, the usage follows it. */
export class UsageError extends Error {
  readonly code = 'ERR_RAWIO_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

function flagList(flags: Flags): string {
  return Object.entries(flags)
    .map(([name, f]) => `--${name}${f.type === 'string' ? ' VALUE' : ''}`)
    .join(', ');
}

/**
 * Parses `argv` for `command` against `flags` (plus `--help`); no positionals. Throws a
 * UsageError naming the known flags for an unknown one, or saying which flag lacks its value.
 */
export function parseFlags<F extends Flags>(
  command: string,
  argv: readonly string[],
  flags: F,
): { values: { [K in keyof F]?: F[K]['type'] extends 'boolean' ? boolean : string } & { help?: boolean } } {
  const options = { ...flags, help: { type: 'boolean', short: 'h' } } as Flags;
  try {
    const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
    return { values } as never;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const arg = argv.find((a) => !isKnown(a, options)) ?? '';
      throw new UsageError(`${command}: unknown option '${arg}'; known: ${flagList(options)}`);
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const message = (e as Error).message;
      const flag = /'(--?[\w-]+)/.exec(message)?.[1] ?? '';
      throw new UsageError(`${command}: ${flag} ${/missing/.test(message) ? 'needs a value' : 'takes no value'}`);
    }
    throw e;
  }
}

function isKnown(arg: string, options: Flags): boolean {
  if (!arg.startsWith('-')) return true; // a value
  const name = arg.replace(/^--?/, '').split('=')[0]!;
  return Object.hasOwn(options, name) || Object.values(options).some((o) => o.short === name);
}

/** `text` as an integer: a UsageError saying `--flag` wants a whole number otherwise. */
export function wholeNumber(flag: string, text: string): number {
  if (!/^[+-]?\d+$/.test(text.trim())) {
    throw new UsageError(`--${flag} wants a whole number, got '${text}'`);
  }
  return Number(text);
}

/** A comma-separated list of whole numbers (`--cpus 0,1`). */
export function wholeNumbers(flag: string, text: string): number[] {
  return text.split(',').map((part) => wholeNumber(flag, part));
}
