/**
 * The client's SOCKS port (SOCKS5, SOCKS4, SOCKS4a): accepts local
 * applications, runs the sans-IO handshake (./handshake.ts), hands a CONNECT
 * to a connector (the onion client) and splices the client socket to the
 * stream it returns (src/stream/splice.ts: half-close both ways, a reset when
 * the stream fails); a RESOLVE or RESOLVE_PTR goes to a resolver and gets one
 * reply.
 *
 * Failures stay per connection: garbage, a slow client or a failed stream
 * close that one socket; nothing is logged (no destinations, no addresses).
 * docs/protocol.md §12.
 */
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { AlliumError, StreamEndedError } from '../../src/errors.js';
import { closeAfter, openAndSplice, startLocalListener, type LocalListener } from '../local-listener.js';
import { SocksReply, socksReplyForEnd } from './replies.js';
import { SocksServerHandshake, failureReply, resolvedReply, successReply, type SocksRequest, type SocksResolveAnswer } from './handshake.js';

/**
 * Opens the stream for a CONNECT request. Resolves once the remote end is
 * CONNECTED; rejects with StreamEndedError(reason) or another AlliumError.
 * `signal` (optional to use) aborts when the client socket or the server goes
 * away before the stream is handed over. `earlyData`: bytes the application
 * sent right after its request, before any reply; the connector must deliver
 * them first on the stream (the onion client sends them as optimistic DATA
 * right after BEGIN, docs/protocol.md §12).
 */
export type SocksConnector = (request: SocksRequest, signal?: AbortSignal, earlyData?: Uint8Array) => Promise<Duplex>;

/**
 * Answers a RESOLVE (a hostname → an address) or RESOLVE_PTR (an address → a
 * name) request; resolves with the answer, or null when the lookup failed
 * (RESOLVED with an error). Rejects like a connector for anything else.
 */
export type SocksResolver = (request: SocksRequest, signal?: AbortSignal) => Promise<SocksResolveAnswer | null>;

export interface SocksServerOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  connect: SocksConnector;
  /** RESOLVE / RESOLVE_PTR; without it they get COMMAND_NOT_SUPPORTED (SOCKS4: REJECTED). */
  resolve?: SocksResolver;
  /** Bound on greeting + auth + request. Default 10000. */
  handshakeTimeoutMs?: number;
  /** Simultaneous client sockets; more are closed at once. Default DEFAULT_MAX_CONNECTIONS (1024). */
  maxConnections?: number;
}

/** The listening SOCKS port; close() resets every open client socket (its stream ends too). */
export type SocksServer = LocalListener;

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** The SOCKS5 reply code for a failed request (./replies.ts). */
export function replyCodeFor(err: unknown): SocksReply {
  if (err instanceof StreamEndedError) return socksReplyForEnd(err.reason);
  if (err instanceof AlliumError && err.code === 'ERR_TIMEOUT') return SocksReply.TTL_EXPIRED;
  return SocksReply.GENERAL_FAILURE;
}

export async function startSocksServer(opts: SocksServerOptions): Promise<SocksServer> {
  const handshakeTimeoutMs = opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  return startLocalListener({
    ...(opts.host !== undefined ? { host: opts.host } : {}),
    port: opts.port,
    ...(opts.maxConnections !== undefined ? { maxConnections: opts.maxConnections } : {}),
    serve: (socket) => serveConnection(socket, opts, handshakeTimeoutMs),
  });
}

function serveConnection(socket: net.Socket, opts: SocksServerOptions, handshakeTimeoutMs: number): void {
  const handshake = new SocksServerHandshake();
  const abort = new AbortController();
  let finished = false; // handshake over (success or failure): ignore further 'data'

  const timer = setTimeout(() => {
    if (!finished) {
      finished = true;
      closeAfter(socket);
    }
  }, handshakeTimeoutMs);
  timer.unref();

  socket.once('close', () => {
    clearTimeout(timer);
    abort.abort();
  });

  const onData = (chunk: Buffer): void => {
    if (finished) return;
    const step = handshake.feed(chunk);
    if (step.error !== undefined) {
      finished = true;
      clearTimeout(timer);
      socket.off('data', onData);
      closeAfter(socket, step.send);
      return;
    }
    if (step.send !== undefined) socket.write(step.send);
    if (step.request === undefined) return;
    finished = true;
    clearTimeout(timer);
    // Stop reading: anything the client sends now waits in the socket (backpressure),
    // after `earlyData`, until the stream is up.
    socket.off('data', onData);
    socket.pause();
    if (step.request.command === 'connect') openStream(socket, opts.connect, step.request, step.earlyData, abort.signal);
    else answerResolve(socket, opts.resolve, step.request, abort.signal);
  };
  socket.on('data', onData);
  socket.on('end', () => {
    if (!finished) {
      finished = true;
      clearTimeout(timer);
      socket.destroy();
    }
  });
}

function openStream(socket: net.Socket, connect: SocksConnector, request: SocksRequest, earlyData: Uint8Array | undefined, signal: AbortSignal): void {
  openAndSplice(
    socket,
    () => connect(request, signal, earlyData),
    () => successReply(request),
    (err) => failureReply(request, replyCodeFor(err)),
  );
}

function answerResolve(socket: net.Socket, resolve: SocksResolver | undefined, request: SocksRequest, signal: AbortSignal): void {
  if (resolve === undefined) {
    closeAfter(socket, failureReply(request, SocksReply.COMMAND_NOT_SUPPORTED));
    return;
  }
  let pending: Promise<SocksResolveAnswer | null>;
  try {
    pending = resolve(request, signal);
  } catch (err) {
    pending = Promise.reject(err);
  }
  pending.then(
    (answer) => closeAfter(socket, resolvedReply(request, answer)),
    (err: unknown) => closeAfter(socket, failureReply(request, replyCodeFor(err))),
  );
}

