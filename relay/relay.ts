/**
 * startRelay(): the relay role, wiring only. The OR listener (or-listener.ts)
 * hands every accepted socket to the relay core (relay-core.ts): its link
 * manager runs the handshake and carries the link's circuits; EXTEND2 reuses
 * or dials links through the manager over TCP; BEGIN goes to the exit code.
 * BEGIN_DIR goes to the directory handler (relay/dir/dir-server.ts), which
 * serves this relay's descriptor. The descriptor (self-descriptor.ts) is
 * published at start and periodically.
 */
import { debuglog } from 'node:util';
import { parseExitPolicy, type ExitPolicy } from '../src/netdoc/exit-policy.js';
import { DEFAULT_EXIT_POLICY_LINES, NON_EXIT_POLICY_LINES } from '../src/netdoc/default-policies.js';
import { hex } from '../src/bytes.js';
import type { CircuitStats, LinkStats } from '../src/events.js';
import { encodeDescriptor, type RelayDescriptor } from '../src/netdoc/descriptor.js';
import { AlliumError } from '../src/errors.js';
import { relayDirectory } from './dir/dir-server.js';
import { TcpTransport } from '../src/link/transport.js';
import { loadRelayKeys } from './keys.js';
import { listenOrPort } from './or-listener.js';
import { DescriptorPublisher, type AuthorityRef } from './publisher.js';
import { createRelayCore } from './relay-core.js';
import { selfDescriptor, type SelfDescription } from './self-descriptor.js';
import type { ExitConfig } from './exit.js';
import { TokenBucket } from './bandwidth/token-bucket.js';
import { OnionKeyRing, onionKeyDue } from './onion-keys.js';
import { join } from 'node:path';
import { Accounting, type AccountingSettings, type AccountingState } from './bandwidth/accounting.js';
import { CELL_LENGTH } from '../src/constants.js';
import { publish } from '../src/events.js';

export type { AccountingSettings, AccountingState } from './bandwidth/accounting.js';

export const DEFAULT_ONION_KEY_LIFETIME_MS = 28 * 86_400_000;
export const DEFAULT_ONION_KEY_GRACE_MS = 7 * 86_400_000;
const ONION_KEY_CHECK_MS = 60_000;

/** How often the accounting count is compared with the budget. */
const ACCOUNTING_CHECK_MS = 1000;
import { ThrottledStream, ThrottledTransport } from './bandwidth/throttle.js';

export type { AuthorityRef } from './publisher.js';
export { createRelayCore, type RelayCore, type RelayCoreOptions } from './relay-core.js';

const log = debuglog('allium:relay');

export interface RelayConfig {
  nickname: string;
  dataDir: string;
  /** IPv4 address advertised in the descriptor; also listened on and connected out from unless `listenAddress` is given. */
  address: string;
  /** OR port advertised; also listened on unless `listenPort` is given. 0 picks a free port (and advertises it). */
  port: number;
  /** Address the OR port listens on and links are dialled from, when it differs from the advertised one (NAT). */
  listenAddress?: string;
  /** Port the OR port listens on, when it differs from the advertised one (port forwarding). 0 picks a free port. */
  listenPort?: number;
  authorities: AuthorityRef[];
  exit: boolean;
  /** Exit policy rule lines ("accept 127.0.0.0/8:*"); default from `exit`. */
  exitPolicy?: string[];
  /** Bytes per second advertised in the descriptor; default the rate limit, else DEFAULT_BANDWIDTH. */
  bandwidth?: number;
  /** Token-bucket limit on the bytes read from all OR links together, bytes/s (torrc BandwidthRate); absent: none. */
  bandwidthRate?: number;
  /** Bucket size, bytes (torrc BandwidthBurst); default the rate. */
  bandwidthBurst?: number;
  /** A byte budget per period, then hibernation (docs/protocol.md §8.2.1); absent: none. */
  accounting?: AccountingSettings;
  /** Contact line for the descriptor (torrc ContactInfo). */
  contact?: string;
  /** Identities of this relay's family (torrc MyFamily). */
  family?: readonly Uint8Array[];
  /** Rotate the onion key when it is this old (default 28 days, as Tor). */
  onionKeyLifetimeMs?: number;
  /** Keep accepting the previous onion key this long after a rotation (default 7 days). */
  onionKeyGraceMs?: number;
  publishIntervalMs?: number;
}

