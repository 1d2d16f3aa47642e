/**
 * A TCP (or Unix-socket) forwarder that can put an emulated wide-area link
 * (./shaped-transport.ts) between its clients and a target: every accepted
 * connection gets its own connection to the target, and with a shape both
 * directions are delayed and rate-limited. Used by `allium forward` (and its
 * standalone twin bench/wan-forwarder.ts) to front any TCP service, and by the
 * namespace testnet to carry the SOCKS port out of the client's namespace.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { AlliumError } from '../errors.js';
import type { LinkShape } from './delay-line.js';
import { shapeDuplex } from './shaped-transport.js';

/** A TCP host and port, or a Unix socket path. */
export type Endpoint = { host: string; port: number } | { path: string };

/** `HOST:PORT` (IPv6 in brackets) or `unix:PATH` → an Endpoint; null if neither. */
export function parseEndpoint(text: string): Endpoint | null {
  if (text.startsWith('unix:')) return text.length > 5 ? { path: text.slice(5) } : null;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (m === null) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  return { host: m[1] ?? m[2]!, port };
}

export function formatEndpoint(e: Endpoint): string {
  return 'path' in e ? `unix:${e.path}` : e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

export interface ForwarderOptions {
  listen: Endpoint;
  target: Endpoint;
  /** The link between the forwarder and the target, in both directions; null = none. */
  shape: LinkShape | null;
  /** Connections at once; default 1024. */
  maxConnections?: number;
}

export interface Forwarder {
  /** Where it listens (the bound port when 0 was asked for). */
  readonly address: Endpoint;
  /** Stop listening and destroy every connection. */
  close(): Promise<void>;
}

/** Start forwarding. Rejects if it cannot listen; throws RangeError for an invalid shape. */
export async function startForwarder(opts: ForwarderOptions): Promise<Forwarder> {
  const open = new Set<Duplex>();
  const server: Server = createServer((client: Socket) => {
    client.on('error', () => {});
    const upstream = connect(opts.target);
    upstream.on('error', () => {});
    // Small writes go out at once (no Nagle wait for an ACK), as on every link socket.
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const far: Duplex = opts.shape === null ? upstream : shapeDuplex(upstream, opts.shape);
    far.on('error', () => {});
    for (const s of [client, far]) {
      open.add(s);
      s.once('close', () => {
        open.delete(s);
        // One side gone for good: the other goes too.
        client.destroy();
        far.destroy();
      });
    }
    client.pipe(far);
    far.pipe(client);
  });
  server.maxConnections = opts.maxConnections ?? 1024;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if ('path' in opts.listen) server.listen(opts.listen.path, done);
    else server.listen(opts.listen.port, opts.listen.host, done);
  });
  const bound = server.address();
  if (bound === null) throw new AlliumError('ERR_CONFIG', 'forwarder has no address');
  const address: Endpoint = typeof bound === 'string' ? { path: bound } : { host: bound.address, port: bound.port };
  return {
    address,
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
