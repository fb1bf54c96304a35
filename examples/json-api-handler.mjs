// The handler of json-api.mjs: a to-do list in a Keyspace (shared memory), so that every
// reactor thread sees the same items. handle() gets { method, target, headers, body } and
// returns { status, headers, body }; what it throws becomes a 500 for that request alone.
// This module is loaded once in every thread: each attaches to the keyspace json-api.mjs
// created, found through the environment that threads and child processes inherit.
import { Keyspace } from 'rawio';

const ks = Keyspace.attach(process.env.TODOS_KEYSPACE);
const key = (s) => Buffer.from(s);
const out = Buffer.alloc(1 << 16);
const json = (status, value) => ({
  status,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(value),
});

function list() {
  const n = ks.get(key('count'), out);
  const count = n > 0 ? Number(out.subarray(0, n).toString()) : 0;
  const items = [];
  for (let id = 1; id <= count; id++) {
    const len = ks.get(key(`todo:${id}`), out);
    if (len >= 0) items.push({ id, ...JSON.parse(out.subarray(0, len).toString()) });
  }
  return items;
}

export function handle(req) {
  const path = req.target.split('?')[0];
  if (path !== '/todos') return json(404, { error: 'not found' });
  if (req.method === 'GET') return json(200, list());
  if (req.method === 'POST') {
    const { title } = JSON.parse(Buffer.from(req.body).toString() || '{}'); // bad JSON: a 500
    if (typeof title !== 'string') return json(400, { error: 'title must be a string' });
    const id = Number(out.subarray(0, ks.incr(key('count'), 1, out)).toString());
    ks.set(key(`todo:${id}`), key(JSON.stringify({ title })));
    return json(201, { id, title });
  }
  return { status: 405, headers: { allow: 'GET, POST' }, body: '' };
}