export interface RelayHandle {
  /** The advertised address and OR port (the descriptor's). */
  readonly address: string;
  readonly port: number;
  /** Where the OR port actually listens. */
  readonly listening: { address: string; port: number };
  readonly identity: Uint8Array;
  readonly nickname: string;
  /** The relay's links: a read-only snapshot. */
  linkStats(): LinkStats;
  /** The relay's circuits and streams: a read-only snapshot. */
  circuitStats(): CircuitStats;
  /**
   * Change what can change on a running relay (SIGHUP, cli/config/reload.ts)
   * and republish the descriptor. Throws AlliumError ERR_CONFIG (nothing
   * changed) for an exit policy on a relay that is not an exit, or a bad rule.
   */
  reconfigure(change: RelayReconfig): void;
  /** The rate limit and how often it was reached; null without one. */
  bandwidthStats(): BandwidthStats | null;
  /** The accounting period's count and state; null without accounting. */
  accountingStats(): AccountingState | null;
  close(): Promise<void>;
}

/** What RelayHandle.reconfigure can change. */
export interface RelayReconfig {
  /** New exit policy rule lines (an exit only). */
  exitPolicy?: readonly string[];
  /** New rate and burst, bytes/s and bytes (a relay started with a rate limit only). */
  bandwidth?: { rate: number; burst: number };
  /** New contact line; null removes it. */
  contact?: string | null;
  /** New family (identities); empty removes it. */
  family?: readonly Uint8Array[];
}

/** RelayHandle.bandwidthStats(): the rate limit, if any. */
export interface BandwidthStats {
  rate: number;
  burst: number;
  /** Times the bucket ran empty (reads waited): Tor's global rate limit reached. */
  limited: number;
}


