/**
 * The listening half shared by the client's application ports (SOCKS,
 * HTTP tunnel): a TCP server on a local address that bounds simultaneous
 * sockets, turns Nagle off, keeps per-socket errors to that socket, and on
 * close stops listening and resets every socket still open.
 *
 * What a port says on its sockets is the caller's `serve`; this module never
 * reads or logs a byte or an address.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { EndReason } from '../src/cell/reasons.js';
import { StreamEndedError } from '../src/errors.js';
import { resetSocket, splice } from '../src/stream/splice.js';

/** Simultaneous application sockets a port accepts by default; more are closed at once. */
export const DEFAULT_MAX_CONNECTIONS = 1024;

export interface LocalListenerOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Simultaneous sockets; more are closed at accept. Default DEFAULT_MAX_CONNECTIONS. */
  maxConnections?: number;
  /** Runs the port's protocol on one accepted socket. A throw closes that socket only. */
  serve(socket: net.Socket): void;
}

export interface LocalListener {
  /** Where it listens (the bound port when 0 was asked for). */
  readonly address: { host: string; port: number };
  /**
   * Stop listening and reset every open socket: a reset, not a FIN, so an
   * application cannot take a transfer cut short for a complete one.
   * Resolves once every socket is closed; idempotent.
   */
  close(): Promise<void>;
}

/** After a port's last answer, how long to wait for the application to close before destroying (ms). */
const LINGER_MS = 2_000;

/**
 * A port's last word on a socket: write `last` (if any), half-close, drain and
 * discard whatever the application still sends (so no RST eats the answer),
 * and destroy after LINGER_MS.
 */
export function closeAfter(socket: net.Socket, last?: Uint8Array): void {
  if (socket.destroyed) return;
  socket.removeAllListeners('data');
  socket.on('data', () => {});
  socket.on('end', () => socket.destroy());
  if (last !== undefined) socket.end(last);
  else socket.end();
  socket.resume();
  const linger = setTimeout(() => socket.destroy(), LINGER_MS);
  linger.unref();
  socket.once('close', () => clearTimeout(linger));
}

/**
 * A port's CONNECT: `open()` opens the stream (resolving once CONNECTED);
 * then `granted` goes to the application and the socket is spliced to the
 * stream (src/stream/splice.ts). If opening fails, `refused(error)` is the
 * port's last word (closeAfter). A stream that arrives after the
 * application left is destroyed.
 */
export function openAndSplice(socket: net.Socket, open: () => Promise<Duplex>, granted: () => Uint8Array, refused: (error: unknown) => Uint8Array): void {
  let pending: Promise<Duplex>;
  try {
    pending = open();
  } catch (err) {
    pending = Promise.reject(err);
  }
  pending.then(
    (remote) => {
      remote.on('error', () => {
        /* splice() reports it; this only keeps an early error from escaping */
      });
      if (socket.destroyed) {
        remote.destroy();
        return;
      }
      socket.write(granted());
      // The early data went with BEGIN (the connector's optimistic data). The application
      // failing is not the destination's business: END MISC, as Tor's clients send.
      splice(socket, remote, { socketError: () => new StreamEndedError(EndReason.MISC, 'application connection failed') });
    },
    (err: unknown) => {
      if (socket.destroyed) return;
      closeAfter(socket, refused(err));
    },
  );
}

/** Listens on `host:port`; rejects with the listen error (e.g. EADDRINUSE). */
export async function startLocalListener(opts: LocalListenerOptions): Promise<LocalListener> {
  const maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const sockets = new Set<net.Socket>();
  let closing = false;

  // allowHalfOpen: an application that shuts down its write side still gets the answer.
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {
      /* per-socket errors end that socket only; 'close' cleans up */
    });
    if (closing || sockets.size >= maxConnections) {
      socket.destroy();
      return;
    }
    // Replies and stream data go out as they come; Nagle would hold small ones back for the application's delayed ACK.
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    try {
      opts.serve(socket);
    } catch {
      socket.destroy();
    }
  });
  server.on('error', () => {
    /* listen errors are reported through the listen promise below */
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });

  const bound = server.address() as net.AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    address: { host: bound.address, port: bound.port },
    close(): Promise<void> {
      closed ??= (async () => {
        closing = true;
        const listening = new Promise<void>((resolve) => server.close(() => resolve()));
        const gone = [...sockets].map((s) => new Promise<void>((resolve) => (s.closed ? resolve() : s.once('close', () => resolve()))));
        for (const s of sockets) resetSocket(s);
        await Promise.all([listening, ...gone]);
      })();
      return closed;
    },
  };
}
