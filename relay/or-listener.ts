/**
 * The relay's OR port: a TCP listener that hands every accepted socket to the
 * relay core (which runs the link handshake), bounded in connections, and
 * closed with every socket it accepted.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { debuglog } from 'node:util';
import { AlliumError } from '../src/errors.js';

const log = debuglog('allium:relay');

/** Connections the listener accepts at once. */
export const MAX_CONNECTIONS = 4096;

export interface OrListener {
  readonly port: number;
  /** Stop listening and destroy every socket it accepted. */
  close(): Promise<void>;
}

export interface OrListenerOptions {
  /**
   * Hand sockets over before anything is read from them, to pass them to
   * another process; close() then returns once the port is closed, without
   * waiting for those sockets.
   */
  pauseOnConnect?: boolean;
}

/** Listen on address:port (0 picks a free port); `accept` gets each socket. Rejects if the port cannot be bound. */
export async function listenOrPort(
  address: string,
  port: number,
  accept: (socket: Socket) => Promise<unknown>,
  opts: OrListenerOptions = {},
): Promise<OrListener> {
  const sockets = new Set<Socket>();
  const server: Server = createServer({ pauseOnConnect: opts.pauseOnConnect ?? false }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    // Links batch cells per event-loop turn; Nagle would hold a lone cell back (docs/architecture.md).
    socket.setNoDelay(true);
    accept(socket).catch((error: Error) => {
      log('inbound link refused: %s', error.message);
      socket.destroy();
    });
  });
  server.maxConnections = MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address();
  if (bound === null || typeof bound === 'string') {
    server.close();
    throw new AlliumError('ERR_CONFIG', 'relay listener has no address');
  }
  return {
    port: bound.port,
    async close() {
      for (const socket of sockets) socket.destroy();
      if (opts.pauseOnConnect === true) {
        // Sockets handed to other processes: Node's server would wait for them (and
        // never finish once those processes are gone); the port is closed at once anyway.
        server.close();
        return;
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
