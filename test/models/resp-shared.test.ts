/**
 * The resp keyspace under every model, where it matters most on the models whose threads or
 * processes share it (multi-process, multi-reactor, the pools): INCRs from many connections
 * at once add up exactly, a large value written from one connection is never read torn
 * from another, and a keyspace that fills mid-pipeline refuses whole commands with -OOM,
 * losing nothing it had and leaving nothing half-written.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelNames, serve, type Server } from '../helpers/rawio.js';
import { exchange, resp, respReplies } from '../helpers/clients.js';

const KiB = 1 << 10;

/** Splits a stream of RESP replies (simple, error, integer, bulk) into each reply's text. */
function replies(buf: Buffer): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < buf.length) {
    const eol = buf.indexOf('\r\n', i);
    if (eol < 0) throw new Error(`a reply cut short at ${i}`);
    if (buf[i] === 0x24 /* $ */) {
      const n = Number(buf.toString('latin1', i + 1, eol));
      const end = n < 0 ? eol + 2 : eol + 2 + n + 2;
      out.push(buf.toString('latin1', i, end));
      i = end;
    } else {
      out.push(buf.toString('latin1', i, eol + 2));
      i = eol + 2;
    }
  }
  return out;
}

/** One connection that sends `send` and reads until `n` replies have arrived. */
const ask = (port: number, send: Buffer, n: number) => exchange(port, respReplies(send, n), 30_000);

/** Opens connections until `count` are open, each its own socket (the models spread them over their workers). */
async function connections(port: number, count: number): Promise<net.Socket[]> {
  return Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const c = net.connect(port, '127.0.0.1', () => resolve(c));
          c.on('error', reject);
        }),
    ),
  );
}

describe.each(modelNames)('resp keyspace on %s', (model) => {
  let s: Server;
  let small: Server;
  beforeAll(async () => {
    [s, small] = await Promise.all([
      serve({ model, protocol: 'resp', workers: 2, pool: 2 }),
      serve({ model, protocol: 'resp', workers: 2, pool: 2, keyspaceSize: 64 * KiB }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([s?.close(), small?.close()]);
  });

  it('INCR, DECR and INCRBY from 16 connections at once add up exactly', async () => {
    const conns = 16;
    const per = 300;
    const one = Buffer.concat([
      ...Array.from({ length: per }, () => resp('INCR', 'sum')),
      ...Array.from({ length: per / 3 }, () => resp('INCRBY', 'sum', '5')),
      ...Array.from({ length: per / 3 }, () => resp('DECR', 'sum')),
    ]);
    const n = per + (2 * per) / 3;
    const got = await Promise.all(Array.from({ length: conns }, () => ask(s.port, one, n)));
    for (const g of got) for (const r of replies(g)) expect(r).toMatch(/^:-?\d+\r\n$/);
    const total = conns * (per + 5 * (per / 3) - per / 3);
    expect((await ask(s.port, resp('GET', 'sum'), 1)).toString()).toBe(`$${String(total).length}\r\n${total}\r\n`);
  });

  it('never reads a large value torn while other connections overwrite it', async () => {
    const size = 256 * KiB;
    const writers = 4;
    const readers = 4;
    const rounds = 8;
    // Each writer's value is one byte repeated, a different byte each: a torn read mixes them.
    const sets = Array.from({ length: writers }, (_, w) =>
      Buffer.concat(Array.from({ length: rounds }, () => resp('SET', 'big', Buffer.alloc(size, 0x61 + w)))),
    );
    await ask(s.port, resp('SET', 'big', Buffer.alloc(size, 0x61)), 1);
    const gets = Buffer.concat(Array.from({ length: rounds }, () => resp('GET', 'big')));
    const [, read] = await Promise.all([
      Promise.all(sets.map((send) => ask(s.port, send, rounds))),
      Promise.all(Array.from({ length: readers }, () => ask(s.port, gets, rounds))),
    ]);
    for (const g of read) {
      const all = replies(g);
      expect(all).toHaveLength(rounds);
      for (const r of all) {
        const head = `$${size}\r\n`;
        expect(r.slice(0, head.length)).toBe(head);
        const body = r.slice(head.length, head.length + size);
        expect(body).toBe(body[0]!.repeat(size)); // one writer's value, whole
      }
    }
  });

  it('refuses whole commands with -OOM once the keyspace fills mid-pipeline, and loses nothing it had', async () => {
    const value = Buffer.alloc(1000, 'v');
    const n = 100; // 100 KB of values: more than the 64 KiB keyspace holds
    const send = Buffer.concat([
      resp('FLUSHALL'),
      ...Array.from({ length: n }, (_, i) => resp('SET', `k${i}`, value)),
      resp('DBSIZE'),
      resp('MSET', 'm1', '1', 'm2', value, 'm3', value), // does not fit: none of it written
      resp('EXISTS', 'm1', 'm2', 'm3'),
      resp('GET', 'k0'),
      resp('PING'),
    ]);
    const got = replies(await ask(small.port, send, n + 6));
    expect(got[0]).toBe('+OK\r\n');
    const sets = got.slice(1, n + 1);
    const ok = sets.filter((r) => r === '+OK\r\n').length;
    expect(ok).toBeGreaterThan(0);
    expect(ok).toBeLessThan(n);
    // The values are alike: once one does not fit, none after it does.
    expect(sets).toEqual([...Array<string>(ok).fill('+OK\r\n'), ...Array<string>(n - ok).fill(sets[n - 1]!)]);
    expect(sets[n - 1]).toMatch(/^-OOM /);
    expect(got.slice(n + 1)).toEqual([
      `:${ok}\r\n`,
      sets[n - 1],
      ':0\r\n',
      `$1000\r\n${'v'.repeat(1000)}\r\n`,
      '+PONG\r\n',
    ]);

    // The keys refused were not written; the keys written are whole; a DEL makes room again.
    const check = Buffer.concat([
      resp('EXISTS', ...Array.from({ length: n }, (_, i) => `k${i}`)),
      resp('GET', `k${ok - 1}`),
      resp('GET', `k${ok}`),
      resp('DEL', 'k0'),
      resp('SET', 'again', value),
      resp('GET', 'again'),
    ]);
    expect(replies(await ask(small.port, check, 6))).toEqual([
      `:${ok}\r\n`,
      `$1000\r\n${'v'.repeat(1000)}\r\n`,
      '$-1\r\n',
      ':1\r\n',
      '+OK\r\n',
      `$1000\r\n${'v'.repeat(1000)}\r\n`,
    ]);
  });

  it('answers a pipeline from many connections at once, each in its own order', async () => {
    // iterative serves one connection at a time, thread-per-connection as many as its cap (2 here).
    const open = model === 'iterative' ? 1 : model === 'thread-per-connection' ? 2 : 12;
    const conns = await connections(s.port, open);
    try {
      const got = await Promise.all(
        conns.map(
          (c, i) =>
            new Promise<string>((resolve) => {
              let text = '';
              const n = 200;
              c.on('data', (d: Buffer) => {
                text += d.toString('latin1');
                if (text.split('\r\n').length - 1 >= 2 * n) resolve(text);
              });
              c.write(Buffer.concat(Array.from({ length: n }, (_, k) => resp('ECHO', `c${i}-${k}`))));
            }),
        ),
      );
      got.forEach((text, i) =>
        expect(text).toBe(Array.from({ length: 200 }, (_, k) => `$${`c${i}-${k}`.length}\r\nc${i}-${k}\r\n`).join('')),
      );
    } finally {
      for (const c of conns) c.destroy();
    }
  });
});
