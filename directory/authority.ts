/**
 * startAuthority(): a directory authority (docs/protocol.md §9), wiring only.
 * It keeps an Ed25519 identity in its data directory, accepts relay
 * descriptors over HTTP (directory-routes.ts) into the registry, probes each
 * relay (probe-scheduler.ts), and every voting interval signs and publishes a
 * consensus of the relays that are Running (consensus-publisher.ts).
 */
import type { AddressInfo } from 'node:net';
import { debuglog } from 'node:util';
import { equalBytes, hex } from '../src/bytes.js';
import { AlliumError } from '../src/errors.js';
import { parseConsensus, type ConsensusAuthority } from '../src/netdoc/consensus.js';
import type { RelayDescriptor } from '../src/netdoc/descriptor.js';
import { b64, isIPv4, NICKNAME } from '../src/netdoc/text.js';
import { checkParamsConfig } from './consensus-builder.js';
import { AuthorityKeys } from './authority-keys.js';
import { ConsensusPublisher, compress, type Published } from './consensus-publisher.js';
import { DataDir } from './data-dir.js';
import { directoryRoutes } from './directory-routes.js';
import { createDirectoryServer } from './http-server.js';
import { startProbeScheduler } from './probe-scheduler.js';
import { Registry } from './registry.js';

export { linkProbe } from './probe-scheduler.js';

const log = debuglog('allium:directory');

export interface AuthorityConfig {
  nickname: string;
  dataDir: string;
  /** IPv4 address to listen on; it is also the address published for this authority. */
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** All configured authorities including this one; default just this one. This one's entry is matched by identity and given the real address and port. */
  authorities?: ConsensusAuthority[];
  /** How often a consensus is published. */
  votingIntervalMs: number;
  /** How long each consensus stays valid. */
  consensusLifetimeMs: number;
  /** Reachability check of a relay. */
  probe: (d: RelayDescriptor) => Promise<boolean>;
  now?: () => number;
  /** Testnet: relays whose exit policy allows loopback destinations still get the Exit flag, and loopback accepts count in summaries. */
  exitsAllowLoopback?: boolean;
  /** Extensions (not in the original API): */
  /** Re-probe every relay this often; default clamp(5 × votingInterval, 10 s, 10 min). */
  probeIntervalMs?: number;
  /** One probe's time limit; default 10 s. */
  probeTimeoutMs?: number;
  /** Whole-request time limit for HTTP; default 10 s. */
  requestTimeoutMs?: number;
  /** Registry capacity; default 1000. */
  maxRelays?: number;
  /** Network parameters for the consensus `params` line (docs/protocol.md §8.5); default none. */
  params?: ReadonlyMap<string, number>;
  /** Lifetime of the signing keys the authority makes itself while its identity key is online; default 30 days (§9.1). */
  signingKeyLifetimeMs?: number;
}

export interface AuthorityHandle {
  readonly url: string;
  readonly identity: Uint8Array;
  readonly nickname: string;
  /** Waits for pending probes, then builds, signs, stores and serves a consensus. */
  publishNow(): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_MAX_RELAYS = 1000;
export const PROBE_CONCURRENCY = 8;
export const DEFAULT_PROBE_TIMEOUT_MS = 10_000;

/** Throws AlliumError ERR_CONFIG for a configuration startAuthority cannot run with. */
function checkConfig(config: AuthorityConfig): void {
  if (!NICKNAME.test(config.nickname)) throw new AlliumError('ERR_CONFIG', 'authority nickname must be 1-19 letters or digits');
  if (!isIPv4(config.host)) throw new AlliumError('ERR_CONFIG', 'authority host must be a dotted-quad IPv4 address');
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65535) throw new AlliumError('ERR_CONFIG', 'bad authority port');
  if (!(config.votingIntervalMs > 0) || !(config.consensusLifetimeMs >= config.votingIntervalMs)) {
    throw new AlliumError('ERR_CONFIG', 'need votingIntervalMs > 0 and consensusLifetimeMs ≥ votingIntervalMs');
  }
  checkParamsConfig(config.params);
}

/** The stored consensus, if it still parses. */
function loadStoredConsensus(dir: DataDir): Published | undefined {
  const stored = dir.loadConsensus();
  if (stored === undefined) return undefined;
  try {
    parseConsensus(stored);
    return compress(stored);
  } catch (error) {
    log('ignoring stored consensus: %s', (error as Error).message);
    return undefined;
  }
}

export async function startAuthority(config: AuthorityConfig): Promise<AuthorityHandle> {
  checkConfig(config);
  const now = config.now ?? Date.now;
  const dir = new DataDir(config.dataDir);
  const keys = new AuthorityKeys({
    dataDir: config.dataDir,
    now,
    ...(config.signingKeyLifetimeMs !== undefined ? { signingKeyLifetimeMs: config.signingKeyLifetimeMs } : {}),
  });
  const identity = keys.identity;
  const identityHex = hex(identity);
  const probeIntervalMs = config.probeIntervalMs ?? Math.min(600_000, Math.max(10_000, 5 * config.votingIntervalMs));
  const probeTimeoutMs = config.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;

  const registry = new Registry({
    now,
    probe: config.probe,
    probeTimeoutMs,
    probeConcurrency: PROBE_CONCURRENCY,
    runningWindowMs: 2 * probeIntervalMs + probeTimeoutMs,
    maxRelays: config.maxRelays ?? DEFAULT_MAX_RELAYS,
    onAccepted: (entry) => {
      try {
        dir.saveDescriptor(entry.identityHex, entry.text);
      } catch (error) {
        log('could not store descriptor %s: %s', entry.identityHex.slice(0, 16), (error as Error).message);
      }
    },
    onRemoved: (id) => dir.removeDescriptor(id),
  });
  let restored = 0;
  for (const [name, text] of dir.loadDescriptors()) {
    if (registry.restore(text) && registry.get(name) !== undefined) restored++;
    else dir.removeDescriptor(name);
  }

  let authorities: ConsensusAuthority[] = [];
  let url = '';
  const initial = loadStoredConsensus(dir);
  const publisher = new ConsensusPublisher({
    registry,
    dir,
    keys,
    authorities: () => authorities,
    now,
    votingIntervalMs: config.votingIntervalMs,
    consensusLifetimeMs: config.consensusLifetimeMs,
    probeTimeoutMs,
    exitsAllowLoopback: config.exitsAllowLoopback === true,
    ...(config.params !== undefined ? { params: config.params } : {}),
    ...(initial !== undefined ? { initial } : {}),
  });
  const self = () => {
    const me = authorities.find((a) => equalBytes(a.identity, identity))!;
    return { nickname: me.nickname, identity: b64(identity), identityHex, address: me.address, dirPort: me.dirPort, url };
  };
  const server = createDirectoryServer(
    directoryRoutes({ registry, published: () => publisher.published, self }),
    config.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: config.requestTimeoutMs },
  );

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  url = `http://${config.host}:${port}`;
  const me: ConsensusAuthority = { nickname: config.nickname, identity, address: config.host, dirPort: port };
  authorities = [...(config.authorities ?? []).filter((a) => !equalBytes(a.identity, identity)), me];

  const probes = startProbeScheduler(registry, probeIntervalMs);
  publisher.start();
  log('authority %s (%s) serving %s; %d stored descriptors', config.nickname, identityHex.slice(0, 16), url, restored);

  let closed = false;
  return {
    url,
    identity,
    nickname: config.nickname,
    publishNow: () => publisher.publish(true),
    async close() {
      if (closed) return;
      closed = true;
      const publishing = publisher.close();
      probes.stop();
      registry.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await publishing;
    },
  };
}
