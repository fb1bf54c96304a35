/**
 * A multi-process worker killed with SIGKILL under load: its own clients lose their
 * connections (nothing can save those), every client of the other worker keeps being
 * served without one error, the master replaces the dead worker, and new clients are served.
 * Which worker holds which connection is read from the kernel: the server-side socket's
 * inode in /proc/net/tcp, found among the worker's /proc/<pid>/fd links.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { serve } from '../helpers/rawio.js';
import { exchange, httpGets } from '../helpers/clients.js';
import { childrenOf } from '../helpers/procs.js';
import { tcpSocket } from '../helpers/tcp.js';
import { eventually } from '../helpers/wait.js';

const children = () => childrenOf(process.pid);

function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** The inode of the server side of the connection from client port `clientPort`. */
const serverInode = (serverPort: number, clientPort: number) => tcpSocket(serverPort, clientPort)?.inode;

interface Client {
  sock: net.Socket;
  served: number;
  broken: boolean;
}

/** A keep-alive client that sends a request each time the last reply has arrived. */
function client(port: number): Promise<Client> {
  return new Promise((resolve) => {
    const c: Client = { sock: net.connect(port, '127.0.0.1'), served: 0, broken: false };
    let got = '';
    const req = 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n';
    c.sock.on('connect', () => {
      c.sock.write(req);
      resolve(c);
    });
    c.sock.on('data', (d) => {
      got += d.toString('latin1');
      if (got.endsWith('Hello, World!')) {
        got = '';
        c.served++;
        if (!c.sock.destroyed) c.sock.write(req);
      }
    });
    const broke = () => (c.broken = true);
    c.sock.on('error', broke);
    c.sock.on('close', broke);
  });
}

describe('multi-process worker killed under load', () => {
  it('replaces it; the other worker’s clients are unaffected', async () => {
    const server = await serve({ model: 'multi-process', protocol: 'http', workers: 2 });
    try {
      const clients = await Promise.all(Array.from({ length: 24 }, () => client(server.port)));
      // Every client served once, so accepted by a worker, before the sockets are looked up
      // (a client still in the accept queue would count as the other worker's).
      expect(await eventually(() => clients.every((c) => c.served > 0))).toBe(true);
      const workers = children();
      expect(workers.length).toBe(2);
      const victim = workers[0]!;
      const victimSockets = socketInodes(victim);
      const ofVictim = clients.map((c) => victimSockets.has(serverInode(server.port, c.sock.localPort!) ?? '-'));
      // reuseport spreads 24 clients over both workers (a 2^-23 chance it does not).
      expect(ofVictim.some(Boolean)).toBe(true);
      expect(ofVictim.every(Boolean)).toBe(false);
      const servedAtKill = clients.map((c) => c.served);
      process.kill(victim, 'SIGKILL');
      // Until the victim's clients have seen their connections end, the others have each had a
      // reply since the kill, and the master has replaced the victim (or the deadline: the
      // assertions below then say what was missing).
      await eventually(
        () =>
          clients.every((c, i) => (ofVictim[i] ? c.broken : c.served > servedAtKill[i]!)) &&
          children().length === 2 &&
          !children().includes(victim),
      );
      for (let i = 0; i < clients.length; i++) {
        const c = clients[i]!;
        if (ofVictim[i]) expect(c.broken).toBe(true);
        else {
          expect(c.broken).toBe(false);
          expect(c.served).toBeGreaterThan(servedAtKill[i]!); // still being served after the kill
        }
      }
      const now = children();
      expect(now.length).toBe(2);
      expect(now).not.toContain(victim);
      // New clients are served, by both workers eventually (the replacement accepts too).
      for (let k = 0; k < 10; k++) {
        const got = await exchange(server.port, httpGets(2));
        expect(got.toString().split('HTTP/1.1 200 OK').length - 1).toBe(2);
      }
      for (const c of clients) c.sock.destroy();
      console.log(
        `multi-process: killed worker ${victim} holding ${ofVictim.filter(Boolean).length}/24 clients; ` +
          `${clients.filter((c, i) => !ofVictim[i]).reduce((s, c) => s + c.served, 0)} requests served to the others`,
      );
    } finally {
      await server.close();
    }
  }, 60_000);
});
