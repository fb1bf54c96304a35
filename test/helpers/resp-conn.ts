/**
 * A RESP client on one connection for limit tests: what it has received, whether the server
 * closed it, and a PING that says whether it was answered.
 */
import net from 'node:net';
import { resp } from './clients.js';
import { eventually } from './wait.js';

const STALL_MS = 20_000;

/** A RESP client on one connection: what it has received, whether the server closed it. */
export class RespConn {
  readonly sock: net.Socket;
  got = '';
  closed = false;

  /** `localAddress`: the loopback address to connect from (127.0.0.2 …), as another client would. */
  constructor(port: number, localAddress?: string) {
    this.sock = net.connect(
      localAddress === undefined ? { port, host: '127.0.0.1' } : { port, host: '127.0.0.1', localAddress },
    );
    this.sock.on('data', (d: Buffer) => (this.got += d.toString('latin1')));
    this.sock.on('close', () => (this.closed = true));
    this.sock.on('error', () => undefined); // ECONNRESET from a refused connect that had sent: expected
  }

  /** Sends PING; true once its PONG arrived, false if the connection closed first. */
  async ping(): Promise<boolean> {
    const want = this.got.split('+PONG\r\n').length; // one more PONG than now
    this.sock.write(resp('PING'));
    await eventually(() => this.got.split('+PONG\r\n').length > want || this.closed, STALL_MS);
    return this.got.split('+PONG\r\n').length > want;
  }

  /** Resolves once the server has closed the connection (true), or the stall guard passed. */
  shut(): Promise<boolean> {
    return eventually(() => this.closed, STALL_MS);
  }
}
