/**
 * One worker of a multi-core relay (relay-workers.ts): a child process that
 * runs a whole relay core (links, circuits, exit streams, directory: its
 * descriptor and the consensus the main process hands it) for the
 * links the main process hands it. Every circuit lives in the worker that
 * accepted its first link; EXTEND2 dials from that worker. Not run directly:
 * the main process forks it and talks over IPC (WorkerRequest / WorkerReport).
 * It reads its links through its own token bucket (its share of the relay's
 * rate), refuses circuits while the main process says the relay hibernates,
 * and serves over BEGIN_DIR the descriptor the main process last sent.
 */
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { debuglog } from 'node:util';
import { AlliumError } from '../src/errors.js';
import { parseExitPolicy } from '../src/netdoc/exit-policy.js';
import { TcpTransport } from '../src/link/transport.js';
import { ShapedTransport } from '../src/link/shaped-transport.js';
import { ServedConsensus } from './dir-cache.js';
import { relayDirectory } from './dir/dir-server.js';
import type { ExitConfig } from './exit.js';
import { loadRelayKeys, loadRelaySigner } from './keys.js';
import { equalBytes } from '../src/bytes.js';
import { OnionKeyRing, type OnionKeySource } from './onion-keys.js';
import { createRelayCore, type RelayCore } from './relay-core.js';
import { TokenBucket } from './bandwidth/token-bucket.js';
import { ThrottledStream, ThrottledTransport } from './bandwidth/throttle.js';
import type { WorkerReport, WorkerRequest, WorkerSetup, WorkerUpdate } from './relay-workers.js';

const log = debuglog('allium:relay');

/** How often a worker reports its counters to the main process, ms. */
const REPORT_INTERVAL_MS = 1000;
/** How often a worker with a bucket reports its counters, for the main process to share the rate (bandwidth/share.ts). */
const USAGE_INTERVAL_MS = 100;

function report(message: WorkerReport): void {
  if (process.connected) process.send!(message);
}

interface Running {
  core: RelayCore;
  bucket: TokenBucket | null;
  apply(update: WorkerUpdate): void;
}

function start(setup: WorkerSetup): Running {
  // The main process made or renewed the keys before starting the workers.
  const keys = loadRelayKeys(setup.dataDir, { readOnly: true });
  const keysDir = join(setup.dataDir, 'keys');
  let ring = new OnionKeyRing(keysDir, keys.identity.identity);
  const onionKeys: OnionKeySource = { find: (onionKey) => ring.find(onionKey) };
  let descriptor: string | null = null;
  let hibernating = false;
  const bucket = setup.rateLimit === undefined ? null : new TokenBucket(setup.rateLimit.rate, setup.rateLimit.burst);
  const tcp = new TcpTransport({ localAddress: setup.listenAddress, ...(setup.listenAddress6 !== undefined ? { localAddress6: setup.listenAddress6 } : {}) });
  const exitConfig: ExitConfig = { policy: setup.exit ? parseExitPolicy(setup.exitPolicy) : null, localAddress: setup.listenAddress };
  // The links it dials get the emulated WAN shape, if any, inside the rate limit.
  const shaped = setup.linkShape === undefined ? tcp : new ShapedTransport(tcp, setup.linkShape);
  const linkTransport = bucket === null ? shaped : new ThrottledTransport(shaped, bucket);
  const core = createRelayCore({
    keys,
    exit: exitConfig,
    transport: linkTransport,
    ...(setup.params !== undefined ? { params: setup.params } : {}),
    directory: relayDirectory(
      () => {
        if (descriptor === null) throw new AlliumError('ERR_CONFIG', 'descriptor not ready');
        return descriptor;
      },
      () => served.document(),
      (digestHex) => served.diffFrom(digestHex),
    ),
    hibernating: () => hibernating,
    onionKeys,
    ipv6: setup.listenAddress6 !== undefined,
    ...(setup.dos !== undefined ? { dos: setup.dos } : {}),
    ...(setup.memoryCap !== undefined ? { memoryCap: setup.memoryCap } : {}),
  });
  return {
    core,
    bucket,
    apply(update) {
      if (update.exitPolicy !== undefined && setup.exit) exitConfig.policy = parseExitPolicy(update.exitPolicy);
      if (update.rateLimit !== undefined) bucket?.configure(update.rateLimit.rate, update.rateLimit.burst);
      if (update.hibernating !== undefined) hibernating = update.hibernating;
      if (update.reloadOnionKeys === true) ring = new OnionKeyRing(keysDir, keys.identity.identity);
      if (update.reloadSigningKey === true) {
        const signer = loadRelaySigner(setup.dataDir);
        if (signer !== undefined && equalBytes(signer.cert.identity, keys.identity.identity)) keys.identity.signer = signer;
      }
      if (update.descriptor !== undefined) descriptor = update.descriptor;
    },
  };
}

let running: Running | null = null;
/** The consensus the main process fetched, served on BEGIN_DIR. */
const served = new ServedConsensus();
let timer: NodeJS.Timeout | null = null;

function stop(): void {
  if (timer !== null) clearInterval(timer);
  running?.core.links.close();
  running?.core.destroy();
  // Let the destroyed sockets go, then leave.
  setTimeout(() => process.exit(0), 50).unref();
  if (process.connected) process.disconnect();
}

process.on('message', (message: WorkerRequest, handle?: Socket) => {
  switch (message.type) {
    case 'setup':
      try {
        running = start(message.setup);
      } catch (error) {
        report({ type: 'failed', message: (error as Error).message });
        process.exit(1);
      }
      timer = setInterval(() => {
        const { core, bucket } = running!;
        report({ type: 'stats', links: core.links.stats(), circuits: core.stats(), dos: core.dos.stats(), memory: core.memoryCap.stats(), limited: bucket?.emptied ?? 0 });
      }, REPORT_INTERVAL_MS);
      timer.unref();
      if (running.bucket !== null) {
        const bucket = running.bucket;
        setInterval(() => report({ type: 'usage', taken: bucket.taken, emptied: bucket.emptied }), USAGE_INTERVAL_MS).unref();
      }
      report({ type: 'ready' });
      return;
    case 'link':
      if (handle === undefined) return;
      handle.on('error', () => {});
      // The main process counts links per address relay-wide until this one closes.
      if (message.address !== '') handle.once('close', () => report({ type: 'linkClosed', address: message.address }));
      if (running === null) {
        handle.destroy();
        return;
      }
      running.core.accept(running.bucket === null ? handle : new ThrottledStream(handle, running.bucket)).catch((error: Error) => {
        log('inbound link refused: %s', error.message);
        handle.destroy();
      });
      return;
    case 'consensus':
      served.set(message.text, message.validUntil);
      return;
    case 'update':
      try {
        running?.apply(message.update);
      } catch (error) {
        log('update refused: %s', (error as Error).message);
      }
      return;
    case 'close':
      stop();
      return;
  }
});

// The main process is gone (or closed the channel): so is this worker.
process.on('disconnect', () => stop());
// Signals are the main process's to act on: a SIGHUP or Ctrl-C sent to the whole process group
// (a terminal hangup, `kill -HUP -PGID`) must not kill the workers under a relay that stays up.
// The main process reloads on SIGHUP and closes the workers when it stops.
process.on('SIGHUP', () => {});
process.on('SIGINT', () => {});
