/**
 * Fairness on the wire, for every model that serves clients at once (called by wire.ts):
 * one client never denies service to another. A client pipelines a deep batch of requests
 * in one write and reads its replies at speed, so that its socket never runs dry and no
 * budget ever pauses it; meanwhile a second client on the same thread does request/response
 * round trips. Each of the second client's requests must be answered within a turn or so of
 * the first's, not once the first's whole batch is done: the check is that the round trips
 * all complete while the first client still waits for replies (progress and order, never a
 * time). One thread serves both (`workers: 1`; thread-per-connection has a thread for each).
 */
import net from 'node:net';
import { expect, it } from 'vitest';
import type { ModelName, ServeOptions, Server } from '../helpers/rawio.js';
import { resp } from '../helpers/clients.js';
import { eventually } from '../helpers/wait.js';

type Start = (protocol: ServeOptions['protocol'], opts?: Partial<ServeOptions>) => Promise<Server>;

const STALL_MS = 60_000;

export function defineFairnessTests(model: ModelName, start: Start): void {
  if (model === 'iterative') return; // one client at a time: its flaw (suite.ts)

  it(
    'serves a client doing round trips while another pipelines a deep batch it reads at speed (resp)',
    async () => {
      const s = await start('resp', { workers: model === 'thread-per-connection' ? 2 : 1 });
      // 600 000 PINGs, 8.4 MB in one write: a reactor reads it 64 KiB (4681 requests) a turn.
      const n = 600_000;
      const pong = '+PONG\r\n'.length;
      let got = 0;
      const hog = net.connect(s.port, '127.0.0.1', () =>
        hog.write(Buffer.concat(Array.from({ length: n }, () => resp('PING')))),
      );
      hog.on('error', () => undefined);
      hog.on('data', (d: Buffer) => (got += d.length));
      const other = net.connect(s.port, '127.0.0.1');
      other.on('error', () => undefined);
      try {
        await new Promise((r) => other.once('connect', r));
        // The hog is being served: its replies have begun to arrive.
        expect(await eventually(() => got >= 1000 * pong, STALL_MS)).toBe(true);
        const trips = 10;
        let answered = 0;
        for (let i = 0; i < trips; i++) {
          const reply = new Promise<string>((r) => other.once('data', (d: Buffer) => r(d.toString())));
          other.write(resp('PING'));
          if ((await reply) === '+PONG\r\n') answered++;
        }
        const hogGot = got;
        expect(answered).toBe(trips);
        // Every round trip came back while the hog still had replies owed...
        expect(hogGot).toBeLessThan(n * pong);
        // ...and the hog is served to its end.
        expect(await eventually(() => got === n * pong, STALL_MS)).toBe(true);
      } finally {
        hog.destroy();
        other.destroy();
      }
    },
    2 * STALL_MS,
  );
}
