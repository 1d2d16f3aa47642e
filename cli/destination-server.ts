/**
 * The testnet's destination (`allium destination`, docs/testnet.md): a small
 * HTTP/1.1 server for exits to reach, in the netns testnet on its own
 * namespace address.
 *
 *   GET /ip        → the address the connection came from (the exit's), one line
 *   GET /hello     → a short text
 *   GET /bytes/N   → N bytes (at most 1 GiB) that do not compress, streamed with backpressure
 *
 * Anything else is 404; a method other than GET or HEAD is 405. It logs
 * nothing about its clients.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crypto } from '../src/crypto/crypto.js';

export const DESTINATION_HELLO = 'hello from the allium testnet destination\n';
export const MAX_DESTINATION_BYTES = 1 << 30;
/** One random block, repeated: enough to defeat any compression on the way. */
const BLOCK = Buffer.from(crypto.randomBytes(64 * 1024));

export interface DestinationServer {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

async function sendBytes(res: ServerResponse, total: number): Promise<void> {
  let left = total;
  while (left > 0 && !res.destroyed) {
    const chunk = left >= BLOCK.length ? BLOCK : BLOCK.subarray(0, left);
    left -= chunk.length;
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

function handle(req: IncomingMessage, res: ServerResponse): void {
  const send = (status: number, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), ...headers });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n', { allow: 'GET, HEAD' });
  const path = (req.url ?? '/').split('?')[0]!;
  if (path === '/ip') return send(200, `${req.socket.remoteAddress ?? ''}\n`);
  if (path === '/hello') return send(200, DESTINATION_HELLO);
  const m = /^\/bytes\/(\d{1,10})$/.exec(path);
  if (m !== null && Number(m[1]) <= MAX_DESTINATION_BYTES) {
    const n = Number(m[1]);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(n) });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    void sendBytes(res, n);
    return;
  }
  send(404, 'not found\n');
}

/** Listen on address:port (0 = any free port). Rejects if it cannot. */
export async function startDestination(address: string, port: number): Promise<DestinationServer> {
  const server = createServer(handle);
  server.maxConnections = 1024;
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return {
    address: bound.address,
    port: bound.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
