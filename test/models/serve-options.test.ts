/**
 * serve()'s options are checked up front, on every model: unknown keys, transfer methods
 * outside TransferMethodName, options the model does not use, CPUs beyond the machine,
 * numbers, a missing static root (ENOENT), host names (resolved), and what serve()
 * resolves with (Server.model, Symbol.asyncDispose).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getAffinity } from '../../dist/src/sys/process.js';
import { exchange, httpGets, resp, respReplies } from '../helpers/clients.js';
import {
  modelNames,
  resolveServeOptions,
  serve,
  serveOptionNames,
  type ModelName,
  type ServeOptions,
} from '../helpers/rawio.js';

const dir = mkdtempSync(join(tmpdir(), 'rawio-serve-opts-'));
writeFileSync(join(dir, 'a.txt'), 'x'.repeat(1000));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bad = (o: unknown) => o as ServeOptions;

/** One GET with Connection: close to `host` (an IPv4 or IPv6 address): the whole reply. */
function httpGet(port: number, host: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const c = net.connect(port, host, () => c.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    let text = '';
    c.on('data', (d: Buffer) => (text += d.toString()));
    c.on('close', () => resolve(text));
    c.on('error', reject);
  });
}

describe.each(modelNames)('serve() options on %s', (model: ModelName) => {
  it('refuses an unknown key, naming the known ones', async () => {
    for (const key of ['prot', 'workerz', 'onError', 'constructor']) {
      const e = await serve(bad({ model, protocol: 'http', [key]: 1 })).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(TypeError);
      expect(String(e)).toContain(`'${key}'`);
      for (const known of serveOptionNames) expect(String(e)).toContain(known);
    }
  });

  it('refuses a transfer method outside TransferMethodName before it starts', async () => {
    for (const transfer of ['teleport', 'toString', '', 7]) {
      const e = await serve(bad({ model, protocol: 'static', root: dir, transfer })).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(TypeError);
      expect(String(e)).toMatch(/sendfile/);
    }
  });

  it('refuses options this model does not use', () => {
    const unused: Partial<ServeOptions>[] = [];
    if (model !== 'multi-process') unused.push({ accept: 'mutex' });
    if (['iterative', 'thread-per-connection', 'proactor'].includes(model)) unused.push({ backend: 'poll' });
    if (model !== 'proactor' && model !== 'multi-proactor') unused.push({ ring: {} });
    if (model !== 'multi-process') unused.push({ execArgv: [] });
    expect(unused.length).toBeGreaterThan(0); // every model leaves one out: none passes by checking nothing
    for (const extra of unused) {
      expect(() => resolveServeOptions({ model, protocol: 'http', ...extra })).toThrow(
        new RegExp(`'${Object.keys(extra)[0]}' option is not used by the ${model} model`),
      );
    }
  });

  it('checks numbers: TypeError for the wrong type, RangeError out of range', () => {
    const cases: [Partial<ServeOptions>, typeof TypeError | typeof RangeError][] = [
      [{ port: bad('80') as unknown as number }, TypeError],
      [{ port: 70000 }, RangeError],
      [{ port: 1.5 }, RangeError],
      [{ workers: 0 }, RangeError],
      [{ workers: Number.NaN }, RangeError],
      [{ maxQueue: -1 }, RangeError],
      [{ idleTimeout: 0 }, RangeError],
      [{ backlog: 0 }, RangeError],
      [{ directio: -5 }, RangeError],
      // Past the CPUs this process may use: availableParallelism() is their count, which names
      // one of them under a cpuset that does not start at 0 (taskset -c 1).
      [{ cpus: [Math.max(...getAffinity()) + 1] }, RangeError],
      [{ cpus: [0.5] }, RangeError],
      [{ cpus: bad(0) as unknown as number[] }, TypeError],
      [{ maxConnections: bad('3') as unknown as number }, TypeError],
      [{ maxConnections: bad(3n) as unknown as number }, TypeError],
      [{ maxConnections: 0 }, RangeError],
      [{ maxConnections: -1 }, RangeError],
      [{ maxConnections: 2.5 }, RangeError],
      [{ maxConnections: Number.NaN }, RangeError],
      [{ maxConnections: -Infinity }, RangeError],
      [{ maxConnections: 2 ** 31 }, RangeError],
      [{ maxConnectionsPerClient: bad('3') as unknown as number }, TypeError],
      [{ maxConnectionsPerClient: bad(3n) as unknown as number }, TypeError],
      [{ maxConnectionsPerClient: bad(null) as unknown as number }, TypeError],
      [{ maxConnectionsPerClient: 0 }, RangeError],
      [{ maxConnectionsPerClient: -1 }, RangeError],
      [{ maxConnectionsPerClient: 2.5 }, RangeError],
      [{ maxConnectionsPerClient: Number.NaN }, RangeError],
      [{ maxConnectionsPerClient: -Infinity }, RangeError],
      [{ maxConnectionsPerClient: 2 ** 31 }, RangeError],
    ];
    for (const [extra, type] of cases) {
      expect(() => resolveServeOptions({ model, protocol: 'http', ...extra })).toThrow(type);
    }
  });

  it('maxConnections: unlimited (Infinity) by default, Infinity or a whole number as given', () => {
    expect(resolveServeOptions({ model, protocol: 'http' }).maxConnections).toBe(Infinity);
    expect(resolveServeOptions({ model, protocol: 'http', maxConnections: Infinity }).maxConnections).toBe(Infinity);
    expect(resolveServeOptions({ model, protocol: 'http', maxConnections: 1 }).maxConnections).toBe(1);
    expect(resolveServeOptions({ model, protocol: 'http', maxConnections: 10_000 }).maxConnections).toBe(10_000);
    expect(serveOptionNames).toContain('maxConnections');
  });

  it('maxConnectionsPerClient: unlimited (Infinity) by default, Infinity or a whole number as given, on every model', () => {
    const per = (o: Partial<ServeOptions>) =>
      resolveServeOptions({ model, protocol: 'http', ...o }).maxConnectionsPerClient;
    expect(per({})).toBe(Infinity);
    expect(per({ maxConnectionsPerClient: Infinity })).toBe(Infinity);
    expect(per({ maxConnectionsPerClient: 1 })).toBe(1);
    expect(per({ maxConnectionsPerClient: 2 ** 31 - 1 })).toBe(2 ** 31 - 1);
    for (const m of modelNames) {
      expect(
        resolveServeOptions({ model: m, protocol: 'resp', maxConnectionsPerClient: 4 }).maxConnectionsPerClient,
      ).toBe(4);
    }
    expect(serveOptionNames).toContain('maxConnectionsPerClient');
  });

  it('minRequestRate: 16 KiB/s by default, Infinity or a whole number >= 1 as given', () => {
    const rate = (o: Partial<ServeOptions>) => resolveServeOptions({ model, protocol: 'http', ...o }).minRequestRate;
    expect(rate({})).toBe(16_384);
    expect(rate({ minRequestRate: Infinity })).toBe(Infinity);
    expect(rate({ minRequestRate: 1 })).toBe(1);
    expect(rate({ minRequestRate: 2 ** 40 })).toBe(2 ** 40);
    for (const value of ['16384', 16_384n, null, true]) {
      expect(() => rate({ minRequestRate: bad(value) as unknown as number })).toThrow(TypeError);
    }
    for (const value of [0, -1, 2.5, Number.NaN, -Infinity, 2 ** 53]) {
      expect(() => rate({ minRequestRate: value })).toThrow(RangeError);
    }
    expect(serveOptionNames).toContain('minRequestRate');
  });

  it('says ENOENT for a static root that does not exist, ENOTDIR for a file', () => {
    const missing = join(dir, 'nope');
    expect(() => resolveServeOptions({ model, protocol: 'static', root: missing })).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'stat', path: missing }),
    );
    expect(() => resolveServeOptions({ model, protocol: 'static', root: join(dir, 'a.txt') })).toThrow(
      expect.objectContaining({ code: 'ENOTDIR' }),
    );
  });

  it('resolves a host name and serves on the address it found', async () => {
    const server = await serve({ model, protocol: 'http', host: 'localhost', workers: 1 });
    try {
      expect(['127.0.0.1', '::1']).toContain(server.host);
      expect(await httpGet(server.port, server.host)).toMatch(/^HTTP\/1\.1 200 OK/);
    } finally {
      await server.close();
    }
  });

  it('keyspaceSize: resp only, 64 KiB to 4 GiB - 1, into the protocol options', () => {
    const resolve = (o: Partial<ServeOptions>) => resolveServeOptions({ model, protocol: 'resp', ...o });
    expect(resolve({}).protocolOptions.keyspaceSize).toBeUndefined();
    expect(resolve({ keyspaceSize: 1 << 16 }).protocolOptions.keyspaceSize).toBe(1 << 16);
    expect(resolve({ keyspaceSize: 0xffffffff }).keyspaceSize).toBe(0xffffffff);
    expect(() => resolve({ keyspaceSize: bad('1048576') as unknown as number })).toThrow(TypeError);
    expect(() => resolve({ keyspaceSize: bad(null) as unknown as number })).toThrow(TypeError);
    for (const n of [(1 << 16) - 1, 2 ** 32, 1.5e6 + 0.5, Number.NaN, Infinity, -1])
      expect(() => resolve({ keyspaceSize: n })).toThrow(RangeError);
    expect(() => resolveServeOptions({ model, protocol: 'http', keyspaceSize: 1 << 20 })).toThrow(
      /'keyspaceSize' option is not used by the http protocol/,
    );
  });

  it('keyspaceSize bounds what the resp keyspace holds', async () => {
    // Eight SETs of 16 KiB: a 64 KiB keyspace answers -OOM before the last, the default 64 MiB none.
    const value = Buffer.alloc(16 << 10, 'v');
    const sets = Buffer.concat(Array.from({ length: 8 }, (_, i) => resp('SET', `k${i}`, value)));
    for (const keyspaceSize of [1 << 16, undefined]) {
      const server = await serve({ model, protocol: 'resp', workers: 2, ...(keyspaceSize ? { keyspaceSize } : {}) });
      try {
        const got = (await exchange(server.port, respReplies(sets, 8))).toString('latin1');
        const oom = got.split('-OOM').length - 1;
        expect(got.split('+OK\r\n').length - 1 + oom).toBe(8);
        if (keyspaceSize) expect(oom).toBeGreaterThan(0);
        else expect(oom).toBe(0);
      } finally {
        await server.close();
      }
    }
  });

  it('refuses a number where the options object goes', async () => {
    await expect(serve(bad(3))).rejects.toThrow(TypeError);
    await expect(serve(bad(null))).rejects.toThrow(TypeError);
    await expect(serve(bad([model]))).rejects.toThrow(TypeError);
  });
});

