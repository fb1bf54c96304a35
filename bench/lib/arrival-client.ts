/**
 * An open-loop connect-per-request client for the stalled-worker scenario, run as its own
 * process pinned to the client CPU: new connections arrive at a fixed rate whatever
 * happens to the earlier ones (a closed loop would stop arriving while its connections are
 * stranded, and hide them: coordinated omission). Each connects, sends 4 bytes, waits for
 * the first byte back, closes. argv: port rate(conn/s) runMs drainMs. Prints
 * {"t0":epochMs,"starts":[ms],"firstByte":[ms|-1],"errors":E}: each connection's start
 * since t0 and its connect-to-first-byte time, -1 when nothing came back before the run
 * and its drain ended. Times are epoch milliseconds (performance.timeOrigin + now), which
 * the parent shares, so it can say which connections opened while a worker was stopped.
 */
import { connect, type Socket } from 'node:net';

const [port, rate, runMs, drainMs] = process.argv.slice(2).map(Number) as [number, number, number, number];
const payload = Buffer.from('ping');
const starts: number[] = [];
const firstByte: number[] = [];
const open = new Set<Socket>();
let errors = 0;
const t0 = performance.now();

function one(): void {
  const i = starts.length;
  const start = performance.now();
  starts.push(start - t0);
  firstByte.push(-1);
  const s = connect({ port, host: '127.0.0.1', noDelay: true });
  open.add(s);
  s.once('connect', () => s.write(payload));
  s.once('data', () => {
    firstByte[i] = performance.now() - start;
    s.destroy();
  });
  s.once('error', () => {
    errors++;
    s.destroy();
  });
  s.once('close', () => open.delete(s));
}

// Every 2 ms, open the connections now due: the arrival rate holds while timers run late.
await new Promise<void>((resolve) => {
  const tick = setInterval(() => {
    const elapsed = performance.now() - t0;
    const due = Math.min(rate * (elapsed / 1000), rate * (runMs / 1000));
    while (starts.length < due) one();
    if (elapsed >= runMs) {
      clearInterval(tick);
      resolve();
    }
  }, 2);
});
const drainUntil = performance.now() + drainMs;
while (open.size > 0 && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 10));
for (const s of open) s.destroy();
const round = (v: number) => Math.round(v * 1000) / 1000;
process.stdout.write(
  JSON.stringify({
    t0: performance.timeOrigin + t0,
    starts: starts.map(round),
    firstByte: firstByte.map(round),
    errors,
  }),
);
