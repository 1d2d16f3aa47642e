/**
 * startRelay(): the relay role, wiring only. The OR listener (or-listener.ts)
 * hands every accepted socket to the relay core (relay-core.ts): its link
 * manager runs the handshake and carries the link's circuits; EXTEND2 reuses
 * or dials links through the manager over TCP; BEGIN goes to the exit code.
 * BEGIN_DIR goes to the directory handler (relay/dir/dir-server.ts), which
 * serves this relay's descriptor and the consensus it caches (dir-cache.ts).
 * The descriptor (self-descriptor.ts) is published to every authority
 * (publisher.ts). What carries the links (this process or workers) is in
 * carrier.ts; the config and handle shapes are in relay-api.ts.
 */
import { debuglog } from 'node:util';
import { join } from 'node:path';
import { parseExitPolicy, type ExitPolicy } from '../src/netdoc/exit-policy.js';
import { DEFAULT_EXIT_POLICY_LINES, NON_EXIT_POLICY_LINES } from '../src/netdoc/default-policies.js';
import { hex } from '../src/bytes.js';
import { encodeDescriptor, type RelayDescriptor } from '../src/netdoc/descriptor.js';
import { AlliumError } from '../src/errors.js';
import { RelayConsensusCache } from './dir-cache.js';
import { DEFAULT_SIGNING_KEY_LIFETIME_MS, loadRelayKeys, refreshSigningKey, signingKeyState } from './keys.js';
import { listenOrPort, type OrListener } from './or-listener.js';
import { isUsableIPv6 } from '../src/netdoc/text.js';
import { DescriptorPublisher } from './publisher.js';
import { selfDescriptor, type SelfDescription } from './self-descriptor.js';
import { TokenBucket } from './bandwidth/token-bucket.js';
import { OnionKeyRing, onionKeyDue } from './onion-keys.js';
import { Accounting } from './bandwidth/accounting.js';
import { CELL_LENGTH } from '../src/constants.js';
import { publish } from '../src/events.js';
import { inProcessCarrier, workerCarrier, type ServedDirectory } from './carrier.js';
import type { RelayConfig, RelayHandle } from './relay-api.js';

export type { BandwidthStats, RelayConfig, RelayHandle, RelayReconfig } from './relay-api.js';
export type { AccountingSettings, AccountingState } from './bandwidth/accounting.js';

export const DEFAULT_ONION_KEY_LIFETIME_MS = 28 * 86_400_000;
export const DEFAULT_ONION_KEY_GRACE_MS = 7 * 86_400_000;
const ONION_KEY_CHECK_MS = 60_000;
/** An offline relay whose signing key expires soon says so this often, ms. */
const SIGNING_KEY_WARNING_INTERVAL_MS = 86_400_000;

/** How often the accounting count is compared with the budget. */
const ACCOUNTING_CHECK_MS = 1000;

export type { AuthorityRef } from './publisher.js';
export { createRelayCore, type RelayCore, type RelayCoreOptions } from './relay-core.js';

const log = debuglog('allium:relay');

