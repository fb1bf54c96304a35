// The handler of static-headers.mjs: GET and HEAD of the files under STATIC_ROOT, with
// Cache-Control and an ETag of its own. A path that leaves the root (.., an absolute
// symlink) is refused; the body is { path }, sent by the server with transferFile.
import { realpathSync, statSync } from 'node:fs';
import { extname, join, sep } from 'node:path';

const root = realpathSync(process.env.STATIC_ROOT);
const types = {
  '.html': 'text/html; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.json': 'application/json',
  '.js': 'text/javascript',
};

export function handle(req) {
  if (req.method !== 'GET' && req.method !== 'HEAD') return { status: 405, headers: { allow: 'GET, HEAD' } };
  let path;
  try {
    path = realpathSync(join(root, decodeURIComponent(req.target.split('?')[0])));
  } catch {
    return { status: 404, body: 'not found\n' };
  }
  if (path !== root && !path.startsWith(root + sep)) return { status: 403, body: 'forbidden\n' };
  const st = statSync(path);
  if (!st.isFile()) return { status: 404, body: 'not found\n' };
  const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
  const headers = {
    'content-type': types[extname(path)] ?? 'application/octet-stream',
    'cache-control': 'public, max-age=60',
    etag,
  };
  if (req.headers['if-none-match'] === etag) return { status: 304, headers };
  return { headers, body: { path } };
}
