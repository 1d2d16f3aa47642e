/**
 * startRelay(): the relay role, wiring only. The OR listener (or-listener.ts)
 * hands every accepted socket to the relay core (relay-core.ts): its link
 * manager runs the handshake and carries the link's circuits; EXTEND2 reuses
 * or dials links through the manager over TCP; BEGIN goes to the exit code.
 * BEGIN_DIR goes to the directory handler (relay/dir/dir-server.ts), which
 * serves this relay's descriptor and the consensus it caches (dir-cache.ts).
 * The descriptor (self-descriptor.ts) is published to every authority
 * (publisher.ts).
 */
import { debuglog } from 'node:util';
import { parseExitPolicy, type ExitPolicy } from '../src/netdoc/exit-policy.js';
import { DEFAULT_EXIT_POLICY_LINES, NON_EXIT_POLICY_LINES } from '../src/netdoc/default-policies.js';
import { hex } from '../src/bytes.js';
import type { CircuitStats, LinkStats } from '../src/events.js';
import { encodeDescriptor, type RelayDescriptor } from '../src/netdoc/descriptor.js';
import { AlliumError } from '../src/errors.js';
import { relayDirectory } from './dir/dir-server.js';
import { RelayConsensusCache } from './dir-cache.js';
import { TcpTransport } from '../src/link/transport.js';
import { ShapedTransport } from '../src/link/shaped-transport.js';
import type { LinkShape } from '../src/link/delay-line.js';
import type { NetworkParams } from '../src/netdoc/params.js';
import { loadRelayKeys, type RelayKeys } from './keys.js';
import { listenOrPort } from './or-listener.js';
import { DescriptorPublisher, type AuthorityRef } from './publisher.js';
import { createRelayCore } from './relay-core.js';
import { startRelayWorkers, type RelayWorkers } from './relay-workers.js';
import type { DosOptions, DosStats } from './dos.js';
import { defaultMemoryCap, type MemoryCapOptions, type MemoryCapStats } from './mem-cap.js';
import { selfDescriptor } from './self-descriptor.js';

export type { AuthorityRef } from './publisher.js';
export { createRelayCore, type RelayCore, type RelayCoreOptions } from './relay-core.js';

const log = debuglog('allium:relay');

export interface RelayConfig {
  nickname: string;
  dataDir: string;
  /** IPv4 address to listen on and to connect out from. */
  address: string;
  /** 0 picks a free port. */
  port: number;
  authorities: AuthorityRef[];
  exit: boolean;
  /** Exit policy rule lines ("accept 127.0.0.0/8:*"); default from `exit`. */
  exitPolicy?: string[];
  /** Bytes per second advertised in the descriptor. */
  bandwidth?: number;
  /** Re-upload an unchanged descriptor this often (a changed one goes out at once, §9.3); default 10 min. */
  publishIntervalMs?: number;
  /**
   * Worker processes carrying the links (relay-workers.ts); default 1, which
   * runs everything in this process. More: this process only accepts.
   */
  workers?: number;
  /** DoS limits (relay/dos.ts; defaults DOS_DEFAULTS). */
  dos?: DosOptions;
  /** Memory cap for queued cells and stream buffers (relay/mem-cap.ts). */
  memoryCap?: MemoryCapOptions;
  /** Give every link this relay dials a wide-area shape (delay, rate; src/link/shaped-transport.ts). */
  linkShape?: LinkShape;
  /** The relay's own network parameters (congestion control, docs/protocol.md §7.2); default all at their defaults. */
  params?: NetworkParams;
}

export interface RelayHandle {
  readonly address: string;
  readonly port: number;
  readonly identity: Uint8Array;
  readonly nickname: string;
  /** The relay's links: a read-only snapshot. */
  linkStats(): LinkStats;
  /** The relay's circuits and streams: a read-only snapshot. */
  circuitStats(): CircuitStats;
  /** Refusals by the DoS limits so far. */
  dosStats(): DosStats;
  /** The memory cap: bytes queued at the last check, events, circuits freed. */
  memoryStats(): MemoryCapStats;
  close(): Promise<void>;
}