export async function startRelay(config: RelayConfig): Promise<RelayHandle> {
  const signingLifetimeMs = config.signingKeyLifetimeMs ?? DEFAULT_SIGNING_KEY_LIFETIME_MS;
  const keys = loadRelayKeys(config.dataDir, { signingKeyLifetimeMs: signingLifetimeMs });
  const policyLines = config.exitPolicy ?? (config.exit ? DEFAULT_EXIT_POLICY_LINES : NON_EXIT_POLICY_LINES);
  const exitPolicy: ExitPolicy = parseExitPolicy(policyLines);
  const workerCount = config.workers ?? 1;
  if (config.bandwidthRate !== undefined) TokenBucket.check(config.bandwidthRate, config.bandwidthBurst ?? config.bandwidthRate);

  // The descriptor names the port, known only once the listener is up.
  let describe: (() => RelayDescriptor) | undefined;
  // With workers: the copy they serve over BEGIN_DIR, from its own describer so it never shifts the published times the publisher sees.
  let served: (() => RelayDescriptor) | undefined;
  const listenAddress = config.listenAddress ?? config.address;
  const onionKeys = new OnionKeyRing(join(config.dataDir, 'keys'), keys.identity.identity);
  let accounting: Accounting | null = null;
  // A relay that knows the authorities caches the consensus for clients (§6.5); with workers, it hands each newer one to them.
  const cache =
    config.authorities.length > 0
      ? new RelayConsensusCache({ authorities: config.authorities, onChange: (text, validUntil) => carrier.setConsensus(text, validUntil) })
      : undefined;
  const consensus: ServedDirectory = { document: () => cache?.document() ?? null, diffFrom: (digestHex) => cache?.diffFrom(digestHex) ?? null };
  const encodeSelf = () => {
    if (describe === undefined) throw new AlliumError('ERR_CONFIG', 'descriptor not ready');
    return encodeDescriptor(describe(), keys.identity.signer);
  };
  if (config.ipv6Address !== undefined && !isUsableIPv6(config.ipv6Address)) {
    throw new AlliumError('ERR_CONFIG', `relay.ipv6_address: ${JSON.stringify(config.ipv6Address)} is not a canonical IPv6 address other than :: and ::ffff:a.b.c.d`);
  }
  const { carrier, listener, accept6 } =
    workerCount > 1
      ? await workerCarrier(config, workerCount, listenAddress, policyLines, () => (served === undefined ? undefined : encodeDescriptor(served(), keys.identity.signer)))
      : await inProcessCarrier(config, keys, listenAddress, exitPolicy, onionKeys, () => accounting?.hibernating === true, encodeSelf, consensus);
  // Advertised: the configured port, or the one bound when it is 0.
  const port = config.port !== 0 ? config.port : listener.port;
  // The IPv6 OR port feeds the same carrier as the IPv4 one.
  let listener6: OrListener | undefined;
  if (config.ipv6Address !== undefined) {
    try {
      listener6 = await listenOrPort(config.ipv6Address, config.ipv6Port ?? config.port, accept6.accept, { pauseOnConnect: accept6.pauseOnConnect });
    } catch (error) {
      await listener.close();
      await carrier.close();
      throw error;
    }
  }
  const orAddress6 = listener6 === undefined ? undefined : { address: config.ipv6Address!, port: listener6.port };

  // Mutable: reconfigure() changes it and the next descriptor shows it.
  const self: SelfDescription = {
    nickname: config.nickname,
    keys,
    address: config.address,
    orPort: port,
    exitPolicy,
    ...(config.bandwidth !== undefined || config.bandwidthRate !== undefined ? { bandwidth: config.bandwidth ?? config.bandwidthRate! } : {}),
    ...(config.contact !== undefined ? { contact: config.contact } : {}),
    ...(config.family !== undefined && config.family.length > 0 ? { family: config.family } : {}),
    ...(orAddress6 !== undefined ? { orAddress6 } : {}),
  };
  describe = selfDescriptor(self);
  served = selfDescriptor(self);
  const publisher = new DescriptorPublisher({
    authorities: config.authorities,
    signer: () => keys.identity.signer,
    make: describe,
    ...(config.publishIntervalMs !== undefined ? { republishIntervalMs: config.publishIntervalMs } : {}),
  });
  if (config.authorities.length > 0) publisher.start();
  cache?.start();
  carrier.descriptorChanged();
  /** After a change to `self`: a newer descriptor, served and published. */
  const changed = () => {
    self.revision = (self.revision ?? 0) + 1;
    carrier.descriptorChanged();
    if (config.authorities.length > 0) publisher.refresh();
  };

  // Onion-key rotation (§8.2.2): checked every ONION_KEY_CHECK_MS (more often for short test lifetimes).
  const lifetimeMs = config.onionKeyLifetimeMs ?? DEFAULT_ONION_KEY_LIFETIME_MS;
  const graceMs = config.onionKeyGraceMs ?? DEFAULT_ONION_KEY_GRACE_MS;
  // The signing key (§8.2.3): renewed when due (identity online) or taken from a file the operator replaced; an offline relay warns before it expires.
  let lastSigningWarning = -Infinity;
  const checkSigningKey = (now: number) => {
    const refreshed = refreshSigningKey(config.dataDir, keys, now, signingLifetimeMs);
    if (refreshed !== null) {
      carrier.signingKeyChanged();
      publish('allium:key:signing', () => ({ state: refreshed, expires: keys.identity.signer.cert.expires, identityOnline: keys.identitySeed !== undefined }));
      changed();
      return;
    }
    const state = signingKeyState(keys.identity.signer, now);
    if (state === 'ok' || now - lastSigningWarning < SIGNING_KEY_WARNING_INTERVAL_MS) return;
    lastSigningWarning = now;
    publish('allium:key:signing', () => ({ state, expires: keys.identity.signer.cert.expires, identityOnline: keys.identitySeed !== undefined }));
  };
  checkSigningKey(Date.now());
  const signingTimer = setInterval(() => checkSigningKey(Date.now()), Math.min(ONION_KEY_CHECK_MS, Math.max(250, Math.floor(signingLifetimeMs / 8))));
  signingTimer.unref();

  const rotationTimer = setInterval(() => {
    const due = onionKeyDue(onionKeys, Date.now(), lifetimeMs, graceMs);
    if (due === 'drop-previous') {
      onionKeys.dropPrevious();
      carrier.onionKeysChanged();
    }
    if (due !== 'rotate') return;
    onionKeys.rotate();
    carrier.onionKeysChanged();
    self.keys = { ...self.keys, ntor: onionKeys.current };
    publish('allium:key:rotated', () => ({ key: 'onion', previousAcceptedUntil: onionKeys.currentSince + graceMs }));
    changed();
  }, Math.min(ONION_KEY_CHECK_MS, Math.max(250, Math.floor(Math.min(lifetimeMs, graceMs) / 4))));
  rotationTimer.unref();

  let accountingTimer: NodeJS.Timeout | undefined;
  if (config.accounting !== undefined) {
    // With workers, their counters as last reported (once a second).
    const cellBytes = () => {
      const l = carrier.linkStats();
      return { read: l.cellsIn * CELL_LENGTH, written: l.cellsOut * CELL_LENGTH };
    };
    const acct = new Accounting(config.accounting, cellBytes);
    accounting = acct;
    accountingTimer = setInterval(() => {
      const change = acct.check();
      if (change === null) return;
      self.hibernating = change === 'hibernate';
      carrier.setHibernating(self.hibernating);
      publish('allium:accounting', () => ({ ...acct.state() }));
      changed();
    }, ACCOUNTING_CHECK_MS);
    accountingTimer.unref();
  }
  let rate = config.bandwidthRate;
  let burst = config.bandwidthBurst ?? config.bandwidthRate;
  log('relay %s listening on %s:%d, advertising %s:%d%s', hex(keys.identity.identity).slice(0, 16), listenAddress, listener.port, config.address, port, workerCount > 1 ? ` with ${workerCount} workers` : '');

  return {
    address: config.address,
    port,
    listening: { address: listenAddress, port: listener.port },
    ...(orAddress6 !== undefined ? { orAddress6 } : {}),
    identity: keys.identity.identity,
    nickname: config.nickname,
    failed: carrier.failed,
    linkStats: () => carrier.linkStats(),
    circuitStats: () => carrier.circuitStats(),
    dosStats: () => carrier.dosStats(),
    memoryStats: () => carrier.memoryStats(),
    reconfigure(change) {
      // Check everything before changing anything.
      const policy = change.exitPolicy === undefined ? undefined : parseExitPolicy(change.exitPolicy);
      if (policy !== undefined && !config.exit) throw new AlliumError('ERR_CONFIG', 'an exit policy needs an exit relay (relay.exit)');
      if (change.bandwidth !== undefined) {
        if (rate === undefined) throw new AlliumError('ERR_CONFIG', 'a relay started without a bandwidth rate needs a restart to get one');
        TokenBucket.check(change.bandwidth.rate, change.bandwidth.burst);
      }
      if (policy !== undefined) {
        carrier.setExitPolicy(policy, change.exitPolicy!);
        self.exitPolicy = policy;
      }
      if (change.bandwidth !== undefined) {
        rate = change.bandwidth.rate;
        burst = change.bandwidth.burst;
        carrier.setRate(rate, burst);
        if (config.bandwidth === undefined) self.bandwidth = rate;
      }
      if (change.contact !== undefined) {
        if (change.contact === null) delete self.contact;
        else self.contact = change.contact;
      }
      if (change.family !== undefined) self.family = change.family;
      changed();
    },
    bandwidthStats: () => (rate === undefined || burst === undefined ? null : { rate, burst, limited: carrier.limited() }),
    accountingStats: () => accounting?.state() ?? null,
    async close() {
      clearInterval(rotationTimer);
      clearInterval(signingTimer);
      clearInterval(accountingTimer);
      publisher.close();
      cache?.close();
      await listener.close();
      await listener6?.close();
      await carrier.close();
    },
  };
}
