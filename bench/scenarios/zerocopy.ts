/**
 * zerocopy: in-memory messages of 4 KiB to 4 MiB sent over loopback to a reader process
 * (bench/lib/tcp-sink.ts) three ways — plain send(2), send(2) with MSG_ZEROCOPY (through
 * sendBuffer) and io_uring's IORING_OP_SEND_ZC (Ring.sendZc) — each message waited for until
 * the kernel is done with its buffer, as a server that reuses the buffer must. Variants run
 * interleaved (A B C A B C …) and the table gives medians of throughput and of the sending
 * (server) process's CPU seconds per GiB (getrusage), with the kernel's own verdict beside:
 * how many zero-copy sends it reported as copied after all (SO_EE_CODE_ZEROCOPY_COPIED,
 * IORING_NOTIF_USAGE_ZC_COPIED). On loopback it copies every one — the receiver would
 * otherwise hold the sender's pages — so zero copy there only adds pinning and completion
 * waits, and the report says so instead of claiming a win. Only a real NIC with
 * scatter-gather lets the pages go out uncopied.
 */
import { Ring, sendBuffer } from '../../src/index.js';
import { SEND_ZC_REPORTS_USAGE } from '../../src/sys/uring.js';
import { measure, round, sizeLabel, summarize, type Sample } from '../lib/measure.js';
import { Sink } from '../lib/sink-client.js';
import type { BenchContext, Chart, Scenario, ScenarioResult, Table } from '../scenario.js';

const SIZES = [4 << 10, 64 << 10, 1 << 20, 4 << 20];
type Variant = 'send' | 'MSG_ZEROCOPY' | 'SEND_ZC';

interface Cell {
  size: number;
  variant: Variant;
  bytes: number;
  samples: Sample[];
  /** Zero-copy sends the kernel reported done, and of those the ones it copied. */
  zcSends: number;
  copied: number;
}

/** One message: resolves once the kernel no longer needs `msg`. */
type SendOne = (fd: number, msg: Buffer) => Promise<{ zcSends: number; copied: number }>;

function senders(ring: Ring | undefined): Partial<Record<Variant, SendOne>> {
  const out: Partial<Record<Variant, SendOne>> = {
    send: async (fd, msg) => (await sendBuffer(fd, msg), { zcSends: 0, copied: 0 }),
    MSG_ZEROCOPY: async (fd, msg) => {
      const r = await sendBuffer(fd, msg, { zerocopy: true });
      return { zcSends: r.zerocopySends, copied: r.copied };
    },
  };
  if (ring !== undefined)
    out.SEND_ZC = async (fd, msg) => {
      const r = await ring.sendZc(fd, msg);
      return { zcSends: r.sends, copied: r.copied };
    };
  return out;
}

async function oneRound(sink: Sink, send: SendOne, msg: Buffer, cell: Cell, keep: boolean): Promise<void> {
  const count = cell.bytes / cell.size;
  let got = 0;
  let zc = { zcSends: 0, copied: 0 };
  const sample = await measure(async () => {
    got = await sink.send(async (sock) => {
      for (let i = 0; i < count; i++) {
        const r = await send(sock, msg);
        zc = { zcSends: zc.zcSends + r.zcSends, copied: zc.copied + r.copied };
      }
    });
  });
  if (got !== cell.bytes) throw new Error(`${cell.variant}: sink read ${got} of ${cell.bytes} bytes`);
  if (!keep) return;
  cell.samples.push(sample);
  cell.zcSends += zc.zcSends;
  cell.copied += zc.copied;
}

function verdict(c: Cell): string {
  if (c.variant === 'send') return 'copies (plain send)';
  if (c.variant === 'SEND_ZC' && !SEND_ZC_REPORTS_USAGE) return 'not reported (IORING_SEND_ZC_REPORT_USAGE is 6.2+)';
  if (c.zcSends === 0) return 'no completions';
  const pct = Math.round((100 * c.copied) / c.zcSends);
  return `${pct}% of ${c.zcSends} sends copied`;
}

