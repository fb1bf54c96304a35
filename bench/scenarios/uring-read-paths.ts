/**
 * The read paths the uring-read scenario measures, each one run of `seconds` at one queue
 * depth over the same file and the same 4 KiB O_DIRECT random pattern: rawio's Ring through
 * its batch API, synchronous pread, Node's fs.promises, and fio's io_uring engine. Each
 * returns IOPS and the CPU it spent per read.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, constants as fsc, openSync, promises as fsp, readSync, writeSync } from 'node:fs';
import { Ring } from '../../src/sys/ring.js';
import { alignedBuffer } from '../../src/sys/file.js';
import { which } from '../tools.js';

export const BS = 4096;

/** IOPS, and CPU microseconds (user + system, every thread of the process) per read. */
export interface Sample {
  iops: number;
  cpuUs: number;
  /** The local paths: the reads counted and the seconds from the first submit to the last one counted. */
  reads?: number;
  seconds?: number;
}

/**
 * The sample of `done` reads counted since `t0` (performance.now()): over the time they
 * took, not the nominal window — a run counts the reads still in flight when the window
 * closes (fs.promises: every queued one, QD of them), which come back after it.
 */
function sample(done: number, t0: number, cpu: NodeJS.CpuUsage): Sample {
  const seconds = (performance.now() - t0) / 1000;
  return { iops: done / seconds, cpuUs: (cpu.user + cpu.system) / Math.max(1, done), reads: done, seconds };
}

const aligned = (size: number): Buffer => alignedBuffer(size, BS);

/** xorshift32: a cheap random block index per read. */
function blockPicker(blocks: number): () => number {
  let x = 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return ((x >>> 0) % blocks) * BS;
  };
}

export function makeFile(path: string, size: number): void {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
  for (let off = 0; off < size; off += chunk.length) writeSync(fd, chunk, 0, chunk.length, off);
  closeSync(fd);
}

/**
 * Each batch blocks in one io_uring_enter: submit what was re-prepared, wait for a completion.
 * `defer`: fio's own ring setup, SINGLE_ISSUER | DEFER_TASKRUN (completions are processed in
 * that enter, never by interrupting the thread). `submitEach`: fio's submit pattern
 * (iodepth_batch_submit=1), each read submitted as soon as it is re-prepared (the Ring's own
 * `submitEach` option: the prep and its io_uring_enter in one call into the addon). On this VM's
 * virtio disk a whole depth submitted at once reaches the host as one burst and each read
 * then waits longer there (docs/PERFORMANCE.md); reads trickling in as completions arrive
 * keep the device's latency down, for one more io_uring_enter per read.
 */
export function ringIops(
  path: string,
  blocks: number,
  qd: number,
  seconds: number,
  fixed: boolean,
  defer = false,
  submitEach = false,
): Sample {
  const ring = new Ring({ entries: Math.max(qd, 8), attach: false, deferTaskrun: defer, submitEach });
  const fd = openSync(path, fsc.O_RDONLY | fsc.O_DIRECT);
  const bufs = Array.from({ length: qd }, () => aligned(BS));
  if (fixed) ring.registerBuffers(bufs);
  const pick = blockPicker(blocks);
  const prep = (slot: number) =>
    fixed ? ring.prepReadFixed(fd, slot, pick(), BS, slot) : ring.prepRead(fd, bufs[slot]!, pick(), BS, slot);
  const out = new Int32Array(3 * qd);
  for (let s = 0; s < qd; s++) prep(s);
  let done = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let result: Sample;
  try {
    while (performance.now() < end) {
      // submit what was re-prepared (submitEach: nothing left), wait for one completion and
      // reap: one syscall, one call
      const n = ring.submitAndReap(out, 1);
      if (n < 0) throw new Error(`ring submit: ${n}`);
      for (let i = 0; i < n; i++) {
        if (out[3 * i + 1] !== BS) throw new Error(`ring read: ${out[3 * i + 1]}`);
        prep(out[3 * i]!); // submitEach: prepared and submitted in one call into the addon
      }
      done += n;
    }
    result = sample(done, t0, process.cpuUsage(c0));
  } finally {
    ring.close();
    closeSync(fd);
  }
  return result;
}

