/**
 * The relay without its listener: a link manager whose links carry this
 * relay's circuits. Sockets accepted elsewhere (the OR listener, or an
 * in-memory pair in tests) are handed to `accept`; EXTEND2 reuses or dials
 * links through the manager and its transport; BEGIN and RESOLVE go to the
 * exit code, BEGIN_DIR to the directory handler (relay/dir/dir-server.ts).
 */
import type { Duplex } from 'node:stream';
import type { Channel } from '../src/link/channel.js';
import { LinkManager } from '../src/link/link-manager.js';
import type { Transport } from '../src/link/transport.js';
import { relayCircuitCells } from './circuit-cells.js';
import { beginExitStream, resolveForClient, type ExitConfig } from './exit.js';
import type { RelayKeys } from './keys.js';
import type { OnionKeySource } from './onion-keys.js';
import type { DirectoryHandler, RelayCircuit, RelayContext } from './relay-circuit.js';
import { CircuitStatsRecorder } from '../src/circuit/circuit-stats.js';
import type { CircuitStats } from '../src/events.js';

export interface RelayCoreOptions {
  keys: RelayKeys;
  exit: ExitConfig;
  /** How this relay dials other relays. */
  transport: Transport;
  /** One link dial or accept, ms; default the manager's (10 s). */
  dialTimeoutMs?: number;
  /** Links at most; default the manager's (4096). */
  maxLinks?: number;
  /** Serves BEGIN_DIR streams; absent: BEGIN_DIR is refused with END NOTDIRECTORY. */
  directory?: DirectoryHandler | null;
  /** True while the relay hibernates: new circuits are refused (DESTROY HIBERNATING). */
  hibernating?: () => boolean;
  /** The onion keys CREATE2 may name (current and previous, relay/onion-keys.ts); default only `keys.ntor`. */
  onionKeys?: OnionKeySource;
}

export interface RelayCore {
  /** Every link of this relay and its circuit tables. */
  readonly links: LinkManager<RelayCircuit>;
  /** Run the responder's handshake on an incoming socket and carry the link's circuits. */
  accept(socket: Duplex): Promise<Channel>;
  /** A snapshot of the relay's circuit and stream counters. */
  stats(): CircuitStats;
}

export function createRelayCore(opts: RelayCoreOptions): RelayCore {
  const stats = new CircuitStatsRecorder();
  const ctx: RelayContext = {
    identity: opts.keys.identity.identity,
    circuitsOf: (channel) => links.circuitsOf(channel),
    connectTo: (target) => links.get(target),
    begin: (circuit, streamId, body) => beginExitStream(opts.exit, circuit, streamId, body),
    resolve: (circuit, streamId, hostname) => resolveForClient(opts.exit, circuit, streamId, hostname),
    directory: opts.directory ?? null,
    stats,
    ...(opts.hibernating !== undefined ? { hibernating: opts.hibernating } : {}),
  };
  const links: LinkManager<RelayCircuit> = new LinkManager<RelayCircuit>({
    transport: opts.transport,
    handler: relayCircuitCells(ctx, opts.onionKeys ?? opts.keys.ntor),
    keys: { linkKey: opts.keys.linkKey, identity: opts.keys.identity },
    ...(opts.dialTimeoutMs !== undefined ? { dialTimeoutMs: opts.dialTimeoutMs } : {}),
    ...(opts.maxLinks !== undefined ? { maxLinks: opts.maxLinks } : {}),
  });
  return { links, accept: (socket) => links.accept(socket), stats: () => stats.snapshot() };
}