describe('serve() ring setup', () => {
  // Each ring of the proactor models has 1024 submission entries, and io_uring_setup refuses
  // a smaller completion queue with a bare EINVAL from inside the thread: serve() says so first.
  it.each(['proactor', 'multi-proactor'] as const)(
    "%s: ring.cqEntries below the rings' 1024 submission entries is a RangeError",
    (model) => {
      for (const cqEntries of [1, 256, 1023])
        expect(() => resolveServeOptions({ model, protocol: 'echo', ring: { cqEntries } })).toThrow(
          /"ring\.cqEntries" is out of range\. It must be an integer >= 1024/,
        );
      expect(resolveServeOptions({ model, protocol: 'echo', ring: { cqEntries: 1024 } }).ring).toEqual({
        cqEntries: 1024,
      });
    },
  );
});

describe('serve() transfer options on the ring models', () => {
  // proactor and multi-proactor read and send file bodies with their ring: transfer, directio
  // and mmap are unused there. Accepted for a release, with one DeprecationWarning a process
  // (so it runs in a process of its own, where no other test has drawn it yet).
  it('accepts transfer, directio and mmap on proactor and multi-proactor with one DeprecationWarning, and none elsewhere', () => {
    const root = mkdtempSync(join(tmpdir(), 'rawio-ring-transfer-'));
    const index = new URL('../../dist/src/index.js', import.meta.url).href;
    const script = `
      const { resolveServeOptions } = await import(${JSON.stringify(index)});
      const root = ${JSON.stringify(root)};
      const warnings = [];
      process.on('warning', (w) => warnings.push({ name: w.name, code: w.code, message: w.message }));
      resolveServeOptions({ model: 'single', protocol: 'static', root, transfer: 'sendfile', directio: 1 });
      resolveServeOptions({ model: 'proactor', protocol: 'static', root });
      await new Promise((r) => setImmediate(r));
      const before = warnings.length;
      const kept = ['proactor', 'multi-proactor'].map(
        (model) => resolveServeOptions({ model, protocol: 'static', root, transfer: 'sendfile', mmap: { populate: true } }).transfer,
      );
      await new Promise((r) => setImmediate(r));
      console.log(JSON.stringify({ before, kept, warnings }));`;
    try {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { before: number; kept: string[]; warnings: Record<string, string>[] };
      expect(out.before).toBe(0);
      expect(out.kept).toEqual(['sendfile', 'sendfile']);
      expect(out.warnings).toHaveLength(1);
      expect(out.warnings[0]).toMatchObject({ name: 'DeprecationWarning', code: 'RAWIO_DEP_RING_TRANSFER' });
      expect(out.warnings[0]!.message).toMatch(/'transfer', 'mmap' options are not used by the proactor model/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('close() options', () => {
  it("are refused with Node's codes, as every argument check is, and the server stays open", async () => {
    const s = await serve({ model: 'single', protocol: 'echo' });
    try {
      const close = s.close.bind(s) as (o?: unknown) => Promise<void>;
      const refused = async (o: unknown) =>
        close(o).then(
          () => expect.fail('closed'),
          (e: Error) => e,
        );
      for (const o of [5, null, { drain: '5' }]) {
        const e = await refused(o);
        expect(e, String(o)).toBeInstanceOf(TypeError);
        expect(e, String(o)).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
      }
      expect(await refused({ grace: 5 })).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
      for (const drain of [-1, Number.NaN, 2 ** 31]) {
        const e = await refused({ drain });
        expect(e, String(drain)).toBeInstanceOf(RangeError);
        expect(e, String(drain)).toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
      }
      const echo = { send: Buffer.from('still open'), complete: (got: Buffer) => got.length >= 10 };
      expect((await exchange(s.port, echo)).toString()).toBe('still open');
    } finally {
      await s.close();
    }
  });
});

describe('serve() resolves', () => {
  it('resolves a host name with dns.lookup and binds its address', async () => {
    const server = await serve({ model: 'single', protocol: 'http', host: 'localhost' });
    try {
      expect(['127.0.0.1', '::1']).toContain(server.host);
      expect(await httpGet(server.port, server.host)).toMatch(/^HTTP\/1\.1 200 OK/);
    } finally {
      await server.close();
    }
    await expect(serve({ model: 'single', protocol: 'http', host: 'no-such-host.invalid' })).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });
  });

  it('gives a Server whose model is the ModelName and whose asyncDispose closes it', async () => {
    const server = await serve({ model: 'multi-reactor', protocol: 'http', workers: 1 });
    const model: ModelName = server.model;
    expect(model).toBe('multi-reactor');
    await server[Symbol.asyncDispose]();
    await expect(exchange(server.port, httpGets(1))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