export async function startRelay(config: RelayConfig): Promise<RelayHandle> {
  const keys = loadRelayKeys(config.dataDir);
  const policyLines = config.exitPolicy ?? (config.exit ? DEFAULT_EXIT_POLICY_LINES : NON_EXIT_POLICY_LINES);
  const exitPolicy: ExitPolicy = parseExitPolicy(policyLines);

  // The descriptor names the port, known only once the listener is up.
  let describe: (() => RelayDescriptor) | undefined;
  const listenAddress = config.listenAddress ?? config.address;
  const bucket = config.bandwidthRate === undefined ? null : new TokenBucket(config.bandwidthRate, config.bandwidthBurst ?? config.bandwidthRate);
  const tcp = new TcpTransport({ localAddress: listenAddress });
  const onionKeys = new OnionKeyRing(join(config.dataDir, 'keys'), keys.identity.identity);
  let accounting: Accounting | null = null;
  const exitConfig: ExitConfig = { policy: config.exit ? exitPolicy : null, localAddress: listenAddress };
  const core = createRelayCore({
    keys,
    exit: exitConfig,
    transport: bucket === null ? tcp : new ThrottledTransport(tcp, bucket),
    directory: relayDirectory(() => {
      if (describe === undefined) throw new AlliumError('ERR_CONFIG', 'descriptor not ready');
      return encodeDescriptor(describe(), keys.identity.seed);
    }),
    hibernating: () => accounting?.hibernating === true,
    onionKeys,
  });
  const listener = await listenOrPort(listenAddress, config.listenPort ?? config.port, (socket) => core.accept(bucket === null ? socket : new ThrottledStream(socket, bucket))).catch((error: unknown) => {
    core.links.destroy();
    throw error;
  });
  // Advertised: the configured port, or the one bound when it is 0.
  const port = config.port !== 0 ? config.port : listener.port;

  // Mutable: reconfigure() changes it and the next descriptor shows it.
  const self: SelfDescription = {
    nickname: config.nickname,
    keys,
    address: config.address,
    orPort: port,
    exitPolicy,
    ...(config.bandwidth !== undefined || bucket !== null ? { bandwidth: config.bandwidth ?? bucket!.rate } : {}),
    ...(config.contact !== undefined ? { contact: config.contact } : {}),
    ...(config.family !== undefined && config.family.length > 0 ? { family: config.family } : {}),
  };
  describe = selfDescriptor(self);
  const publisher = new DescriptorPublisher(config.authorities, keys.identity.seed, describe);
  if (config.authorities.length > 0) publisher.start(config.publishIntervalMs ?? 10 * 60_000);

  // Onion-key rotation (§8.2.2): checked every ONION_KEY_CHECK_MS (more often for short test lifetimes).
  const lifetimeMs = config.onionKeyLifetimeMs ?? DEFAULT_ONION_KEY_LIFETIME_MS;
  const graceMs = config.onionKeyGraceMs ?? DEFAULT_ONION_KEY_GRACE_MS;
  const rotationTimer = setInterval(() => {
    const due = onionKeyDue(onionKeys, Date.now(), lifetimeMs, graceMs);
    if (due === 'drop-previous') onionKeys.dropPrevious();
    if (due !== 'rotate') return;
    onionKeys.rotate();
    self.keys = { ...self.keys, ntor: onionKeys.current };
    self.revision = (self.revision ?? 0) + 1;
    publish('allium:key:rotated', () => ({ key: 'onion', previousAcceptedUntil: onionKeys.currentSince + graceMs }));
    if (config.authorities.length > 0) void publisher.publishOnce();
  }, Math.min(ONION_KEY_CHECK_MS, Math.max(250, Math.floor(Math.min(lifetimeMs, graceMs) / 4))));
  rotationTimer.unref();

  let accountingTimer: NodeJS.Timeout | undefined;
  if (config.accounting !== undefined) {
    const cellBytes = () => {
      const l = core.links.stats();
      return { read: l.cellsIn * CELL_LENGTH, written: l.cellsOut * CELL_LENGTH };
    };
    const acct = new Accounting(config.accounting, cellBytes);
    accounting = acct;
    accountingTimer = setInterval(() => {
      const change = acct.check();
      if (change === null) return;
      self.hibernating = change === 'hibernate';
      self.revision = (self.revision ?? 0) + 1;
      publish('allium:accounting', () => ({ ...acct.state() }));
      if (config.authorities.length > 0) void publisher.publishOnce();
    }, ACCOUNTING_CHECK_MS);
    accountingTimer.unref();
  }
  log('relay %s listening on %s:%d, advertising %s:%d', hex(keys.identity.identity).slice(0, 16), listenAddress, listener.port, config.address, port);

  return {
    address: config.address,
    port,
    listening: { address: listenAddress, port: listener.port },
    identity: keys.identity.identity,
    nickname: config.nickname,
    linkStats: () => core.links.stats(),
    circuitStats: () => core.stats(),
    reconfigure(change) {
      if (change.exitPolicy !== undefined) {
        if (!config.exit) throw new AlliumError('ERR_CONFIG', 'an exit policy needs an exit relay (relay.exit)');
        const policy = parseExitPolicy(change.exitPolicy);
        exitConfig.policy = policy;
        self.exitPolicy = policy;
      }
      if (change.bandwidth !== undefined) {
        if (bucket === null) throw new AlliumError('ERR_CONFIG', 'a relay started without a bandwidth rate needs a restart to get one');
        bucket.configure(change.bandwidth.rate, change.bandwidth.burst);
        if (config.bandwidth === undefined) self.bandwidth = change.bandwidth.rate;
      }
      if (change.contact !== undefined) {
        if (change.contact === null) delete self.contact;
        else self.contact = change.contact;
      }
      if (change.family !== undefined) self.family = change.family;
      self.revision = (self.revision ?? 0) + 1;
      if (config.authorities.length > 0) void publisher.publishOnce();
    },
    bandwidthStats: () => (bucket === null ? null : { rate: bucket.rate, burst: bucket.burst, limited: bucket.emptied }),
    accountingStats: () => accounting?.state() ?? null,
    async close() {
      clearInterval(rotationTimer);
      clearInterval(accountingTimer);
      publisher.close();
      core.links.close();
      core.links.destroy();
      await listener.close();
    },
  };
}
