/**
 * One worker of a multi-core relay (relay-workers.ts): a child process that
 * runs a whole relay core (links, circuits, exit streams, directory: its
 * descriptor and the consensus the main process hands it) for the
 * links the main process hands it. Every circuit lives in the worker that
 * accepted its first link; EXTEND2 dials from that worker. Not run directly:
 * the main process forks it and talks over IPC (WorkerRequest / WorkerReport).
 */
import type { Socket } from 'node:net';
import { debuglog } from 'node:util';
import { encodeDescriptor } from '../src/netdoc/descriptor.js';
import { parseExitPolicy } from '../src/netdoc/exit-policy.js';
import { TcpTransport } from '../src/link/transport.js';
import { ShapedTransport } from '../src/link/shaped-transport.js';
import { ServedConsensus } from './dir-cache.js';
import { relayDirectory } from './dir/dir-server.js';
import { loadRelayKeys } from './keys.js';
import { createRelayCore, type RelayCore } from './relay-core.js';
import { selfDescriptor } from './self-descriptor.js';
import type { WorkerReport, WorkerRequest, WorkerSetup } from './relay-workers.js';

const log = debuglog('allium:relay');

/** How often a worker reports its counters to the main process, ms. */
const REPORT_INTERVAL_MS = 1000;

function report(message: WorkerReport): void {
  if (process.connected) process.send!(message);
}

function start(setup: WorkerSetup): RelayCore {
  const keys = loadRelayKeys(setup.dataDir);
  const exitPolicy = parseExitPolicy(setup.exitPolicy);
  const describe = selfDescriptor({
    nickname: setup.nickname,
    keys,
    address: setup.address,
    orPort: setup.port,
    exitPolicy,
    ...(setup.bandwidth !== undefined ? { bandwidth: setup.bandwidth } : {}),
  });
  const tcp = new TcpTransport({ localAddress: setup.address });
  return createRelayCore({
    keys,
    exit: { policy: setup.exit ? exitPolicy : null, localAddress: setup.address },
    transport: setup.linkShape === undefined ? tcp : new ShapedTransport(tcp, setup.linkShape),
    ...(setup.params !== undefined ? { params: setup.params } : {}),
    directory: relayDirectory(
      () => encodeDescriptor(describe(), keys.identity.seed),
      () => served.document(),
      (digestHex) => served.diffFrom(digestHex),
    ),
    ...(setup.dos !== undefined ? { dos: setup.dos } : {}),
    ...(setup.memoryCap !== undefined ? { memoryCap: setup.memoryCap } : {}),
  });
}

let core: RelayCore | null = null;
/** The consensus the main process fetched, served on BEGIN_DIR. */
const served = new ServedConsensus();
let timer: NodeJS.Timeout | null = null;

function stop(): void {
  if (timer !== null) clearInterval(timer);
  core?.links.close();
  core?.links.destroy();
  // Let the destroyed sockets go, then leave.
  setTimeout(() => process.exit(0), 50).unref();
  if (process.connected) process.disconnect();
}

process.on('message', (message: WorkerRequest, handle?: Socket) => {
  switch (message.type) {
    case 'setup':
      try {
        core = start(message.setup);
      } catch (error) {
        report({ type: 'failed', message: (error as Error).message });
        process.exit(1);
      }
      timer = setInterval(() => report({ type: 'stats', links: core!.links.stats(), circuits: core!.stats(), dos: core!.dos.stats(), memory: core!.memoryCap.stats() }), REPORT_INTERVAL_MS);
      timer.unref();
      report({ type: 'ready' });
      return;
    case 'link':
      if (handle === undefined) return;
      handle.on('error', () => {});
      if (core === null) {
        handle.destroy();
        return;
      }
      core.accept(handle).catch((error: Error) => {
        log('inbound link refused: %s', error.message);
        handle.destroy();
      });
      return;
    case 'consensus':
      served.set(message.text, message.validUntil);
      return;
    case 'close':
      stop();
      return;
  }
});

// The main process is gone (or closed the channel): so is this worker.
process.on('disconnect', () => stop());
