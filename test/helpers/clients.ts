/**
 * Protocol clients for the model suite, on node:net (a client no part of rawio wrote):
 * each sends requests and reads until the replies it expects are complete.
 */
import net from 'node:net';

export interface Exchange {
  send: Buffer;
  /** Whether `got` holds every reply yet. */
  complete: (got: Buffer) => boolean;
}

/**
 * The bytes a client has received, in one buffer that grows by doubling: a check of all of
 * them after every chunk costs no copy of what came before (concatenating the chunks each
 * time copies megabytes per chunk on a large body).
 */
export class Received {
  #buf = Buffer.alloc(0);
  #size = 0;

  push(chunk: Uint8Array): void {
    if (this.#size + chunk.length > this.#buf.length) {
      const next = Buffer.allocUnsafe(Math.max(2 * this.#buf.length, this.#size + chunk.length, 64 << 10));
      this.#buf.copy(next, 0, 0, this.#size);
      this.#buf = next;
    }
    this.#buf.set(chunk, this.#size);
    this.#size += chunk.length;
  }

  get length(): number {
    return this.#size;
  }

  /** Everything received so far (a view: later pushes do not change it). */
  get bytes(): Buffer {
    return this.#buf.subarray(0, this.#size);
  }
}

/** Connects, sends, reads until `complete` (or the peer closes), resolves with the bytes. */
export function exchange(port: number, ex: Exchange, timeoutMs = 20_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const got = new Received();
    const c = net.connect(port, '127.0.0.1', () => c.write(ex.send));
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`timed out with ${got.length} bytes`));
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      c.destroy();
      resolve(got.bytes);
    };
    c.on('data', (d: Buffer) => {
      got.push(d);
      if (ex.complete(got.bytes)) finish();
    });
    c.on('end', finish);
    c.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

const count = (hay: Buffer, needle: string) => {
  let n = 0;
  for (let i = hay.indexOf(needle); i >= 0; i = hay.indexOf(needle, i + 1)) n++;
  return n;
};

export function echoExchange(payload: Buffer): Exchange {
  return { send: payload, complete: (got) => got.length >= payload.length };
}

export function httpGets(n: number, path = '/'): Exchange {
  const one = `GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`;
  return {
    send: Buffer.from(one.repeat(n)),
    complete: (got) => count(got, 'HTTP/1.1 ') >= n && got.toString('latin1').endsWith('Hello, World!'),
  };
}

export function httpPost(body: Buffer): Exchange {
  const head = `POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${body.length}\r\n\r\n`;
  return {
    send: Buffer.concat([Buffer.from(head), body]),
    complete: (got) => {
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return false;
      const m = /content-length: (\d+)/i.exec(got.subarray(0, end).toString('latin1'));
      return m !== null && got.length - end - 4 >= Number(m[1]);
    },
  };
}

export function resp(...args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(a);
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Waits for `n` complete RESP replies (simple, error, integer, or bulk). */
export function respReplies(send: Buffer, n: number): Exchange {
  return {
    send,
    complete: (got) => {
      let i = 0;
      for (let k = 0; k < n; k++) {
        const eol = got.indexOf('\r\n', i);
        if (eol < 0) return false;
        if (got[i] === 0x24 /* $ */) {
          const len = Number(got.subarray(i + 1, eol).toString());
          i = len < 0 ? eol + 2 : eol + 2 + len + 2;
          if (i > got.length) return false;
        } else i = eol + 2;
      }
      return true;
    },
  };
}

export function staticGet(path: string, size: number): Exchange {
  return {
    send: Buffer.from(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`),
    complete: (got) => {
      const end = got.indexOf('\r\n\r\n');
      return end >= 0 && got.length - end - 4 >= size;
    },
  };
}

export function body(got: Buffer): Buffer {
  return got.subarray(got.indexOf('\r\n\r\n') + 4);
}
