/**
 * The bench's C programs, compiled at bench time with the system's C compiler: the baseline
 * of `transferFile` (bench/c/transfer.c, run once per measured round) and the bare servers
 * (bench/c/bare-server.c on epoll, bench/c/bare-uring.c on io_uring: the least a server can
 * do, measured beside the HTTP and RESP servers to show what the client and the kernel
 * alone allow). The sources sit beside the compiled
 * benchmarks (copied to dist/bench/c by the build); the binary is cached per user under
 * os.tmpdir(), keyed by a hash of the source, the compiler and its flags, so a bench run
 * compiles it at most once. A machine without a compiler gets a reason instead of a binary, and the
 * scenario reports "not measured" rather than failing.
 *
 * Why os.tmpdir() and not node_modules/.cache: an installed rawio run as `rawio bench` may
 * sit in a read-only or shared node_modules, or in none (npx); the temp directory is always
 * there. The directory is the user's own (mode 0700, checked before use) so that no other
 * user of a shared /tmp can plant the binary we execute; a lost cache costs one compile.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  accessSync,
  constants as fsc,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const C_FLAGS = ['-std=c11', '-O2', '-Wall'];
const COMPILERS = ['cc', 'gcc', 'clang'];

/** Why there is no driver: what copy-c publishes as `copy-c.c.<code>` for the target's verdict. */
export type CDriverFailure = 'no-compiler' | 'no-source' | 'unsafe-cache' | 'build-failed';

export type CDriver =
  { ok: true; path: string; compiler: string; compiled: boolean } | { ok: false; code: CDriverFailure; reason: string };

/** The method names the driver knows: rawio's `transferFile` methods it mirrors. */
export type CMethod = 'readwrite' | 'mmap' | 'sendfile' | 'splice';

/** One run of the driver: what it sent and what the sending cost it (getrusage). */
export interface CTransferResult {
  method: CMethod;
  bytes: number;
  elapsedNs: number;
  userUs: number;
  sysUs: number;
  voluntary: number;
  involuntary: number;
}

/** A C source of the bench: the built copy (dist/bench/c) first; the repository's bench/c when only tsc ran. */
export function cSource(file: string): string | null {
  const candidates = [`../c/${file}`, `../../../bench/c/${file}`].map((p) =>
    fileURLToPath(new URL(p, import.meta.url)),
  );
  return candidates.find((p) => existsSync(p)) ?? null;
}

/** bench/c/transfer.c, the transferFile baseline. */
export function transferSource(): string | null {
  return cSource('transfer.c');
}

/** The first of cc, gcc, clang found executable on `env.PATH`, or null. */
export function findCompiler(env: NodeJS.ProcessEnv = process.env): string | null {
  const dirs = (env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const name of COMPILERS)
    for (const dir of dirs) {
      const p = join(dir, name);
      try {
        accessSync(p, fsc.X_OK);
        return p;
      } catch {
        // not here
      }
    }
  return null;
}

/** A cache directory only this user can write to, or null if the one in tmpdir is not safe. */
function cacheDir(): string | null {
  const uid = process.getuid?.() ?? 0;
  const dir = join(tmpdir(), `rawio-cc-${uid}`);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return null;
  }
  const st = lstatSync(dir);
  return st.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0 ? dir : null;
}

interface BuildOptions {
  source?: string;
  env?: NodeJS.ProcessEnv;
  dir?: string;
}

/**
 * Compiles bench/c/transfer.c (or `source`) unless a binary of the same source, compiler and
 * flags is cached. Never throws: no compiler, no source or a failed compile come back as a reason.
 */
export function buildTransferDriver(o: BuildOptions = {}): CDriver {
  return buildC('transfer.c', o);
}

/** Compiles bench/c/bare-server.c (or `source`), cached as buildTransferDriver's binary is. */
export function buildBareServer(o: BuildOptions = {}): CDriver {
  return buildC('bare-server.c', o);
}

/** Compiles bench/c/bare-uring.c (or `source`): bare-server's HTTP on io_uring. */
export function buildBareUring(o: BuildOptions = {}): CDriver {
  return buildC('bare-uring.c', o);
}

/**
 * What a build depends on besides the compiler: the source, then each header it includes
 * by quotes (`#include "bare-common.h"`, looked up beside the file that includes it), and
 * theirs in turn, each once: an edited header at any depth makes a new binary too.
 */
function sourceBytes(source: string): Buffer {
  const parts: Buffer[] = [];
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    if (!existsSync(file)) return void parts.push(Buffer.from(`\0${file}`));
    const text = readFileSync(file);
    parts.push(text);
    for (const m of text.toString('latin1').matchAll(/^\s*#\s*include\s+"([^"]+)"/gm))
      visit(join(dirname(file), m[1]!));
  };
  visit(source);
  return Buffer.concat(parts);
}

function buildC(file: string, o: BuildOptions): CDriver {
  const source = o.source ?? cSource(file);
  if (!source) return { ok: false, code: 'no-source', reason: `the C source bench/c/${file} is missing` };
  const cc = findCompiler(o.env);
  if (!cc) return { ok: false, code: 'no-compiler', reason: `no C compiler (${COMPILERS.join(', ')} not on PATH)` };
  const version = spawnSync(cc, ['--version'], { encoding: 'utf8', env: o.env ?? process.env });
  const key = createHash('sha256')
    .update(sourceBytes(source))
    .update(`\0${cc}\0${version.stdout ?? ''}\0${C_FLAGS.join(' ')}`)
    .digest('hex')
    .slice(0, 16);
  const dir = o.dir ?? cacheDir();
  if (!dir)
    return {
      ok: false,
      code: 'unsafe-cache',
      reason: `the cache directory in ${tmpdir()} is not private to this user`,
    };
  const bin = join(dir, `${file.replace(/\.c$/, '')}-${key}`);
  if (existsSync(bin)) return { ok: true, path: bin, compiler: cc, compiled: false };
  // Compile beside the final name and rename: a concurrent run never sees half a binary.
  const tmp = `${bin}.${process.pid}.tmp`;
  const r = spawnSync(cc, [...C_FLAGS, '-o', tmp, source], { encoding: 'utf8', env: o.env ?? process.env });
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').slice(0, 3).join(' ');
    return { ok: false, code: 'build-failed', reason: `${cc} failed on ${source}: ${why}` };
  }
  renameSync(tmp, bin);
  return { ok: true, path: bin, compiler: cc, compiled: true };
}

function parseResult(stdout: string): CTransferResult {
  const j = JSON.parse(stdout.trim()) as Record<string, unknown>;
  const num = (k: string) => {
    const v = j[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`transfer driver: bad '${k}' in ${stdout}`);
    return v;
  };
  return {
    method: j.method as CMethod,
    bytes: num('bytes'),
    elapsedNs: num('elapsed_ns'),
    userUs: num('user_us'),
    sysUs: num('sys_us'),
    voluntary: num('voluntary_cs'),
    involuntary: num('involuntary_cs'),
  };
}

/** Runs the driver: connects to `host:port`, sends `file` `count` times by `method`. */
export function runTransferDriver(
  bin: string,
  o: { host?: string; port: number; file: string; method: CMethod; count: number; timeoutMs?: number },
): Promise<CTransferResult> {
  const args = [`${o.host ?? '127.0.0.1'}:${o.port}`, o.file, o.method, String(o.count)];
  return new Promise((resolve, reject) => {
    execFile(bin, args, { encoding: 'utf8', timeout: o.timeoutMs ?? 120_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${bin} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      try {
        resolve(parseResult(stdout));
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}
