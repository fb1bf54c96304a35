/**
 * The `static` protocol's wire, model by model and transfer method by transfer method (the
 * proactor models' rings, which take no method, once each): every model × method answers the same pipelined batch — GET and HEAD, whole and with ranges
 * (single, suffix, open-ended, unsatisfiable, invalid, multiple) — of files sized at the
 * edges that matter (empty, 1 byte, 4 KiB page ± 1, `direct`'s 256 KiB chunk + 1, the
 * `directio` threshold ± 1) and ranges of a sparse file past 4 GiB (offsets past 32 bits),
 * with the same status lines and headers (Date aside) and bodies equal to the file's bytes:
 * HEAD carries no body, and no reply lands inside another's body.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange } from '../helpers/clients.js';
import { modelNames, serve, transferMethodNames, type ModelName, type TransferMethodName } from '../helpers/rawio.js';

const KiB = 1 << 10;
const DIRECTIO = 300 * KiB + 1; // 'auto' sends from here on with `direct`
const SIZES = [0, 1, 4 * KiB - 1, 4 * KiB, 4 * KiB + 1, 256 * KiB + 1, DIRECTIO - 1, DIRECTIO, DIRECTIO + 1];
const G4 = 2 ** 32;
const SPARSE = G4 + 3 * (1 << 20) + 7;
/** Where the sparse file's written bytes start: the ranges below read inside them. */
const WRITTEN = G4 - (1 << 20) - 3;

interface Ask {
  method: 'GET' | 'HEAD';
  path: string;
  range?: string;
}

function asks(): Ask[] {
  const out: Ask[] = [];
  for (const n of SIZES) {
    const path = `/f${n}.bin`;
    const ranges = [undefined, 'bytes=0-0', `bytes=${n - 1}-`, 'bytes=-1', 'bytes=4095-4097', `bytes=-${n + 5}`];
    for (const range of [...ranges, 'bytes=3-2', 'bytes=0-1,3-4', `bytes=${n}-`, 'bytes=-0', 'lines=1-2'])
      for (const method of ['GET', 'HEAD'] as const) out.push({ method, path, range });
  }
  for (const range of [
    `bytes=${G4 - 5}-${G4 + 5}`,
    `bytes=${G4 + 1}-${G4 + 300 * KiB}`,
    'bytes=-10',
    `bytes=${SPARSE}-`,
  ])
    for (const method of ['GET', 'HEAD'] as const) out.push({ method, path: '/sparse.bin', range });
  out.push({ method: 'HEAD', path: '/sparse.bin' });
  return out;
}

interface Answer {
  head: string;
  body: Buffer;
}

/** Splits `raw` into the answers to `sent` (HEAD answers have no body whatever their Content-Length). */
function answers(raw: Buffer, sent: Ask[]): Answer[] | undefined {
  const out: Answer[] = [];
  let at = 0;
  for (const ask of sent) {
    const end = raw.indexOf('\r\n\r\n', at);
    if (end < 0) return undefined;
    const head = raw.toString('latin1', at, end);
    const len = ask.method === 'HEAD' ? 0 : Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
    if (raw.length < end + 4 + len) return undefined;
    out.push({ head, body: raw.subarray(end + 4, end + 4 + len) });
    at = end + 4 + len;
  }
  return at === raw.length ? out : undefined;
}

describe('static: the same wire on every model and transfer method', () => {
  let root: string;
  const files = new Map<string, (from: number, to: number) => Buffer>();
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'rawio-static-table-'));
    for (const n of SIZES) {
      const bytes = randomBytes(n);
      writeFileSync(join(root, `f${n}.bin`), bytes);
      files.set(`/f${n}.bin`, (from, to) => bytes.subarray(from, to + 1));
    }
    // Sparse: only the bytes around 4 GiB are written (a few MiB of disk).
    const written = randomBytes(SPARSE - WRITTEN);
    const fd = openSync(join(root, 'sparse.bin'), 'w');
    try {
      ftruncateSync(fd, SPARSE);
      writeSync(fd, written, 0, written.length, WRITTEN);
    } finally {
      closeSync(fd);
    }
    files.set('/sparse.bin', (from, to) => written.subarray(from - WRITTEN, to - WRITTEN + 1));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const sent = asks();
  const request = Buffer.from(
    sent
      .map((a) => `${a.method} ${a.path} HTTP/1.1\r\nHost: x\r\n${a.range ? `Range: ${a.range}\r\n` : ''}\r\n`)
      .join(''),
  );
  /** The first model × method's heads (Date blanked), which every other must repeat. */
  let reference: string[] | undefined;

  // proactor and multi-proactor send every body with their ring (no transfer method): once each.
  const ringModels: readonly string[] = ['proactor', 'multi-proactor'];
  const pairs: [ModelName, TransferMethodName | 'its ring'][] = [];
  for (const model of modelNames) {
    if (ringModels.includes(model)) pairs.push([model, 'its ring']);
    else for (const transfer of transferMethodNames) pairs.push([model, transfer]);
  }

  it.each(pairs)(
    '%s × %s',
    async (model, transfer) => {
      const how = transfer === 'its ring' ? {} : { transfer, directio: DIRECTIO };
      const s = await serve({ model, protocol: 'static', root, workers: 2, pool: 2, ...how });
      let got: Answer[] | undefined;
      try {
        const raw = await exchange(s.port, { send: request, complete: (b) => answers(b, sent) !== undefined });
        got = answers(raw, sent);
      } finally {
        await s.close();
      }
      expect(got).toBeDefined();
      const heads = got!.map((a) => a.head.replace(/\r\nDate: [^\r]*/, '\r\nDate: -'));
      got!.forEach((a, i) => {
        const ask = sent[i]!;
        const status = Number(a.head.split(' ')[1]);
        const length = Number(/\r\nContent-Length: (\d+)/.exec(a.head)?.[1]);
        const range = /\r\nContent-Range: bytes (\d+)-(\d+)\/(\d+)/.exec(a.head);
        if (status === 206) {
          const [from, to] = [Number(range![1]), Number(range![2])];
          expect(length, `${ask.path} ${ask.range}`).toBe(to - from + 1);
          if (ask.method === 'GET')
            expect(a.body.equals(files.get(ask.path)!(from, to)), `${ask.path} ${ask.range}`).toBe(true);
        } else if (status === 200) {
          expect(range).toBeNull();
          const whole = ask.path === '/sparse.bin' ? SPARSE : Number(ask.path.slice(2, -4));
          expect(length).toBe(whole);
          if (ask.method === 'GET') expect(a.body.equals(files.get(ask.path)!(0, whole - 1))).toBe(true);
        } else {
          expect(status, `${ask.path} ${ask.range}`).toBe(416);
        }
        if (ask.method === 'HEAD') expect(a.body.length).toBe(0);
      });
      reference ??= heads;
      expect(heads).toEqual(reference);
    },
    60_000,
  );
});
