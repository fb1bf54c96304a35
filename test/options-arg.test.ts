/**
 * Every public call with an options parameter refuses a number (or a string, or null) in
 * its place with a TypeError, at once and before any syscall: a misplaced positional
 * argument must never be read as "no options".
 */
import { describe, expect, it } from 'vitest';
import {
  Connection,
  Epoll,
  Keyspace,
  Proactor,
  Reactor,
  Ring,
  createProtocol,
  probe,
  resolveServeOptions,
  serve,
  sys,
  transferFile,
  type ProtocolName,
} from './helpers/rawio.js';

const wrong = [3, 'opts', true] as never[];

/** Runs `call`; a returned promise's rejection counts as thrown. */
async function thrown(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('a non-object where options go is a TypeError', () => {
  const reactor = new Reactor();
  const calls: Record<string, (o: never) => unknown> = {
    'new Reactor': (o) => new Reactor(o),
    'new Epoll': (o) => new Epoll(o),
    'Reactor.setTimer': (o) => reactor.setTimer(1, () => {}, o),
    'new Connection': (o) => new Connection(reactor, 1000, o),
    'Keyspace.create': (o) => Keyspace.create(undefined, o),
    'sys.listenTcp': (o) => sys.listenTcp('127.0.0.1', 0, o),
    'sys.connectTcp': (o) => sys.connectTcp('127.0.0.1', 1, o),
    'sys.accept': (o) => sys.accept(1000, o),
    'sys.socketpair': (o) => sys.socketpair(o),
    'sys.pipe': (o) => sys.pipe(o),
    'sys.eventfd': (o) => sys.eventfd(0, o),
    probe: (o) => probe(o),
    serve: (o) => serve(o),
    resolveServeOptions: (o) => resolveServeOptions(o),
    transferFile: (o) => transferFile(1000, 1000, o),
    ...Object.fromEntries(
      (['echo', 'http', 'resp', 'static'] as ProtocolName[]).map((p) => [
        `createProtocol('${p}')`,
        (o: never) => createProtocol(p, o),
      ]),
    ),
  };
  if (Ring.supported()) {
    calls['new Ring'] = (o) => new Ring(o);
    calls['new Proactor'] = (o) => new Proactor(o);
  }

  it.each(Object.keys(calls))('%s', async (name) => {
    for (const o of wrong) {
      const e = await thrown(() => calls[name]!(o));
      expect(e, `${name}(${JSON.stringify(o)})`).toBeInstanceOf(TypeError);
    }
  });
});
