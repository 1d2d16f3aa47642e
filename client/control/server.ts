/**
 * The client's control port (docs/control-port.md): a loopback listener;
 * per connection one command parser (./protocol.ts) and one session
 * (./session.ts), commands answered in order, and the asynchronous events
 * (./events.ts) each connection asked for with SETEVENTS.
 *
 * Every failure stays with its connection: malformed input gets a 5xx and,
 * where Tor closes, a close; a controller that stops reading while events
 * pile up is dropped once MAX_PENDING_OUTPUT_BYTES are queued; a connection
 * that has not authenticated within AUTH_TIMEOUT_MS is closed.
 */
import net from 'node:net';
import { AlliumError } from '../../src/errors.js';
import { ControlCommandParser, reply } from './protocol.js';
import { ControlSession, type ControlAuth, type ControlBackend } from './session.js';
import type { ControlEventSource } from './events.js';

/** Output a connection may have queued before it is dropped (bytes). */
export const MAX_PENDING_OUTPUT_BYTES = 1024 * 1024;
/** Time a new connection has to authenticate, ms. */
export const AUTH_TIMEOUT_MS = 60_000;
/** Simultaneous control connections. */
export const MAX_CONTROL_CONNECTIONS = 64;

export interface ControlServerOptions {
  /** Loopback only: '127.0.0.1' (default) or '::1'. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  backend: ControlBackend;
  auth: ControlAuth;
  events: ControlEventSource;
  /** n random bytes (SAFECOOKIE nonces). */
  random: (n: number) => Uint8Array;
  authTimeoutMs?: number;
}

export interface ControlServer {
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

export async function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  const host = opts.host ?? '127.0.0.1';
  if (host !== '127.0.0.1' && host !== '::1') throw new AlliumError('ERR_CONFIG', 'the control port listens on loopback only');
  if (opts.auth.cookie === null && opts.auth.passwords.length === 0) {
    throw new AlliumError('ERR_CONFIG', 'the control port needs cookie or password authentication');
  }
  const sockets = new Set<net.Socket>();
  let closing = false;
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    if (closing || sockets.size >= MAX_CONTROL_CONNECTIONS) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    serveController(socket, opts);
  });
  server.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as net.AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    address: { host: bound.address, port: bound.port },
    close() {
      closed ??= (async () => {
        closing = true;
        const listening = new Promise<void>((resolve) => server.close(() => resolve()));
        const gone = [...sockets].map((s) => new Promise<void>((resolve) => (s.closed ? resolve() : s.once('close', () => resolve()))));
        for (const s of sockets) s.destroy();
        await Promise.all([listening, ...gone]);
      })();
      return closed;
    },
  };
}

function serveController(socket: net.Socket, opts: ControlServerOptions): void {
  const parser = new ControlCommandParser();
  const session = new ControlSession(opts.backend, opts.auth, opts.random);
  let busy = false;
  let closing = false;

  const write = (text: string) => {
    if (socket.destroyed || closing) return;
    socket.write(text);
    if (socket.writableLength > MAX_PENDING_OUTPUT_BYTES) socket.destroy();
  };
  const finish = (text: string) => {
    if (socket.destroyed || closing) return;
    closing = true;
    socket.end(text);
    const linger = setTimeout(() => socket.destroy(), 2_000);
    linger.unref();
    socket.once('close', () => clearTimeout(linger));
  };

  const authTimer = setTimeout(() => {
    if (!session.authenticated) finish(reply(514, 'Authentication required.'));
  }, opts.authTimeoutMs ?? AUTH_TIMEOUT_MS);
  authTimer.unref();

  const stopEvents = opts.events.onEvent((event) => {
    if (session.authenticated && session.events.has(event.name)) write(`650 ${event.text}\r\n`);
  });
  socket.once('close', () => {
    clearTimeout(authTimer);
    stopEvents();
  });

  /** Answer every complete command, in order; an asynchronous answer holds the ones after it. */
  const drain = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      while (!closing && !socket.destroyed) {
        const next = parser.next();
        if (next.kind === 'more') return;
        if (next.kind === 'error') {
          finish(reply(500, next.message));
          return;
        }
        const handled = session.handle(next.command);
        let output;
        if (handled instanceof Promise) {
          // Hold further input (bounded buffering) until this answer is in.
          socket.pause();
          output = await handled;
          socket.resume();
        } else {
          output = handled;
        }
        if (output.close === true) {
          finish(output.reply);
          return;
        }
        if (output.reply !== '') write(output.reply);
        if (session.authenticated) clearTimeout(authTimer);
      }
    } finally {
      busy = false;
    }
  };

  socket.on('data', (chunk: Buffer) => {
    if (closing) return;
    parser.push(chunk);
    void drain();
  });
}
