/**
 * Ring under random mixes of operations (io_uring(7)): fast-check draws sequences of nop,
 * read / write on a blocking pipe and on a file, timeouts, batch ops with cancels of their user
 * data, AbortSignal aborts, event-loop turns and closes of the ring. Every promise must settle
 * exactly once and within a bounded time, with a result its operation allows; every batch op
 * completes at most once (exactly once when the case drains before closing); the pipe never
 * yields more bytes than were written into it; and no fd outlives the case.
 * More runs: RAWIO_RING_RUNS (default 100).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Ring, sys, constants as c } from './helpers/rawio.js';
import { titled, why } from './helpers/skips.js';
import { leakedSince, openFds } from './helpers/fds.js';
import { pattern, scratchFile } from './helpers/uring.js';

const RUNS = Number(process.env.RAWIO_RING_RUNS ?? 100);
const CASE_MS = 5000; // a case whose promises have not all settled by then has hung

type Op =
  | { k: 'nop' | 'tick' | 'close' }
  | { k: 'pipeRead' | 'pipeWrite' | 'fileRead' | 'fileWrite'; len: number; abortAfter?: number }
  | { k: 'timeout'; ms: number; abortAfter?: number }
  | { k: 'batch'; ms: number }
  | { k: 'cancel'; back: number };

const len = fc.integer({ min: 1, max: 256 });
const abortAfter = fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.constantFrom<Op>({ k: 'nop' }, { k: 'tick' }), weight: 3 },
  { arbitrary: fc.constant<Op>({ k: 'close' }), weight: 1 },
  {
    arbitrary: fc.record({ k: fc.constantFrom('pipeRead', 'pipeWrite', 'fileRead', 'fileWrite'), len, abortAfter }),
    weight: 6,
  },
  {
    arbitrary: fc.record({ k: fc.constant('timeout' as const), ms: fc.integer({ min: 0, max: 30 }), abortAfter }),
    weight: 2,
  },
  { arbitrary: fc.record({ k: fc.constant('batch' as const), ms: fc.integer({ min: 0, max: 30 }) }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant('cancel' as const), back: fc.integer({ min: 0, max: 3 }) }), weight: 2 },
);
const caseArb = fc.record({ ops: fc.array(opArb, { minLength: 1, maxLength: 40, size: 'max' }), drain: fc.boolean() });

interface Tracked {
  kind: string;
  settled: number;
  value?: number;
  error?: Error & { code?: string };
  len: number;
}

const tick = () => new Promise<void>((r) => setImmediate(r));

describe.skipIf(why.ring)(titled('Ring random operations', why.ring), () => {
  const scratch = scratchFile(pattern(4096, 3), 'f');

  it(`every promise settles exactly once, nothing hangs, nothing leaks (${RUNS} runs)`, async () => {
    const before = openFds();
    let promises = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ ops, drain }) => {
        const batchDone = new Map<number, number>();
        const ring = new Ring({ entries: 8, onCompletion: (ud) => batchDone.set(ud, (batchDone.get(ud) ?? 0) + 1) });
        const [r, w] = sys.pipe({ blocking: true });
        const fd = sys.open(scratch.path, c.O_RDWR);
        const tracked: Tracked[] = [];
        const aborts: { ctl: AbortController; after: number }[] = [];
        const batchUds: number[] = [];
        let closed = false;
        const written = 0;
        let pipeReadLen = 0;
        const track = (kind: string, l: number, p: () => Promise<number>) => {
          const t: Tracked = { kind, settled: 0, len: l };
          tracked.push(t);
          let pr: Promise<number>;
          try {
            pr = p();
          } catch (e) {
            pr = Promise.reject(e as Error);
          }
          void pr.then(
            (v) => {
              t.settled++;
              t.value = v;
            },
            (e: Error) => {
              t.settled++;
              t.error = e;
            },
          );
        };
        const signal = (after?: number) => {
          if (after === undefined) return undefined;
          const ctl = new AbortController();
          aborts.push({ ctl, after });
          return { signal: ctl.signal };
        };
        try {
          for (const op of ops) {
            for (const a of aborts) if (a.after-- === 0) a.ctl.abort();
            switch (op.k) {
              case 'nop':
                track('nop', 0, () => ring.nop());
                break;
              case 'tick':
                await tick();
                break;
              case 'close':
                ring.close();
                closed = true;
                break;
              case 'pipeRead':
                pipeReadLen += op.len;
                track(op.k, op.len, () => ring.read(r, Buffer.alloc(op.len), -1, op.len, signal(op.abortAfter)));
                break;
              case 'pipeWrite':
                track(op.k, op.len, () => ring.write(w, Buffer.alloc(op.len, 1), -1, op.len, signal(op.abortAfter)));
                break;
              case 'fileRead':
                track(op.k, op.len, () => ring.read(fd, Buffer.alloc(op.len), 0, op.len, signal(op.abortAfter)));
                break;
              case 'fileWrite':
                track(op.k, op.len, () => ring.write(fd, Buffer.alloc(op.len, 2), 8, op.len, signal(op.abortAfter)));
                break;
              case 'timeout':
                track('timeout', 0, () => ring.timeout(op.ms, signal(op.abortAfter)));
                break;
              case 'batch': {
                if (closed) break;
                const ud = batchUds.length + 1;
                if (ring.prepTimeout(op.ms, ud)) batchUds.push(ud);
                break;
              }
              case 'cancel': {
                const ud = batchUds[batchUds.length - 1 - op.back] ?? 1;
                track('cancel', 0, () => ring.cancel(ud));
                break;
              }
            }
          }
          if (drain && !closed) {
            ring.submit();
            // Feed the pipe reads that are still waiting, then let everything complete.
            const need = Math.max(0, pipeReadLen - written);
            if (need > 0) expect(sys.write(w, Buffer.alloc(need, 3))).toBe(need);
            const end = Date.now() + CASE_MS;
            while ((ring.inflight > 0 || tracked.some((t) => t.settled === 0)) && Date.now() < end) await tick();
            expect(ring.inflight).toBe(0);
          }
          ring.close();
          const end = Date.now() + CASE_MS;
          while (tracked.some((t) => t.settled === 0) && Date.now() < end) await tick();
          await tick(); // a late second settlement would show here
        } finally {
          ring.close();
          sys.close(r);
          sys.close(w);
          sys.close(fd);
        }
        promises += tracked.length;
        let pipeBytesIn = 0;
        let pipeBytesOut = 0;
        for (const t of tracked) {
          expect(t.settled, `${t.kind} settled`).toBe(1);
          if (t.error !== undefined) {
            // Aborted, cancelled by close, refused after close, or a cancel that found nothing to cancel.
            const ok = ['ABORT_ERR', 'ECANCELED', 'EBADF', ...(t.kind === 'cancel' ? ['ENOENT', 'EALREADY'] : [])];
            expect(ok, `${t.kind}: ${t.error.message}`).toContain(t.error.code);
            continue;
          }
          if (t.kind === 'pipeRead') pipeBytesOut += t.value!;
          if (t.kind === 'pipeWrite') pipeBytesIn += t.value!;
          if (t.kind.startsWith('file') || t.kind === 'pipeWrite') expect(t.value).toBe(t.len);
          else if (t.kind === 'pipeRead') expect(t.value).toBeGreaterThan(0);
          else expect(t.value).toBe(0);
          expect(t.value!).toBeLessThanOrEqual(t.len);
        }
        expect(pipeBytesOut).toBeLessThanOrEqual(pipeBytesIn + Math.max(0, pipeReadLen - written));
        for (const ud of batchUds) {
          expect(batchDone.get(ud) ?? 0, `batch ${ud}`).toBeLessThanOrEqual(1);
          if (drain && !closed) expect(batchDone.get(ud), `batch ${ud} drained`).toBe(1);
        }
      }),
      { numRuns: RUNS },
    );
    expect(promises).toBeGreaterThan(RUNS);
    expect(leakedSince(before)).toEqual([]);
  }, 60_000);
});
