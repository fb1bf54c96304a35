/**
 * No model accepts on the caller's thread: with the caller blocked (a synchronous loop
 * that never yields to Node's event loop), a client in a child process connects, sends a
 * request and gets its answer. The check is ordering, not timing: the caller looks for
 * the child's answer only from inside its block, so finding it proves it was served
 * while the caller was busy.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { modelNames, serve } from '../helpers/rawio.js';

const dir = mkdtempSync(join(tmpdir(), 'rawio-offthread-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const client = `
const net = require('node:net'), fs = require('node:fs');
const [port, out] = process.argv.slice(1);
const c = net.connect(Number(port), '127.0.0.1', () => c.write('GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'));
let got = '';
c.on('data', (d) => {
  got += d;
  if (got.endsWith('Hello, World!')) { fs.writeFileSync(out, got); process.exit(0); }
});`;

/** Blocks this thread (no event loop turn) until `file` holds `text` or `ceiling` ms pass. */
function blockUntil(file: string, text: string, ceiling: number): boolean {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const end = Date.now() + ceiling;
  while (Date.now() < end) {
    Atomics.wait(pause, 0, 0, 20);
    try {
      if (readFileSync(file, 'latin1').endsWith(text)) return true;
    } catch {
      // not written yet
    }
  }
  return false;
}

for (const model of modelNames) {
  it(`${model}: a client is served while the caller's thread is blocked`, async () => {
    const server = await serve({ model, protocol: 'http', workers: 2 });
    const out = join(dir, `${model}.txt`);
    try {
      const child = spawn(process.execPath, ['-e', client, String(server.port), out], { stdio: 'ignore' });
      const exited = new Promise((r) => child.once('exit', r));
      // The caller is now busy: nothing of Node's loop runs in this thread until the block ends.
      expect(blockUntil(out, 'Hello, World!', 20_000)).toBe(true);
      await exited;
    } finally {
      await server.close();
    }
  });
}
