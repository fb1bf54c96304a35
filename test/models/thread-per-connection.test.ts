import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { serve } from '../helpers/rawio.js';
import { eventually } from '../helpers/wait.js';
import { defineModelSuite } from './suite.js';
import { defineUserCodeSuite } from './usercode-suite.js';

defineModelSuite('thread-per-connection', { workers: 32 });
defineUserCodeSuite('thread-per-connection');

describe('thread-per-connection × a create() that fails in a connection thread', () => {
  it('closes that client, counts the error and serves the next one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rawio-tpc-create-'));
    const flag = join(dir, 'refuse');
    const module = new URL('../fixtures/user/create-fails-later.mjs', import.meta.url);
    const server = await serve({ model: 'thread-per-connection', workers: 4, protocol: { module, options: { flag } } });
    const held: net.Socket[] = [];
    /** A client that stays connected: what it got, and whether the server closed it. */
    const client = (line: string) => {
      const sock = net.connect(server.port, '127.0.0.1', () => sock.write(`${line}\n`));
      held.push(sock);
      const st = { got: '', closed: false };
      sock.on('data', (d: Buffer) => (st.got += d.toString()));
      sock.on('close', () => (st.closed = true));
      sock.on('error', () => undefined);
      return st;
    };
    try {
      // A connection kept open holds its thread: the next client needs a thread of its own.
      const first = client('ECHO first');
      expect(await eventually(() => first.got === 'first\n')).toBe(true);
      writeFileSync(flag, '');
      const errorsBefore = server.stats().errors;
      const refused = client('ECHO never');
      expect(await eventually(() => refused.closed)).toBe(true);
      expect(refused.got).toBe('');
      expect(await eventually(() => server.stats().errors > errorsBefore)).toBe(true);
      expect(server.stats().errors - errorsBefore).toBe(1);
      rmSync(flag);
      const next = client('ECHO next');
      expect(await eventually(() => next.got === 'next\n')).toBe(true);
      expect(first.closed).toBe(false);
    } finally {
      for (const s of held) s.destroy();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
