/**
 * The directory HTTP server (docs/protocol.md §9.2): routes,
 * bounded request bodies, timeouts (a slow request head or body is dropped),
 * per-address limits on open connections and on the request rate, and
 * content-encoding negotiation.
 * It knows nothing about documents; the authority passes the handlers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { debuglog } from 'node:util';
import { MAX_DESCRIPTOR_BYTES } from '../src/netdoc/descriptor.js';
import { ConcurrencyLimiter, RateLimiter } from '../src/net/limits.js';
import { MAX_DETACHED_SIGNATURE_BYTES } from '../src/netdoc/detached-signature.js';
import { MAX_VOTE_BYTES } from '../src/netdoc/vote.js';

const log = debuglog('allium:directory');

export const MAX_UPLOAD_BYTES = MAX_DESCRIPTOR_BYTES;
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
export const HEADERS_TIMEOUT_MS = 5_000;
export const MAX_CONNECTIONS = 1024;
/** Vote bodies (up to 8 MiB each) read at once; more get 503, so uploads cannot pile up memory (§9.2). */
export const MAX_VOTE_UPLOADS = 16;

export interface Reply {
  status: number;
  body: string | Uint8Array;
  contentType?: string;
  headers?: Record<string, string>;
}

export interface DirectoryHandlers {
  /** Body already bounded and decoded as strict UTF-8. */
  uploadDescriptor(text: string): Reply;
  /** Returns the consensus reply for the negotiated encoding. */
  getConsensus(encoding: 'gzip' | 'deflate' | 'identity'): Reply;
  getDescriptor(identityHex: string): Reply;
  getAuthority(): Reply;
  /** A vote uploaded by another authority (§9.5); body bounded by MAX_VOTE_BYTES. */
  uploadVote(text: string): Reply;
  /** A vote held for round `validAfterSeconds` by the authority `identityHex`. */
  getVote(validAfterSeconds: number, identityHex: string): Reply;
  /** A detached signature uploaded by another authority (§9.5). */
  uploadSignature(text: string): Reply;
  /** This authority's detached signature for round `validAfterSeconds`. */
  getSignature(validAfterSeconds: number): Reply;
  /** The HTML status page at `/` (§9.10). */
  getStatusPage(): Reply;
}

export interface HttpServerOptions {
  requestTimeoutMs?: number;
  /** Connections one address may hold open at once; more are closed at once (0: no limit). Default 16. */
  maxConnectionsPerAddress?: number;
  /** Requests per second per address; past it 429 and the connection closes. Default 10. */
  requestRate?: number;
  /** Requests an address may save up. Default 50. */
  requestBurst?: number;
  /** Clock for the request rate, ms (tests). Default Date.now. */
  now?: () => number;
}

/** Per-address limits of the directory port (docs/protocol.md §9.2). */
export const DIR_LIMIT_DEFAULTS = Object.freeze({ maxConnectionsPerAddress: 16, requestRate: 10, requestBurst: 50 });

function text(status: number, body: string): Reply {
  return { status, body: `${body}\n`, contentType: 'text/plain; charset=utf-8' };
}

/** Picks gzip, then deflate, then identity from an Accept-Encoding header (q=0 refuses). */
export function negotiateEncoding(header: string | undefined): 'gzip' | 'deflate' | 'identity' {
  if (header === undefined) return 'identity';
  const q = new Map<string, number>();
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (name === undefined || name === '') continue;
    let weight = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/.exec(p);
      if (m !== null) weight = Number(m[1]);
    }
    q.set(name, Number.isFinite(weight) ? weight : 0);
  }
  const weight = (name: string): number => q.get(name) ?? q.get('*') ?? 0;
  if (weight('gzip') > 0) return 'gzip';
  if (weight('deflate') > 0) return 'deflate';
  return 'identity';
}

function send(req: IncomingMessage, res: ServerResponse, reply: Reply, close = false): void {
  if (res.headersSent) return;
  const body = typeof reply.body === 'string' ? Buffer.from(reply.body, 'utf8') : Buffer.from(reply.body);
  res.statusCode = reply.status;
  res.setHeader('content-type', reply.contentType ?? 'text/plain; charset=utf-8');
  res.setHeader('content-length', body.length);
  res.setHeader('cache-control', 'no-store');
  for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
  if (close) res.setHeader('connection', 'close');
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** How much of a refused body is read and thrown away (so the client sees the answer) before the socket is cut. */
const DISCARD_LIMIT_BYTES = 256 * 1024;
const DISCARD_TIME_MS = 2_000;

/** Answers `reply` with connection: close, then discards a bounded amount of the body and cuts the connection. */
function refuse(req: IncomingMessage, res: ServerResponse, reply: Reply, immediately = false): void {
  send(req, res, reply, true);
  req.removeAllListeners('data');
  const socket = req.socket;
  if (immediately) {
    res.once('finish', () => socket.destroy());
    return;
  }
  let discarded = 0;
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > DISCARD_LIMIT_BYTES) socket.destroy();
  });
  const cut = setTimeout(() => socket.destroy(), DISCARD_TIME_MS);
  socket.once('close', () => clearTimeout(cut));
  req.resume();
}

