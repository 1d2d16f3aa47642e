/**
 * What carries a relay's links and circuits for startRelay (relay.ts): the
 * relay core in this process, or worker processes (relay-workers.ts), behind
 * one Carrier interface so the descriptor, publishing, onion-key rotation,
 * accounting and reconfigure() work on either alike.
 */
import type { Socket } from 'node:net';
import type { CircuitStats, LinkStats } from '../src/events.js';
import { AlliumError } from '../src/errors.js';
import { ShapedTransport } from '../src/link/shaped-transport.js';
import { TcpTransport } from '../src/link/transport.js';
import type { ExitPolicy } from '../src/netdoc/exit-policy.js';
import { ThrottledStream, ThrottledTransport } from './bandwidth/throttle.js';
import { TokenBucket } from './bandwidth/token-bucket.js';
import { relayDirectory, type DirBody } from './dir/dir-server.js';
import type { DosStats } from './dos.js';
import type { ExitConfig } from './exit.js';
import type { RelayKeys } from './keys.js';
import { defaultMemoryCap, type MemoryCapStats } from './mem-cap.js';
import type { OnionKeyRing } from './onion-keys.js';
import { listenOrPort, type OrListener } from './or-listener.js';
import type { RelayConfig } from './relay-api.js';
import { createRelayCore } from './relay-core.js';
import { startRelayWorkers, type RelayWorkers } from './relay-workers.js';

/**
 * What carries the links and circuits: the relay core in this process, or
 * worker processes (relay-workers.ts). startRelay's descriptor, publishing,
 * onion-key rotation, accounting and reconfigure() work on either alike.
 */
export interface Carrier {
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
export interface CarrierStart {
  carrier: Carrier;
  listener: OrListener;
  accept6: { accept: (socket: Socket) => Promise<unknown>; pauseOnConnect: boolean };
}

/** The consensus this relay caches, as the directory handler serves it (dir-cache.ts). */
export interface ServedDirectory {
  document(): DirBody | null;
  diffFrom(digestHex: string): DirBody | null;
}

/** The relay core in this process: it reads every link through one token bucket (when there is a rate). */
export async function inProcessCarrier(
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
export async function workerCarrier(
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
