/**
 * startClient(): the client role, wiring only. Keeps a verified consensus
 * (consensus-refresh.ts), builds circuits through the circuit manager, tries
 * a first circuit until one is built (first-circuit.ts), and serves SOCKS5 on
 * 127.0.0.1 with the same openStream() that programs can call directly.
 */
import type { Duplex } from 'node:stream';
import { AlliumError, malformed } from '../src/errors.js';
import { parseDestination } from '../src/net/hostname.js';
import type { CircuitStats, LinkStats } from '../src/events.js';
import { CircuitManager } from './circuit-manager.js';
import { ConsensusRefresh } from './consensus-refresh.js';
import type { AuthorityRef } from './directory-client.js';
import { FirstCircuit } from './first-circuit.js';
import { startSocksServer, type SocksServer } from './socks/server.js';

export type { AuthorityRef } from './directory-client.js';

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
  /**
   * Open a stream to host:port through the network; hostnames are resolved by
   * the exit. `host` must be a hostname or IP literal (src/net/hostname.ts):
   * anything else rejects with DecodeError ERR_MALFORMED before any circuit
   * is used. The stream half-closes (end() sends FIN, reading goes on) when the
   * exit supports it (docs/protocol.md §6.4); it is then finished once both
   * sides have ended it (or on destroy()), as a TCP connection is.
   */
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
  const manager = new CircuitManager({ consensus: () => consensus.current, buildTimeoutMs: config.circuitBuildTimeoutMs ?? 30_000 });
  await consensus.start();
  const first = new FirstCircuit(manager, () => consensus.markReady());
  first.start();

  const openStream = async (host: string, port: number, opts?: { isolation?: string }): Promise<Duplex> => {
    const destination = parseDestination(host);
    if (destination.type === 'invalid') throw malformed(`not a valid destination: ${destination.why}`);
    return manager.openStream(destination.host, port, opts?.isolation ?? '');
  };

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
