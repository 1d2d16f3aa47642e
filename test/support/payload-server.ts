/**
 * A loopback HTTP server for end-to-end tests and benchmarks.
 *
 *   GET /hello          → a small text body (HELLO_BODY)
 *   GET /bytes/N        → N pseudo-random, incompressible bytes, streamed with
 *                         backpressure. The bytes are a deterministic function
 *                         of (N, seed) (AES-256-CTR keystream), so a test can
 *                         recompute their SHA-256 with payloadSha256(); for
 *                         N up to 16 MiB the response also carries it in the
 *                         `x-payload-sha256` header (bigger ones skip it so
 *                         the first byte is not delayed). `?seed=text` picks
 *                         the seed (default "allium").
 *
 * Every request's remote address is recorded, so a test can assert the server
 * saw the exit relay's address (e.g. 127.1.0.1) and never the client's.
 * No side effects at import.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const HELLO_BODY = 'hello from the allium payload server\n';
export const DEFAULT_SEED = 'allium';
/** Largest /bytes/N served (1 GiB). */
export const MAX_PAYLOAD_BYTES = 1 << 30;
const CHUNK_BYTES = 64 * 1024;
/** Up to this size, /bytes/N also sends its SHA-256 in a header. */
export const SHA256_HEADER_MAX_BYTES = 16 * 1024 * 1024;

export interface PayloadRequest {
  method: string;
  path: string;
  remoteAddress: string;
  remotePort: number;
}

export interface PayloadServer {
  readonly host: string;
  readonly port: number;
  /** `http://host:port/path`. */
  url(path: string): string;
  /** Every request so far, in arrival order. */
  readonly requests: readonly PayloadRequest[];
  /** The distinct remote addresses seen so far. */
  remoteAddresses(): string[];
  close(): Promise<void>;
}

/** A generator of the deterministic payload for `seed`, in chunks of at most `chunkBytes`. */
export function* payloadChunks(totalBytes: number, seed = DEFAULT_SEED, chunkBytes = CHUNK_BYTES): Generator<Buffer> {
  const key = createHash('sha256').update(`allium-payload:${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(chunkBytes);
  let left = totalBytes;
  while (left > 0) {
    const n = Math.min(left, chunkBytes);
    yield cipher.update(n === chunkBytes ? zeros : zeros.subarray(0, n));
    left -= n;
  }
}

/** The whole deterministic payload (keep it small; use payloadSha256 for big ones). */
export function payloadBytes(totalBytes: number, seed = DEFAULT_SEED): Buffer {
  return Buffer.concat([...payloadChunks(totalBytes, seed)]);
}

/** Hex SHA-256 of the payload /bytes/N serves for `seed`. */
export function payloadSha256(totalBytes: number, seed = DEFAULT_SEED): string {
  const hash = createHash('sha256');
  for (const chunk of payloadChunks(totalBytes, seed)) hash.update(chunk);
  return hash.digest('hex');
}

async function streamPayload(res: ServerResponse, totalBytes: number, seed: string): Promise<void> {
  for (const chunk of payloadChunks(totalBytes, seed)) {
    if (res.destroyed) return;
    if (!res.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
  }
  res.end();
}

export async function startPayloadServer(opts: { host?: string; port?: number } = {}): Promise<PayloadServer> {
  const host = opts.host ?? '127.0.0.1';
  const requests: PayloadRequest[] = [];

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://payload.invalid');
    requests.push({
      method: req.method ?? '',
      path: url.pathname,
      remoteAddress: req.socket.remoteAddress ?? '',
      remotePort: req.socket.remotePort ?? 0,
    });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (url.pathname === '/hello') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(HELLO_BODY) });
      res.end(req.method === 'HEAD' ? undefined : HELLO_BODY);
      return;
    }
    const bytes = /^\/bytes\/(\d{1,10})$/.exec(url.pathname);
    if (bytes !== null) {
      const n = Number(bytes[1]);
      if (n > MAX_PAYLOAD_BYTES) {
        res.writeHead(413, { 'content-type': 'text/plain' }).end('too large\n');
        return;
      }
      const seed = url.searchParams.get('seed') ?? DEFAULT_SEED;
      if (!/^[\w.-]{1,64}$/.test(seed)) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('bad seed\n');
        return;
      }
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': n,
        'x-payload-seed': seed,
        ...(n <= SHA256_HEADER_MAX_BYTES ? { 'x-payload-sha256': payloadSha256(n, seed) } : {}),
      });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      streamPayload(res, n, seed).catch(() => res.destroy());
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  server.keepAliveTimeout = 1_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    host,
    port,
    url: (path: string) => `http://${host}:${port}${path.startsWith('/') ? path : `/${path}`}`,
    requests,
    remoteAddresses: () => [...new Set(requests.map((r) => r.remoteAddress))],
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
