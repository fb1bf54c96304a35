/**
 * serve()'s `mmap` option on every model that sends file bodies with a transfer method (not
 * proactor and multi-proactor, whose rings send them): bad values refused before anything starts; with
 * `transfer: 'mmap'` and each option set, static files arrive byte-exact (again from a
 * reused mapping), and a file truncated while the client has stopped reading ends its
 * response short — the connection closed, the short body counted — while the server lives
 * on and serves the file as it now is.
 */
import { randomBytes, createHash } from 'node:crypto';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange, type Exchange } from '../helpers/clients.js';
import {
  modelNames,
  resolveServeOptions,
  serve,
  type MmapTransferOptions,
  type ServeOptions,
} from '../helpers/rawio.js';

const MiB = 1 << 20;
let root: string;
const small = randomBytes(300_000);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'rawio-mmap-serve-'));
  writeFileSync(join(root, 'small.bin'), small);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The body of each response in `raw` (Content-Length framed). */
function bodies(raw: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < raw.length) {
    const end = raw.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const len = Number(/content-length: (\d+)/i.exec(raw.subarray(at, end).toString('latin1'))![1]);
    out.push(raw.subarray(end + 4, end + 4 + len));
    at = end + 4 + len;
  }
  return out;
}

/** GETs of `paths`, complete when every response's body has arrived. */
function gets(paths: string[]): Exchange {
  return {
    send: Buffer.from(paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`).join('')),
    complete: (got) => {
      const b = bodies(got);
      return b.length === paths.length && b.every((x, i) => i < b.length - 1 || x.length === lengthOf(got, i));
    },
  };
}

/** The Content-Length of the i-th response in `raw`. */
function lengthOf(raw: Buffer, i: number): number {
  const heads = raw.toString('latin1').match(/content-length: (\d+)/gi) ?? [];
  return Number(heads[i]?.split(': ')[1]);
}

/** GETs /shrink.bin, stops reading after 1 MiB, truncates the file, then reads to the end. */
async function shrinkMidSend(port: number, path: string, size: number): Promise<{ got: number; closed: boolean }> {
  const sock = net.connect(port, '127.0.0.1');
  let got = 0;
  let closed = false;
  let paused = false;
  sock.on('error', () => undefined); // ECONNRESET after the server closed: expected
  sock.on('close', () => (closed = true));
  const past = new Promise<void>((resolve) =>
    sock.on('data', (d: Buffer) => {
      got += d.length;
      if (got > MiB && !paused) {
        paused = true;
        sock.pause();
        resolve();
      }
    }),
  );
  sock.write('GET /shrink.bin HTTP/1.1\r\nHost: x\r\n\r\n');
  await past;
  await delay(50); // the server meets a full socket
  truncateSync(path, 64 << 10);
  sock.resume();
  for (let i = 0; i < 500 && !closed; i++) await delay(20);
  sock.destroy();
  expect(got).toBeLessThan(size);
  return { got, closed };
}

const OPTIONS: MmapTransferOptions[] = [
  { populate: true },
  { reuse: true },
  { reuse: true, populate: true, advice: 'sequential' },
];

describe('serve() mmap option', () => {
  it('refuses bad values before anything starts', () => {
    const base: ServeOptions = { model: 'single', protocol: 'static', root, transfer: 'mmap' };
    for (const [mmap, E] of [
      [{ populate: 'yes' }, TypeError],
      [{ reuse: 1 }, TypeError],
      [{ advice: 'free' }, RangeError],
      [{ nope: true }, TypeError],
      [null, TypeError],
    ] as [unknown, ErrorConstructor][])
      expect(() => resolveServeOptions({ ...base, mmap: mmap as MmapTransferOptions })).toThrow(E);
    expect(resolveServeOptions(base).mmap).toEqual({});
    expect(resolveServeOptions({ ...base, mmap: { reuse: true } }).mmap).toEqual({ reuse: true });
  });
});

// proactor and multi-proactor send file bodies with their ring, whatever `transfer` says
// (static-table.test.ts covers their bodies).
const mmapModels = modelNames.filter((m) => m !== 'proactor' && m !== 'multi-proactor');

describe.each(mmapModels)('%s serving files by mmap', (model) => {
  it.each(OPTIONS)('with %j: byte-exact, and a file shrinking mid-send ends that response only', async (mmap) => {
    const size = 32 * MiB;
    const path = join(root, 'shrink.bin');
    const big = Buffer.alloc(size, 97);
    writeFileSync(path, big);
    const s = await serve({ model, protocol: 'static', root, workers: 2, transfer: 'mmap', mmap });
    try {
      const raw = await exchange(s.port, gets(['/small.bin', '/small.bin', '/small.bin']));
      const got = bodies(raw);
      expect(got.map(sha)).toEqual([sha(small), sha(small), sha(small)]);
      const r = await shrinkMidSend(s.port, path, size);
      expect(r.closed).toBe(true);
      for (let i = 0; i < 100 && s.stats().shortBodies < 1; i++) await delay(20);
      expect(s.stats().shortBodies).toBeGreaterThanOrEqual(1);
      const after = bodies(await exchange(s.port, gets(['/shrink.bin'])));
      expect(after.map(sha)).toEqual([sha(big.subarray(0, 64 << 10))]);
    } finally {
      await s.close();
    }
  });
});
