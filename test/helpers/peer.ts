/**
 * A TCP loopback peer for transfer tests: a rawio socket (the sending side, non-blocking,
 * from sys.listenTcp + sys.accept) connected to a node:net socket that reads everything and
 * hashes it, optionally slowly (paused between bursts) so the sender meets EAGAIN.
 */
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { constants, sys } from './rawio.js';

export interface Received {
  bytes: number;
  sha256: string;
}

export interface Peer {
  /** The rawio side: write here. */
  sockFd: number;
  reader: Socket;
  /** Resolves when the reader has seen EOF (after the sender closes sockFd). */
  received: Promise<Received>;
}

export async function tcpPeer(opts: { slow?: boolean; recvBuf?: number } = {}): Promise<Peer> {
  const lfd = sys.listenTcp('127.0.0.1', 0);
  try {
    const reader = connect({ host: '127.0.0.1', port: sys.localPort(lfd) });
    await new Promise<void>((resolve, reject) => reader.once('connect', resolve).once('error', reject));
    let sockFd = sys.accept(lfd);
    while (sockFd === -constants.EAGAIN) {
      await new Promise((r) => setTimeout(r, 1));
      sockFd = sys.accept(lfd);
    }
    if (sockFd < 0) throw new Error(`accept: ${sockFd}`);
    const hash = createHash('sha256');
    let bytes = 0;
    const received = new Promise<Received>((resolve, reject) => {
      reader.on('data', (d: Buffer) => {
        hash.update(d);
        bytes += d.length;
        if (opts.slow) {
          reader.pause();
          setTimeout(() => reader.resume(), 2);
        }
      });
      reader.once('end', () => {
        reader.destroy();
        resolve({ bytes, sha256: hash.digest('hex') });
      });
      reader.once('error', reject);
    });
    return { sockFd, reader, received };
  } finally {
    sys.close(lfd);
  }
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}
