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
import { relayDirectory, type DirBody } from './dir/dir-server.js';
import { RelayConsensusCache } from './dir-cache.js';
import { TcpTransport } from '../src/link/transport.js';
import { ShapedTransport } from '../src/link/shaped-transport.js';
import type { LinkShape } from '../src/link/delay-line.js';
import type { NetworkParams } from '../src/netdoc/params.js';
import { DEFAULT_SIGNING_KEY_LIFETIME_MS, loadRelayKeys, refreshSigningKey, signingKeyState, type RelayKeys } from './keys.js';
import { listenOrPort, type OrListener } from './or-listener.js';
import { isUsableIPv6 } from '../src/netdoc/text.js';
import type { Socket } from 'node:net';
import { DescriptorPublisher, type AuthorityRef } from './publisher.js';
import { createRelayCore } from './relay-core.js';
import { startRelayWorkers, type RelayWorkers } from './relay-workers.js';
import type { DosOptions, DosStats } from './dos.js';
import { defaultMemoryCap, type MemoryCapOptions, type MemoryCapStats } from './mem-cap.js';
import { selfDescriptor, type SelfDescription } from './self-descriptor.js';
import type { ExitConfig } from './exit.js';
import { TokenBucket } from './bandwidth/token-bucket.js';
import { OnionKeyRing, onionKeyDue } from './onion-keys.js';
import { join } from 'node:path';
import { Accounting, type AccountingSettings, type AccountingState } from './bandwidth/accounting.js';
import { CELL_LENGTH } from '../src/constants.js';
import { publish } from '../src/events.js';
import { ThrottledStream, ThrottledTransport } from './bandwidth/throttle.js';

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
  /**
   * A second OR port on this IPv6 address (listened on and advertised as is,
   * the descriptor's `or-address`, torrc `ORPort [addr]:port`); absent: IPv4 only.
   */
  ipv6Address?: string;
  /** Its port; default `port` when that is not 0, else a free port. */
  ipv6Port?: number;
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
  /** Lifetime of the signing-key certificates an online relay makes itself (default 30 days, docs/protocol.md §8.2.3). */
  signingKeyLifetimeMs?: number;
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
  /** The advertised address and OR port (the descriptor's). */
  readonly address: string;
  readonly port: number;
  /** Where the OR port actually listens. */
  readonly listening: { address: string; port: number };
  /** The IPv6 OR port (listened on and advertised), if the relay has one. */
  readonly orAddress6?: { address: string; port: number };
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
  /**
   * Rejects with AlliumError ERR_RESOURCE_LIMIT if the relay can no longer
   * serve as advertised (with workers: one exited on its own); never
   * resolves. The CLI then stops with exit status 1 so a supervisor restarts it.
   */
  readonly failed: Promise<never>;
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


/**
 * What carries the links and circuits: the relay core in this process, or
 * worker processes (relay-workers.ts). startRelay's descriptor, publishing,
 * onion-key rotation, accounting and reconfigure() work on either alike.
 */
interface Carrier {
  linkStats(): LinkStats;
  circuitStats(): CircuitStats;
  dosStats(): DosStats;
  memoryStats(): MemoryCapStats;
  /** Times a rate-limit bucket ran empty (0 without a rate limit). */
  limited(): number;
  setExitPolicy(policy: ExitPolicy, lines: readonly string[]): void;
  /** The relay's new rate and burst (bytes/s, bytes); a carrier with a bucket only. */
  setRate(rate: number, burst: number): void;
  setHibernating(hibernating: boolean): void;
  /** The onion key files changed (rotation, or the previous key dropped). */
  onionKeysChanged(): void;
  /** The signing key file changed (renewed, or replaced by the operator): links opened from now on present the new certificate. */
  signingKeyChanged(): void;
  /** The descriptor changed (revision bumped): BEGIN_DIR must serve the new one. */
  descriptorChanged(): void;
  /** The directory cache verified a newer consensus (text, valid-until in ms) to serve over BEGIN_DIR. */
  setConsensus(text: string, validUntil: number): void;
  /** Rejects if the carrier can no longer carry the relay's links (a worker died); never resolves. */
  readonly failed: Promise<never>;
  close(): Promise<void>;
}

/** A started carrier: its IPv4 OR listener, and how an IPv6 OR listener hands it sockets. */
interface CarrierStart {
  carrier: Carrier;
  listener: OrListener;
  accept6: { accept: (socket: Socket) => Promise<unknown>; pauseOnConnect: boolean };
}

/** The consensus this relay caches, as the directory handler serves it (dir-cache.ts). */
interface ServedDirectory {
  document(): DirBody | null;
  diffFrom(digestHex: string): DirBody | null;
}

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

