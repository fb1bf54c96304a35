/**
 * The checks of loadgen()'s options that need no addon: each number's range as the engine
 * holds it, the protocol, command and path, said with the option's name and what it takes
 * (the engine checks them again, tersely). `rawio loadgen` runs them before it connects,
 * so a bad flag is said as the flag's mistake, not found after a connection attempt.
 */
import * as v from '../sys/validate.js';
import type { LoadgenOptions } from './index.js';

/** The engine's longest window (and warm-up), in ms. */
export const MAX_MS = 3_600_000;

const MIB16 = 16 << 20;

/**
 * The numbers' ranges, as the engine holds them, checked here to be said with the option's
 * name and range (the engine checks them again, tersely). `requests: 0` would be no count
 * at all and a run of the engine's longest window, so a count starts at 1.
 */
const ranges: [keyof LoadgenOptions, number, number][] = [
  ['port', 1, 65535],
  ['connections', 1, 100_000],
  ['threads', 1, 64],
  ['pipeline', 1, 1024],
  ['requests', 1, 2 ** 50],
  ['warmupMs', 0, MAX_MS],
  ['durationMs', 1, MAX_MS],
  ['drainMs', 0, 60_000],
  ['stallMs', 1, MAX_MS],
  ['payloadSize', 1, MIB16],
  ['replySize', 0, MIB16],
  ['keyspace', 1, 2 ** 30],
  ['valueSize', 0, MIB16],
];

const protocols: readonly string[] = ['http', 'echo', 'resp', 'raw'];
const commands: readonly string[] = ['ping', 'set', 'get', 'setget'];
const quoted = (names: readonly string[]) => `one of ${names.map((n) => `'${n}'`).join(', ')}`;

export function checkLoadgenOptions(o: LoadgenOptions): void {
  if (typeof o.protocol === 'string' && !protocols.includes(o.protocol))
    throw v.rangeError('protocol', quoted(protocols), `'${o.protocol}'`);
  if (typeof o.command === 'string' && !commands.includes(o.command))
    throw v.rangeError('command', `${quoted(commands)} or a mix such as { get: 9, set: 1 }`, `'${o.command}'`);
  if (typeof o.path === 'string' && !/^\/[^\r\n ]*$/.test(o.path))
    throw v.rangeError('path', 'a path that starts with / and holds no spaces or line breaks', `'${o.path}'`);
  for (const [name, min, max] of ranges) if (o[name] !== undefined) v.int(name, o[name], min, max);
  if (o.rate !== undefined && v.num('rate', o.rate, 0, 1e9) !== 0 && o.rate < 0.01)
    throw v.rangeError('rate', '0 (closed loop) or >= 0.01 and <= 1e9', o.rate);
}