export function preadIops(path: string, blocks: number, seconds: number): Sample {
  const fd = openSync(path, fsc.O_RDONLY | fsc.O_DIRECT);
  const buf = aligned(BS);
  const pick = blockPicker(blocks);
  let done = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 16; i++) readSync(fd, buf, 0, BS, pick());
    done += 16;
  }
  const s = sample(done, t0, process.cpuUsage(c0));
  closeSync(fd);
  return s;
}

export async function fsPromisesIops(path: string, blocks: number, qd: number, seconds: number): Promise<Sample> {
  const fh = await fsp.open(path, fsc.O_RDONLY | fsc.O_DIRECT);
  const pick = blockPicker(blocks);
  let done = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const worker = async () => {
    const buf = aligned(BS);
    while (performance.now() < end) {
      await fh.read(buf, 0, BS, pick());
      done++;
    }
  };
  await Promise.all(Array.from({ length: qd }, worker));
  // every worker's last read, begun inside the window, is counted: so is the time it took
  const s = sample(done, t0, process.cpuUsage(c0));
  await fh.close();
  return s;
}

/** What one fio run measured, or why it measured nothing. */
export type FioOutcome = Sample | { error: string };

/** The first line of a tool's output that says something, for a reason shown in the log. */
const firstLine = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.length > 0) ?? 'no output';

/**
 * The first job of fio's `--output-format=json`, from stdout as fio leaves it: fio prints
 * notes and a failed job's error line ("fio: pid=…, err=22/…") before the JSON document
 * and may print more after it. A job that failed (its `error`), or read nothing, is no
 * figure: the reason is returned instead.
 */
export function parseFio(stdout: string): FioOutcome {
  const start = stdout.search(/^\{/m);
  const end = stdout.lastIndexOf('\n}');
  if (start < 0 || end < start) return { error: `no JSON report from fio: ${firstLine(stdout)}` };
  type Job = {
    error?: number;
    read?: { iops: number; total_ios: number };
    usr_cpu: number;
    sys_cpu: number;
    job_runtime: number;
  };
  let doc: { jobs?: Job[] };
  try {
    doc = JSON.parse(stdout.slice(start, end + 2)) as { jobs?: Job[] };
  } catch (e) {
    return { error: `fio's JSON report did not parse: ${(e as Error).message}` };
  }
  const job = doc.jobs?.[0];
  if (job === undefined) return { error: 'fio reported no job' };
  const before = firstLine(stdout.slice(0, start));
  if (job.error) return { error: `fio's job failed (error ${job.error})${start > 0 ? `: ${before}` : ''}` };
  if (!job.read || !(job.read.total_ios > 0) || !(job.read.iops > 0)) return { error: 'fio read nothing' };
  const cpuUs = (((job.usr_cpu + job.sys_cpu) / 100) * job.job_runtime * 1000) / job.read.total_ios;
  return { iops: job.read.iops, cpuUs };
}

/**
 * One fio run (io_uring engine, the Ring's pattern), or why there is no figure: fio not
 * installed, fio exiting non-zero (its first line of complaint), or a report that says the
 * job failed.
 */
export function fioIops(path: string, size: number, qd: number, seconds: number, fixed: boolean): FioOutcome {
  if (which('fio') === null) return { error: 'fio is not installed' };
  const args = [
    '--name=rawio',
    `--filename=${path}`,
    '--ioengine=io_uring',
    '--direct=1',
    '--rw=randread',
    `--bs=${BS}`,
    `--iodepth=${qd}`,
    `--size=${size}`,
    // in milliseconds: fio reads "--runtime=0.1" as no runtime at all, and reads the whole file
    `--runtime=${Math.max(1, Math.round(seconds * 1000))}ms`,
    '--time_based',
    '--output-format=json',
    // The same access pattern as the Ring's: uniformly random blocks, repeats allowed. fio's
    // default random map reads each block once per pass, so late in a run its picks fall on
    // the next free block and turn near-sequential, which this VM's disk served 10-25% faster.
    '--norandommap',
    ...(fixed ? ['--fixedbufs'] : []),
  ];
  const r = spawnSync('fio', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 16 << 20 });
  if (r.error) return { error: `fio did not run: ${r.error.message}` };
  const parsed = parseFio(r.stdout ?? '');
  if (r.status !== 0) {
    const why = 'error' in parsed ? parsed.error : `fio exited with status ${r.status ?? r.signal}`;
    return { error: `${why}${r.stderr?.trim() ? ` (${firstLine(r.stderr)})` : ''}` };
  }
  return parsed;
}
