// sendfile(2) from a node:http response: Node writes the head, then the body goes from the
// file to the socket in the kernel with rawio's transferFile, never through JavaScript.
// Run: node examples/sendfile-node-http.mjs [file] [port], then curl localhost:<port>/
import http from 'node:http';
import { constants as c, sys, transferFile } from 'rawio';

const path = process.argv[2] ?? new URL(import.meta.url).pathname;

const server = http.createServer(async (req, res) => {
  const fd = sys.open(path, c.O_RDONLY);
  try {
    const { size } = sys.fstat(fd);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    if (req.method === 'HEAD') return void res.end();
    res.flushHeaders();
    // transferFile takes the response once its head is flushed: it waits for the head to leave
    // Node's own queue, then sends the body from the socket's fd.
    await transferFile(res, fd, { method: 'sendfile' });
    res.end();
  } catch (e) {
    res.destroy(e);
  } finally {
    sys.close(fd);
  }
});
server.listen(Number(process.argv[3] ?? 8080), '127.0.0.1', () => {
  console.log(`sending ${path} on http://127.0.0.1:${server.address().port}/`);
});
process.once('SIGINT', () => server.close());
process.once('SIGTERM', () => server.close());
