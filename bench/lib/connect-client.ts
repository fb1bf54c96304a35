/**
 * A connect-per-request client for the accept scenario, run as its own process pinned to
 * the client CPU (the native load generator keeps its connections open): `concurrency`
 * loops each connect, send 64 bytes, wait for the echo, close — for `ms` milliseconds.
 * argv: port concurrency ms. Prints {"requests":N,"errors":E,"seconds":S} on stdout.
 */
import { connect } from 'node:net';

const [port, concurrency, ms] = process.argv.slice(2).map(Number) as [number, number, number];
const payload = Buffer.alloc(64, 120);
let requests = 0;
let errors = 0;
const t0 = performance.now();
const until = t0 + ms;

function one(): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1', noDelay: true });
    let got = 0;
    s.once('connect', () => s.write(payload));
    s.on('data', (d) => {
      got += d.length;
      if (got >= payload.length) {
        requests++;
        s.destroy();
        resolve();
      }
    });
    s.once('error', () => {
      errors++;
      s.destroy();
      resolve();
    });
  });
}

async function loop(): Promise<void> {
  while (performance.now() < until) await one();
}

await Promise.all(Array.from({ length: concurrency }, loop));
process.stdout.write(JSON.stringify({ requests, errors, seconds: (performance.now() - t0) / 1000 }));
