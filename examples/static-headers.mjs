// A static file server with a custom handler: static-headers-handler.mjs maps each path to a
// file under the root and adds its own headers (Cache-Control, an ETag); the body is a file
// region that the server sends with transferFile and the transfer method chosen here.
// Run: node examples/static-headers.mjs [root] [port], then curl -i localhost:<port>/README.md
import { resolve } from 'node:path';
import { serve } from 'rawio';

process.env.STATIC_ROOT = resolve(process.argv[2] ?? '.');
const server = await serve({
  model: 'single',
  protocol: 'http',
  handler: new URL('./static-headers-handler.mjs', import.meta.url),
  transfer: 'sendfile',
  port: Number(process.argv[3] ?? 8080),
});
console.log(`serving ${process.env.STATIC_ROOT} on http://${server.host}:${server.port}/`);
process.once('SIGINT', () => void server.close());
process.once('SIGTERM', () => void server.close());
