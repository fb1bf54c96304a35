// Serves lines-module.mjs on each of rawio's models in turn and talks to it with
// node:net: the same module runs on one thread, a thread per connection, reactors, a
// handler pool, processes and io_uring. Run: node examples/lines-all-models.mjs
import net from 'node:net';
import { modelNames, serve } from 'rawio';

/** Sends `text` and resolves with everything the server sends until it closes. */
function talk(port, text) {
  return new Promise((resolve, reject) => {
    let got = '';
    const c = net.connect(port, '127.0.0.1', () => c.write(text));
    c.on('data', (d) => (got += d));
    c.on('end', () => resolve(got));
    c.on('error', reject);
  });
}

for (const model of modelNames) {
  const server = await serve({
    model,
    protocol: { module: new URL('./lines-module.mjs', import.meta.url) },
    workers: 2,
  });
  let replies;
  try {
    replies = (await talk(server.port, 'PING\r\nECHO hello\r\nINCR\r\nINCR\r\nNOPE\r\nQUIT\r\n')).trim().split('\r\n');
  } finally {
    await server.close(); // after close, stats() holds every thread's and process's final counts
  }
  console.log(`${model.padEnd(22)} ${replies.join(' | ')} (errors: ${server.stats().errors})`);
}
