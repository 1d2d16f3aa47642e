/**
 * startClient(): the client role, wiring only. Keeps a verified consensus,
 * builds circuits through the circuit manager, and serves SOCKS5 on
 * 127.0.0.1 with the same openStream() that programs can call directly.
 */
import type { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import type { Consensus } from '../src/netdoc/consensus.js';
import { AlliumError } from '../src/errors.js';
import { CircuitManager } from './circuit-manager.js';
import { fetchConsensus, type AuthorityRef } from './directory-client.js';
import { startSocksServer, type SocksServer } from './socks/server.js';

export type { AuthorityRef } from './directory-client.js';

const log = debuglog('allium:client');

export interface ClientConfig {
  authorities: AuthorityRef[];
  socksHost: string;
  /** 0 picks a free port. */
  socksPort: number;
  circuitBuildTimeoutMs?: number;
}

export interface ClientHandle {
  readonly socksAddress: { host: string; port: number };
  /** Resolves once a three-hop circuit is built; rejects after `timeoutMs`. */
  whenReady(timeoutMs: number): Promise<void>;
  /** Open a stream to host:port through the network; hostnames are resolved by the exit. */
  openStream(host: string, port: number, opts?: { isolation?: string }): Promise<Duplex>;
  close(): Promise<void>;
}

const RETRY_MS = 500;
const REFRESH_MS = 30_000;
/** A port every exit allows by default, used to build the first circuit. */
const PREBUILD_PORT = 80;

export async function startClient(config: ClientConfig): Promise<ClientHandle> {
  if (config.authorities.length === 0) throw new AlliumError('ERR_CONFIG', 'at least one authority is required');
  let consensus: Consensus | null = null;
  let closed = false;
  let refreshTimer: NodeJS.Timeout | undefined;

  const manager = new CircuitManager({ consensus: () => consensus, buildTimeoutMs: config.circuitBuildTimeoutMs ?? 30_000 });

  const refresh = async (): Promise<void> => {
    try {
      consensus = await fetchConsensus(config.authorities, Date.now, consensus);
    } catch (error) {
      log('consensus fetch failed: %s', (error as Error).message);
    }
    // Until the first circuit is built (the network may still be forming), refetch quickly.
    if (!closed) refreshTimer = setTimeout(refresh, isReady ? REFRESH_MS : RETRY_MS);
  };
  let isReady = false;
  await refresh();

  let readyResolve!: () => void;
  const ready = new Promise<void>((resolve) => (readyResolve = resolve));
  let prebuildTimer: NodeJS.Timeout | undefined;
  const prebuild = async (): Promise<void> => {
    if (closed) return;
    try {
      await manager.circuitFor(PREBUILD_PORT, '');
      isReady = true;
      readyResolve();
    } catch (error) {
      log('first circuit not built yet: %s', (error as Error).message);
      prebuildTimer = setTimeout(prebuild, RETRY_MS);
    }
  };
  void prebuild();

  const openStream = (host: string, port: number, opts?: { isolation?: string }) => manager.openStream(host, port, opts?.isolation ?? '');

  let socks: SocksServer;
  try {
    socks = await startSocksServer({
      host: config.socksHost,
      port: config.socksPort,
      connect: (request) => {
        // Length-prefixed so that no two credential pairs share a key.
        const isolation = request.username !== undefined ? `${request.username.length}:${request.username}${request.password ?? ''}` : '';
        return openStream(request.host, request.port, { isolation });
      },
    });
  } catch (error) {
    closed = true;
    clearTimeout(refreshTimer);
    clearTimeout(prebuildTimer);
    throw error;
  }

  return {
    socksAddress: socks.address,
    whenReady(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new AlliumError('ERR_TIMEOUT', 'no circuit could be built in time')), timeoutMs);
      });
      return Promise.race([ready, timeout]).finally(() => clearTimeout(timer));
    },
    openStream,
    async close() {
      closed = true;
      clearTimeout(refreshTimer);
      clearTimeout(prebuildTimer);
      await socks.close();
      await manager.close();
    },
  };
}