function table(cells: Cell[]): Table {
  const rows: (string | number)[][] = [];
  for (const size of SIZES) {
    const plain = cells.find((x) => x.size === size && x.variant === 'send')!;
    const b = summarize(plain.samples, plain.bytes);
    for (const c of cells.filter((x) => x.size === size)) {
      const s = summarize(c.samples, c.bytes);
      rows.push([
        sizeLabel(size),
        c.variant,
        round(s.mbps, 0),
        round(s.mbps / b.mbps),
        round(s.cpuPerGiB, 3),
        verdict(c),
      ]);
    }
  }
  const reported = cells.filter((c) => c.variant === 'MSG_ZEROCOPY' || SEND_ZC_REPORTS_USAGE);
  const copiedAll = reported.every((c) => c.variant === 'send' || (c.zcSends > 0 && c.copied === c.zcSends));
  return {
    title: 'Zero-copy send against plain send, loopback',
    columns: ['message', 'variant', 'MB/s', 'x send', 'server CPU s/GiB', "kernel's verdict"],
    rows,
    note:
      'Medians of interleaved rounds; each round sends one buffer again and again over one connection to a ' +
      'reader process, waiting after each message until the kernel is done with the buffer. CPU is the ' +
      "sending process's (getrusage). The verdict is the kernel's own: SO_EE_CODE_ZEROCOPY_COPIED on the error " +
      'queue (MSG_ZEROCOPY), IORING_NOTIF_USAGE_ZC_COPIED in the notification (SEND_ZC). ' +
      (copiedAll
        ? 'Here the kernel copied every zero-copy send: loopback hands the data to a local receiver, which must ' +
          "not keep the sender's pages, so there is no zero-copy win to claim on this path — only the cost of " +
          'pinning pages and waiting for completions. A NIC with scatter-gather is where zero copy can pay.'
        : 'The kernel did not copy every zero-copy send: the figures compare real zero copy with a copy.'),
  };
}

function chart(cells: Cell[]): Chart {
  const variants = [...new Set(cells.map((c) => c.variant))];
  return {
    title: 'Zero-copy send against plain send (loopback)',
    xLabel: 'message size (bytes)',
    yLabel: 'MB/s',
    logX: true,
    series: variants.map((v) => ({
      name: v,
      points: cells
        .filter((c) => c.variant === v)
        .map((c) => [c.size, round(summarize(c.samples, c.bytes).mbps, 0)] as [number, number]),
    })),
  };
}

/** 'zerocopy.<variant>.<size>.MBps', '….cpuPerGiB' and '….copiedFraction' (e.g. zerocopy.SEND_ZC.1MiB.MBps). */
function metricsOf(cells: Cell[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const c of cells) {
    const key = `zerocopy.${c.variant}.${sizeLabel(c.size).replace(' ', '')}`;
    const s = summarize(c.samples, c.bytes);
    m[`${key}.MBps`] = s.mbps;
    m[`${key}.cpuPerGiB`] = s.cpuPerGiB;
    const reports = c.variant === 'MSG_ZEROCOPY' || (c.variant === 'SEND_ZC' && SEND_ZC_REPORTS_USAGE);
    if (reports && c.zcSends > 0) m[`${key}.copiedFraction`] = c.copied / c.zcSends;
  }
  return m;
}

export const zerocopy: Scenario = {
  name: 'zerocopy',
  title: 'Zero-copy send: MSG_ZEROCOPY and SEND_ZC against send',
  description:
    'Sends in-memory messages of 4 KiB to 4 MiB over loopback with plain send, MSG_ZEROCOPY and io_uring ' +
    "SEND_ZC, interleaved, and reports throughput, the server's CPU per GiB and the kernel's own verdict on " +
    'whether it copied after all (on loopback it does).',
  estimate: { quick: 5, full: 60 },
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const reps = ctx.profile === 'full' ? 7 : 3;
    const perRound = ctx.profile === 'full' ? 64 << 20 : 4 << 20;
    const ring = Ring.supported() && Ring.probe().opcodes.includes('SEND_ZC') ? new Ring() : undefined;
    if (ring === undefined) ctx.log('SEND_ZC not measured: io_uring or IORING_OP_SEND_ZC (6.0) is not available');
    const send = senders(ring);
    const variants = Object.keys(send) as Variant[];
    const sink = await Sink.start(ctx.clientCpus);
    const cells: Cell[] = SIZES.flatMap((size) =>
      variants.map((variant) => ({
        size,
        variant,
        bytes: Math.max(size, perRound),
        samples: [],
        zcSends: 0,
        copied: 0,
      })),
    );
    try {
      for (const [i, size] of SIZES.entries()) {
        ctx.progress(i / SIZES.length, sizeLabel(size));
        const msg = Buffer.alloc(size, 0x5a);
        const mine = cells.filter((c) => c.size === size);
        for (const c of mine) await oneRound(sink, send[c.variant]!, msg, c, false); // warm-up
        for (let r = 0; r < reps; r++) for (const c of mine) await oneRound(sink, send[c.variant]!, msg, c, true);
      }
    } finally {
      sink.stop();
      ring?.close();
    }
    return { tables: [table(cells)], charts: [chart(cells)], data: cells, metrics: metricsOf(cells) };
  },
};
