/**
 * The client's HTTP tunnel port (docs/protocol.md §12.2), for programs that
 * speak only HTTP proxies: accepts local applications, runs the sans-IO
 * request parser (./request.ts), hands the CONNECT to a connector (the onion
 * client) and splices the socket to the stream it returns
 * (src/stream/splice.ts: half-close both ways, a reset when the stream
 * fails); any failure before the tunnel is open gets one HTTP answer
 * (./responses.ts) and a close.
 *
 * Failures stay per connection; nothing is logged (no destinations, no
 * client addresses).
 */
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { closeAfter, openAndSplice, startLocalListener, type LocalListener } from '../local-listener.js';
import { ConnectRequestParser, type ConnectRequest } from './request.js';
import { tunnelEstablished, tunnelFailureFor, tunnelFailureResponse } from './responses.js';

/**
 * Opens the stream for a CONNECT. Resolves once the remote end is CONNECTED;
 * rejects with StreamEndedError(reason) or another AlliumError. `signal`
 * aborts when the client goes away first. `earlyData` (bytes after the
 * header block) must be delivered first on the stream (optimistic data).
 */
export type TunnelConnector = (request: ConnectRequest, signal: AbortSignal, earlyData?: Uint8Array) => Promise<Duplex>;

export interface HttpTunnelOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  connect: TunnelConnector;
  /** Bound on receiving the whole request header, ms. Default 10000. */
  headerTimeoutMs?: number;
  /** Simultaneous client sockets; more are closed at once. Default DEFAULT_MAX_CONNECTIONS (1024). */
  maxConnections?: number;
}

/** The listening tunnel port; close() resets every open client socket (its stream ends too). */
export type HttpTunnelServer = LocalListener;

const DEFAULT_HEADER_TIMEOUT_MS = 10_000;

export async function startHttpTunnel(opts: HttpTunnelOptions): Promise<HttpTunnelServer> {
  const headerTimeoutMs = opts.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS;
  return startLocalListener({
    ...(opts.host !== undefined ? { host: opts.host } : {}),
    port: opts.port,
    ...(opts.maxConnections !== undefined ? { maxConnections: opts.maxConnections } : {}),
    serve: (socket) => serveConnection(socket, opts.connect, headerTimeoutMs),
  });
}

function serveConnection(socket: net.Socket, connect: TunnelConnector, headerTimeoutMs: number): void {
  const parser = new ConnectRequestParser();
  const abort = new AbortController();
  let finished = false;
  const timer = setTimeout(() => {
    if (finished) return;
    finished = true;
    closeAfter(socket, tunnelFailureResponse('1.1', 408, 'the request header did not arrive in time'));
  }, headerTimeoutMs);
  timer.unref();
  socket.once('close', () => {
    clearTimeout(timer);
    abort.abort();
  });

  const onData = (chunk: Buffer): void => {
    if (finished) return;
    const step = parser.feed(chunk);
    if (step.kind === 'more') return;
    finished = true;
    clearTimeout(timer);
    socket.off('data', onData);
    if (step.kind === 'error') {
      const { status, message } = step.error;
      closeAfter(socket, tunnelFailureResponse('1.1', status, message, null, status === 405 ? ['Allow: CONNECT'] : []));
      return;
    }
    socket.pause();
    openTunnel(socket, connect, step.request, step.earlyData, abort.signal);
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

function openTunnel(socket: net.Socket, connect: TunnelConnector, request: ConnectRequest, earlyData: Uint8Array, signal: AbortSignal): void {
  openAndSplice(
    socket,
    () => connect(request, signal, earlyData.length > 0 ? earlyData : undefined),
    () => tunnelEstablished(request.httpVersion),
    (err) => {
      const failure = tunnelFailureFor(err);
      return tunnelFailureResponse(request.httpVersion, failure.status, failure.message, failure.endReason);
    },
  );
}

