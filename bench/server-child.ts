/**
 * The child side of bench/server.ts: pins this process's main thread to the given CPUs
 * (sched_setaffinity through sys.setAffinity), imports the server module, starts it, and
 * answers the parent's 'stats' and 'close' messages over the IPC channel.
 * argv: module, export name, options (JSON), cpus ("0,1").
 */
import { setAffinity } from '../src/sys/process.js';
import type { ChildMessage, StartFunction } from './server.js';

async function main(): Promise<void> {
  const [mod, name, json, cpuList] = process.argv.slice(2);
  const send = (m: ChildMessage) => process.send?.(m);
  try {
    const cpus = (cpuList ?? '').split(',').filter(Boolean).map(Number);
    if (cpus.length > 0) setAffinity(cpus);
    const start = (await import(mod!))[name!] as StartFunction;
    const server = await start(JSON.parse(json ?? '{}') as Record<string, unknown>);
    process.on('message', async (m: { type: string }) => {
      if (m.type === 'stats') send({ type: 'stats', stats: server.stats?.() ?? {} });
      if (m.type === 'close') {
        await server.close();
        process.disconnect();
        process.exit(0);
      }
    });
    process.on('disconnect', () => process.exit(0)); // the parent died: do not linger
    send({ type: 'ready', port: server.port });
  } catch (e) {
    send({ type: 'error', message: e instanceof Error ? e.message : String(e) });
    process.exit(1);
  }
}

await main();
