/**
 * One HTTP/1.1 GET read to the end of its body, for a scenario's preflight: it waits as
 * long as bytes keep arriving (a large file from a busy disk may take seconds) and gives
 * up only after `stallMs` without a byte, then says exactly what arrived — the status,
 * Content-Length and how many body bytes — rather than guessing. `fill`, when given, is
 * the byte every body byte must be (the scenarios write their files with one byte value),
 * so a body of the right length but the wrong content is caught too.
 */
import { connect } from 'node:net';

export interface WholeReply {
  /** null when the body arrived whole (and right); otherwise what went wrong, in words. */
  failure: string | null;
  status: number;
  contentLength: number;
  bodyBytes: number;
}

export interface WholeReplyOptions {
  port: number;
  path: string;
  host?: string;
  /** Give up after this long without a byte. Default 10 s. */
  stallMs?: number;
  fill?: number;
}

/** Parses the head once it is complete; undefined until then. */
function parseHead(head: Buffer): { end: number; status: number; length: number } | undefined {
  const end = head.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = head.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(lines[0]?.split(' ')[1]);
  const cl = lines.find((l) => /^content-length:/i.test(l));
  return { end: end + 4, status, length: cl === undefined ? -1 : Number(cl.slice(cl.indexOf(':') + 1)) };
}

/** The offset of the first byte of `chunk` that differs from the pattern's (one byte repeated), or -1. */
function firstOther(chunk: Buffer, pattern: Buffer): number {
  for (let at = 0; at < chunk.length; at += pattern.length) {
    const part = chunk.subarray(at, at + pattern.length);
    if (part.equals(pattern.subarray(0, part.length))) continue;
    for (let j = 0; j < part.length; j++) if (part[j] !== pattern[0]) return at + j;
  }
  return -1;
}

export function fetchWhole(o: WholeReplyOptions): Promise<WholeReply> {
  const stallMs = o.stallMs ?? 10_000;
  return new Promise((resolve) => {
    const sock = connect(o.port, o.host ?? '127.0.0.1');
    let head = Buffer.alloc(0);
    let parsed: ReturnType<typeof parseHead>;
    let body = 0;
    let wrong = -1; // offset of the first body byte that is not `fill`
    const finish = (failure: string | null) => {
      sock.destroy();
      resolve({ failure, status: parsed?.status ?? 0, contentLength: parsed?.length ?? -1, bodyBytes: body });
    };
    const said = () =>
      parsed === undefined
        ? `no complete header (${head.length} bytes)`
        : `status ${parsed.status}, Content-Length ${parsed.length}, ${body} body bytes`;
    const pattern = o.fill === undefined ? undefined : Buffer.alloc(64 << 10, o.fill);
    const take = (chunk: Buffer) => {
      if (pattern && wrong < 0) {
        const at = firstOther(chunk, pattern);
        if (at >= 0) wrong = body + at;
      }
      body += chunk.length;
    };
    sock.setTimeout(stallMs, () => finish(`GET ${o.path}: nothing for ${stallMs / 1000} s after ${said()}`));
    sock.on('error', (e) => finish(`GET ${o.path}: ${e.message} after ${said()}`));
    sock.on('close', () => finish(`GET ${o.path}: the server closed the connection after ${said()}`));
    sock.on('data', (b: Buffer) => {
      if (parsed === undefined) {
        head = Buffer.concat([head, b]);
        parsed = parseHead(head);
        if (parsed === undefined) return;
        if (parsed.status !== 200 || parsed.length < 0) return finish(`GET ${o.path}: ${said()}`);
        b = head.subarray(parsed.end);
      }
      take(b);
      if (body > parsed.length) return finish(`GET ${o.path}: more body than Content-Length: ${said()}`);
      if (body < parsed.length) return;
      if (wrong >= 0) return finish(`GET ${o.path}: body byte ${wrong} is not ${o.fill} (${said()})`);
      finish(null);
    });
    sock.write(`GET ${o.path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n`);
  });
}