/** The relay core in this process: it reads every link through one token bucket (when there is a rate). */
async function inProcessCarrier(
  config: RelayConfig,
  keys: RelayKeys,
  listenAddress: string,
  exitPolicy: ExitPolicy,
  onionKeys: OnionKeyRing,
  hibernating: () => boolean,
  encodeSelf: () => string,
  consensus: ServedDirectory,
): Promise<CarrierStart> {
  const bucket = config.bandwidthRate === undefined ? null : new TokenBucket(config.bandwidthRate, config.bandwidthBurst ?? config.bandwidthRate);
  const tcp = new TcpTransport({ localAddress: listenAddress, ...(config.ipv6Address !== undefined ? { localAddress6: config.ipv6Address } : {}) });
  // The links it dials get the emulated WAN shape, if any, inside the rate limit.
  const shaped = config.linkShape === undefined ? tcp : new ShapedTransport(tcp, config.linkShape);
  const exitConfig: ExitConfig = { policy: config.exit ? exitPolicy : null, localAddress: listenAddress };
  const core = createRelayCore({
    keys,
    exit: exitConfig,
    transport: bucket === null ? shaped : new ThrottledTransport(shaped, bucket),
    ...(config.params !== undefined ? { params: config.params } : {}),
    ...(config.dos !== undefined ? { dos: config.dos } : {}),
    ...(config.memoryCap !== undefined ? { memoryCap: config.memoryCap } : {}),
    directory: relayDirectory(encodeSelf, consensus.document, consensus.diffFrom),
    hibernating,
    onionKeys,
    ipv6: config.ipv6Address !== undefined,
  });
  const accept = (socket: Socket) => core.accept(bucket === null ? socket : new ThrottledStream(socket, bucket));
  const listener = await listenOrPort(listenAddress, config.listenPort ?? config.port, accept).catch((error: unknown) => {
    core.destroy();
    throw error;
  });
  const carrier: Carrier = {
    // One process: nothing of its own can fail apart from it.
    failed: new Promise<never>(() => {}),
    linkStats: () => core.links.stats(),
    circuitStats: () => core.stats(),
    dosStats: () => core.dos.stats(),
    memoryStats: () => core.memoryCap.stats(),
    limited: () => bucket?.emptied ?? 0,
    setExitPolicy(policy) {
      exitConfig.policy = policy;
    },
    setRate(rate, burst) {
      bucket?.configure(rate, burst);
    },
    // The core asks `hibernating()`, uses the same ring and encodes the descriptor on each request.
    setHibernating() {},
    onionKeysChanged() {},
    // The core's links read keys.identity.signer, which refreshSigningKey replaced.
    signingKeyChanged() {},
    descriptorChanged() {},
    // The core reads the cache on each BEGIN_DIR request.
    setConsensus() {},
    async close() {
      core.links.close();
      core.destroy();
    },
  };
  return { carrier, listener, accept6: { accept, pauseOnConnect: false } };
}

/** A worker's first share of the relay's rate and burst (an equal part, until the shares follow use: RelayWorkers.limitRate). */
function share(rate: number, burst: number, workers: number): { rate: number; burst: number } {
  return { rate: rate / workers, burst: burst / workers };
}

/**
 * startRelay with `config.workers` > 1: this process binds the OR port,
 * publishes the descriptor and keeps the directory cache (handing each newer
 * consensus to the workers); every accepted socket goes, unread, to one of the
 * worker processes, which carry the links and circuits (relay-workers.ts).
 * The memory cap is divided equally among the workers; the bandwidth rate and
 * burst are shared by use, re-shared four times a second (bandwidth/share.ts),
 * so one busy worker gets nearly all of the rate; exit policy,
 * rate, hibernation, onion keys and the descriptor reach them over IPC.
 */
async function workerCarrier(
  config: RelayConfig,
  count: number,
  listenAddress: string,
  policyLines: readonly string[],
  encodeServed: () => string | undefined,
): Promise<CarrierStart> {
  let workers: RelayWorkers | undefined;
  let lose!: (error: Error) => void;
  const failed = new Promise<never>((_, reject) => (lose = reject));
  failed.catch(() => {}); // observed through RelayHandle.failed
  const dispatch = async (socket: Socket) => {
    if (workers === undefined) socket.destroy();
    else workers.dispatch(socket);
  };
  const listener = await listenOrPort(listenAddress, config.listenPort ?? config.port, dispatch, { pauseOnConnect: true });
  const rate = config.bandwidthRate;
  const burst = config.bandwidthBurst ?? config.bandwidthRate;
  try {
    workers = await startRelayWorkers(count, {
      dataDir: config.dataDir,
      listenAddress,
      ...(config.ipv6Address !== undefined ? { listenAddress6: config.ipv6Address } : {}),
      exit: config.exit,
      exitPolicy: [...policyLines],
      ...(rate !== undefined && burst !== undefined ? { rateLimit: share(rate, burst, count) } : {}),
      ...(config.dos !== undefined ? { dos: config.dos } : {}),
      ...(config.linkShape !== undefined ? { linkShape: config.linkShape } : {}),
      ...(config.params !== undefined ? { params: config.params } : {}),
      // One cap for the relay, shared out among the workers.
      memoryCap: { ...config.memoryCap, capBytes: Math.floor((config.memoryCap?.capBytes ?? defaultMemoryCap()) / count) },
    }, (message) => lose(new AlliumError('ERR_RESOURCE_LIMIT', message)));
  } catch (error) {
    await listener.close();
    throw error;
  }
  const pool = workers;
  if (rate !== undefined && burst !== undefined) pool.limitRate(rate, burst);
  const carrier: Carrier = {
    linkStats: () => pool.linkStats(),
    circuitStats: () => pool.circuitStats(),
    dosStats: () => pool.dosStats(),
    memoryStats: () => pool.memoryStats(),
    limited: () => pool.limited(),
    setExitPolicy(_policy, lines) {
      pool.update({ exitPolicy: [...lines] });
    },
    setRate(newRate, newBurst) {
      pool.limitRate(newRate, newBurst);
    },
    setHibernating(hibernating) {
      pool.update({ hibernating });
    },
    onionKeysChanged() {
      pool.update({ reloadOnionKeys: true });
    },
    signingKeyChanged() {
      pool.update({ reloadSigningKey: true });
    },
    // The workers serve, over BEGIN_DIR, the descriptor this process describes, as of its last change.
    descriptorChanged() {
      const bytes = encodeServed();
      if (bytes !== undefined) pool.update({ descriptor: bytes });
    },
    setConsensus(text, validUntil) {
      pool.setConsensus(text, validUntil);
    },
    failed,
    close: () => pool.close(),
  };
  return { carrier, listener, accept6: { accept: dispatch, pauseOnConnect: true } };
}
