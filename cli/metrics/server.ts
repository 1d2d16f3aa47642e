/**
 * The metrics port: a small read-only HTTP server (GET and HEAD only) that
 * answers only clients whose address is in the allow list (403 otherwise) —
 * loopback by default, as Tor's MetricsPortPolicy. Routes are given by the
 * caller: /metrics (Prometheus text) and the dashboard. Bounded: at most
 * MAX_CONNECTIONS sockets, a request timeout, no request bodies.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseIp, unmapIPv4 } from '../../src/net/address.js';
import { LOOPBACK_PREFIXES, parsePrefix, prefixContains, type IpPrefix } from '../../src/net/prefix.js';
import { AlliumError } from '../../src/errors.js';

export const MAX_CONNECTIONS = 64;
const REQUEST_TIMEOUT_MS = 10_000;

/** One answer: a body with its content type, or a status with a short text. */
export interface Answer {
  status?: number;
  contentType: string;
  body: string | Uint8Array;
}

/** A route: path → answer (sync or async); undefined → 404. */
export type Routes = (path: string, query: URLSearchParams) => Answer | undefined | Promise<Answer | undefined>;

export interface MetricsServer {
  readonly address: string;
  readonly port: number;
  /** Replace the allow list (SIGHUP). */
  setAllow(prefixes: readonly IpPrefix[]): void;
  close(): Promise<void>;
}

/** `metrics.allow` strings → prefixes; the default (empty) is loopback. Throws AlliumError ERR_CONFIG for a bad prefix. */
export function allowList(texts: readonly string[] | undefined): IpPrefix[] {
  if (texts === undefined || texts.length === 0) return [...LOOPBACK_PREFIXES];
  return texts.map((t) => {
    const p = parsePrefix(t);
    if (p === null) throw new AlliumError('ERR_CONFIG', `metrics.allow: not a prefix: ${t}`);
    return p;
  });
}

/** Whether `address` (as Node reports a peer, maybe IPv4-mapped) is in one of `allow`. */
export function allowed(allow: readonly IpPrefix[], address: string | undefined): boolean {
  const ip = address === undefined ? null : parseIp(address);
  if (ip === null) return false;
  const plain = unmapIPv4(ip);
  return allow.some((p) => prefixContains(p, plain) || prefixContains(p, ip));
}

/** Listen on address:port (0 = any free port). Rejects if the port cannot be bound. */
export async function startMetricsServer(opts: { address: string; port: number; allow: readonly IpPrefix[]; routes: Routes }): Promise<MetricsServer> {
  let allow = opts.allow;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const send = (status: number, contentType: string, body: string | Uint8Array) => {
      res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (!allowed(allow, req.socket.remoteAddress)) return send(403, 'text/plain', 'forbidden\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(405, 'text/plain', 'method not allowed\n');
    }
    const url = new URL(req.url ?? '/', 'http://metrics.invalid');
    const answer = await opts.routes(url.pathname, url.searchParams);
    if (answer === undefined) return send(404, 'text/plain', 'not found\n');
    send(answer.status ?? 200, answer.contentType, answer.body);
  };
  const server: Server = createServer((req, res) => {
    req.resume();
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    });
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = REQUEST_TIMEOUT_MS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return {
    address: bound.address,
    port: bound.port,
    setAllow(prefixes) {
      allow = prefixes;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
