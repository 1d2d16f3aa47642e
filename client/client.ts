/**
 * startClient(): the client role, wiring only. Keeps a verified consensus
 * (consensus-refresh.ts), builds circuits through the circuit manager, tries
 * a first circuit until one is built (first-circuit.ts), and serves SOCKS5 on
 * 127.0.0.1 with the same openStream() that programs can call directly.
 */
import type { Duplex } from 'node:stream';
import { AlliumError } from '../src/errors.js';
import type { CircuitStats, LinkStats } from '../src/events.js';
import { CircuitManager } from './circuit-manager.js';
import { ConsensusRefresh } from './consensus-refresh.js';
import type { AuthorityRef } from './directory-client.js';
import { FirstCircuit } from './first-circuit.js';
import { startSocksServer, type SocksServer } from './socks/server.js';
import type { LinkShape } from '../src/link/delay-line.js';
import { ShapedTransport } from '../src/link/shaped-transport.js';
import { TcpTransport } from '../src/link/transport.js';

export type { AuthorityRef } from './directory-client.js';

export interface ClientConfig {
  authorities: AuthorityRef[];
  socksHost: string;
  /** 0 picks a free port. */
  socksPort: number;
  circuitBuildTimeoutMs?: number;
  /** Give every link to a guard a wide-area shape (delay, rate; src/link/shaped-transport.ts). */
  linkShape?: LinkShape;
}

export interface ClientHandle {
  readonly socksAddress: { host: string; port: number };
  /** Resolves once a three-hop circuit is built; rejects after `timeoutMs`. */
  whenReady(timeoutMs: number): Promise<void>;
  /** Open a stream to host:port through the network; hostnames are resolved by the exit. */
  openStream(host: string, port: number, opts?: { isolation?: string }): Promise<Duplex>;
  /** The client's links (to its guards): a read-only snapshot. */
  linkStats(): LinkStats;
  /** The client's circuits and streams: a read-only snapshot. */
  circuitStats(): CircuitStats;
  close(): Promise<void>;
}

export async function startClient(config: ClientConfig): Promise<ClientHandle> {
  if (config.authorities.length === 0) throw new AlliumError('ERR_CONFIG', 'at least one authority is required');
  const consensus = new ConsensusRefresh(config.authorities);
  const manager = new CircuitManager({
    consensus: () => consensus.current,
    buildTimeoutMs: config.circuitBuildTimeoutMs ?? 30_000,
    ...(config.linkShape !== undefined ? { transport: new ShapedTransport(new TcpTransport(), config.linkShape) } : {}),
  });
  await consensus.start();
  const first = new FirstCircuit(manager, () => consensus.markReady());
  first.start();

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
    consensus.close();
    first.close();
    await manager.close();
    throw error;
  }

  return {
    socksAddress: socks.address,
    whenReady(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new AlliumError('ERR_TIMEOUT', 'no circuit could be built in time')), timeoutMs);
      });
      return Promise.race([first.ready, timeout]).finally(() => clearTimeout(timer));
    },
    openStream,
    linkStats: () => manager.linkStats(),
    circuitStats: () => manager.stats(),
    async close() {
      consensus.close();
      first.close();
      await socks.close();
      await manager.close();
    },
  };
}
