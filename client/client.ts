/**
 * startClient(): the client role, wiring only. Keeps a verified consensus
 * (consensus-refresh.ts, cached on disk when given a data directory), builds
 * circuits through the circuit manager, tries
 * a first circuit until one is built (first-circuit.ts), and serves SOCKS5 on
 * 127.0.0.1 with the same openStream() that programs can call directly.
 */
import type { Duplex } from 'node:stream';
import { AlliumError } from '../src/errors.js';
import type { CircuitStats, LinkStats } from '../src/events.js';
import type { VerifiedConsensus } from '../src/netdoc/consensus.js';
import { CircuitManager } from './circuit-manager.js';
import { ConsensusRefresh, type DirectoryStatus } from './consensus-refresh.js';
import { RelayConsensusFetcher } from './dir-via-relay.js';
import type { AuthorityRef } from './directory-client.js';
import { FirstCircuit } from './first-circuit.js';
import { startSocksServer, type SocksServer } from './socks/server.js';

export type { AuthorityRef } from './directory-client.js';
export type { DirectoryStatus } from './consensus-refresh.js';

export interface ClientConfig {
  authorities: AuthorityRef[];
  socksHost: string;
  /** 0 picks a free port. */
  socksPort: number;
  circuitBuildTimeoutMs?: number;
  /** Where to cache the consensus (`cached-consensus`, mode 0600); no cache if undefined. */
  dataDir?: string;
  /** Clock-skew tolerance for consensus times and certificates (§11); default 60 s. */
  clockSkewMs?: number;
  /** Longest wait between consensus fetches once ready; default 30 s. */
  maxConsensusRefreshMs?: number;
  /** Called when the client loses a usable consensus, with the reason (and with null when it has one again). */
  onDirectoryProblem?: (message: string | null) => void;
  /** Refresh the consensus through the directory guard's cache before asking the authorities (§11); default true. */
  directoryViaGuard?: boolean;
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
  /** The consensus in use (null if none is valid now). */
  consensus(): VerifiedConsensus | null;
  /** The consensus in use and, if there is none, why (§11). */
  directoryStatus(): DirectoryStatus;
  close(): Promise<void>;
}

export async function startClient(config: ClientConfig): Promise<ClientHandle> {
  if (config.authorities.length === 0) throw new AlliumError('ERR_CONFIG', 'at least one authority is required');
  const consensus = new ConsensusRefresh({
    authorities: config.authorities,
    ...(config.dataDir !== undefined ? { cacheDir: config.dataDir } : {}),
    ...(config.clockSkewMs !== undefined ? { clockSkewMs: config.clockSkewMs } : {}),
    ...(config.maxConsensusRefreshMs !== undefined ? { maxRefreshMs: config.maxConsensusRefreshMs } : {}),
    ...(config.onDirectoryProblem !== undefined ? { onProblem: config.onDirectoryProblem } : {}),
    ...(config.directoryViaGuard === false ? {} : { relayFetcher: new RelayConsensusFetcher(config.clockSkewMs === undefined ? {} : { clockSkewMs: config.clockSkewMs }) }),
  });
  const manager = new CircuitManager({ consensus: () => consensus.current, buildTimeoutMs: config.circuitBuildTimeoutMs ?? 30_000 });
  await consensus.start();
  const first = new FirstCircuit(manager, () => consensus.markReady());
  first.start();

  /** Without a usable consensus a stream fails at once, saying why (§11). */
  const openStream = async (host: string, port: number, opts?: { isolation?: string }) => {
    const problem = consensus.problem;
    if (problem !== null) throw new AlliumError('ERR_NO_PATH', `cannot build circuits: ${problem}`);
    return manager.openStream(host, port, opts?.isolation ?? '');
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
        timer = setTimeout(() => {
          const problem = consensus.problem;
          reject(new AlliumError('ERR_TIMEOUT', problem === null ? 'no circuit could be built in time' : `cannot bootstrap: ${problem}`));
        }, timeoutMs);
      });
      return Promise.race([first.ready, timeout]).finally(() => clearTimeout(timer));
    },
    openStream,
    linkStats: () => manager.linkStats(),
    circuitStats: () => manager.stats(),
    consensus: () => consensus.current,
    directoryStatus: () => consensus.status(),
    async close() {
      consensus.close();
      first.close();
      await socks.close();
      await manager.close();
    },
  };
}
