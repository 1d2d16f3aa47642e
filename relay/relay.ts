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
import { loadRelayKeys } from './keys.js';
import { listenOrPort } from './or-listener.js';
import { DescriptorPublisher, type AuthorityRef } from './publisher.js';
import { createRelayCore } from './relay-core.js';
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
  close(): Promise<void>;
}


export async function startRelay(config: RelayConfig): Promise<RelayHandle> {
  const keys = loadRelayKeys(config.dataDir);
  const policyLines = config.exitPolicy ?? (config.exit ? DEFAULT_EXIT_POLICY_LINES : NON_EXIT_POLICY_LINES);
  const exitPolicy: ExitPolicy = parseExitPolicy(policyLines);

  // The descriptor names the port, known only once the listener is up.
  let describe: (() => RelayDescriptor) | undefined;
  // A relay that knows the authorities caches the consensus for clients (§6.5).
  const cache = config.authorities.length > 0 ? new RelayConsensusCache({ authorities: config.authorities }) : undefined;
  const core = createRelayCore({
    keys,
    exit: { policy: config.exit ? exitPolicy : null, localAddress: config.address },
    transport: new TcpTransport({ localAddress: config.address }),
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
    core.links.destroy();
    throw error;
  });
  const port = listener.port;

  describe = selfDescriptor({
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
  cache?.start();
  log('relay %s listening on %s:%d', hex(keys.identity.identity).slice(0, 16), config.address, port);

  return {
    address: config.address,
    port,
    identity: keys.identity.identity,
    nickname: config.nickname,
    linkStats: () => core.links.stats(),
    circuitStats: () => core.stats(),
    async close() {
      publisher.close();
      cache?.close();
      core.links.close();
      core.links.destroy();
      await listener.close();
    },
  };
}