export async function startRelay(config: RelayConfig): Promise<RelayHandle> {
  const keys = loadRelayKeys(config.dataDir);
  const policyLines = config.exitPolicy ?? (config.exit ? DEFAULT_EXIT_POLICY_LINES : NON_EXIT_POLICY_LINES);
  const exitPolicy: ExitPolicy = parseExitPolicy(policyLines);
  if ((config.workers ?? 1) > 1) return startRelayWithWorkers(config, keys, policyLines, exitPolicy);

  const tcp = new TcpTransport({ localAddress: config.address });
  // The descriptor names the port, known only once the listener is up.
  let describe: (() => RelayDescriptor) | undefined;
  // A relay that knows the authorities caches the consensus for clients (§6.5).
  const cache = config.authorities.length > 0 ? new RelayConsensusCache({ authorities: config.authorities }) : undefined;
  const core = createRelayCore({
    keys,
    exit: { policy: config.exit ? exitPolicy : null, localAddress: config.address },
    transport: config.linkShape === undefined ? tcp : new ShapedTransport(tcp, config.linkShape),
    ...(config.params !== undefined ? { params: config.params } : {}),
    ...(config.dos !== undefined ? { dos: config.dos } : {}),
    ...(config.memoryCap !== undefined ? { memoryCap: config.memoryCap } : {}),
    directory: relayDirectory(
      () => {
        if (describe === undefined) throw new AlliumError('ERR_CONFIG', 'descriptor not ready');
        return encodeDescriptor(describe(), keys.identity.seed);
      },
      () => cache?.document() ?? null,
      (digestHex) => cache?.diffFrom(digestHex) ?? null,
    ),
  });
  const listener = await listenOrPort(config.address, config.port, (socket) => core.accept(socket)).catch((error: unknown) => {
    core.destroy();
    throw error;
  });
  const port = listener.port;

  const self = publishSelf(config, keys, port, exitPolicy);
  describe = self.describe;
  const publisher = self.publisher;
  cache?.start();
  log('relay %s listening on %s:%d', hex(keys.identity.identity).slice(0, 16), config.address, port);

  return {
    address: config.address,
    port,
    identity: keys.identity.identity,
    nickname: config.nickname,
    linkStats: () => core.links.stats(),
    circuitStats: () => core.stats(),
    dosStats: () => core.dos.stats(),
    memoryStats: () => core.memoryCap.stats(),
    async close() {
      publisher.close();
      core.memoryCap.close();
      cache?.close();
      core.links.close();
      core.links.destroy();
      await listener.close();
    },
  };
}

/**
 * startRelay with `config.workers` > 1: this process binds the OR port,
 * publishes the descriptor and keeps the directory cache (handing each newer
 * consensus to the workers); every accepted socket goes, unread, to one of the
 * worker processes, which carry the links and circuits (relay-workers.ts).
 */
async function startRelayWithWorkers(config: RelayConfig, keys: RelayKeys, policyLines: readonly string[], exitPolicy: ExitPolicy): Promise<RelayHandle> {
  let workers: RelayWorkers | undefined;
  const listener = await listenOrPort(
    config.address,
    config.port,
    async (socket) => {
      if (workers === undefined) socket.destroy();
      else workers.dispatch(socket);
    },
    { pauseOnConnect: true },
  );
  const port = listener.port;
  try {
    workers = await startRelayWorkers(config.workers!, {
      nickname: config.nickname,
      dataDir: config.dataDir,
      address: config.address,
      port,
      exit: config.exit,
      exitPolicy: [...policyLines],
      ...(config.bandwidth !== undefined ? { bandwidth: config.bandwidth } : {}),
      ...(config.dos !== undefined ? { dos: config.dos } : {}),
      ...(config.linkShape !== undefined ? { linkShape: config.linkShape } : {}),
      ...(config.params !== undefined ? { params: config.params } : {}),
      // One cap for the relay, shared out among the workers.
      memoryCap: { ...config.memoryCap, capBytes: Math.floor((config.memoryCap?.capBytes ?? defaultMemoryCap()) / config.workers!) },
    });
  } catch (error) {
    await listener.close();
    throw error;
  }
  const pool = workers;
  const { publisher } = publishSelf(config, keys, port, exitPolicy);
  // One directory cache for the relay, here; the workers serve what it fetched.
  const cache =
    config.authorities.length > 0
      ? new RelayConsensusCache({ authorities: config.authorities, onChange: (text, validUntil) => pool.setConsensus(text, validUntil) })
      : undefined;
  cache?.start();
  log('relay %s listening on %s:%d with %d workers', hex(keys.identity.identity).slice(0, 16), config.address, port, pool.size);
  return {
    address: config.address,
    port,
    identity: keys.identity.identity,
    nickname: config.nickname,
    linkStats: () => pool.linkStats(),
    circuitStats: () => pool.circuitStats(),
    dosStats: () => pool.dosStats(),
    memoryStats: () => pool.memoryStats(),
    async close() {
      publisher.close();
      cache?.close();
      await listener.close();
      await pool.close();
    },
  };
}

/**
 * The descriptor this relay publishes (its port known once the listener is up)
 * and the publisher that uploads it to every authority, started when any is configured.
 */
function publishSelf(config: RelayConfig, keys: RelayKeys, port: number, exitPolicy: ExitPolicy): { describe: () => RelayDescriptor; publisher: DescriptorPublisher } {
  const describe = selfDescriptor({
    nickname: config.nickname,
    keys,
    address: config.address,
    orPort: port,
    exitPolicy,
    ...(config.bandwidth !== undefined ? { bandwidth: config.bandwidth } : {}),
  });
  const publisher = new DescriptorPublisher({
    authorities: config.authorities,
    seed: keys.identity.seed,
    make: describe,
    ...(config.publishIntervalMs !== undefined ? { republishIntervalMs: config.publishIntervalMs } : {}),
  });
  if (config.authorities.length > 0) publisher.start();
  return { describe, publisher };
}