/** Reads a body of at most `limit` bytes; answers 413/408/400 itself and resolves undefined on failure. */
function readBody(req: IncomingMessage, res: ServerResponse, limit: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && (!/^[0-9]+$/.test(declared) || Number(declared) > limit)) {
      refuse(req, res, text(413, `body larger than ${limit} bytes`));
      resolve(undefined);
      return;
    }
    const chunks: Buffer[] = [];
    let length = 0;
    let done = false;
    const finish = (value: string | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(value);
    };
    const timer = setTimeout(() => {
      refuse(req, res, text(408, 'request body too slow'), true);
      finish(undefined);
    }, timeoutMs);
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      length += chunk.length;
      if (length > limit) {
        refuse(req, res, text(413, `body larger than ${limit} bytes`));
        finish(undefined);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      try {
        finish(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks)));
      } catch {
        send(req, res, text(400, 'body is not UTF-8'));
        finish(undefined);
      }
    });
    req.on('error', () => finish(undefined));
    req.on('close', () => finish(undefined));
  });
}

const DESCRIPTOR_PATH = /^\/allium\/v1\/descriptor\/([0-9a-fA-F]{64})$/;
const VOTE_PATH = /^\/allium\/v1\/vote\/([0-9]{1,12})\/([0-9a-fA-F]{64})$/;
const SIGNATURE_PATH = /^\/allium\/v1\/signature\/([0-9]{1,12})$/;

export function createDirectoryServer(handlers: DirectoryHandlers, opts: HttpServerOptions = {}): Server {
  const requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const perAddress = new ConcurrencyLimiter(opts.maxConnectionsPerAddress ?? DIR_LIMIT_DEFAULTS.maxConnectionsPerAddress);
  const rate = new RateLimiter({
    rate: opts.requestRate ?? DIR_LIMIT_DEFAULTS.requestRate,
    burst: opts.requestBurst ?? DIR_LIMIT_DEFAULTS.requestBurst,
    ...(opts.now !== undefined ? { now: opts.now } : {}),
  });
  let voteUploads = 0;
  const server = createServer(
    {
      // Our own body timer answers 408 first; Node's request timeout is only the backstop.
      requestTimeout: 2 * requestTimeoutMs,
      headersTimeout: Math.min(HEADERS_TIMEOUT_MS, requestTimeoutMs),
      keepAliveTimeout: 5_000,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(requestTimeoutMs / 4))),
      maxHeaderSize: 8192,
    },
    (req, res) => {
      if (!rate.take(req.socket.remoteAddress ?? '')) {
        refuse(req, res, { ...text(429, 'too many requests'), headers: { 'retry-after': '1' } }, true);
        return;
      }
      void route(req, res).catch((error: unknown) => {
        log('request failed: %s', (error as Error).message);
        send(req, res, text(500, 'internal error'), true);
      });
    },
  );
  server.maxConnections = MAX_CONNECTIONS;
  // Per address, counted from accept: past the limit the connection is closed before any byte is read.
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    if (!perAddress.acquire(address)) {
      socket.destroy();
      return;
    }
    socket.once('close', () => perAddress.release(address));
  });
  server.maxHeadersCount = 64;
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    const status = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    socket.destroy();
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? '';
    const path = (req.url ?? '').split('?')[0] ?? '';
    const isGet = method === 'GET' || method === 'HEAD';
    const only = (allowed: string): void => {
      req.resume();
      send(req, res, { ...text(405, 'method not allowed'), headers: { allow: allowed } });
    };

    if (path === '/allium/v1/descriptor') {
      if (method !== 'POST') return only('POST');
      const body = await readBody(req, res, MAX_UPLOAD_BYTES, requestTimeoutMs);
      if (body === undefined) return;
      send(req, res, handlers.uploadDescriptor(body));
      return;
    }
    if (path === '/allium/v1/consensus') {
      if (!isGet) return only('GET, HEAD');
      req.resume();
      send(req, res, handlers.getConsensus(negotiateEncoding(req.headers['accept-encoding'])));
      return;
    }
    const m = DESCRIPTOR_PATH.exec(path);
    if (m !== null) {
      if (!isGet) return only('GET, HEAD');
      req.resume();
      send(req, res, handlers.getDescriptor(m[1]!.toLowerCase()));
      return;
    }
    if (path === '/allium/v1/vote' || path === '/allium/v1/signature') {
      if (method !== 'POST') return only('POST');
      const vote = path === '/allium/v1/vote';
      if (vote && voteUploads >= MAX_VOTE_UPLOADS) {
        refuse(req, res, text(503, 'too many vote uploads under way'), true);
        return;
      }
      if (vote) voteUploads++;
      let body: string | undefined;
      try {
        body = await readBody(req, res, vote ? MAX_VOTE_BYTES : MAX_DETACHED_SIGNATURE_BYTES, requestTimeoutMs);
      } finally {
        if (vote) voteUploads--;
      }
      if (body === undefined) return;
      send(req, res, vote ? handlers.uploadVote(body) : handlers.uploadSignature(body));
      return;
    }
    const v = VOTE_PATH.exec(path);
    if (v !== null) {
      if (!isGet) return only('GET, HEAD');
      req.resume();
      send(req, res, handlers.getVote(Number(v[1]), v[2]!.toLowerCase()));
      return;
    }
    const sg = SIGNATURE_PATH.exec(path);
    if (sg !== null) {
      if (!isGet) return only('GET, HEAD');
      req.resume();
      send(req, res, handlers.getSignature(Number(sg[1])));
      return;
    }
    if (path === '/') {
      if (!isGet) return only('GET, HEAD');
      req.resume();
      send(req, res, handlers.getStatusPage());
      return;
    }
    if (path === '/allium/v1/authority') {
      if (!isGet) return only('GET, HEAD');
      req.resume();
      send(req, res, handlers.getAuthority());
      return;
    }
    req.resume();
    send(req, res, text(404, 'not found'));
  }

  return server;
}
