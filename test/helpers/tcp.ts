/**
 * One TCP socket as the kernel lists it in /proc/net/tcp and /proc/net/tcp6, found by its
 * local and remote ports (both ends on this machine's loopback, in this network namespace).
 * The line's columns: `sl local_address rem_address st tx_queue:rx_queue tr:tm->when
 * retrnsmt uid timeout inode ...`, addresses as hex `ADDR:PORT`, the state as hex (01
 * ESTABLISHED, 02 SYN_SENT, 03 SYN_RECV, ...), the queues as hex byte counts.
 */
import { readFileSync } from 'node:fs';

export interface TcpSocket {
  /** The state, two hex digits as the kernel writes it: '01' is ESTABLISHED. */
  state: string;
  /** Bytes written and not yet acknowledged by the peer (unsent ones included). */
  txQueue: number;
  /**
   * Bytes received and not yet read by the socket's owner; for a listening socket (found as
   * `tcpSocket(port, 0)`), the connections in its accept queue, established and not yet accepted.
   */
  rxQueue: number;
  /** The socket's inode, as /proc/<pid>/fd links name it (`socket:[inode]`). */
  inode: string;
}

export const ESTABLISHED = '01';
export const SYN_SENT = '02';
export const SYN_RECV = '03';
export const LISTEN = '0A';

/** The socket at `localPort` connected to `remotePort`; undefined when none is. */
export function tcpSocket(localPort: number, remotePort: number): TcpSocket | undefined {
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'latin1');
    } catch {
      continue; // no IPv6 in this kernel
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const port = (addr: string) => parseInt(addr.slice(addr.lastIndexOf(':') + 1), 16);
      if (port(cols[1]!) !== localPort || port(cols[2]!) !== remotePort) continue;
      const [tx, rx] = cols[4]!.split(':');
      return { state: cols[3]!, txQueue: parseInt(tx!, 16), rxQueue: parseInt(rx!, 16), inode: cols[9]! };
    }
  }
  return undefined;
}
