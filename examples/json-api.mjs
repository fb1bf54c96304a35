// A JSON API on the multi-reactor model: an acceptor thread deals connections to two
// sub-reactor threads, and each request goes to json-api-handler.mjs's handle(), loaded in
// every thread. Run: node examples/json-api.mjs [port], then
//   curl -s localhost:<port>/todos -d '{"title":"write docs"}'
//   curl -s localhost:<port>/todos
import { Keyspace, serve } from 'rawio';

// The items live in shared memory, freed by the kernel when the last thread lets go.
const todos = Keyspace.create(undefined, { size: 1 << 20 });
process.env.TODOS_KEYSPACE = todos.name;
const server = await serve({
  model: 'multi-reactor',
  protocol: 'http',
  handler: new URL('./json-api-handler.mjs', import.meta.url),
  workers: 2,
  port: Number(process.argv[2] ?? 8080),
});
console.log(`JSON API on http://${server.host}:${server.port}/todos`);
const stop = () => server.close().then(() => todos.close());
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
